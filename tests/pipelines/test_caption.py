"""End-to-end caption runs: folders and zip archives with good and bad files, checked file by file."""
import json
import os
import struct
import zipfile

import grpc
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_pipeline

from altvoice.flags import UsageError
from altvoice.outputs import remove_leftovers
from altvoice.pipelines.caption import Settings, build_pipeline
from altvoice.pipelines.caption_checks import check_inputs
from altvoice.pipelines.options import CaptionOptions
from testdata import bad_images, encode, good_images, scene_image, without_image_prior


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
        **{name: "written" for name in good}, **{name: "failed" for name in bad_images()},
        "notes.jpg": "not_an_image"}
    kinds = {e["image"]: (e["stage"], e["kind"]) for e in result["errors"]}
    assert kinds == {"empty.jpg": ("decode", "empty_file"), "truncated.jpg": ("decode", "corrupt_image"),
                     "notes.jpg": ("decode", "not_an_image")}
    for bad in bad_images():
        assert not (out / f"{bad}.json").exists()


def test_each_distinct_sentence_is_spoken_once_per_worker(tmp_path, tiny_model):
    from apache_beam.metrics.metric import MetricsFilter

    folder = tmp_path / "copies"
    folder.mkdir()
    for i in range(5):  # the same photo five times: one caption, spoken once
        (folder / f"copy{i}.jpg").write_bytes(encode(scene_image((200, 30, 30)), "JPEG"))
    argv = ["--input", str(folder), "--output", str(tmp_path / "out"), "--model", str(tiny_model), "--tts", "espeak"]
    pipeline = test_pipeline.TestPipeline(options=PipelineOptions(argv))
    build_pipeline(pipeline, PipelineOptions(argv).view_as(CaptionOptions))
    result = pipeline.run()
    result.wait_until_finish()
    reused = result.metrics().query(MetricsFilter().with_name("speech_reused"))["counters"]
    assert sum(c.result for c in reused) in (4, 5)  # 5 when an earlier run in this process said it already
    assert len({(tmp_path / "out" / f"copy{i}.jpg.wav").read_bytes() for i in range(5)}) == 1
    records = [json.loads((tmp_path / "out" / f"copy{i}.jpg.json").read_text()) for i in range(5)]
    assert all(r["audio"] == f"copy{i}.jpg.wav" for i, r in enumerate(records))


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
    from altvoice.pipelines import review

    assert review.run([f"{gcs}/described"])["written"] == 2  # the review page, in the bucket too
    assert fs.cat_file(f"{gcs[5:]}/described/review/index.html").startswith(b"<!DOCTYPE html>")
    assert len(fs.ls(f"{gcs[5:]}/described/review/thumbs")) == 2


KILL_SEED = int(os.environ.get("ALTVOICE_KILL_SEED", "20240611"))  # another seed: other kill moments


def _entries(folder) -> set:
    """Relative paths of every file and folder under `folder`, hidden ones included."""
    return {os.path.relpath(os.path.join(d, n), folder) for d, dirs, files in os.walk(folder) for n in dirs + files}


def _fingerprints(folder) -> dict:
    """relpath -> (sha256, size, mtime_ns) of every file under `folder`, hidden ones included."""
    import hashlib

    found = {}
    for d, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(d, name)
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            info = os.stat(path)
            found[os.path.relpath(path, folder)] = (digest, info.st_size, info.st_mtime_ns)
    return found


