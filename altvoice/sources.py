"""Reading images from a folder, a glob, any fsspec URL, or a .zip / .tar(.gz) archive in place.

`list_sources(url)` turns a URL into small, picklable read tasks (and `Refused` entries for
members that must not be read); `read_task(task)` yields (entry, bytes or error) for each file.
Archives are never unpacked to disk: zip members are read by random access in chunks, tar
members in one streaming pass. Reads are bounded (`Limits`): regular files only, sizes checked
before reading (stat, declared member sizes, compression ratios) and every read capped.
Relative paths are sanitised so that no member can name a place outside the root, and carried
in wire form (altvoice.names) so names that are not UTF-8 survive. Each entry has a `stamp`:
what identifies its content (size and mtime locally, plus a sha256 once read; size and CRC in
a zip; the store's hash or generation in a bucket), for change detection.
"""
import bz2
import contextlib
import gzip
import hashlib
import lzma
import os
import posixpath
import re
import stat
import tarfile
import zipfile
from typing import Iterator, NamedTuple

import fsspec
from fsspec.utils import glob_translate

from altvoice.names import to_os, to_wire

ZIP_SUFFIXES = (".zip",)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
ZIP_CHUNK = 64  # zip members read per task: one open of the archive per chunk
STORE_STAMPS = ("md5Hash", "crc32c", "ETag", "etag", "generation", "updated", "LastModified", "mtime")
RATIO_FLOOR = 64 << 20  # a zip member's compression ratio is checked past this many bytes
ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
READ_CHUNK = 1 << 20


class Limits(NamedTuple):
    """Bounds on what is read: bytes of one file, the uncompressed:compressed ratio of a zip member
    or a whole archive, and the bytes any archive may expand to regardless of its ratio."""

    max_file_bytes: int = 128 << 20
    max_ratio: int = 100
    archive_floor: int = 2 << 30


class Entry(NamedTuple):
    """One file to read: relative path (wire form), declared size, stamp, zip member index."""

    name: str
    size: int | None = None
    stamp: tuple = ()
    index: int = -1


class ReadTask(NamedTuple):
    """What one worker reads: files (`kind='files'`), zip members or a whole tar."""

    kind: str
    url: str
    root: str
    entries: tuple = ()


class Refused(NamedTuple):
    """A member found while listing that is not read: `kind` and `reason` for the error record."""

    name: str
    kind: str
    reason: str


class UnsafePath(ValueError):
    """An archive member or file whose relative path would leave the root."""


class ReadRefused(ValueError):
    """A file that is not read: too large, not a regular file, a duplicate name; `kind` to count by."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind


def safe_relpath(name: str) -> str:
    """The path of a member relative to its root, refusing absolute paths and `..`."""
    normal = name.replace("\\", "/")
    if normal.startswith("/") or re.match(r"[A-Za-z]:(/|$)", normal):
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


def is_local(fs) -> bool:
    return "file" in fs.protocol or "local" in fs.protocol


def hidden(relpath: str) -> bool:
    """A dot file or folder, or macOS's __MACOSX copies: never read as input."""
    return any(part.startswith(".") or part == "__MACOSX" for part in relpath.split("/"))


def _glob_root(pattern: str) -> str:
    magic = min((i for i, c in enumerate(pattern) if c in "*?["), default=len(pattern))
    return pattern[:magic].rsplit("/", 1)[0]


def _protocol(url: str) -> str:
    return url.split("://", 1)[0] + "://" if "://" in url else ""


def source_root(url: str) -> str:
    """The folder that relative paths of a folder or glob source are relative to (as a URL)."""
    if archive_kind(url):
        raise ValueError(f"{url} is an archive: it has no folder to write beside")
    fs, path = fsspec.core.url_to_fs(url)
    if is_glob(fs, path):
        return _protocol(url) + _glob_root(path)
    return _protocol(url) + (path.rstrip("/") if fs.isdir(path) else posixpath.dirname(path))


def is_glob(fs, path: str) -> bool:
    """A pattern: it has * ? or [ and names no existing file or folder (`Holiday [2019]` is a folder)."""
    return any(c in path for c in "*?[") and not fs.exists(path)


