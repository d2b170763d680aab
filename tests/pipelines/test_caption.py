"""End-to-end caption runs: folders and zip archives with good and bad files, checked file by file."""
import json
import os
import struct
import zipfile

import grpc
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_pipeline

from altvoice.outputs import remove_leftovers
from pipelines.caption import Settings, build_pipeline, check_inputs
from pipelines.options import CaptionOptions, UsageError
from testdata import bad_images, encode, good_images, scene_image


def caption(input_url: str, output, model, *extra) -> dict:
    argv = ["--input", input_url, "--model", str(model), *extra]
    argv += [] if "--tts" in extra else ["--tts", "espeak"]
    if output is not None:
        argv += ["--output", str(output)]
    opts = PipelineOptions(argv).view_as(CaptionOptions)
    check_inputs(opts)
    pipeline = test_pipeline.TestPipeline(options=PipelineOptions(argv))
    settings = build_pipeline(pipeline, opts)
    pipeline.run().wait_until_finish()
    root = settings.output_root
    manifest = [json.loads(line) for line in open(os.path.join(root, "manifest.jsonl"))]
    errors = [json.loads(line) for line in open(os.path.join(root, "errors.jsonl"))]
    return {"manifest": {m["image"]: m for m in manifest}, "errors": errors, "settings": settings}


def wav_info(data: bytes) -> tuple[int, float]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    rate, byte_rate = struct.unpack("<II", data[24:32])
    return rate, (len(data) - 44) / byte_rate


@pytest.fixture()
def album(tmp_path):
    """A nested folder of good images, bad files and a non-image, with one image in a sub-folder."""
    folder = tmp_path / "album"
    (folder / "sub").mkdir(parents=True)
    files = {**good_images(), **bad_images()}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "sub" / "nested.png").write_bytes(encode(scene_image((10, 200, 10)), "PNG"))
    return folder


def check_outputs(out, images, settings):
    for relpath in images:
        record = json.loads((out / f"{relpath}.json").read_text())
        assert record["image"] == relpath and record["caption"]
        assert record["alt_text"][0].isupper() and record["alt_text"].endswith(".")
        assert len(record["alt_text"]) <= 125 and isinstance(record["score"], float)
        assert record["model_id"] == settings.model_id and record["voice"] == settings.voice_id
        assert record["audio"] == os.path.basename(relpath) + ".wav"
        rate, seconds = wav_info((out / f"{relpath}.wav").read_bytes())
        assert rate > 8000 and seconds > 0.2
    assert not list(out.rglob("*.partial"))


def test_folder_end_to_end_with_bad_files(album, tmp_path, tiny_model):
    out = tmp_path / "out"
    result = caption(str(album), out, tiny_model)
    good = sorted([*good_images(), "sub/nested.png"])
    check_outputs(out, good, result["settings"])
    assert {name: m["status"] for name, m in result["manifest"].items()} == {
        **{name: "written" for name in good}, **{name: "failed" for name in bad_images()}}
    kinds = {e["image"]: (e["stage"], e["kind"]) for e in result["errors"]}
    assert kinds == {"empty.jpg": ("decode", "empty_file"), "truncated.jpg": ("decode", "corrupt_image"),
                     "notes.jpg": ("decode", "not_an_image")}
    for bad in bad_images():
        assert not (out / f"{bad}.json").exists()


def test_zip_archive_members_stay_inside_the_output_root(tmp_path, tiny_model):
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a/red.jpg", encode(scene_image((220, 30, 30)), "JPEG"))
        z.writestr("../../escape.jpg", encode(scene_image((30, 30, 220)), "JPEG"))
        z.writestr("/abs/evil.png", encode(scene_image((30, 30, 220)), "PNG"))
        z.writestr("empty.jpg", b"")
    out = tmp_path / "deep" / "out"
    result = caption(str(archive), out, tiny_model)
    check_outputs(out, ["a/red.jpg"], result["settings"])
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == sorted(["photos.zip", "deep/out/a/red.jpg.json", "deep/out/a/red.jpg.wav",
                              "deep/out/manifest.jsonl", "deep/out/errors.jsonl"])
    kinds = sorted((e["kind"], e["image"]) for e in result["errors"])
    assert kinds == [("empty_file", "empty.jpg"), ("unsafe_path", "../../escape.jpg"),
                     ("unsafe_path", "/abs/evil.png")]


def test_second_run_skips_up_to_date_images_and_force_redoes_them(album, tmp_path, tiny_model):
    out = tmp_path / "out"
    caption(str(album), out, tiny_model)
    first = (out / "red_1.jpg.json").stat().st_mtime_ns
    again = caption(str(album), out, tiny_model)
    assert {m["status"] for name, m in again["manifest"].items() if name not in bad_images()} == {"up_to_date"}
    assert (out / "red_1.jpg.json").stat().st_mtime_ns == first
    forced = caption(str(album), out, tiny_model, "--force")
    assert forced["manifest"]["red_1.jpg"]["status"] == "written"
    assert (out / "red_1.jpg.json").stat().st_mtime_ns > first