def _killable_album(folder, rng):
    """~60 small PNG/JPEG images (nested, odd names) and the user's other files, some named like outputs."""
    images = {}
    for i in range(56):
        where = ("", "trip/", "trip/day 2/")[i % 3]
        png = rng.random() < 0.5
        picture = scene_image((i * 4, 250 - i * 4, rng.randrange(256)), size=rng.choice((32, 48, 64)))
        images[f"{where}{i:02d}.{'png' if png else 'jpg'}"] = (
            encode(picture, "PNG") if png else encode(picture, "JPEG", quality=rng.randint(60, 95)))
    images["photo.jpg"] = encode(scene_image((200, 120, 40)), "JPEG")
    images["IMG_0001.JPG"] = encode(scene_image((40, 120, 200)), "JPEG")
    images["x.alt.jpg"] = encode(scene_image((90, 90, 90)), "JPEG")  # the user's, not a tagged copy
    images["trip/café.png"] = encode(scene_image((10, 200, 150)), "PNG")
    not_images = {  # listed and read: each fails to decode, and must stay as it is
        "photo.jpg.wav.bak": b"RIFF\x00\x00\x00\x00WAVE an old take of the caption",
        "thesis.docx.partial": b"PK\x03\x04 half a download",
        "beam-temp-notes/keep.txt": b"my notes, in a folder named like Beam's staging",
    }
    ignored = {  # named like the job's own outputs or leftovers, or hidden: never read, never touched
        "notes.json": b'{"todo": ["print the photos"]}',
        "orphan.jpg.json": b'{"image": "orphan.jpg", "comment": "a record-like file of mine"}',
        "song.wav": b"RIFF\x24\x00\x00\x00WAVEfmt not really",
        "trip/manifest.jsonl": b'{"my": "own manifest"}\n',
        ".hidden/x.jpg": encode(scene_image((250, 0, 0)), "JPEG"),
        ".altvoice-tmp-notes": b"hidden, and not the job's marker",
        "trip/day 2/.DS_Store": b"\x00\x00\x00\x01Bud1",
    }
    for name, data in {**images, **not_images, **ignored}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return sorted(images), sorted(not_images)


def _copy_name(relpath: str) -> str:
    stem, ext = os.path.splitext(relpath)
    return f"{stem}.alt{ext}"


