"""The `altvoice` command: one subcommand per job; each passes unknown flags on to Beam."""
import logging
import os
import signal
import sys

COMMANDS = {
    "preprocess": ("pipelines.preprocess", "captions + images -> vocabulary, CNN features, TFRecords"),
    "train": ("model.train", "TFRecords -> trained caption model (checkpoints, TensorBoard) -> export"),
    "ensemble": ("model.ensemble", "several exports of one backbone and vocabulary -> one ensemble export"),
    "evaluate": ("model.evaluate", "caption a split with an export: BLEU-1..4, CIDEr-D, ROUGE-L"),
    "caption": ("pipelines.caption", "caption image archives, write alt text and speech beside every image"),
    "demo": ("altvoice.demo", "run altvoice on sample photos that ship with scikit-image"),
}


def usage() -> str:
    lines = ["usage: altvoice <command> [flags] [beam pipeline options]", "", "commands:"]
    lines += [f"  {name:<12} {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "`altvoice <command> --help` lists a command's flags."]
    return "\n".join(lines)


def command_help(name: str) -> str:
    import argparse
    import importlib

    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines.options import add_job_flags

    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"altvoice {name}", description=COMMANDS[name][1],
                                     epilog="Any Apache Beam pipeline option is accepted too (--runner, --project, ...).")
    if issubclass(module.OPTIONS, PipelineOptions):
        add_job_flags(parser, module.OPTIONS)
    else:
        module.OPTIONS._add_argparse_args(parser)
    return parser.format_help()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(usage(), file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    name, rest = argv[0], argv[1:]
    if "-h" in rest or "--help" in rest:
        print(command_help(name))
        return 0
    logging.basicConfig(level=logging.INFO)
    logging.getLogger().handlers[0].setFormatter(OneLineFormatter())
    import importlib

    from pipelines.options import UsageError

    module = importlib.import_module(COMMANDS[name][0])
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, lambda *_: interrupted(name))
    try:
        module.run(rest)
    except UsageError as err:
        print(f"altvoice {name}: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # one sentence on the terminal, the traceback in a file
        print(f"altvoice {name}: failed: {one_line(err)} (traceback: {save_traceback(name)})", file=sys.stderr)
        return 1
    return 0


class OneLineFormatter(logging.Formatter):
    """`LEVEL message`, first line only: tracebacks go to the file named when a run fails."""

    def format(self, record: logging.LogRecord) -> str:
        lines = record.getMessage().strip().splitlines()
        return f"{record.levelname} {lines[0] if lines else ''}"


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
    sys.exit(main())
