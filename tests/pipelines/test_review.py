"""`altvoice review`: the page's data, thumbnails and errors from a real caption run (the browser tests
are in tests/altvoice/test_review_page.py)."""
import json
import shutil

import pytest
from PIL import Image, ImageStat

from altvoice import cli
from altvoice.names import to_wire
from altvoice.pipelines import review
from altvoice.pipelines.caption_outputs import IgnoreOwn
from altvoice.review import GENERATOR, page_record, thumb_name
from testdata import HOSTILE_NAMES as HOSTILE
from testdata import encode, review_page_data, scene_image

@pytest.fixture()
def output(captioned, tmp_path):
    return shutil.copytree(captioned, tmp_path / "out")


def test_the_page_shows_every_image_with_thumbnail_audio_and_the_failures_with_reasons(output):
    flagged = sum(json.loads(p.read_text()).get("needs_review", False) for p in output.rglob("*.json"))
    assert review.run([str(output)]) == {"written": 6, "failed": 1, "need_review": flagged, "errors": 1,
                                         "review_errors": 0}
    run, records = review_page_data(output)
    assert run["counts"] == {"written": 6, "failed": 1, "need_review": flagged} and run["errors_total"] == 1
    assert [e["image"] for e in run["errors"]] == ["broken.jpg"]
    shown = {r["image"]: r for r in records}
    assert sorted(shown) == sorted(["a.jpg", "sub/b.png", "broken.jpg", *HOSTILE])
    assert shown["broken.jpg"]["status"] == "failed" and shown["broken.jpg"]["reasons"][0].startswith("decode: ")
    assert "thumb" not in shown["broken.jpg"] and "audio" not in shown["broken.jpg"]
    for name in ["a.jpg", "sub/b.png", *HOSTILE]:
        record = json.loads((output / f"{name}.json").read_text())
        assert shown[name]["alt_text"] == record["alt_text"] and shown[name]["voice"] == record["voice"]
        with Image.open(output / "review" / shown[name]["thumb"]) as thumb:
            assert max(thumb.size) <= 160 and thumb.format == "JPEG"
    assert shown["sub/b.png"]["audio"] == "../sub/b.png.wav"
    assert shown["<img src=x onerror=alert(1)>.png"]["audio"] == "../%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.png.wav"
    assert (output / "review" / "index.html").read_text().count('<script src="data/') == 2
    assert (output / "review" / "errors.jsonl").read_text() == ""  # broken.jpg has no record: no thumbnail tried


def test_a_second_run_keeps_thumbnails_and_a_changed_image_gets_a_new_one(tmp_path, tiny_model):
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    for name, color in (("red.png", (220, 30, 30)), ("blue.png", (30, 30, 220))):
        (photos / name).write_bytes(encode(scene_image(color), "PNG"))
    caption = ["caption", "--input", str(photos), "--output", str(out), "--model", str(tiny_model), "--tts", "none"]
    assert cli.main(caption) == 0 and review.run([str(out)])["written"] == 2
    thumbs = {p.name: p.stat().st_mtime_ns for p in (out / "review" / "thumbs").iterdir()}
    assert len(thumbs) == 2
    review.run([str(out)])
    assert {p.name: p.stat().st_mtime_ns for p in (out / "review" / "thumbs").iterdir()} == thumbs
    (photos / "red.png").write_bytes(encode(scene_image((30, 200, 30), size=80), "PNG"))  # a new version
    assert cli.main(caption) == 0
    review.run([str(out)])
    shown = {r["image"]: r["thumb"] for r in review_page_data(out)[1]}
    now = {p.name for p in (out / "review" / "thumbs").iterdir()}
    assert now == {shown["red.png"][7:], shown["blue.png"][7:]} and shown["blue.png"][7:] in thumbs
    assert shown["red.png"][7:] not in thumbs  # the old one is gone, the new one made
    with Image.open(out / "review" / shown["red.png"]) as thumb:
        red, green, _ = ImageStat.Stat(thumb).mean
        assert green > red and thumb.size == (80, 80)  # the new, green version
    review.run([str(out), "--remake-thumbnails"])
    assert all(p.stat().st_mtime_ns > thumbs.get(p.name, 0) for p in (out / "review" / "thumbs").iterdir())