def _record(folder, relpath: str):
    """The image's record as it lies: a dict, None when there is none, "unreadable" when it does not parse."""
    try:
        return json.loads((folder / f"{relpath}.json").read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return "unreadable"


def _complete(folder, relpath: str) -> bool:
    """What a rerun counts as done: a final record (not an intent record) and both files it names."""
    record, where = _record(folder, relpath), folder / os.path.dirname(relpath)
    return (isinstance(record, dict) and "model_id" in record and bool(record.get("audio"))
            and bool(record.get("tagged_copy")) and (where / record["audio"]).exists()
            and (where / record["tagged_copy"]).exists())


def test_a_killed_run_started_again_ends_complete(tmp_path, tiny_model):
    """kill -9 at three seeded random moments, a restart after each, then a run to the end: every image
    complete, nothing left behind, and not one byte of the user's files (originals included) changed."""
    import random
    import signal
    import subprocess
    import sys
    import time
    import wave

    import numpy as np
    from PIL import Image

    rng = random.Random(KILL_SEED)
    album = tmp_path / "album"
    images, not_images = _killable_album(album, rng)
    before = _fingerprints(album)
    entries_before = _entries(album)
    argv = ["--input", str(album), "--in-place", "--embed-metadata", "--model", str(tiny_model), "--tts", "espeak",
            "--batch-size", "2"]
    command = [sys.executable, "-m", "altvoice.cli", "caption", *argv]
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}  # the runs' log files: kept out of /tmp
    folders = [album, album / "trip", album / "trip" / "day 2"]  # where new files appear: cheap to poll

    def names():
        return {f"{folder}/{name}" for folder in folders for name in os.listdir(folder)}

    kills = []  # what each kill left, for the messages
    for attempt in range(3):
        at_start, log = names(), tmp_path / f"run{attempt}.log"
        target, extra = rng.randint(1, 45), rng.uniform(0, 0.3)  # this many new names, then a little longer
        started = time.monotonic()
        with open(log, "wb") as stderr:
            run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=env, start_new_session=True)
        try:
            while run.poll() is None and len(names() - at_start) < target and time.monotonic() < started + 120:
                time.sleep(0.02)
            time.sleep(extra)
            alive = run.poll() is None
            if alive:
                os.killpg(run.pid, signal.SIGKILL)  # the job and anything it started (espeak-ng)
        finally:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        left = _entries(album) - entries_before
        kills.append({"after_new": target, "extra_s": round(extra, 3), "at_s": round(time.monotonic() - started, 1),
                      "complete": sum(_complete(album, i) for i in images),
                      "temp_files": sum(".altvoice-tmp-" in os.path.basename(p) for p in left),
                      "staging": sum(os.path.basename(p).startswith("beam-temp-") for p in left),
                      "intent_records": sum(isinstance(_record(album, i), dict) and "model_id" not in _record(album, i)
                                            for i in images),
                      "unreadable_records": sum(_record(album, i) == "unreadable" for i in images)})
        assert alive and run.returncode == -signal.SIGKILL, (
            f"seed {KILL_SEED}: run {attempt} ended (exit {run.returncode}) before its kill: {kills}\n"
            f"{log.read_text(errors='replace')[-3000:]}")
    done_before = {i for i in images if _complete(album, i)}  # the last run must skip these, and only these

    started = time.monotonic()
    final = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, timeout=300)
    last_run_s = round(time.monotonic() - started, 1)
    context = f"seed {KILL_SEED}, kills {kills}"
    # 0, or 3 ("some files failed"): the user's non-image files fail to decode; the manifest below says
    # exactly which files failed, and every image must be written or up to date
    assert final.returncode == 0, f"{context}:\n{final.stderr.decode(errors='replace')[-3000:]}"

    manifest = [json.loads(line) for line in (album / "manifest.jsonl").read_text().splitlines()]
    statuses = {m["image"]: m["status"] for m in manifest}
    assert len(statuses) == len(manifest), context
    assert statuses == {**{i: "up_to_date" if i in done_before else "written" for i in images},
                        **{n: "not_an_image" for n in not_images}}, context  # what a kill finished is not redone
    errors = [json.loads(line) for line in (album / "errors.jsonl").read_text().splitlines()]
    assert sorted((e["image"], e["kind"]) for e in errors) == [(n, "not_an_image") for n in not_images], context

    settings = Settings(PipelineOptions(argv).view_as(CaptionOptions))
    for relpath in images:
        record = json.loads((album / f"{relpath}.json").read_text())
        name, where = os.path.basename(relpath), album / os.path.dirname(relpath)
        assert record["image"] == relpath and record["caption"] and record["alt_text"], (relpath, context)
        assert record["model_id"] == settings.model_id and record["voice"] == settings.voice_id, (relpath, context)
        assert record["audio"] == f"{name}.wav" and record["tagged_copy"] == os.path.basename(_copy_name(relpath))
        assert record["source"]["size"] == (album / relpath).stat().st_size, (relpath, context)
        with wave.open(str(where / record["audio"])) as audio:
            frames = audio.getnframes()
            assert frames > 0 and audio.getframerate() > 8000, (relpath, context)
            assert len(audio.readframes(frames)) == frames * audio.getsampwidth() * audio.getnchannels()
        copy = album / _copy_name(relpath)
        with Image.open(copy) as tagged, Image.open(album / relpath) as original:
            assert tagged.format == original.format, (relpath, context)
            assert np.array_equal(np.asarray(tagged), np.asarray(original)), (relpath, context)  # pixels untouched
        assert b"AltTextAccessibility" in copy.read_bytes(), (relpath, context)

    outputs = {f"{i}{suffix}" for i in images for suffix in (".json", ".wav")} | {_copy_name(i) for i in images}
    left = _entries(album) - entries_before - outputs - {"manifest.jsonl", "errors.jsonl"}
    assert not [p for p in left if ".altvoice-tmp-" in p], f"temp files left: {sorted(left)}; {context}"
    assert not [p for p in left if p.startswith("beam-temp-")], f"Beam staging left: {sorted(left)}; {context}"
    assert not left, f"files the job should not have left: {sorted(left)}; {context}"
    after = _fingerprints(album)
    changed = {name: (old, after.get(name)) for name, old in before.items() if after.get(name) != old}
    assert not changed, f"the user's files changed (sha256, size, mtime_ns before -> after): {changed}; {context}"
    print(f"seed {KILL_SEED}: kills {kills}; up to date before the last run: {len(done_before)}/{len(images)}; "
          f"last run {last_run_s} s")


