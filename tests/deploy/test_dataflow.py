"""The jobs through the DataflowRunner up to, not including, job submission, offline.

The Flex Template launcher runs deploy/launch.py with --template_location: Beam translates the
pipeline, stages it and writes the Dataflow job request there instead of sending it. Here that
happens against the GCS emulator, so everything but the Dataflow service itself runs for real.
"""
import importlib
import json
import re
from pathlib import Path

import fsspec
import pytest
from apache_beam.internal import pickler
from apache_beam.portability.api import beam_runner_api_pb2

from deploy import launch
from testdata import encode, make_video, scene_image

IMAGE = "europe-west1-docker.pkg.dev/altvoice-test/altvoice/altvoice:test"
GPU = "worker_accelerator=type:nvidia-tesla-t4;count:1;install-nvidia-driver"
DOCKERFILE = Path(__file__).parents[2] / "deploy" / "Dockerfile"


def dataflow_flags(bucket: str, name: str) -> list[str]:
    """What the launcher adds to the template parameters, plus the worker settings deploy/ uses."""
    return ["--runner=DataflowRunner", "--project=altvoice-test", "--region=europe-west1", f"--job_name={name}",
            f"--temp_location={bucket}/tmp", f"--staging_location={bucket}/staging",
            f"--template_location={bucket}/launches/{name}/job_object", f"--sdk_container_image={IMAGE}",
            "--experiments=use_runner_v2", "--machine_type=n1-standard-4", "--max_num_workers=7",
            "--disk_size_gb=50"]


def launched_job(bucket: str, name: str) -> tuple[dict, beam_runner_api_pb2.Pipeline]:
    """The job request written for the launcher, and the pipeline it staged."""
    fs = fsspec.filesystem("gs")
    job = json.loads(fs.cat_file(f"{bucket[5:]}/launches/{name}/job_object"))
    staged = [p for p in fs.find(f"{bucket[5:]}/staging") if p.endswith("/pipeline.pb") and name in p]
    assert len(staged) == 1
    return job, beam_runner_api_pb2.Pipeline.FromString(fs.cat_file(staged[0]))


def check_job(job: dict, pipeline, steps: set[str]):
    pool = job["environment"]["workerPools"][0]
    assert pool["machineType"] == "n1-standard-4" and pool["diskSizeGb"] == 50
    assert pool["autoscalingSettings"]["maxNumWorkers"] == 7
    assert "use_runner_v2" in job["environment"]["experiments"]
    (harness,) = pool["sdkHarnessContainerImages"]
    assert harness["containerImage"] == IMAGE
    # the SDK the job was built with is the one the image is built FROM
    base = re.search(r"^FROM (apache/beam_python\S+)", DOCKERFILE.read_text(), re.M).group(1)
    assert f"beam:version:sdk_base:{base}" in harness["capabilities"]
    images = {beam_runner_api_pb2.DockerPayload.FromString(env.payload).container_image
              for env in pipeline.components.environments.values()}
    assert images == {IMAGE}
    labels = {t.unique_name.split("/")[0] for t in pipeline.components.transforms.values()}
    assert steps <= labels


def test_caption_template_launch_writes_a_dataflow_job(gcs, tiny_model):
    name = "altvoice-caption-test"
    params = [f"--input={gcs}/photos", f"--output={gcs}/template-described", f"--model={tiny_model}", "--tts=espeak",
              "--force=false", "--embed_metadata=true", "--tts_option=speed=150,pitch=40"]
    flags = dataflow_flags(gcs, name) + [f"--dataflow_service_options={GPU}"]
    fsspec.filesystem("gs").pipe_file(f"{gcs[5:]}/photos/red.jpg", encode(scene_image((200, 30, 30)), "JPEG"))
    assert launch.main(params + flags) == 0
    job, pipeline = launched_job(gcs, name)
    check_job(job, pipeline, {"ReadImages", "Decode", "Caption", "Write", "WriteManifest", "WriteErrors"})
    assert GPU in job["environment"]["serviceOptions"]
    options = job["environment"]["sdkPipelineOptions"]["options"]
    assert options["input"] == f"{gcs}/photos" and options["embed_metadata"] is True and "force" not in options
    # workers get the job's settings inside the pickled DoFn (the options keep one --tts_option only)
    (write,) = [t for t in pipeline.components.transforms.values() if t.unique_name == "Write/ParDo(WriteOutputs)"]
    settings = pickler.loads(beam_runner_api_pb2.ParDoPayload.FromString(write.spec.payload).do_fn.payload)[0].settings
    assert settings.tts_options == {"speed": 150, "pitch": 40} and settings.embed and not settings.force
    assert not fsspec.filesystem("gs").exists(f"{gcs[5:]}/template-described/manifest.jsonl")  # built, not run


