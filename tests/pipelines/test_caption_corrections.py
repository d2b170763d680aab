"""`altvoice caption --corrections`: reviewers' texts and decisions written, spoken, embedded and kept."""
import json
import shutil

import pytest

from altvoice import cli
from altvoice.corrections import parse_line, read_corrections
from testdata import HOSTILE_NAMES, review_page_data

CAT = HOSTILE_NAMES[3]


def run(out, model, *extra):
    photos = out.parent.parent / "photos"  # see `output`
    return cli.main(["caption", "--input", str(photos), "--output", str(out), "--model", str(model), "--tts",
                     "espeak", *extra])


def record(out, name):
    return json.loads((out / f"{name}.json").read_text())


def lines(path):
    return [json.loads(line) for line in path.open()]


@pytest.fixture()
def output(captioned, tmp_path):
    """A copy of the caption run's output beside its photos (the records name that input)."""
    out = tmp_path / "work" / "out"
    shutil.copytree(captioned, out)
    (tmp_path / "photos").symlink_to(captioned.parent / "photos")
    return out


def write_corrections(path, *entries, raw=()):
    with path.open("w") as f:
        for entry in entries:
            f.write(json.dumps({"version": 1, "time": "2026-11-26T20:00:00Z", **entry}) + "\n")
        for text in raw:
            f.write(text + "\n")
    return path


def test_corrections_are_written_spoken_embedded_and_bad_lines_reported_one_by_one(output, grounded_model, tmp_path):
    before = {name: record(output, name) for name in ("a.jpg", "sub/b.png", CAT)}
    old_audio = (output / "sub" / "b.png.wav").read_bytes()
    fixes = write_corrections(
        tmp_path / "corrections.jsonl",
        {"image": "sub/b.png", "alt_text": "A green door in a white wall.", "decision": "approved", "reviewer": "Ana",
         "note": "the model saw grass"},
        {"image": "a.jpg", "decision": "rejected"},
        {"image": CAT, "decision": "approved"},
        {"image": "nosuch.jpg", "alt_text": "Nothing."},
        {"image": "a.jpg", "alt_text": "Half a line.", "decision": "maybe"},
        raw=["{not json", json.dumps({"version": 2, "image": "a.jpg", "alt_text": "From the future."}),
             json.dumps({"version": 1, "image": "a.jpg"})])
    assert run(output, grounded_model, "--corrections", str(fixes), "--embed-metadata") == 3  # broken.jpg still fails

    door = record(output, "sub/b.png")
    assert door["alt_text"] == "A green door in a white wall." and door["alt_text_source"] == "human"
    assert door["caption"] == before["sub/b.png"]["caption"] and door["needs_review"] is False
    assert door["correction"] == {"source": "human", "alt_text": "A green door in a white wall.",
                                  "decision": "approved", "note": "the model saw grass", "reviewer": "Ana",
                                  "time": "2026-11-26T20:00:00Z"}
    assert (output / "sub" / "b.png.wav").read_bytes() != old_audio
    assert b"A green door in a white wall." in (output / "sub" / "b.png").read_bytes()  # the XMP-tagged copy

    rejected = record(output, "a.jpg")
    assert rejected["alt_text"] == "" and rejected["audio"] is None and rejected["needs_review"] is True
    assert not (output / "a.jpg.wav").exists() and rejected["correction"]["decision"] == "rejected"
    approved = record(output, CAT)
    assert approved["alt_text"] == before[CAT]["alt_text"] and approved["correction"]["decision"] == "approved"

    errors = [e for e in lines(output / "errors.jsonl") if e["stage"] == "corrections"]
    assert sorted((e["image"], e["kind"]) for e in errors) == [
        ("corrections line 5", "bad_correction"), ("corrections line 6", "bad_correction"),
        ("corrections line 7", "bad_correction"), ("corrections line 8", "bad_correction"),
        ("nosuch.jpg", "unknown_image")]
    reasons = " ".join(e["reason"] for e in errors)
    assert "decision must be one of" in reasons and "not JSON" in reasons and "newer than this altvoice" in reasons
    manifest = {m["image"]: m for m in lines(output / "manifest.jsonl")}
    assert manifest["sub/b.png"]["alt_text"] == "A green door in a white wall."