def test_grounded_records_carry_evidence_confidence_and_the_review_flag(album, tmp_path, grounded_model):
    from altvoice.model.grounding import PATHS

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
    from altvoice.pipelines.caption import manifest_counts

    assert manifest_counts(str(out))["needs_review"] == len(good_images()) + 1  # and sub/nested.png


def test_specificity_reranks_the_job_captions_and_needs_an_image_prior(album, tmp_path, grounded_model):
    from altvoice.model.export import load_captioner

    out = tmp_path / "specific"
    result = caption(str(album), out, grounded_model, "--tts", "none", "--grounding", "off", "--specificity", "3")
    assert result["settings"].model_id.endswith(":grounding=off:specificity=3.0")
    captioner = load_captioner(str(grounded_model), grounding=False)
    names = sorted(good_images())
    photos = [(album / n).read_bytes() for n in names]
    expected = captioner.caption_bytes(photos, specificity=3.0)
    assert expected != captioner.caption_bytes(photos)  # the reranking changes some of them
    assert [json.loads((out / f"{n}.json").read_text())["caption"] for n in names] == [c for c, _ in expected]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("value, extra, refused", [
    ("-1", [], "must be a number of at least 0, got -1.0"), ("nan", [], "must be a number of at least 0, got nan"),
    ("inf", [], "must be a number of at least 0, got inf"),
    ("0.3", ["--beam-width", "1"], "needs a beam width above 1"),
    ("0.3", ["--no-prior"], "has no image prior")])
def test_a_specificity_that_could_not_take_effect_is_refused_at_launch(tmp_path, tiny_model, value, extra, refused):
    model = without_image_prior(tiny_model, tmp_path / "m") if "--no-prior" in extra else tiny_model
    argv = ["--input", str(tmp_path), "--output", str(tmp_path / "o"), "--model", str(model), "--tts", "none",
            "--specificity", value, *[e for e in extra if e != "--no-prior"]]
    with pytest.raises(UsageError, match=refused):
        Settings(PipelineOptions(argv).view_as(CaptionOptions))


def test_the_model_id_names_specificity_and_beam_width_only_where_they_change_captions(tmp_path, tiny_model):
    def model_id(*extra):
        argv = ["--input", str(tmp_path), "--output", str(tmp_path / "o"), "--model", str(tiny_model), "--tts", "none"]
        return Settings(PipelineOptions([*argv, *extra]).view_as(CaptionOptions)).model_id

    plain = model_id()
    assert model_id("--specificity", "0") == model_id("--beam-width", "3", "--specificity", "0") == plain
    assert model_id("--specificity", "0.5") == plain + ":specificity=0.5"
    assert model_id("--beam-width", "1", "--specificity", "0") == plain + ":beam_width=1"


def test_a_missing_or_damaged_classifier_stops_the_run_before_any_work(album, tmp_path, grounded_model):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(grounded_model, broken)
    (broken / "classifier.tflite").write_bytes(b"not a model")
    with pytest.raises(UsageError, match="grounding files"):
        caption(str(album), tmp_path / "o1", broken)
    (broken / "classifier.tflite").write_bytes((grounded_model / "classifier.tflite").read_bytes()[:200_000])
    with pytest.raises(UsageError, match="grounding files.*sha256"):  # TFLite itself could crash on it
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
