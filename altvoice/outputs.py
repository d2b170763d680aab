"""Where the caption job writes, and how: mirrored paths, atomic writes, alt text, up-to-date checks.

For an image at `<input root>/<relpath>` the job writes `<output root>/<relpath>.json` (the
caption record) and `<output root>/<relpath>.<wav|mp3|ogg>` (the audio). The JSON is written
last: it is the commit marker, so an image counts as done only when its JSON names the same
model, voice and source stamp and its audio file exists. Files the job did not create are never
overwritten: before creating audio or a tagged copy the record *claims* it (an intent record),
and an existing file is replaced only when the record there claims it. Temp files carry the
job's marker, so a later run removes only its own leftovers.
"""
import json
import os
import re
import secrets
import shutil
import stat

import fsspec

from altvoice.names import to_os
from altvoice.sources import is_local

RECORD_LIMIT = 1 << 20  # bytes: a record is a few KB; a bigger file there is not one
ALT_TEXT_LIMIT = 125  # characters: what screen readers and most CMSs expect of alt text
TEMP_PREFIX = ".altvoice-tmp-"  # + 12 hex digits: short, so names near the 255-byte limit still fit
_TEMP = re.compile(re.escape(TEMP_PREFIX) + "[0-9a-f]{12}$")
_BEAM_TEMP = re.compile("beam-temp-(manifest|errors)-[0-9a-f]{32}$")  # WriteToText's staging folders


def output_paths(root: str, relpath: str, audio_extension: str | None) -> dict:
    """{'json': ..., 'audio': ... or None} for an image's relative path (wire form) under an output root."""
    base = f"{root.rstrip('/')}/{to_os(relpath)}"
    return {"json": f"{base}.json", "audio": f"{base}.{audio_extension}" if audio_extension else None}


def alt_text(caption: str, limit: int = ALT_TEXT_LIMIT) -> str:
    """A caption as alt text: a capitalised sentence with a full stop, at most `limit` characters."""
    text = " ".join(caption.split())
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    if len(text) + 1 > limit:
        text = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") or text[: limit - 1]
    return text if text.endswith((".", "!", "?")) else text + "."


def atomic_write(url: str, data: bytes) -> None:
    """Writes a whole file or nothing: a temp file (mode from the umask) renamed into place locally;
    object stores (gs://, s3://) publish an object only when its upload completes."""
    fs, path = fsspec.core.url_to_fs(url)
    if not is_local(fs):
        fs.pipe_file(path, data)
        return
    _replace_whole(path, lambda f: f.write(data))


def atomic_put(url: str, local_file: str) -> None:
    """atomic_write of a local file's content, streamed (a large video never held in memory)."""
    fs, path = fsspec.core.url_to_fs(url)
    if not is_local(fs):
        fs.put_file(local_file, path)
        return
    with open(local_file, "rb") as source:
        _replace_whole(path, lambda f: shutil.copyfileobj(source, f, 1 << 20))


def _replace_whole(path: str, write) -> None:
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    temp = os.path.join(folder, TEMP_PREFIX + secrets.token_hex(6))
    handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as f:
            write(f)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise


def remove_leftovers(root: str) -> int:
    """Deletes what a killed local run left under `root`: its temp files and Beam's staging folders
    (recognised by their exact name patterns); nothing else. Returns how many were removed."""
    fs, path = fsspec.core.url_to_fs(root)
    if not is_local(fs) or not os.path.isdir(path):
        return 0
    removed, pending = 0, [path]
    while pending:  # iterative: any depth
        folder = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.is_file(follow_symlinks=False) and _TEMP.match(entry.name):
                os.remove(entry.path)
                removed += 1
            elif entry.is_dir(follow_symlinks=False) and folder == path and _BEAM_TEMP.match(entry.name):
                shutil.rmtree(entry.path)
                removed += 1
            elif entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
                pending.append(entry.path)
    return removed


def read_record(url: str) -> dict | None:
    """The caption record written for an image, or None when there is none or the file there is not
    one (not a regular file, over 1 MB, not a JSON object with the record's keys)."""
    try:
        fs, path = fsspec.core.url_to_fs(url)
        if is_local(fs):
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    return None
                text = f.read(RECORD_LIMIT + 1)
        else:
            with fs.open(path, "rb") as f:
                text = f.read(RECORD_LIMIT + 1)
        record = json.loads(text) if len(text) <= RECORD_LIMIT else None
    except Exception:  # missing, unreadable, malformed or hostile (deep nesting): not a record
        return None
    if not isinstance(record, dict) or not ("model_id" in record or "claims" in record):
        return None
    return record


def exists(url: str) -> bool:
    fs, path = fsspec.core.url_to_fs(url)
    return fs.exists(path)


def claimed(record: dict | None) -> set:
    """Base names of the files a record says the job made (audio, tagged copy, intended ones)."""
    if not record:
        return set()
    claims = record.get("claims") if isinstance(record.get("claims"), list) else []
    names = (record.get("audio"), record.get("tagged_copy"), *claims)
    return {n for n in names if isinstance(n, str) and n and "/" not in n and n not in (".", "..")}


def same_source(recorded: dict | None, stamp: tuple, content_hash=None) -> bool:
    """True when the stamp an image had when it was captioned matches its stamp now.

    Local files: same size, mtime and ctime, or (touched, moved, chmod-ed) same size and sha256.
    Elsewhere every stamp field must match (zip CRC, tar sha256, object store hash or generation).
    """
    if not isinstance(recorded, dict):
        return False
    current = dict(stamp)
    if "mtime_ns" in current:
        if recorded.get("size") != current["size"]:
            return False
        if all(recorded.get(key) == current[key] for key in ("mtime_ns", "ctime_ns")):
            return True
        return content_hash is not None and recorded.get("sha256") == content_hash()
    return all(recorded.get(key) == value for key, value in current.items())
