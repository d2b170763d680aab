"""Hostile archives, foreign files, changed images and bad audio: nothing of the user's is lost.

Each test builds its own small inputs (a bomb is a small compressed file) and runs the real
caption job on them; the numbers in the names are the cases of the issue they reproduce.
"""
import hashlib
import io
import json
import os
import stat
import tarfile
import zipfile

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from altvoice.flags import UsageError
from altvoice.pipelines import caption as caption_job, caption_checks
from altvoice.pipelines.options import CaptionOptions
from testdata import deep_folder, encode, scene_image
from tests.pipelines.test_caption import caption, wav_info

RED, BLUE, GREEN = (220, 30, 30), (30, 30, 220), (30, 200, 30)


def jpeg(color) -> bytes:
    return encode(scene_image(color), "JPEG")


def checksums(root) -> dict:
    """sha256 of every regular file under a folder, by its path as bytes (names need not be UTF-8)."""
    found, pending, top = {}, [os.fsencode(root)], os.fsencode(root)
    while pending:  # os.walk recurses once a level
        for entry in os.scandir(pending.pop()):
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
            elif entry.is_file(follow_symlinks=False):
                found[os.path.relpath(entry.path, top)] = hashlib.sha256(open(entry.path, "rb").read()).hexdigest()
    return found


def run_cli(*argv) -> dict:
    """The job as `altvoice caption` runs it (leftover cleanup and launch checks included)."""
    counts = caption_job.run(list(argv))
    return counts