def test_a_new_voice_redoes_the_audio(album, tmp_path, tiny_model):
    out = tmp_path / "out"
    caption(str(album), out, tiny_model)
    slower = caption(str(album), out, tiny_model, "--tts-option", "speed=120")
    assert slower["manifest"]["red_1.jpg"]["status"] == "written"
    assert "120" in json.loads((out / "red_1.jpg.json").read_text())["voice"]


def test_failed_speech_keeps_the_caption_and_is_retried(album, tmp_path, tiny_model, tts_server):
    out = tmp_path / "out"
    google = ["--tts", "google", "--audio-format", "mp3", "--tts-option", f"endpoint={tts_server.endpoint}",
              "--tts-option", "insecure=true"]
    tts_server.fail_next(*[grpc.StatusCode.INVALID_ARGUMENT] * 100)
    broken = caption(str(album), out, tiny_model, *google)
    record = json.loads((out / "red_1.jpg.json").read_text())
    assert record["caption"] and record["audio"] is None and not (out / "red_1.jpg.mp3").exists()
    assert any(e["stage"] == "speech" and e["image"] == "red_1.jpg" for e in broken["errors"])
    assert broken["manifest"]["red_1.jpg"]["status"] == "partial"
    tts_server.failures.clear()
    fixed = caption(str(album), out, tiny_model, *google)
    assert fixed["manifest"]["red_1.jpg"]["status"] == "written"
    assert json.loads((out / "red_1.jpg.json").read_text())["audio"] == "red_1.jpg.mp3"
    assert (out / "red_1.jpg.mp3").read_bytes()


def test_in_place_writes_beside_the_originals_and_ignores_its_own_outputs(album, tiny_model):
    first = caption(str(album), None, tiny_model, "--in-place", "--embed-metadata")
    assert (album / "red_1.jpg.json").exists() and (album / "red_1.jpg.wav").exists()
    assert (album / "red_1.alt.jpg").exists()
    again = caption(str(album), None, tiny_model, "--in-place", "--embed-metadata")
    assert not any(name.endswith((".json", ".wav", ".jsonl")) or ".alt." in name for name in again["manifest"])
    assert first["manifest"].keys() == again["manifest"].keys()


def test_usage_errors(tmp_path, tiny_model):
    with pytest.raises(UsageError, match="--output"):
        check_inputs(PipelineOptions(["--input", str(tmp_path)]).view_as(CaptionOptions))
    with pytest.raises(UsageError, match="archive"):
        check_inputs(PipelineOptions(["--input", "x.zip", "--in-place"]).view_as(CaptionOptions))
    with pytest.raises(UsageError, match="no such file or folder"):
        check_inputs(PipelineOptions(["--input", str(tmp_path / "nosuch"), "--output", "o"]).view_as(CaptionOptions))
    with pytest.raises(UsageError, match="no exported captioner"):
        Settings(PipelineOptions(["--input", str(tmp_path), "--output", str(tmp_path), "--model", str(tmp_path)]
                                 ).view_as(CaptionOptions))


def test_only_the_jobs_own_leftovers_are_removed(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / ".altvoice-tmp-0123456789ab").write_text("{")
    (tmp_path / "beam-temp-manifest-0123456789abcdef0123456789abcdef").mkdir()
    kept = {"a/x.jpg.json": "{}", "a/thesis.docx.partial": "mine", "a/.x.jpg.json.123.partial": "mine too",
            "beam-temp-notes/keep.txt": "mine", "a/.altvoice-tmp-xyz": "not the marker's form"}
    for name, text in kept.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    assert remove_leftovers(str(tmp_path)) == 2
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == sorted(kept)


def test_gs_input_and_output_on_a_gcs_emulator(gcs, tiny_model):
    import fsspec

    fs = fsspec.filesystem("gs")
    images = {"album/red.jpg": encode(scene_image((220, 30, 30)), "JPEG"),
              "album/sub/blue.png": encode(scene_image((30, 30, 220)), "PNG"), "album/bad.jpg": b"nope"}
    for name, data in images.items():
        fs.pipe_file(f"{gcs[5:]}/{name}", data)
    argv = ["--input", f"{gcs}/album", "--output", f"{gcs}/described", "--model", str(tiny_model), "--tts", "espeak"]
    opts = PipelineOptions(argv).view_as(CaptionOptions)
    pipeline = test_pipeline.TestPipeline(options=PipelineOptions(argv))
    build_pipeline(pipeline, opts)
    pipeline.run().wait_until_finish()
    for relpath in ("red.jpg", "sub/blue.png"):
        record = json.loads(fs.cat_file(f"{gcs[5:]}/described/{relpath}.json"))
        assert record["caption"] and record["audio"] == os.path.basename(relpath) + ".wav"
        assert wav_info(fs.cat_file(f"{gcs[5:]}/described/{relpath}.wav"))[1] > 0.2
    errors = [json.loads(line) for line in fs.cat_file(f"{gcs[5:]}/described/errors.jsonl").splitlines()]
    assert [(e["image"], e["kind"]) for e in errors] == [("bad.jpg", "not_an_image")]
    manifest = fs.cat_file(f"{gcs[5:]}/described/manifest.jsonl").decode().splitlines()
    assert len(manifest) == 3