def walk_local(root: str, errors: list | None = None) -> Iterator[tuple[str, os.stat_result]]:
    """(relative path, stat) of every file under a local folder, hidden ones left out; iterative (any
    depth). Folder symlinks are not followed (they could lead out of the tree or into the output);
    they, folders that can't be read and broken links are appended to `errors` as Refused."""
    pending = [""]
    while pending:
        relative = pending.pop()
        try:
            entries = sorted(os.scandir(os.path.join(root, relative) if relative else root),
                             key=lambda e: e.name, reverse=True)
        except OSError as err:
            _refuse(errors, relative or ".", "unreadable_folder", f"folder not listed: {err.strerror or err}")
            continue
        for entry in entries:
            if entry.name.startswith(".") or entry.name == "__MACOSX":
                continue
            name = f"{relative}/{entry.name}" if relative else entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(name)
                elif entry.is_symlink() and entry.is_dir():
                    _refuse(errors, name, "symlinked_folder", "a folder symlink: not followed")
                else:
                    yield name, entry.stat()  # special files too: read_local refuses them with a reason
            except OSError as err:
                _refuse(errors, name, "broken_link", f"not read: {err.strerror or err}")


def _refuse(errors: list | None, name: str, kind: str, reason: str) -> None:
    if errors is not None:
        errors.append(Refused(to_wire(name), kind, reason))


def _local_stamp(info: os.stat_result) -> tuple:
    """Size and times: a file swapped in with its mtime copied (`touch -r`) still gets a new ctime."""
    return ("size", info.st_size), ("mtime_ns", info.st_mtime_ns), ("ctime_ns", info.st_ctime_ns)


def _store_stamp(info: dict) -> tuple:
    key = next((k for k in STORE_STAMPS if info.get(k) not in (None, "")), None)
    return (("size", info.get("size")),) + (((key, str(info[key])),) if key else ())


def list_sources(url: str, chunk: int = ZIP_CHUNK, limits: Limits = Limits()) -> Iterator[ReadTask | Refused]:
    """Splits an image source into read tasks. Raises OSError if the source can't be listed."""
    kind = archive_kind(url)
    if kind == "tar":
        yield ReadTask("tar", url, "")
        return
    if kind == "zip":
        yield from _list_zip(url, chunk, limits)
        return
    fs, path = fsspec.core.url_to_fs(url)
    refused = []
    if is_glob(fs, path):
        root = _glob_root(path)
        if is_local(fs):
            pattern = re.compile(glob_translate(posixpath.relpath(path, root)))
            entries = [Entry(to_wire(n), i.st_size, _local_stamp(i)) for n, i in sorted(walk_local(root, refused))
                       if pattern.match(n)]
        else:
            found = sorted(fs.glob(path, detail=True).items())
            entries = [_file_entry(root, f, info, fs) for f, info in found if info["type"] == "file"]
    elif fs.isdir(path):
        root = path.rstrip("/")
        if is_local(fs):
            entries = [Entry(to_wire(n), i.st_size, _local_stamp(i)) for n, i in sorted(walk_local(root, refused))]
        else:
            found = sorted(fs.find(path, detail=True).items())
            entries = [_file_entry(root, f, info, fs) for f, info in found if info["type"] == "file"]
    elif fs.exists(path):
        root = posixpath.dirname(path)
        entries = [_file_entry(root, path, fs.info(path), fs)]
    else:
        raise FileNotFoundError(f"no image source at {url}")
    yield from refused
    entries = [e for e in entries if not hidden(e.name)]
    for start in range(0, len(entries), chunk):
        yield ReadTask("files", url, _protocol(url) + root, tuple(entries[start : start + chunk]))


def _file_entry(root: str, path: str, info: dict, fs) -> Entry:
    return Entry(to_wire(posixpath.relpath(path, root)), info.get("size"), file_stamp(fs, path, info))


def file_stamp(fs, path: str, info: dict) -> tuple:
    """A file's source stamp from its fsspec `info` (outputs.same_source compares two)."""
    return _local_stamp(os.stat(path)) if is_local(fs) else _store_stamp(info)


