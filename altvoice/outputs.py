"""Where the caption job writes, and how: mirrored paths, atomic writes, alt text, up-to-date checks.

For an image at `<input root>/<relpath>` the job writes `<output root>/<relpath>.json` (the
caption record) and `<output root>/<relpath>.<wav|mp3|ogg>` (the audio). The JSON is written
last: it is the commit marker, so an image counts as done only when its JSON names the same
model and voice and its audio file exists.
"""
import json
import os
import posixpath
import tempfile

import fsspec

ALT_TEXT_LIMIT = 125  # characters: what screen readers and most CMSs expect of alt text


def output_paths(root: str, relpath: str, audio_extension: str | None) -> dict:
    """{'json': ..., 'audio': ... or None} for an image's relative path under an output root."""
    base = f"{root.rstrip('/')}/{relpath}"
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
    """Writes a whole file or nothing: a temp file renamed into place locally; object stores
    (gs://, s3://) publish an object only when its upload completes."""
    fs, path = fsspec.core.url_to_fs(url)
    if "file" not in fs.protocol and "local" not in fs.protocol:
        fs.pipe_file(path, data)
        return
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise


def read_record(url: str) -> dict | None:
    """The caption record written for an image, or None when there is none (or it is unreadable)."""
    try:
        with fsspec.open(url, "r", encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def is_up_to_date(root: str, relpath: str, model_id: str, voice_id: str | None, audio_extension: str | None) -> bool:
    """True when the image's record names this model and voice and its audio is there."""
    paths = output_paths(root, relpath, audio_extension)
    record = read_record(paths["json"])
    if not record or record.get("model_id") != model_id or record.get("voice") != voice_id:
        return False
    if paths["audio"] is None:
        return True
    if record.get("audio") != posixpath.basename(paths["audio"]):
        return False
    fs, path = fsspec.core.url_to_fs(paths["audio"])
    return fs.exists(path)
