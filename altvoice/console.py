"""What a run shows on the terminal: altvoice's own messages, its progress bar and its summary.

Everything else (TensorFlow's and absl's C++ start-up lines, Beam's internals, Python warnings,
tracebacks) goes to a log file, unless --verbose. Messages for the user go through the
`altvoice` logger (`console.log`).
"""
import logging
import os
import sys
import tempfile

log = logging.getLogger("altvoice")


class OneLineFormatter(logging.Formatter):
    """The message's first line only: tracebacks stay in the log file."""

    def format(self, record: logging.LogRecord) -> str:
        lines = record.getMessage().strip().splitlines()
        return lines[0] if lines else ""


class Console:
    """Routes output for one run of `altvoice <name>` (a context manager; everything is restored
    on exit). Quiet: file descriptor 2, where C++ libraries write, goes to `log_file`; Python's
    stderr stays the terminal; the root logger writes to the file and the `altvoice` logger to both."""

    def __init__(self, name: str, verbose: bool):
        self.name, self.verbose, self.log_file = name, verbose, None
        self.handlers, self.saved_fd, self.saved_stderr = [], None, None

    def __enter__(self) -> "Console":
        root = logging.getLogger()
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        if self.verbose:
            self._add(root, logging.StreamHandler(sys.stderr), "%(levelname)s %(name)s: %(message)s")
            return self
        handle, self.log_file = tempfile.mkstemp(prefix=f"altvoice-{self.name}-", suffix=".log")
        self.saved_fd, self.saved_stderr = os.dup(2), sys.stderr
        if _is_fd(sys.stderr, 2):  # the real stderr: keep a handle on the terminal
            sys.stderr = os.fdopen(os.dup(self.saved_fd), "w", buffering=1)
        os.dup2(handle, 2)
        os.close(handle)
        self._add(root, logging.FileHandler(self.log_file), "%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._add(log, logging.StreamHandler(sys.stderr), None)
        return self

    def _add(self, logger, handler, fmt):
        handler.setFormatter(logging.Formatter(fmt) if fmt else OneLineFormatter())
        logger.addHandler(handler)
        self.handlers.append((logger, handler))

    def __exit__(self, *exc):
        for logger, handler in self.handlers:
            logger.removeHandler(handler)
            handler.close()
        logging.captureWarnings(False)
        if self.saved_fd is not None:
            sys.stderr.flush()
            if sys.stderr is not self.saved_stderr:
                sys.stderr.close()
                sys.stderr = self.saved_stderr
            os.dup2(self.saved_fd, 2)
            os.close(self.saved_fd)
        return False


def _is_fd(stream, fd: int) -> bool:
    try:
        return stream.fileno() == fd
    except (AttributeError, OSError, ValueError):
        return False
