"""Flex Template metadata against the jobs' own options, and launch.py's reading of template parameters."""
import argparse
import json
import re
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from google.cloud import dataflow_v1beta3
from google.protobuf import json_format

from deploy import launch
from altvoice.flags import JOB_FLAGS, UsageError
from altvoice.pipelines.options import CaptionOptions, DescribeVideoOptions, PreprocessOptions, add_job_flags

TEMPLATES = Path(__file__).parents[2] / "deploy" / "templates"
JOBS = {"preprocess": (PreprocessOptions, set(PreprocessOptions.REQUIRED)),
        "caption": (CaptionOptions, {"input", "output"}),
        "describe-video": (DescribeVideoOptions, {"input", "output"})}
CANDIDATES = ["gs://altvoice-test/some/path", "en-US-Neural2-C", "requests_per_minute=100,speaking_rate=1.1"]


def metadata(job: str) -> dict:
    return json.loads((TEMPLATES / job / "metadata.json").read_text())


def flag_actions(options_class) -> dict:
    parser = argparse.ArgumentParser(add_help=False)
    add_job_flags(parser, options_class)
    return {s: action for action in parser._actions for s in action.option_strings}


def parses(action, value: str) -> bool:
    try:
        action.type(value)
    except (ValueError, argparse.ArgumentTypeError):
        return False
    return True


def sample(param: dict, action) -> str:
    """A value of the parameter's kind that its regexes and the flag accept, as the launcher would pass it."""
    if action.nargs == 0:
        candidates = ["true"]
    elif action.choices:
        candidates = list(action.choices)
    elif action.type:
        candidates = [c for c in ("7", "0.5") if parses(action, c)]
    else:
        candidates = CANDIDATES
    fitting = [c for c in candidates if all(re.fullmatch(r, c) for r in param.get("regexes", []))]
    assert fitting, f"{param['name']}: its regexes accept none of {candidates}"
    return fitting[0]


@pytest.mark.parametrize("job", JOBS)
def test_metadata_is_a_valid_template_metadata_message(job):
    message = json_format.ParseDict(metadata(job), dataflow_v1beta3.TemplateMetadata.pb()())  # unknown keys fail
    assert message.name and message.description and message.parameters
    for param in message.parameters:
        assert param.label and param.help_text and param.regexes, param.name
        for regex in param.regexes:
            re.compile(regex)


@pytest.mark.parametrize("job", JOBS)
def test_every_parameter_is_a_job_option_and_every_required_option_a_parameter(job):
    options_class, required = JOBS[job]
    actions, params = flag_actions(options_class), metadata(job)["parameters"]
    argv = []
    for param in params:
        action = actions.get(f"--{param['name']}")
        assert action is not None and action.dest == param["name"], f"--{param['name']} isn't a {job} flag"
        argv.append(f"--{param['name']}={sample(param, action)}")
    opts = PipelineOptions(launch.template_argv(job, argv)).view_as(options_class)
    for param, arg in zip(params, argv):
        value, parsed = arg.split("=", 1)[1], getattr(opts, param["name"])
        if param["name"] == "tts_option":
            assert parsed == value.split(",")
        else:
            assert parsed == {"true": True}.get(value, actions[f"--{param['name']}"].type(value) if
                                                actions[f"--{param['name']}"].type else value), param["name"]
    declared_required = {p["name"] for p in params if not p.get("isOptional", False)}
    assert declared_required == required


def test_describe_video_has_a_parameter_for_every_flag_its_help_lists():
    """All but --corrections, a flag every Beam job shares that describe-video doesn't read."""
    parser = argparse.ArgumentParser(add_help=False)
    for add in JOB_FLAGS["describe-video"]:
        add(parser)
    listed = {action.dest for action in parser._actions} - {"corrections"}
    assert listed <= {param["name"] for param in metadata("describe-video")["parameters"]}


def test_launch_picks_the_job_from_its_required_flag(monkeypatch):
    monkeypatch.delenv("ALTVOICE_JOB", raising=False)
    assert launch.pick_job(["--input=gs://b/p", "--output=gs://b/o"])[0] == "caption"
    assert launch.pick_job(["--captions=gs://b/c.txt", "--output=gs://b/o"])[0] == "preprocess"
    assert launch.pick_job(["preprocess", "--input=x"]) == ("preprocess", ["--input=x"])
    assert launch.pick_job(["describe-video", "--input=x"]) == ("describe-video", ["--input=x"])
    with pytest.raises(SystemExit, match="name the job"):
        launch.pick_job(["--output=gs://b/o"])


def test_a_launcher_image_names_its_job(monkeypatch):
    """describe-video requires --input as caption does: its launcher image sets ALTVOICE_JOB."""
    dockerfile = (Path(launch.HERE) / "launcher" / "Dockerfile").read_text()
    assert "ENV ALTVOICE_JOB=${JOB}" in dockerfile
    monkeypatch.setenv("ALTVOICE_JOB", "describe-video")
    assert launch.pick_job(["--input=gs://b/v", "--output=gs://b/o"]) == (
        "describe-video", ["--input=gs://b/v", "--output=gs://b/o"])
    assert launch.pick_job(["caption", "--input=gs://b/p"])[0] == "caption"  # a named job still wins
    monkeypatch.setenv("ALTVOICE_JOB", "describe_video")
    with pytest.raises(SystemExit, match="ALTVOICE_JOB=describe_video"):
        launch.pick_job(["--input=gs://b/v"])


def test_launch_rewrites_boolean_and_list_parameters():
    argv = ["--input=gs://b/p", "--force=true", "--embed_metadata=false", "--tts_option=a=1,b=x y",
            "--tts-option", "c=2"]
    assert launch.template_argv("caption", argv) == [
        "--input=gs://b/p", "--force", "--tts_option=a=1", "--tts_option=b=x y", "--tts-option=c=2"]
    opts = PipelineOptions(launch.template_argv("caption", argv)).view_as(CaptionOptions)
    assert opts.force and not opts.embed_metadata and opts.tts_option == ["a=1", "b=x y", "c=2"]
    with pytest.raises(UsageError, match="--force=maybe"):
        launch.template_argv("caption", ["--force=maybe"])
    assert launch.template_argv("preprocess", ["--drop_single_letters=True"]) == ["--drop_single_letters"]
