"""Reading images from a folder, a glob, any fsspec URL, or a .zip / .tar(.gz) archive in place.

`list_sources(url)` turns a URL into small, picklable read tasks; `read_task(task)` yields
(relative path, bytes) for each file of a task. Archives are never unpacked to disk:
zip members are read by random access in chunks, tar members in one streaming pass.
Relative paths are sanitised so that no member can name a place outside the root.
"""
import posixpath
import tarfile
import zipfile
from typing import Iterator, NamedTuple

import fsspec

ZIP_SUFFIXES = (".zip",)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
ZIP_CHUNK = 64  # zip members read per task: one open of the archive per chunk


class ReadTask(NamedTuple):
    """What one worker reads: files (`kind='files'`), zip members or a whole tar."""

    kind: str
    url: str
    root: str
    names: tuple = ()


class UnsafePath(ValueError):
    """An archive member or file whose relative path would leave the root."""


def safe_relpath(name: str) -> str:
    """The path of a member relative to its root, refusing absolute paths and `..`."""
    normal = name.replace("\\", "/")
    if normal.startswith("/") or (len(normal) > 1 and normal[1] == ":"):
        raise UnsafePath(f"absolute path {name!r} in archive")
    parts = [p for p in normal.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise UnsafePath(f"path {name!r} leaves the archive root")
    return "/".join(parts)


def archive_kind(url: str) -> str | None:
    lower = url.lower().rstrip("/")
    if lower.endswith(ZIP_SUFFIXES):
        return "zip"
    if lower.endswith(TAR_SUFFIXES):
        return "tar"
    return None


def _hidden(relpath: str) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in relpath.split("/"))


def _glob_root(pattern: str) -> str:
    magic = min((i for i, c in enumerate(pattern) if c in "*?["), default=len(pattern))
    return pattern[:magic].rsplit("/", 1)[0]


def source_root(url: str) -> str:
    """The folder that relative paths of a folder or glob source are relative to (as a URL)."""
    if archive_kind(url):
        raise ValueError(f"{url} is an archive: it has no folder to write beside")
    fs, path = fsspec.core.url_to_fs(url)
    protocol = url.split("://", 1)[0] + "://" if "://" in url else ""
    if any(c in path for c in "*?["):
        return protocol + _glob_root(path)
    return protocol + (path.rstrip("/") if fs.isdir(path) else posixpath.dirname(path))


def list_sources(url: str, chunk: int = ZIP_CHUNK) -> Iterator[ReadTask]:
    """Splits an image source into read tasks. Raises OSError if the source can't be listed."""
    kind = archive_kind(url)
    if kind == "tar":
        yield ReadTask("tar", url, "")
        return
    if kind == "zip":
        with fsspec.open(url, "rb") as raw, zipfile.ZipFile(raw) as archive:
            names = [i.filename for i in archive.infolist() if not i.is_dir()]
        for start in range(0, len(names), chunk):
            yield ReadTask("zip", url, "", tuple(names[start : start + chunk]))
        return
    fs, path = fsspec.core.url_to_fs(url)
    protocol = url.split("://", 1)[0] + "://" if "://" in url else ""
    if any(c in path for c in "*?["):
        root = _glob_root(path)
        files = sorted(f for f, info in fs.glob(path, detail=True).items() if info["type"] != "directory")
    elif fs.isdir(path):
        root, files = path.rstrip("/"), sorted(fs.find(path))
    elif fs.exists(path):
        root, files = posixpath.dirname(path), [path]
    else:
        raise FileNotFoundError(f"no image source at {url}")
    names = [n for n in (posixpath.relpath(f, root) for f in files) if not _hidden(n)]
    for start in range(0, len(names), chunk):
        yield ReadTask("files", url, protocol + root, tuple(names[start : start + chunk]))


def read_task(task: ReadTask) -> Iterator[tuple[str, bytes | Exception]]:
    """Yields (relative path, bytes) for each file in the task, or (path, error) for one that fails.

    An error opening the whole archive is raised; an error on one member is yielded.
    """
    if task.kind == "files":
        for name in task.names:
            try:
                with fsspec.open(f"{task.root}/{name}", "rb") as f:
                    yield name, f.read()
            except (OSError, ValueError) as err:
                yield name, err
    elif task.kind == "zip":
        with fsspec.open(task.url, "rb") as raw, zipfile.ZipFile(raw) as archive:
            for name in task.names:
                yield from _read_member(name, lambda n=name: archive.read(n))
    else:
        with fsspec.open(task.url, "rb") as raw, tarfile.open(fileobj=raw, mode="r|*") as archive:
            for member in archive:
                if member.isfile():
                    yield from _read_member(member.name, lambda m=member: archive.extractfile(m).read())


def _read_member(name: str, read) -> Iterator[tuple[str, bytes | Exception]]:
    try:
        relpath = safe_relpath(name)
    except UnsafePath as err:
        yield name, err
        return
    if _hidden(relpath):
        return
    try:
        yield relpath, read()
    except (OSError, ValueError, zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
        yield relpath, err