def test_a_correction_is_kept_by_later_runs_force_and_a_new_model(output, grounded_model, tiny_model, tmp_path):
    fixes = write_corrections(tmp_path / "c.jsonl", {"image": "sub/b.png", "alt_text": "A green door."},
                              {"image": "a.jpg", "decision": "rejected"})
    run(output, grounded_model, "--corrections", str(fixes))
    run(output, grounded_model, "--corrections", str(fixes))  # the same file again (a scheduled run)
    statuses = {m["image"]: m["status"] for m in lines(output / "manifest.jsonl")}
    assert statuses["sub/b.png"] == statuses["a.jpg"] == "up_to_date"
    assert run(output, grounded_model) == 3
    statuses = {m["image"]: m["status"] for m in lines(output / "manifest.jsonl")}
    assert statuses["sub/b.png"] == statuses["a.jpg"] == "up_to_date"
    run(output, grounded_model, "--force")
    assert record(output, "sub/b.png")["alt_text"] == "A green door."
    grounded_id = record(output, "sub/b.png")["model_id"]
    run(output, tiny_model)  # another model: every record is redone, the person's text stays
    again = record(output, "sub/b.png")
    assert again["model_id"] != grounded_id and "grounding" not in again
    assert again["alt_text"] == "A green door." and again["alt_text_source"] == "human"


def test_the_review_page_shows_the_persons_text_and_the_models(output, grounded_model, tmp_path):
    from altvoice.pipelines import review

    model_text = record(output, "sub/b.png")["alt_text"]
    fixes = write_corrections(tmp_path / "c.jsonl", {"image": "sub/b.png", "alt_text": "A green door.",
                                                     "decision": "approved"})
    run(output, grounded_model, "--corrections", str(fixes), "--review")
    shown = {r["image"]: r for r in review_page_data(output)[1]}
    assert shown["sub/b.png"]["alt_text"] == "A green door." and shown["sub/b.png"]["source"] == "human"
    assert shown["sub/b.png"]["model_alt_text"] == model_text and shown["sub/b.png"]["decision"] == "approved"
    counts = review.page_counts(output)  # only the corrected image was redone
    assert counts["written"] == 1 and counts["up_to_date"] == 5


def test_a_run_killed_between_intent_and_record_keeps_the_correction(output, grounded_model, tmp_path):
    fixes = write_corrections(tmp_path / "c.jsonl", {"image": "sub/b.png", "alt_text": "A green door."})
    run(output, grounded_model, "--corrections", str(fixes))
    done = record(output, "sub/b.png")
    intent = {"image": "sub/b.png", "claims": done["claims"], "correction": {**done["correction"], "pending": True}}
    (output / "sub" / "b.png.json").write_text(json.dumps(intent))  # as a kill after the intent record leaves it
    run(output, grounded_model, "--embed-metadata")
    assert record(output, "sub/b.png")["alt_text"] == "A green door."


def test_lines_are_checked_before_anything_is_applied():
    with pytest.raises(ValueError, match="leaves the archive root"):
        parse_line(json.dumps({"version": 1, "image": "../other/out/a.jpg", "alt_text": "A dog."}), 1)
    with pytest.raises(ValueError, match="'image_raw' must be text"):
        parse_line(json.dumps({"version": 1, "image": "a.jpg", "image_raw": 5, "alt_text": "A dog."}), 1)
    with pytest.raises(ValueError, match="neither an alt_text nor a decision"):
        parse_line(json.dumps({"version": 1, "image": "a.jpg", "note": "hm"}), 1)
    with pytest.raises(ValueError, match="'alt_text' must be text"):
        parse_line(json.dumps({"version": 1, "image": "a.jpg", "alt_text": 3}), 1)
    with pytest.raises(ValueError, match="empty alt_text"):
        parse_line(json.dumps({"version": 1, "image": "a.jpg", "alt_text": "  "}), 1)
    fix = parse_line(json.dumps({"version": 1, "image": "bad\\xff.jpg", "image_raw": "bad%FF.jpg",
                                 "alt_text": " A  dog.\n"}), 4)
    assert fix.alt_text == "A dog." and fix.image == "bad\uf8ffFF.jpg" and fix.line == 4


def test_a_later_line_for_the_same_image_wins(tmp_path):
    path = write_corrections(tmp_path / "c.jsonl", {"image": "a.jpg", "alt_text": "One."},
                             {"image": "a.jpg", "alt_text": "Two."})
    found, errors = read_corrections(str(path))
    assert errors == [] and found["a.jpg"].alt_text == "Two."