def archive_budget(compressed_size: int, limits: Limits) -> int:
    """Bytes an archive may expand to, over all its members (read or skipped)."""
    return max(limits.archive_floor, limits.max_ratio * compressed_size)


def _list_zip(url: str, chunk: int, limits: Limits) -> Iterator[ReadTask | Refused]:
    with fsspec.open(url, "rb") as raw, zipfile.ZipFile(raw) as archive:
        members = [(i, m) for i, m in enumerate(archive.infolist()) if not m.is_dir()]
        budget = archive_budget(raw.size, limits)
    entries, seen, expanded = [], set(), 0
    for index, member in members:
        if member.compress_type not in ZIP_METHODS or member.flag_bits & 0x1:
            yield Refused(to_wire(member.filename), "unsupported_compression", "only stored and deflated, "
                          "unencrypted zip members are read (other methods can't be bounded)")
            continue
        if member.file_size <= limits.max_file_bytes:  # a bigger one is refused unread (random access)
            expanded += member.file_size
        if expanded > budget:
            yield Refused(to_wire(member.filename), "compression_bomb", f"{url} expands past {budget >> 20} MB "
                          f"({limits.max_ratio} times its size): this member and the rest are not read")
            continue
        try:
            relpath = safe_relpath(member.filename)
        except UnsafePath:
            entries.append(Entry(member.filename, member.file_size, (), index))  # read_task reports it
            continue
        if relpath in seen:
            yield Refused(relpath, "duplicate_name", f"member {index} has the same name as an earlier member of "
                          f"{url}; only the first is read (their outputs would be the same files)")
            continue
        seen.add(relpath)
        stamp = (("size", member.file_size), ("crc32", member.CRC))
        entries.append(Entry(to_wire(relpath), member.file_size, stamp, index))
    for start in range(0, len(entries), chunk):
        yield ReadTask("zip", url, "", tuple(entries[start : start + chunk]))


def check_size(size: int | None, limits: Limits, compressed: int | None = None) -> None:
    """Raises ReadRefused for a declared size over the limit or a suspicious compression ratio."""
    if size is not None and size > limits.max_file_bytes:
        raise ReadRefused("too_large", f"{size} bytes ({size / 2**20:.1f} MB) is over the limit of "
                          f"{limits.max_file_bytes / 2**20:g} MB (--max-file-mb)")
    if compressed is not None and size and size > RATIO_FLOOR and size > limits.max_ratio * max(compressed, 1):
        raise ReadRefused("compression_bomb", f"{size} bytes compressed into {compressed}: over the "
                          f"{limits.max_ratio}:1 limit")


def read_capped(f, limits: Limits) -> bytes:
    """Reads a whole stream, refusing one longer than the limit (without reading much past it)."""
    data = f.read(limits.max_file_bytes + 1)
    if len(data) > limits.max_file_bytes:
        raise ReadRefused("too_large", f"more than the limit of {limits.max_file_bytes / 2**20:g} MB (--max-file-mb)")
    return data


