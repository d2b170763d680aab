"""Flex Template entry point (FLEX_TEMPLATE_PYTHON_PY_FILE) of altvoice's Beam jobs.

    python deploy/launch.py [preprocess|caption|describe-video] --name=value ... [beam pipeline options]
    python deploy/launch.py summary --output gs://.../prep    # after a preprocess template job

Which job: the first argument if it names one, else $ALTVOICE_JOB, else the job whose required flag
is given (--captions: preprocess, --input: caption). describe-video requires --input too, so its
template launches in an image that sets ALTVOICE_JOB (deploy/launcher/). Each template's parameters
are its own job's flags.

Template parameters arrive as --name=value. Booleans come as --force=true, which store_true flags
refuse, so they are rewritten (=true -> --force, =false -> dropped); a --tts_option holding
comma-separated KEY=VALUE pairs becomes one --tts_option per pair (a parameter can't repeat).

The Flex launcher passes --template_location: Beam then writes the job file there instead of
submitting, and the launcher submits it. In that case the pipeline is built and handed over without
waiting (Google's Flex docs: don't wait_until_finish), so preprocess can't write summary.json at the
end: its flags are saved to <output>/launch.json and `launch.py summary --output ...` writes it once
the Dataflow job is done. Without --template_location it runs the job to the end.
"""
import argparse
import importlib
import json
import logging
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.dirname(HERE) not in sys.path:  # run as a file from a checkout: the project's packages
    sys.path.insert(0, os.path.dirname(HERE))

JOBS = {"preprocess": ("altvoice.pipelines.preprocess", "--captions"),
        "caption": ("altvoice.pipelines.caption", "--input"),
        "describe-video": ("altvoice.pipelines.describe_video", None)}  # named, never guessed
TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")


def pick_job(argv: list[str]) -> tuple[str, list[str]]:
    """(job, the rest of argv): the job named first, else $ALTVOICE_JOB, else the one whose required
    flag is present."""
    if argv and argv[0] in JOBS:
        return argv[0], argv[1:]
    named = os.environ.get("ALTVOICE_JOB")
    if named:
        if named not in JOBS:
            raise SystemExit(f"launch.py: ALTVOICE_JOB={named} is none of {', '.join(JOBS)}")
        return named, argv
    flags = {arg.split("=", 1)[0] for arg in argv}
    found = [job for job, (_, flag) in JOBS.items() if flag and flag in flags]
    if len(found) != 1:
        raise SystemExit(f"launch.py: name the job ({' or '.join(JOBS)}) or pass exactly one of "
                         f"{', '.join(flag for _, flag in JOBS.values() if flag)}")
    return found[0], argv


def _switches(job: str) -> set[str]:
    """Option strings of the job's store_true flags (both spellings)."""
    from altvoice.flags import JOB_FLAGS

    parser = argparse.ArgumentParser(add_help=False)
    for add in JOB_FLAGS[job]:
        add(parser)
    return {s for action in parser._actions if action.nargs == 0 for s in action.option_strings}


def template_argv(job: str, argv: list[str]) -> list[str]:
    """Template parameters as the job's command line (booleans and --tts_option lists rewritten)."""
    from altvoice.flags import UsageError

    switches = _switches(job)
    out, rest = [], list(argv)
    while rest:
        arg = rest.pop(0)
        name, sep, value = arg.partition("=")
        if sep and name in switches:
            if value.lower() in TRUE:
                out.append(name)
            elif value.lower() not in FALSE:
                raise UsageError(f"{name}={value}: expected true or false")
        elif name in ("--tts_option", "--tts-option"):
            value = value if sep else (rest.pop(0) if rest else "")
            out += [f"{name}={pair}" for pair in value.split(",") if pair]
        else:
            out.append(arg)
    return out


def run_job(job: str, argv: list[str], wait: bool = True):
    """Runs the job's own run(argv); without `wait` the pipeline is handed to the runner."""
    return importlib.import_module(JOBS[job][0]).run(argv, wait=wait)


def main(argv=None) -> int:
    from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions

    from altvoice.flags import UsageError

    argv = sys.argv[1:] if argv is None else list(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        if argv[:1] == ["summary"]:
            parser = argparse.ArgumentParser(prog="launch.py summary")
            parser.add_argument("--output", required=True, help="the preprocess job's --output")
            from altvoice.pipelines.preprocess import write_summary_after_launch

            print(json.dumps(write_summary_after_launch(parser.parse_args(argv[1:]).output)["splits"]))
            return 0
        job, rest = pick_job(argv)
        rest = template_argv(job, rest)
        run_job(job, rest, wait=not PipelineOptions(rest).view_as(GoogleCloudOptions).template_location)
    except UsageError as err:
        print(f"launch.py: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