def test_a_killed_run_started_again_ends_complete(tmp_path, tiny_model):
    import signal
    import subprocess
    import sys
    import time

    album = tmp_path / "many"
    album.mkdir()
    for i in range(60):
        (album / f"{i:02d}.png").write_bytes(encode(scene_image((i * 4, 250 - i * 4, 90)), "PNG"))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "altvoice.cli", "caption", "--input", str(album), "--output", str(out),
               "--model", str(tiny_model), "--tts", "espeak", "--batch-size", "2"]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.rglob("*.json"))) < 3:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    done_before = len(list(out.rglob("*.png.json")))
    assert 0 < done_before < 60, "the run should have been killed part-way"
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    statuses = [m["status"] for m in manifest]
    assert len(manifest) == 60 and set(statuses) <= {"written", "up_to_date"}
    assert statuses.count("up_to_date") >= done_before - 2  # finished before the kill: not redone
    for i in range(60):
        record = json.loads((out / f"{i:02d}.png.json").read_text())
        assert wav_info((out / record["audio"]).read_bytes())[1] > 0.2
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or p.name.endswith(".partial")]


def test_grounded_records_carry_evidence_confidence_and_the_review_flag(album, tmp_path, grounded_model):
    from model.grounding import PATHS

    out = tmp_path / "grounded"
    result = caption(str(album), out, grounded_model, "--tts", "none")
    assert {m["status"] for m in result["manifest"].values() if m["image"] in good_images()} == {"written"}
    for name in good_images():
        record = json.loads((out / f"{name}.json").read_text())
        assert record["grounding"] in PATHS and 0 <= record["confidence"] <= 1
        assert record["needs_review"] == (record["confidence"] < 0.5) and isinstance(record["objects"], list)
        for found in record["objects"]:
            assert set(found) == {"word", "class", "probability"} and 0.05 <= found["probability"] <= 1
        assert result["manifest"][name]["needs_review"] == record["needs_review"]
    off = caption(str(album), tmp_path / "off", grounded_model, "--tts", "none", "--grounding", "off")
    record = json.loads((tmp_path / "off" / "red_1.jpg.json").read_text())
    assert "objects" not in record and "needs_review" not in record
    assert off["settings"].model_id == result["settings"].model_id + ":grounding=off"


def test_min_confidence_writes_only_confident_captions(album, tmp_path, grounded_model):
    out = tmp_path / "strict"
    result = caption(str(album), out, grounded_model, "--tts", "none", "--min-confidence", "1")
    for name in good_images():
        record = json.loads((out / f"{name}.json").read_text())
        assert record["grounding"] == "fallback" and record["needs_review"] is True
        assert record["alt_text"].startswith("A photo")
    assert result["settings"].model_id.endswith(":min_confidence=1.0")
    with pytest.raises(UsageError, match="needs grounded captions"):
        caption(str(album), tmp_path / "o", grounded_model, "--min-confidence", "0.5", "--grounding", "off")
    from pipelines.caption import manifest_counts

    assert manifest_counts(str(out))["needs_review"] == len(good_images()) + 1  # and sub/nested.png


def test_a_missing_or_damaged_classifier_stops_the_run_before_any_work(album, tmp_path, grounded_model):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(grounded_model, broken)
    (broken / "classifier.tflite").write_bytes(b"not a model")
    with pytest.raises(UsageError, match="grounding files"):
        caption(str(album), tmp_path / "o1", broken)
    (broken / "classifier.tflite").unlink()
    with pytest.raises(UsageError, match="grounding files"):
        caption(str(album), tmp_path / "o2", broken)
    shutil.copy(grounded_model / "classifier.tflite", broken / "classifier.tflite")
    (broken / "living_words.tsv").unlink()
    with pytest.raises(UsageError, match="grounding files"):
        caption(str(album), tmp_path / "o2", broken)
    shutil.copy(grounded_model / "living_words.tsv", broken / "living_words.tsv")
    (broken / "word_detectors.npz").write_bytes((grounded_model / "word_detectors.npz").read_bytes()[:100])
    with pytest.raises(UsageError, match="grounding files"):
        caption(str(album), tmp_path / "o2", broken)
    shutil.copy(grounded_model / "word_detectors.npz", broken / "word_detectors.npz")
    rows = (grounded_model / "object_words.tsv").read_text().splitlines()
    (broken / "object_words.tsv").write_text("\n".join(rows[:400]) + "\n")  # cut at a line: too few classes
    with pytest.raises(UsageError, match="grounding files"):
        caption(str(album), tmp_path / "o2", broken)
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()
    caption(str(album), tmp_path / "o3", broken, "--tts", "none", "--grounding", "off")  # without it: runs
