"""Launch checks of `altvoice caption`: every one fails before any work, with one UsageError line."""
import json
import os

import fsspec

from altvoice.flags import UsageError, require
from altvoice.names import to_wire
from altvoice.outputs import TEMP_PREFIX, atomic_write
from altvoice.pipelines.options import CaptionOptions
from altvoice.sources import archive_kind, is_glob, is_local, source_root, walk_local


def source_id(url: str) -> str:
    """The input as records name it: a local path made absolute and resolved, a URL as given."""
    fs, path = fsspec.core.url_to_fs(url)
    return os.path.realpath(path) if is_local(fs) else url.rstrip("/")


def relative_inside(path: str, folder: str) -> str | None:
    """`path` relative to `folder` (wire form; "" when equal), or None when it is not inside it."""
    fs_a, a = fsspec.core.url_to_fs(path)
    fs_b, b = fsspec.core.url_to_fs(folder)
    if fs_a.protocol != fs_b.protocol:
        return None
    if is_local(fs_a):
        a, b = os.path.realpath(a), os.path.realpath(b)
    a, b = a.rstrip("/"), b.rstrip("/")
    if a == b:
        return ""
    return to_wire(a[len(b) + 1:]) if a.startswith(b + "/") else None


def check_source(url: str) -> None:
    """A source that does not exist (or a glob whose folder does not) is a usage error."""
    fs, path = fsspec.core.url_to_fs(url)
    where = source_root(url) if is_glob(fs, path) else url
    try:
        found = fs.exists(fs._strip_protocol(where))
    except Exception as err:  # fsspec backends raise their own kinds for a bucket they can't reach
        raise UsageError(f"--input {url}: can't be read ({type(err).__name__}: {err})") from None
    if not found:
        raise UsageError(f"--input {url}: no such file or folder")
    if not archive_kind(url) and not _holds_files(fs, fs._strip_protocol(url)):
        raise UsageError(f"--input {url}: no files there")


def _holds_files(fs, path: str) -> bool:
    if is_glob(fs, path):
        return bool(fs.glob(path))
    if not fs.isdir(path):
        return True
    if is_local(fs):
        return next(walk_local(path), None) is not None
    return bool(fs.ls(path))


def check_writable(root: str) -> None:
    """A local output folder that can't be created or written is a usage error, before any work."""
    fs, path = fsspec.core.url_to_fs(root)
    if not is_local(fs):
        return
    try:
        atomic_write(f"{path}/{TEMP_PREFIX}probe", b"")
        os.remove(f"{path}/{TEMP_PREFIX}probe")
    except OSError as err:
        raise UsageError(f"--output {root}: can't write there ({err.strerror or err})") from None


JOB_FILES = {"manifest.jsonl": {"image", "status"}, "errors.jsonl": {"image", "stage", "kind"}}


def check_job_files(root: str) -> None:
    """The run's manifest and error files replace the last run's, never a user's file of that name."""
    for name, keys in JOB_FILES.items():
        fs, path = fsspec.core.url_to_fs(f"{root}/{name}")
        if not fs.exists(path):
            continue
        try:
            with fs.open(path, "rb") as f:
                first = f.read(1 << 16).split(b"\n", 1)[0]
            line = json.loads(first) if first.strip() else {"image": "", "status": "", "stage": "", "kind": ""}
            ours = isinstance(line, dict) and keys <= set(line)
        except (OSError, ValueError):
            ours = False
        if not ours:
            raise UsageError(f"{root}/{name} exists and is not one altvoice wrote: move it, or choose another "
                             "--output (the job writes its own there)")


def check_review_folder(root: str) -> None:
    """With --review: a review/ folder that is not the page's own stops the run before any work."""
    from altvoice.review import check_ours

    try:
        check_ours(root)
    except ValueError as err:
        raise UsageError(f"--review: {err}") from None


def check_grounding(model_dir: str, card: dict) -> None:
    """Loads the export's grounding files once at launch: a missing or damaged one is a UsageError."""
    from altvoice.model.export import load_grounding

    try:
        load_grounding(model_dir, card)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        reason = " ".join(str(err).split())
        raise UsageError(f"{model_dir}: the grounding files (object classifier, word tables, detectors) can't be "
                         f"loaded ({type(err).__name__}: {reason}); restore the export, or run with --grounding off"
                         ) from None


def read_text(url: str, model_dir: str) -> str:
    try:
        with fsspec.open(url, "r") as f:
            return f.read()
    except OSError:
        raise UsageError(f"no exported captioner at {model_dir} (no model_card.json); pass --model DIR, "
                         "the export/ folder `altvoice train` writes") from None


def check_inputs(opts: CaptionOptions) -> None:
    """Fails fast, before any work, on flags that can't run."""
    require(opts, "input")
    if not opts.output and not opts.in_place:
        raise UsageError("give --output DIR, or --in-place to write beside the originals")
    if opts.in_place and archive_kind(opts.input):
        raise UsageError(f"--in-place needs a folder or glob input; {opts.input} is an archive: use --output")
    if opts.beam_width is not None and opts.beam_width < 1:
        raise UsageError("--beam-width must be at least 1")
    if opts.min_confidence is not None and not 0 <= opts.min_confidence <= 1:
        raise UsageError(f"--min-confidence must be between 0 and 1, got {opts.min_confidence}")
    if opts.min_confidence is not None and opts.grounding == "off":
        raise UsageError("--min-confidence needs grounded captions: drop --grounding off")
    if opts.max_file_mb <= 0 or opts.max_megapixels <= 0:
        raise UsageError("--max-file-mb and --max-megapixels must be positive")
    check_source(opts.input)