def test_an_output_folder_without_records_gives_a_page_that_says_so(tmp_path):
    (tmp_path / "empty").mkdir()
    assert review.run([str(tmp_path / "empty")]) == {"need_review": 0, "errors": 0, "review_errors": 0}
    run, records = review_page_data(tmp_path / "empty")
    assert records == [] and run["counts"] == {"need_review": 0}


def test_a_review_folder_altvoice_did_not_write_is_never_touched(output, captioned, capsys):
    (output / "review" / "data").mkdir(parents=True)
    (output / "review" / "notes.txt").write_text("the team's own notes")
    (output / "review" / "data" / "records-final.js").write_text("// the team's")
    assert cli.main(["review", str(output)]) == 2
    assert "no review page altvoice wrote" in capsys.readouterr().err
    (output / "review" / "index.html").write_text("<html>the team's own page</html>")
    assert cli.main(["review", str(output)]) == 2
    capsys.readouterr()
    assert cli.main(["caption", "--input", str(captioned.parent / "photos"), "--output", str(output), "--review"]) == 2
    assert "--review: " in capsys.readouterr().err  # before any work
    assert (output / "review" / "index.html").read_text() == "<html>the team's own page</html>"
    (output / "review" / "index.html").write_text(f"<html>{GENERATOR}</html>")
    assert cli.main(["review", str(output)]) == 0
    assert (output / "review" / "data" / "records-final.js").read_text() == "// the team's"


def test_malformed_manifest_lines_are_errors_and_the_rest_is_shown(output):
    with (output / "manifest.jsonl").open("a") as f:
        f.write("{not json\n")
    review.run([str(output)])
    _, records = review_page_data(output)
    errors = [json.loads(line) for line in (output / "review" / "errors.jsonl").open()]
    assert len(records) == 7 and ("manifest.jsonl", "malformed_line") in [(e["image"], e["kind"]) for e in errors]


def test_stale_data_scripts_of_a_bigger_page_are_removed(output, monkeypatch):
    monkeypatch.setattr("altvoice.review.CHUNK", 2)
    review.run([str(output)])
    assert len(list((output / "review" / "data").glob("records-*.js"))) == 4
    monkeypatch.setattr("altvoice.review.CHUNK", 5)
    review.run([str(output)])
    assert sorted(p.name for p in (output / "review" / "data").glob("records-*.js")) == ["records-00000.js",
                                                                                       "records-00001.js"]


def test_the_page_in_place_is_never_captioned():
    ignore = IgnoreOwn(type("S", (), {"exclude": None})())
    for name in ("thumbs/0123456789abcdef01234567.jpg", "index.html", "review.js", "data/records-00003.js"):
        assert ignore(f"review/{name}")
    assert not ignore("review/thumbs/holiday.jpg") and not ignore("photos/review/thumbs/0123456789abcdef01234567.jpg")


def test_page_records_name_files_by_their_bytes_and_version():
    line = {"image": "bad\\xff.jpg", "image_raw": "bad%FF.jpg", "status": "written"}
    record = {"alt_text": "A dog.", "audio": to_wire("bad\udcff.jpg.wav"), "source": {"size": 3, "mtime_ns": 1}}
    shown = page_record(line, record, True, [])
    assert shown["audio"] == "../bad%FF.jpg.wav" and shown["image_raw"] == "bad%FF.jpg"
    assert shown["thumb"] != page_record(line, {**record, "source": {"size": 3, "mtime_ns": 2}}, True, [])["thumb"]
    assert thumb_name("a.jpg", {"size": 1, "sha256": "x"}) != thumb_name("a.jpg", {"size": 1, "sha256": "y"})
    hostile = {"alt_text": 5, "audio": "../../etc/passwd", "source": "x", "caption": ["a"], "confidence": "high"}
    assert page_record({"image": "a.jpg", "status": "written"}, hostile, True, []) == {
        "image": "a.jpg", "status": "written", "alt_text": ""}