@pytest.fixture()
def hostile_folder(tmp_path):
    """Good photos beside a name that is not UTF-8, a FIFO, a link to /dev/zero, a 1,100-deep tree,
    names of 250 and 252 bytes and a user's own `.partial` file."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "red.jpg").write_bytes(jpeg(RED))
    with open(os.path.join(os.fsencode(folder), b"bad\xff.jpg"), "wb") as f:
        f.write(jpeg(BLUE))
    os.mkfifo(folder / "pipe.jpg")
    os.symlink("/dev/zero", folder / "zero.jpg")
    deep, remove_deep = deep_folder(folder, 1100)
    with open(os.path.join(deep, "deep.png"), "wb") as f:
        f.write(encode(scene_image(GREEN), "PNG"))
    (folder / ("l" * 246 + ".png")).write_bytes(encode(scene_image(GREEN), "PNG"))
    (folder / ("m" * 248 + ".png")).write_bytes(encode(scene_image(BLUE), "PNG"))
    (folder / "thesis.docx.partial").write_text("my thesis")
    yield folder
    remove_deep()


def test_1_5_9_10_hostile_folder_in_place(hostile_folder, tiny_model):
    folder, old_umask = hostile_folder, os.umask(0o022)
    before = checksums(folder)
    try:
        counts = run_cli("--input", str(folder), "--in-place", "--model", str(tiny_model), "--tts", "espeak")
    finally:
        os.umask(old_umask)
    manifest = {m["image"]: m for m in map(json.loads, (folder / "manifest.jsonl").read_text().splitlines())}
    errors = {e["image"]: e for e in map(json.loads, (folder / "errors.jsonl").read_text().splitlines())}
    deep = "/".join(["d"] * 1100) + "/deep.png"
    long_ok, too_long = "l" * 246 + ".png", "m" * 248 + ".png"
    for name in ("red.jpg", deep, long_ok, "bad\\xff.jpg"):
        assert manifest[name]["status"] == "written", name
    # 1: the name that is not UTF-8: outputs beside it under its own bytes, record says both forms
    raw = os.path.join(os.fsencode(folder), b"bad\xff.jpg")
    record = json.loads(open(raw + b".json", "rb").read())
    assert (record["image"], record["image_raw"]) == ("bad\\xff.jpg", "bad%FF.jpg")
    assert manifest["bad\\xff.jpg"]["image_raw"] == "bad%FF.jpg" and wav_info(open(raw + b".wav", "rb").read())[1] > 0.2
    # 5: special files are refused with a reason, never read
    assert errors["pipe.jpg"]["kind"] == errors["zero.jpg"]["kind"] == "not_a_file"
    # 9: a name whose record name would pass 255 bytes: one clear error, nothing half-written
    assert manifest[too_long]["status"] == "failed" and "File name too long" in errors[too_long]["reason"]
    # 2: the user's .partial file is an input like any other (not an image), never deleted
    assert errors["thesis.docx.partial"]["kind"] == "not_an_image"
    after = checksums(folder)
    assert {k: v for k, v in after.items() if k in before} == before
    # 10: outputs follow the umask
    assert stat.S_IMODE(os.stat(folder / "red.jpg.json").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(folder / "red.jpg.wav").st_mode) == 0o644
    assert counts["written"] == 4
    again = run_cli("--input", str(folder), "--in-place", "--model", str(tiny_model), "--tts", "espeak")
    assert again["up_to_date"] == 4 and "written" not in again
    assert checksums(folder) == {**after, b"manifest.jsonl": checksums(folder)[b"manifest.jsonl"],
                                 b"errors.jsonl": checksums(folder)[b"errors.jsonl"]}


def test_1_5_8_archives_bombs_duplicates_and_latin1_names(tmp_path, tiny_model):
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("dup.jpg", jpeg(RED))
        z.writestr("dup.jpg", jpeg(BLUE))
        z.writestr("ok.jpg", jpeg(GREEN))
        with z.open("bomb.bmp", "w", force_zip64=True) as member:  # 200 MiB of zeros, ~200 KB compressed
            for _ in range(200):
                member.write(bytes(1 << 20))
    assert archive.stat().st_size < 1 << 20
    result = caption(str(archive), tmp_path / "out", tiny_model, "--tts", "none", "--max-file-mb", "128")
    assert {k: v["status"] for k, v in result["manifest"].items()} == {"dup.jpg": "written", "ok.jpg": "written"}
    kinds = sorted((e["image"], e["kind"]) for e in result["errors"])
    assert kinds == [("bomb.bmp", "too_large"), ("dup.jpg", "duplicate_name")]
    assert "128" in next(e["reason"] for e in result["errors"] if e["kind"] == "too_large")

    tar = tmp_path / "photos.tar.gz"
    with tarfile.open(tar, "w:gz", format=tarfile.GNU_FORMAT, encoding="latin-1") as t:
        for name, data in ((b"caf\xe9.jpg", jpeg(RED)), (b"big.bmp", bytes(200 << 20)), (b"caf\xe9.jpg", jpeg(BLUE))):
            info = tarfile.TarInfo(name.decode("latin-1"))
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    result = caption(str(tar), tmp_path / "tar-out", tiny_model, "--tts", "none")
    assert [(k, v["status"]) for k, v in result["manifest"].items()] == [("caf\\xe9.jpg", "written")]
    assert os.path.exists(os.path.join(os.fsencode(tmp_path / "tar-out"), b"caf\xe9.jpg.json"))
    assert sorted((e["image"], e["kind"]) for e in result["errors"]) == [("big.bmp", "too_large"),
                                                                         ("caf\\xe9.jpg", "duplicate_name")]


def test_3_output_never_collides_with_the_input(tmp_path, tiny_model):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "photo.jpg").write_bytes(jpeg(RED))
    (folder / "photo.alt.jpg").write_bytes(jpeg(BLUE))  # the user's own photo, named like a tagged copy
    before = checksums(folder)
    argv = ["--input", str(folder), "--output", str(folder), "--model", str(tiny_model), "--embed-metadata"]
    with pytest.raises(UsageError, match="is the input folder"):
        caption_job.Settings(PipelineOptions(argv).view_as(CaptionOptions))
    inside = folder / "described"
    for _ in range(2):
        result = caption(str(folder), inside, tiny_model, "--tts", "none", "--embed-metadata")
        assert set(result["manifest"]) == {"photo.jpg", "photo.alt.jpg"}
    assert not (inside / "described").exists() and (inside / "photo.alt.jpg.json").exists()
    after = checksums(folder)
    assert all(after[name] == digest for name, digest in before.items())
    own = tmp_path / "own"
    own.mkdir()
    (own / "photo.jpg").write_bytes(jpeg(RED))
    (own / "photo.alt.jpg").write_bytes(jpeg(BLUE))
    before = checksums(own)
    in_place = caption(str(own), None, tiny_model, "--tts", "none", "--in-place", "--embed-metadata")
    assert in_place["manifest"]["photo.alt.jpg"]["status"] == "written"  # an input, not skipped as a copy
    assert in_place["manifest"]["photo.jpg"]["status"] == "partial"
    assert [(e["image"], e["kind"]) for e in in_place["errors"]] == [("photo.jpg", "output_exists")]
    after = checksums(own)
    assert all(after[name] == digest for name, digest in before.items())


def test_4_in_place_tagged_copy_keeps_the_photos_metadata(tmp_path, tiny_model):
    from altvoice.xmp import xmp_packet
    from tests.altvoice.test_xmp import alt_of

    folder = tmp_path / "in"
    folder.mkdir()
    creator = ('<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
               '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about=""'
               ' xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator><rdf:Seq><rdf:li>Ada</rdf:li></rdf:Seq>'
               '</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>')
    original = encode(scene_image(RED), "JPEG", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00", xmp=creator.encode())
    (folder / "photo.jpg").write_bytes(original)
    caption(str(folder), None, tiny_model, "--tts", "none", "--in-place", "--embed-metadata")
    tagged = (folder / "photo.alt.jpg").read_bytes()
    record = json.loads((folder / "photo.jpg.json").read_text())
    assert alt_of(tagged) == record["alt_text"] and b"<rdf:li>Ada</rdf:li>" in tagged
    assert (folder / "photo.jpg").read_bytes() == original
    assert xmp_packet  # the merge itself is tested field by field in tests/altvoice/test_xmp.py


def test_6_audio_that_is_not_audio_is_never_written(tmp_path, tiny_model, tts_server):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "red.jpg").write_bytes(jpeg(RED))
    google = ["--tts", "google", "--audio-format", "wav", "--tts-option", f"endpoint={tts_server.endpoint}",
              "--tts-option", "insecure=true", "--tts-option", "retry_deadline=0.5", "--tts-option", "retry_initial=0.05"]
    tts_server.answer_next(*[b"<html>quota page</html>"] * 200)
    broken = caption(str(folder), tmp_path / "out", tiny_model, *google)
    assert broken["manifest"]["red.jpg"]["status"] == "partial"
    assert not (tmp_path / "out" / "red.jpg.wav").exists()
    assert "transient: True" in broken["errors"][0]["reason"]
    tts_server.failures.clear()
    fixed = caption(str(folder), tmp_path / "out", tiny_model, *google)
    assert fixed["manifest"]["red.jpg"]["status"] == "written"
    assert wav_info((tmp_path / "out" / "red.jpg.wav").read_bytes())[1] > 0
    with pytest.raises(UsageError, match="xx-nonexistent"):
        caption(str(folder), tmp_path / "o2", tiny_model, "--tts", "espeak", "--voice", "xx-nonexistent")


def test_7_11_skips_only_what_is_really_up_to_date(tmp_path, tiny_model, grounded_model):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for name, color in (("a.jpg", RED), ("b.jpg", BLUE), ("c.jpg", GREEN)):
        (folder / name).write_bytes(jpeg(color))
    (folder / "anim.gif").write_bytes(encode(scene_image(RED), "GIF"))
    (folder / "d.bmp").write_bytes(encode(scene_image(RED), "BMP"))

    def statuses(*extra, model=tiny_model):
        return {k: v["status"] for k, v in caption(str(folder), out, model, *extra)["manifest"].items()}

    assert set(statuses().values()) == {"written"}
    (folder / "a.jpg").write_bytes(jpeg((250, 250, 10)))  # 7: another photo under the same name
    (out / "b.jpg.wav").unlink()  # deleted audio
    assert statuses() == {"a.jpg": "written", "b.jpg": "written", "c.jpg": "up_to_date", "anim.gif": "up_to_date",
                          "d.bmp": "up_to_date"}
    os.utime(folder / "c.jpg")  # touched, same bytes: still up to date (same sha256)
    assert statuses()["c.jpg"] == "up_to_date"
    (folder / "new.bmp").write_bytes(encode(scene_image((10, 250, 250)), "BMP"))  # same size, other pixels
    old = (folder / "d.bmp").stat()
    os.utime(folder / "new.bmp", ns=(old.st_atime_ns, old.st_mtime_ns))  # `touch -r d.bmp new.bmp`
    os.replace(folder / "new.bmp", folder / "d.bmp")  # then `mv`: same size and mtime, a new ctime
    assert statuses()["d.bmp"] == "written"
    # 11: newly asked tagged copies are written; a GIF can't carry XMP: partial once, then up to date
    embedded = statuses("--embed-metadata")
    assert embedded == {"a.jpg": "written", "b.jpg": "written", "c.jpg": "written", "anim.gif": "partial",
                        "d.bmp": "partial"}
    assert (out / "a.jpg").exists() and not (out / "anim.gif").exists()
    assert set(statuses("--embed-metadata").values()) == {"up_to_date"}
    assert set(statuses(model=grounded_model).values()) == {"written"}  # another model


def test_7_images_gone_from_the_source_are_listed_then_pruned(tmp_path, tiny_model):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for name, color in (("keep.jpg", RED), ("gone.jpg", BLUE)):
        (folder / name).write_bytes(jpeg(color))
    caption(str(folder), out, tiny_model)
    (out / "notes.json").write_text('{"mine": true}')
    (folder / "gone.jpg").unlink()
    listed = caption(str(folder), out, tiny_model)["manifest"]
    assert listed["gone.jpg"]["status"] == "removed_from_source" and (out / "gone.jpg.wav").exists()
    pruned = caption(str(folder), out, tiny_model, "--prune")["manifest"]
    assert pruned["gone.jpg"]["status"] == "pruned" and listed["keep.jpg"]["status"] == "up_to_date"
    assert sorted(p.name for p in out.iterdir()) == ["errors.jsonl", "keep.jpg.json", "keep.jpg.wav",
                                                     "manifest.jsonl", "notes.json"]


def test_10_an_output_that_cant_be_written_is_a_launch_error(tmp_path, tiny_model):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "red.jpg").write_bytes(jpeg(RED))
    (tmp_path / "file").write_text("not a folder")
    argv = ["--input", str(folder), "--model", str(tiny_model), "--tts", "none", "--output"]
    with pytest.raises(UsageError, match="can't write there"):
        run_cli(*argv, str(tmp_path / "file" / "out"))
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        if not os.access(read_only, os.W_OK):  # root can write anywhere
            with pytest.raises(UsageError, match="can't write there"):
                run_cli(*argv, str(read_only))
    finally:
        read_only.chmod(0o755)
    assert (tmp_path / "file").read_text() == "not a folder"


@pytest.mark.parametrize("name, reason", [("decoder.weights.h5", "truncated"), ("backbone.tflite", "sha256")])
def test_10_a_damaged_export_stops_the_job_before_any_work(tmp_path, tiny_model, name, reason):
    import shutil

    damaged = tmp_path / "export"
    shutil.copytree(tiny_model, damaged)
    weights = (damaged / name).read_bytes()
    (damaged / name).write_bytes(weights[: len(weights) // 2])
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "red.jpg").write_bytes(jpeg(RED))
    with pytest.raises(UsageError, match=f"damaged export.*{reason}"):
        run_cli("--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--model", str(damaged))
    assert not (tmp_path / "out").exists()


def test_10_ctrl_c_is_one_sentence_and_a_rerun_finishes(tmp_path, tiny_model):
    import signal
    import subprocess
    import sys
    import time

    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    count = 200  # enough that the run is still going when the second record appears
    for i in range(count):
        (folder / f"{i:03d}.png").write_bytes(encode(scene_image((i * 8 % 256, (200 - i * 5) % 256, 90)), "PNG"))
    command = [sys.executable, "-m", "altvoice.cli", "caption", "--input", str(folder), "--output", str(out),
               "--model", str(tiny_model), "--tts", "espeak", "--batch-size", "2"]
    def as_from_a_terminal():  # Ctrl-C neither ignored nor blocked, whatever earlier tests left in this process
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           preexec_fn=as_from_a_terminal)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*.png.json"))) < 2:
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    stderr = run.communicate(timeout=60)[1]
    assert run.returncode == 130 and stderr.splitlines()[-1].endswith("run the same command again to finish")
    assert "Traceback" not in stderr
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    assert len(list(out.glob("*.png.json"))) == count and not list(out.glob(".altvoice-tmp-*"))


def test_10_a_full_disk_is_one_sentence(tmp_path, tiny_model):
    import subprocess
    import sys

    disk = tmp_path / "tiny-disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("can't mount a small tmpfs here (needs root in a privileged container)")
    try:
        folder = tmp_path / "in"
        folder.mkdir()
        for i in range(30):
            (folder / f"{i:02d}.png").write_bytes(encode(scene_image((i * 8, 200 - i * 5, 90)), "PNG"))
        run = subprocess.run([sys.executable, "-m", "altvoice.cli", "caption", "--input", str(folder), "--output",
                              str(disk / "out"), "--model", str(tiny_model), "--tts", "espeak"],
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 1 and "No space left on device" in run.stderr.splitlines()[-1]
        assert "Traceback" not in run.stderr
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_review_hostile_files_where_records_go_never_stop_the_run(tmp_path, tiny_model):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "img.jpg").write_bytes(jpeg(RED))
    (folder / "two.jpg").write_bytes(jpeg(BLUE))
    (folder / "notes.json").write_text("[" * 200000 + "]" * 200000)  # json.loads: RecursionError
    os.mkfifo(folder / "settings.json")
    os.symlink("/dev/zero", folder / "img.jpg.json")
    before = checksums(folder)
    result = caption(str(folder), None, tiny_model, "--tts", "none", "--in-place")
    assert result["manifest"]["two.jpg"]["status"] == "written"
    assert result["manifest"]["img.jpg"]["status"] == "failed"  # its record's place is taken: not overwritten
    assert [(e["image"], e["kind"]) for e in result["errors"]] == [("img.jpg", "output_exists")]
    assert all(checksums(folder)[name] == digest for name, digest in before.items())


def test_review_prune_deletes_only_this_sources_own_files(tmp_path, tiny_model):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for i in range(3):
        (folder / f"img{i}.jpg").write_bytes(jpeg((80 * i, 30, 30)))
    caption(str(folder), out, tiny_model)
    (out / "thesis.docx").write_text("mine")
    forged = {"model_id": "x", "input": caption_checks.source_id(str(folder)), "claims": ["thesis.docx", ".."]}
    (out / "ghost.jpg.json").write_text(json.dumps(forged))
    one = caption(str(folder / "img2.jpg"), out, tiny_model, "--prune")["manifest"]  # a single-file input
    assert one == {"img2.jpg": one["img2.jpg"]} and one["img2.jpg"]["status"] == "up_to_date"
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.jpg").write_bytes(jpeg(GREEN))
    shared = caption(str(other), out, tiny_model, "--prune")["manifest"]  # another source, same output
    assert set(shared) == {"x.jpg"} and (out / "img0.jpg.json").exists()
    (folder / "img1.jpg").unlink()
    pruned = caption(str(folder), out, tiny_model, "--prune")["manifest"]
    assert pruned["img1.jpg"]["status"] == "pruned" and pruned["ghost.jpg"]["status"] == "pruned"
    assert (out / "thesis.docx").read_text() == "mine" and not (out / "img1.jpg.wav").exists()
    assert (out / "img0.jpg.wav").exists() and (out / "x.jpg.json").exists()


def test_review_a_failed_write_does_not_keep_its_claim(tmp_path, tiny_model, tts_server):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(jpeg(RED))
    tts_server.fail_next(*[__import__("grpc").StatusCode.INVALID_ARGUMENT] * 10)
    caption(str(folder), out, tiny_model, "--tts", "google", "--audio-format", "wav", "--tts-option",
            f"endpoint={tts_server.endpoint}", "--tts-option", "insecure=true")
    assert json.loads((out / "a.jpg.json").read_text())["claims"] == []
    (out / "a.jpg.wav").write_bytes(b"the user's own recording")
    again = caption(str(folder), out, tiny_model)
    assert (out / "a.jpg.wav").read_bytes() == b"the user's own recording"
    assert [(e["image"], e["kind"]) for e in again["errors"]] == [("a.jpg", "output_exists")]


def test_review_job_files_and_pattern_names(tmp_path, tiny_model):
    folder = tmp_path / "Holiday [2019]"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(jpeg(RED))
    (folder / "manifest.jsonl").write_text("my own list of photos\n")
    (tmp_path / "Holiday").mkdir()
    (tmp_path / "Holiday" / "manifest.jsonl").write_text("my own list of photos\n")
    argv = ["--model", str(tiny_model), "--tts", "none", "--input", str(folder)]
    with pytest.raises(UsageError, match=r"\* \? or \["):
        run_cli(*argv, "--in-place")
    with pytest.raises(UsageError, match="manifest.jsonl exists and is not one altvoice wrote"):
        run_cli("--model", str(tiny_model), "--tts", "none", "--input", str(folder / "a.jpg"), "--output",
                str(tmp_path / "Holiday"))
    counts = run_cli(*argv, "--output", str(tmp_path / "out"))
    assert counts["written"] == 1 and (folder / "manifest.jsonl").read_text() == "my own list of photos\n"