def test_describe_video_template_launch_writes_a_dataflow_job(gcs, tiny_model, monkeypatch, tmp_path):
    """Its launcher image names the job (ALTVOICE_JOB): by its --input alone, launch.py would pick caption."""
    name = "altvoice-describe-video-test"
    make_video(tmp_path / "clip.mp4", [((200, 30, 30), 1.0)])
    fsspec.filesystem("gs").put_file(str(tmp_path / "clip.mp4"), f"{gcs[5:]}/videos/clip.mp4")
    monkeypatch.setenv("ALTVOICE_JOB", "describe-video")
    params = [f"--input={gcs}/videos", f"--output={gcs}/described-videos", f"--model={tiny_model}", "--tts=espeak",
              "--force=true", "--range_seconds=60", "--tts_option=speed=150,pitch=40"]
    assert launch.main(params + dataflow_flags(gcs, name)) == 0
    job, pipeline = launched_job(gcs, name)
    check_job(job, pipeline, {"ListVideos", "Caption", "WriteTrack", "WriteManifest", "WriteErrors"})
    options = job["environment"]["sdkPipelineOptions"]["options"]
    assert options["input"] == f"{gcs}/videos" and options["force"] is True
    assert float(options["range_seconds"]) == 60
    assert not fsspec.filesystem("gs").exists(f"{gcs[5:]}/described-videos/manifest.jsonl")  # built, not run


def test_preprocess_template_launch_then_summary(gcs, tiny_model, dataset, tmp_path):
    """The template job can't write summary.json when it ends; `launch.py summary` does, from the
    flags saved at launch. Here the finished job is a copy of the output preprocess wrote for
    `tiny_model`, launched again with the flags that made it."""
    import shutil

    prep, root, name = tmp_path / "prep", dataset["root"], "altvoice-preprocess-test"
    shutil.copytree(tiny_model.parents[1] / "prep", prep)
    made = json.loads((prep / "summary.json").read_text())
    (prep / "summary.json").unlink()
    params = [f"--captions={root / 'captions.txt'}", f"--images={root / 'Images'}",
              f"--train_split={root / 'train.txt'}", f"--dev_split={root / 'dev.txt'}", f"--output={prep}",
              f"--backbone={made['backbone']}", f"--backbone_weights={made['backbone_weights']}",
              f"--image_size={made['image_size']}", f"--min_word_count={made['min_word_count']}",
              f"--max_length={made['max_length']}", f"--drop_single_letters={str(made['drop_single_letters']).lower()}",
              "--overwrite=true"]
    assert launch.main(params + dataflow_flags(gcs, name)) == 0
    job, pipeline = launched_job(gcs, name)
    check_job(job, pipeline, {"ReadCaptions", "AnalyzeTrain", "ReadImages", "Features", "JoinByImage",
                              "Write_tfrecords_train", "Write_tfrecords_dev", "Write_features_train",
                              "Write_features_dev", "WriteErrors", "WriteCounts"})
    assert not (prep / "summary.json").exists()
    assert launch.main(["summary", "--output", str(prep)]) == 0
    assert json.loads((prep / "summary.json").read_text()) == made
    assert launch.main(["summary", "--output", str(tmp_path)]) == 2  # no launch.json there


@pytest.mark.parametrize("job", ["caption", "preprocess"])
def test_the_jobs_own_run_gets_through_dataflow_submission(job, gcs, tiny_model, dataset, monkeypatch, tmp_path):
    module = importlib.import_module(f"pipelines.{job}")
    monkeypatch.setattr(module, "manifest_counts" if job == "caption" else "write_summary", lambda *a: {"splits": {}})
    root, name = dataset["root"], f"altvoice-{job}-run"
    argv = ([f"--input={gcs}/photos", f"--output={gcs}/run-described", f"--model={tiny_model}", "--tts=espeak"]
            if job == "caption" else
            [f"--captions={root / 'captions.txt'}", f"--images={root / 'Images'}", f"--train_split={root / 'train.txt'}",
             f"--dev_split={root / 'dev.txt'}", f"--output={tmp_path}", "--backbone_weights=none"])
    module.run(argv + dataflow_flags(gcs, name))
    assert fsspec.filesystem("gs").exists(f"{gcs[5:]}/launches/{name}/job_object")
