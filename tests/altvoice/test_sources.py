"""Image sources: folders (recursive), globs, fsspec URLs, zip and tar archives read in place."""
import io
import tarfile
import zipfile

import fsspec
import pytest

from altvoice.sources import Limits, ReadTask, UnsafePath, list_sources, read_task, safe_relpath


def read_all(url, chunk=64, limits=Limits()):
    return {entry.name: data for task in list_sources(url, chunk, limits) if isinstance(task, ReadTask)
            for entry, data in read_task(task, limits)}


@pytest.fixture()
def tree(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    files = {"top.jpg": b"1", "a/mid.png": b"2", "a/b/deep.gif": b"3"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / ".hidden" / "x.jpg").write_bytes(b"4")
    return tmp_path, files


def test_folder_is_read_recursively_without_hidden_files(tree):
    root, files = tree
    assert read_all(str(root)) == files


def test_glob_keeps_paths_relative_to_its_fixed_part(tree):
    root, _ = tree
    assert read_all(f"{root}/a/**/*.gif") == {"b/deep.gif": b"3"}
    assert read_all(f"{root}/*.jpg") == {"top.jpg": b"1"}


def test_many_files_are_split_into_tasks(tree):
    root, files = tree
    tasks = list(list_sources(str(root), chunk=2))
    assert [len(t.entries) for t in tasks] == [2, 1]


def test_fsspec_memory_url():
    fs = fsspec.filesystem("memory")
    fs.pipe({"/album/one.jpg": b"x", "/album/sub/two.jpg": b"y"})
    assert read_all("memory:///album") == {"one.jpg": b"x", "sub/two.jpg": b"y"}


def test_zip_members_are_read_in_place_in_chunks(tmp_path):
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(5):
            archive.writestr(f"dir/{i}.jpg", bytes([i]))
        archive.writestr("__MACOSX/dir/._0.jpg", b"junk")
    tasks = list(list_sources(str(path), chunk=2))
    assert len(tasks) == 3
    assert read_all(str(path), chunk=2) == {f"dir/{i}.jpg": bytes([i]) for i in range(5)}


@pytest.mark.parametrize("mode, suffix", [("w", ".tar"), ("w:gz", ".tar.gz"), ("w:gz", ".tgz")])
def test_tar_is_streamed(tmp_path, mode, suffix):
    path = tmp_path / f"photos{suffix}"
    with tarfile.open(path, mode) as archive:
        for name, data in {"x/1.jpg": b"one", "2.png": b"two"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    assert read_all(str(path)) == {"x/1.jpg": b"one", "2.png": b"two"}


def test_archive_members_cannot_escape_the_root(tmp_path):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("../../etc/passwd.jpg", b"no")
        archive.writestr("/abs/path.jpg", b"no")
        archive.writestr("ok/./fine.jpg", b"yes")
    read = read_all(str(path))
    assert read["ok/fine.jpg"] == b"yes"
    assert isinstance(read["../../etc/passwd.jpg"], UnsafePath)
    assert isinstance(read["/abs/path.jpg"], UnsafePath)


@pytest.mark.parametrize("name", ["../x.jpg", "a/../../x.jpg", "/etc/x.jpg", "C:\\x.jpg", "..\\x.jpg", ""])
def test_safe_relpath_refuses(name):
    with pytest.raises(UnsafePath):
        safe_relpath(name)


def test_safe_relpath_normalises():
    assert safe_relpath("./a//b/c.jpg") == "a/b/c.jpg"


def test_missing_source_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        list(list_sources(str(tmp_path / "nothing")))


def test_corrupt_zip_raises(tmp_path):
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(zipfile.BadZipFile):
        list(list_sources(str(path)))


def test_a_deep_tree_and_a_folder_symlink_loop_are_listed_once(tmp_path):
    from testdata import deep_folder

    folder, remove = deep_folder(tmp_path, 1200)  # past Python's recursion limit
    try:
        with open(f"{folder}/deep.jpg", "wb") as f:
            f.write(b"x")
        (tmp_path / "loop").symlink_to(tmp_path)
        read = read_all(str(tmp_path))
        assert list(read.values()) == [b"x"] and len(read) == 1
    finally:
        remove()


def test_special_files_are_refused_without_blocking(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "zero.jpg").symlink_to("/dev/zero")
    read = read_all(str(tmp_path))
    assert {name: error.kind for name, error in read.items()} == {"pipe.jpg": "not_a_file", "zero.jpg": "not_a_file"}


def test_sizes_are_checked_before_reading_and_reads_are_capped(tmp_path):
    limits = Limits(max_file_bytes=1000)
    (tmp_path / "big.jpg").write_bytes(bytes(1001))
    (tmp_path / "ok.jpg").write_bytes(bytes(1000))
    read = read_all(str(tmp_path), limits=limits)
    assert read["ok.jpg"] == bytes(1000) and read["big.jpg"].kind == "too_large"
    fs = fsspec.filesystem("memory")
    fs.pipe({"/store/big.jpg": bytes(1001)})
    assert read_all("memory:///store", limits=limits)["big.jpg"].kind == "too_large"


def test_zip_bombs_and_duplicate_members_are_refused(tmp_path):
    from altvoice.sources import Refused

    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bmp", bytes(100 << 20))  # 100 MiB in ~100 KB: over the 100:1 ratio
        archive.writestr("a.jpg", b"first")
        archive.writestr("a.jpg", b"second")
    listed = list(list_sources(str(path)))
    assert [(r.name, r.kind) for r in listed if isinstance(r, Refused)] == [("a.jpg", "duplicate_name")]
    read = read_all(str(path))
    assert read["a.jpg"] == b"first" and read["zeros.bmp"].kind == "compression_bomb"


def test_local_entries_carry_a_stamp_and_the_content_hash(tree):
    import hashlib

    root, _ = tree
    (entry, data), = [r for t in list_sources(str(root)) for r in read_task(t) if r[0].name == "top.jpg"]
    stamp = dict(entry.stamp)
    assert stamp["size"] == 1 and stamp["sha256"] == hashlib.sha256(data).hexdigest() and stamp["mtime_ns"] > 0


def test_zip_members_that_cant_be_bounded_are_refused_and_one_bad_member_loses_nothing(tmp_path):
    from altvoice.sources import Refused

    path = tmp_path / "mixed.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.jpg", b"first", zipfile.ZIP_DEFLATED)
        archive.writestr("b.jpg", b"bzip2 may lie about its size", zipfile.ZIP_BZIP2)
        archive.writestr("1:1 scale.jpg", b"a colon is not a drive letter", zipfile.ZIP_STORED)
    listed = list(list_sources(str(path)))
    assert [(r.name, r.kind) for r in listed if isinstance(r, Refused)] == [("b.jpg", "unsupported_compression")]
    assert read_all(str(path)) == {"a.jpg": b"first", "1:1 scale.jpg": b"a colon is not a drive letter"}


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz"])
def test_a_tar_stops_before_a_member_that_would_pass_its_expansion_budget(tmp_path, mode):
    path = tmp_path / f"bomb.tar.{mode[2:]}"
    with tarfile.open(path, mode) as archive:
        for name, data in (("a.jpg", b"one"), ("big.bmp", bytes(4 << 20)), ("c.jpg", b"three")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("link.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "a.jpg"
        archive.addfile(link)
    small = Limits(max_file_bytes=1 << 20, archive_floor=2 << 20)  # a 2 MB budget: big.bmp would pass it
    (task,) = list_sources(str(path), limits=small)
    found = []
    with pytest.raises(ValueError, match="expands past 2 MB.*'big.bmp'"):
        for entry, data in read_task(task, small):
            found.append(entry.name)
    assert found == ["a.jpg"]
    read = read_all(str(path))  # the default budget (2 GiB): big.bmp read, the link reported
    assert read["c.jpg"] == b"three" and read["link.jpg"].kind == "not_a_file"


def test_broken_links_unreadable_and_symlinked_folders_are_reported_not_followed(tmp_path):
    from altvoice.sources import Refused

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(b"a")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "b.jpg").write_bytes(b"b")
    (tmp_path / "in" / "linked").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "in" / "usb").symlink_to(tmp_path / "unmounted")
    listed = list(list_sources(str(tmp_path / "in")))
    assert sorted((r.name, r.kind) for r in listed if isinstance(r, Refused)) == [
        ("linked", "symlinked_folder"), ("usb", "broken_link")]
    assert read_all(str(tmp_path / "in")) == {"a.jpg": b"a"}


def test_a_folder_named_like_a_pattern_is_read_as_a_folder(tmp_path):
    folder = tmp_path / "Holiday [2019]"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"a")
    assert read_all(str(folder)) == {"a.jpg": b"a"}


def test_a_zip_member_refused_for_its_size_does_not_use_the_archive_budget(tmp_path):
    path = tmp_path / "one_bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.bmp", bytes(3 << 20))
        archive.writestr("after.jpg", b"kept")
    limits = Limits(max_file_bytes=1 << 20, archive_floor=2 << 20)
    read = read_all(str(path), limits=limits)
    assert read["bomb.bmp"].kind == "too_large" and read["after.jpg"] == b"kept"
