"""The `altvoice` command: one subcommand per job; each passes unknown flags on to Beam."""
import logging
import os
import signal
import sys

COMMANDS = {
    "preprocess": ("altvoice.pipelines.preprocess", "captions + images -> vocabulary, CNN features, TFRecords"),
    "train": ("altvoice.model.train", "TFRecords -> trained caption model (checkpoints, TensorBoard) -> export"),
    "ensemble": ("altvoice.model.ensemble", "several exports of one backbone and vocabulary -> one ensemble export"),
    "evaluate": ("altvoice.model.evaluate", "caption a split with an export: BLEU-1..4, CIDEr-D, ROUGE-L"),
    "caption": ("altvoice.pipelines.caption", "caption image archives, write alt text and speech beside every image"),
    "describe-video": ("altvoice.pipelines.describe_video", "videos -> timed audio-description tracks (WebVTT)"),
    "review": ("altvoice.pipelines.review", "a caption run's output folder -> a review page to check and correct it"),
    "demo": ("altvoice.demo", "run altvoice on sample photos that ship with scikit-image"),
}


def usage() -> str:
    lines = ["usage: altvoice <command> [flags] [beam pipeline options]", "", "commands:"]
    lines += [f"  {name:<12} {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "`altvoice <command> --help` lists a command's flags."]
    return "\n".join(lines)


def command_help(name: str) -> str:
    """A job's --help, built from altvoice.flags alone: no Beam or TensorFlow import."""
    import argparse

    from altvoice import flags

    class Formatter(argparse.HelpFormatter):
        def _get_help_string(self, action):
            text = action.help or ""
            if action.default not in (None, False, [], argparse.SUPPRESS) and "default" not in text:
                text += f" (default: {action.default})"
            return text

    epilog = "--verbose shows TensorFlow's and Beam's own messages (they go to a log file otherwise)."
    if name in flags.BEAM_JOBS:
        epilog = "Apache Beam's pipeline options are accepted too (--runner, --project, --region, ...). " + epilog
    parser = argparse.ArgumentParser(prog=f"altvoice {name}", description=COMMANDS[name][1], epilog=epilog,
                                     formatter_class=Formatter)
    for add in flags.JOB_FLAGS[name]:
        add(parser)
    return parser.format_help()


def entry() -> None:
    """The `altvoice` console script: main(), its exit handlers, then exit without tearing the
    interpreter down (TensorFlow's and onnxruntime's teardown takes over a second and writes nothing)."""
    import atexit

    try:
        status = main()
        atexit._run_exitfuncs()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # `altvoice ... --help | head`: the reader left; nothing more to say
        status = 0
    os._exit(status)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if argv[:1] == ["--version"]:
        print(f"altvoice {version()}")
        return 0
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(usage(), file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    name, rest = argv[0], argv[1:]
    if "-h" in rest or "--help" in rest:
        print(command_help(name))
        return 0
    verbose = "--verbose" in rest
    rest = [a for a in rest if a != "--verbose"]
    from altvoice.console import Console

    with Console(name, verbose) as console:
        status = run_job(name, rest, console.log_file)
    if console.log_file and status == 0:
        os.remove(console.log_file)
    return status


def run_job(name: str, argv: list[str], log_file: str | None) -> int:
    """Runs a job; usage errors and failures become one sentence and an exit status."""
    import importlib

    from altvoice.flags import UsageError

    module = importlib.import_module(COMMANDS[name][0])
    own_handler = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    if own_handler:
        signal.signal(signal.SIGINT, lambda *_: interrupted(name))
    try:
        result = module.run(argv)
    except UsageError as err:
        print(f"altvoice {name}: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # one sentence on the terminal, the traceback in a file
        logging.getLogger().exception("altvoice %s failed", name)
        print(f"altvoice {name}: failed: {one_line(err)} (traceback: {log_file or save_traceback(name)})",
              file=sys.stderr)
        return 1
    finally:
        if own_handler:  # a caller running jobs in-process gets its Ctrl-C back
            signal.signal(signal.SIGINT, signal.default_int_handler)
    return getattr(module, "exit_status", lambda _: 0)(result)


def version() -> str:
    from importlib.metadata import PackageNotFoundError, version as installed

    try:
        return installed("altvoice")
    except PackageNotFoundError:
        return "unknown (not installed)"


def interrupted(name: str) -> None:
    """Ctrl-C: every output is written atomically, so stopping at once loses nothing finished."""
    sys.stderr.write(f"\naltvoice {name}: interrupted; what was written is kept: run the same command again "
                     "to finish\n")
    os._exit(130)


def one_line(err: BaseException) -> str:
    """The innermost cause of an error as one line (Beam wraps worker errors in long messages)."""
    while err.__cause__ is not None:
        err = err.__cause__
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[-1] if lines else type(err).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def save_traceback(name: str) -> str:
    import tempfile
    import traceback

    handle, path = tempfile.mkstemp(prefix=f"altvoice-{name}-", suffix=".log")
    with os.fdopen(handle, "w") as f:
        traceback.print_exc(file=f)
    return path


if __name__ == "__main__":
    entry()