def read_local(path: str, limits: Limits) -> tuple[bytes, os.stat_result]:
    """A local regular file's bytes and stat; never blocks on a FIFO or reads a device."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ReadRefused("not_a_file", "not a regular file (a device, FIFO or socket): not read")
        check_size(info.st_size, limits)
        return read_capped(f, limits), info


def content_sha256(path: str) -> str:
    """sha256 of a local file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(READ_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def read_task(task: ReadTask, limits: Limits = Limits()) -> Iterator[tuple[Entry, bytes | Exception]]:
    """Yields (entry, bytes) for each file in the task, or (entry, error) for one that fails.

    Local files' entries gain their sha256 (and current stat) in `stamp`; tar members their
    size and sha256. An error opening the whole archive is raised; an error on one member is yielded.
    """
    if task.kind == "files":
        yield from _read_files(task, limits)
    elif task.kind == "zip":
        with fsspec.open(task.url, "rb") as raw, zipfile.ZipFile(raw) as archive:
            members = archive.infolist()
            for entry in task.entries:
                member = members[entry.index]
                yield from _read_member(entry, lambda m=member: _read_zip(archive, m, limits))
    else:
        yield from _read_tar(task, limits)


def _read_files(task: ReadTask, limits: Limits):
    fs, root = fsspec.core.url_to_fs(task.root)
    for entry in task.entries:
        try:
            if is_local(fs):
                data, info = read_local(os.path.join(root, to_os(entry.name)), limits)
                stamp = _local_stamp(info) + (("sha256", hashlib.sha256(data).hexdigest()),)
                yield entry._replace(stamp=stamp), data
            else:
                check_size(entry.size, limits)
                with fs.open(f"{root}/{entry.name}", "rb") as f:
                    yield entry, read_capped(f, limits)
        except (OSError, ValueError) as err:
            yield entry, err


def _read_zip(archive: zipfile.ZipFile, member: zipfile.ZipInfo, limits: Limits) -> bytes:
    check_size(member.file_size, limits, member.compress_size)
    with archive.open(member) as f:
        return read_capped(f, limits)


def _decompressed(raw):
    """The uncompressed stream of a (gzip, bzip2, xz or plain) tar: tarfile's own stream mode copies
    its buffer on every read and takes a minute to skip past a 1 GiB member."""
    magic = raw.read(6)
    raw.seek(0)
    for prefix, opener in ((b"\x1f\x8b", gzip.GzipFile), (b"BZh", bz2.BZ2File), (b"\xfd7zXZ", lzma.LZMAFile)):
        if magic.startswith(prefix):
            return opener(fileobj=raw) if opener is gzip.GzipFile else opener(raw)
    return raw


def _read_tar(task: ReadTask, limits: Limits):
    """Members in one streaming pass. Members over the size limit are skipped unread; a member that
    would take the archive past its expansion budget stops the archive before it is decompressed."""
    seen, expanded = set(), 0
    with fsspec.open(task.url, "rb") as raw, tarfile.open(fileobj=_decompressed(raw), mode="r|") as archive:
        budget = archive_budget(raw.size, limits)
        for member in archive:
            entry = Entry(to_wire(member.name), member.size)
            if not member.isfile():
                if not member.isdir():
                    yield entry, ReadRefused("not_a_file", "a link or special member of the archive: not read")
                continue
            expanded += member.size
            if expanded > budget:
                raise ReadRefused("compression_bomb", f"expands past {budget >> 20} MB ({limits.max_ratio} times its "
                                  f"size) at {member.name!r}: it and the members after it were not read")
            try:
                relpath = to_wire(safe_relpath(member.name))
            except UnsafePath as err:
                yield entry, err
                continue
            if relpath in seen:
                yield entry._replace(name=relpath), ReadRefused(
                    "duplicate_name", f"a second member named {relpath!r} in {task.url}; only the first is read")
                continue
            seen.add(relpath)

            def read_member(m=member):
                check_size(m.size, limits)
                return read_capped(archive.extractfile(m), limits)

            for found, data in _read_member(entry._replace(name=relpath), read_member):
                if isinstance(data, bytes):
                    found = found._replace(stamp=(("size", len(data)), ("sha256", hashlib.sha256(data).hexdigest())))
                yield found, data


def _read_member(entry: Entry, read) -> Iterator[tuple[Entry, bytes | Exception]]:
    try:
        relpath = safe_relpath(entry.name)
    except UnsafePath as err:
        yield entry, err
        return
    if hidden(relpath):
        return
    try:
        data = read()
    except Exception as err:  # any one member's failure (Deflate64, a bad CRC, ...) is that member's only
        data = err
    yield entry._replace(name=relpath), data


@contextlib.contextmanager
def open_source(source):
    """A video to read: a local path, a URL, or (archive kind, member, archive URL); names are never
    parsed as fsspec URL chains (a name may hold "::")."""
    if isinstance(source, tuple):
        kind, member, archive = source
        fs = fsspec.filesystem(kind, fo=archive)  # held while the member is read: it owns the archive's file
    else:
        protocol, _ = fsspec.core.split_protocol(source)
        fs = fsspec.filesystem(protocol or "file")
        member = fs._strip_protocol(source) if protocol else source
    with fs.open(member, "rb") as f:
        yield f
