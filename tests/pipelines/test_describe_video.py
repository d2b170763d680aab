"""`altvoice describe-video`: shots found where the cuts are, one cue per description, bad files one line each."""
import json

import pytest
import webvtt

from altvoice import cli, video
from altvoice.pipelines.video_outputs import cues, timestamp
from testdata import audio_of, encode_frames, make_audio_only, make_huge_frame, make_long_header, make_video

SHOTS = [((200, 30, 30), 3), ((30, 200, 30), 2.5), ((30, 30, 200), 0.5), ((220, 220, 40), 4)]
TOLERANCE = video.SAMPLE_S + 0.1  # a cut is seen at the first sample after it (frames every 0.1 s here)


def test_scenes_start_at_the_cuts_and_short_ones_join_the_scene_before(tmp_path):
    cuts = make_video(tmp_path / "v.mp4", SHOTS, tone_hz=440)
    info, found, keyframes = video.scenes(str(tmp_path / "v.mp4"))
    assert info.has_audio and info.duration == pytest.approx(10, abs=0.2)
    assert len(found) == 3  # the 0.5 s blue shot is too short to describe: it joins the green one
    assert [s.start for s in found] == pytest.approx([0, cuts[0], cuts[2]], abs=TOLERANCE)
    assert found[-1].end == pytest.approx(10, abs=0.2)
    assert all(s.start <= s.keyframe_time < s.end and keyframes[s.keyframe_time].startswith(b"\xff\xd8") for s in found)


@pytest.mark.parametrize("range_seconds", [1.0, 2.5, 3.75])
def test_a_video_scanned_in_time_ranges_has_the_scenes_of_one_scan(tmp_path, range_seconds):
    make_video(tmp_path / "v.mp4", SHOTS * 2, tone_hz=440)  # cuts inside ranges and on their edges
    whole = video.scenes(str(tmp_path / "v.mp4"), range_seconds=1000)
    ranged = video.scenes(str(tmp_path / "v.mp4"), range_seconds=range_seconds)
    assert len(video.time_ranges(whole[0].duration, range_seconds)) > 2
    assert ranged[1] == whole[1] and ranged[0] == whole[0]
    assert ranged[2] == whole[2]  # the same keyframes, sample for sample


def test_rotation_metadata_is_applied_and_a_variable_frame_rate_is_cut_where_the_shots_change(tmp_path):
    import io

    import numpy as np
    from PIL import Image

    halves = np.zeros((64, 96, 3), np.uint8)
    halves[:, :48], halves[:, 48:] = (220, 30, 30), (30, 30, 220)  # red | blue
    green = np.full((64, 96, 3), (30, 200, 30), np.uint8)
    times = np.cumsum(np.random.default_rng(0).uniform(0.02, 0.3, 40))  # 40 frames at uneven times
    encode_frames(tmp_path / "v.mp4", [(t, halves if t < 3.0 else green) for t in times], rotation=90)
    info, found, keyframes = video.scenes(str(tmp_path / "v.mp4"))
    first_green = times[times >= 3.0][0]
    assert [s.start for s in found] == pytest.approx([0, first_green], abs=video.SAMPLE_S + 0.3)
    first = Image.open(io.BytesIO(keyframes[found[0].keyframe_time])).convert("RGB")
    assert first.size == (64, 96)  # turned a quarter, counterclockwise as players show it: blue on top
    assert first.getpixel((32, 5))[2] > 180 and first.getpixel((32, 90))[0] > 180


def test_limits_refuse_a_video_before_decoding_it(tmp_path, monkeypatch):
    make_video(tmp_path / "v.mp4", SHOTS[:1])
    monkeypatch.setattr(video, "MAX_SECONDS", 2)
    with pytest.raises(video.VideoError, match="more than 2 s"):
        video.scenes(str(tmp_path / "v.mp4"))
    monkeypatch.setattr(video, "MAX_PIXELS", 1000)
    with pytest.raises(video.VideoError, match="96x64 pixels"):
        video.scenes(str(tmp_path / "v.mp4"))


def test_cues_merge_consecutive_scenes_that_say_the_same():
    class Found:
        def __init__(self, caption):
            self.caption, self.score, self.grounding = caption, -1.0, "off"

    spans = [(0, 3, 1.5), (3, 6, 4.5), (6, 10, 8), (10, 12, 11)]
    found = {0: Found("a red wall"), 1: Found("a green field"), 2: Found("a green field"), 3: Found("a red wall")}
    assert [(c["start"], c["end"], c["alt_text"]) for c in cues(spans, found)] == [
        (0, 3, "A red wall."), (3, 10, "A green field."), (10, 12, "A red wall.")]
    assert timestamp(3725.5) == "01:02:05.500"


def test_a_folder_of_videos_gets_tracks_and_every_bad_file_one_error_line(tmp_path, tiny_model):
    import av

    videos = tmp_path / "videos"
    (videos / "sub").mkdir(parents=True)
    cuts = make_video(videos / "a.mp4", SHOTS, tone_hz=440)
    make_video(videos / "sub" / "b.avi", [((20, 20, 20), 2), ((240, 240, 240), 2)], tone_hz=440, fmt="avi",
               codecs=("msmpeg4v2", "pcm_mulaw"))  # neither is carried by MP4: the copy re-encodes them
    make_video(videos / "sub" / "c.webm", [((200, 200, 30), 3)], fmt="webm", codecs=("libvpx", None))  # silent VP8
    make_video(videos / "d.mov", [((30, 200, 200), 3)], tone_hz=440, codecs=("mpeg4", "aac"))
    whole = (videos / "a.mp4").read_bytes()
    (videos / "truncated.mp4").write_bytes(whole[: len(whole) // 3])
    (videos / "zero.mp4").write_bytes(b"")
    (videos / "text.avi").write_text("not a video")
    make_audio_only(videos / "sound.mp4")
    make_long_header(videos / "ten_hours.mkv")
    make_huge_frame(videos / "huge.avi")
    (videos / "unknown_codec.mp4").write_bytes(whole.replace(b"avc1", b"zzzz"))  # no decoder for it
    (videos / "old.mp4.described.mp4").write_bytes(whole)  # an earlier run's copy, written in place
    out = videos / "described"  # inside the input: never read as input
    (out / "sub").mkdir(parents=True)
    (out / "sub" / "c.mp4").write_bytes(whole)
    status = cli.main(["describe-video", "--input", str(videos), "--output", str(out), "--model", str(tiny_model),
                       "--tts", "espeak"])
    assert status == 3
    manifest = {m["image"]: m for m in map(json.loads, (out / "manifest.jsonl").open())}
    bad = ["huge.avi", "sound.mp4", "ten_hours.mkv", "text.avi", "truncated.mp4", "unknown_codec.mp4", "zero.mp4"]
    assert {name: m["status"] for name, m in manifest.items()} == {
        "a.mp4": "written", "sub/b.avi": "written", "sub/c.webm": "written", "d.mov": "written",
        **{name: "failed" for name in bad}}
    errors = [json.loads(line) for line in (out / "errors.jsonl").open()]
    assert sorted((e["image"], e["kind"]) for e in errors) == [
        ("huge.avi", "too_large"), ("sound.mp4", "no_video_stream"), ("ten_hours.mkv", "too_long"),
        ("text.avi", "unreadable_video"), ("truncated.mp4", "unreadable_video"),
        ("unknown_codec.mp4", "unsupported_codec"), ("zero.mp4", "unreadable_video")]
    track = webvtt.read(str(out / "a.mp4.descriptions.vtt"))
    record = json.loads((out / "a.mp4.scenes.json").read_text())
    assert [s["start"] for s in record["scenes"]] == pytest.approx([0, cuts[0], cuts[2]], abs=TOLERANCE)
    assert [c.text for c in track.captions] == [c["alt_text"] for c in record["cues"]]
    assert track.captions[0].start == "00:00:00.000" and track.captions[-1].end_in_seconds == pytest.approx(10, abs=0.2)
    assert (out / "a.mp4.descriptions.vtt").read_text().startswith("WEBVTT\nKind: descriptions")
    assert record["files"] == ["a.mp4.descriptions.vtt", "a.mp4.narration.wav", "a.mp4.described.mp4"]
    assert (out / "sub" / "b.avi.narration.wav").exists()
    with av.open(str(out / "sub" / "b.avi.described.mp4")) as copy:
        assert [s.codec_context.name for s in copy.streams] == ["h264", "aac", "aac"]
        assert copy.streams.video[0].frames == 40 and copy.duration / 1e6 == pytest.approx(4, abs=0.2)
    with av.open(str(out / "sub" / "c.webm.described.mp4")) as copy:  # no sound of its own: the narration alone
        assert [s.codec_context.name for s in copy.streams] == ["h264", "aac"]
    assert len(audio_of(out / "sub" / "c.webm.described.mp4", 0)) / 16000 == pytest.approx(3, abs=0.2)
    with av.open(str(out / "d.mov.described.mp4")) as copy:
        assert [s.codec_context.name for s in copy.streams] == ["mpeg4", "aac", "aac"]  # copied as they are

    make_video(videos / "a.mp4", SHOTS[:2], tone_hz=440)  # a new version of one video: only it is redone
    again = cli.main(["describe-video", "--input", str(videos), "--output", str(out), "--model", str(tiny_model),
                      "--tts", "espeak"])
    manifest = {m["image"]: m["status"] for m in map(json.loads, (out / "manifest.jsonl").open())}
    assert again == 3 and manifest == {"a.mp4": "written", "sub/b.avi": "up_to_date", "sub/c.webm": "up_to_date",
                                       "d.mov": "up_to_date", **{name: "failed" for name in bad}}
    assert json.loads((out / "a.mp4.scenes.json").read_text())["duration"] == pytest.approx(5.5, abs=0.2)


def test_descriptions_are_placed_sped_up_within_the_limit_or_moved_never_cut():
    from altvoice.narration import GAP_S, MAX_SPEEDUP, place

    assert place([0, 3, 6], [2, 2, 2], 10) == [(0, 1.0), (3, 1.0), (6, 1.0)]
    placed = place([0, 3, 6], [2, 4, 2], 10)  # the second is 4 s long with 3 s to go: sped up, then moved on
    assert placed[1] == (3, MAX_SPEEDUP) and placed[2][0] == pytest.approx(3 + 4 / MAX_SPEEDUP + GAP_S)
    end_offset, end_speed = place([0, 8], [2, 4], 10)[1]  # at the end: faster, to end with the video
    assert end_offset == 8 and end_offset + 4 / end_speed == pytest.approx(10)


def test_the_narration_says_each_description_where_its_scene_starts(tmp_path):
    pocketsphinx = pytest.importorskip("pocketsphinx")
    pytest.importorskip("piper")
    import wave

    import numpy as np

    videos, out = tmp_path / "videos", tmp_path / "out"
    videos.mkdir()
    make_video(videos / "a.mp4", SHOTS, tone_hz=440)
    assert cli.main(["describe-video", "--input", str(videos), "--output", str(out), "--tts", "piper"]) == 0
    record = json.loads((out / "a.mp4.scenes.json").read_text())
    with wave.open(str(out / "a.mp4.narration.wav")) as audio:
        rate, pcm = audio.getframerate(), audio.readframes(audio.getnframes())
    samples = np.frombuffer(pcm, np.int16).astype(np.float32) / 32768
    assert len(samples) / rate == pytest.approx(record["duration"], abs=0.1)

    def loudness(start, end):
        part = samples[int(start * rate): int(end * rate)]
        return float(np.sqrt(np.mean(part ** 2))) if len(part) else 0.0

    for cue, following in zip(record["cues"], [*record["cues"][1:], None]):
        fit = cue["narration"]
        assert fit["start"] == pytest.approx(cue["start"]) and fit["speed"] == 1.0
        assert loudness(fit["start"], fit["end"]) > 0.02  # heard where the scene starts
        quiet_until = following["start"] if following else record["duration"]
        if quiet_until - fit["end"] > 0.3:
            assert loudness(fit["end"] + 0.1, quiet_until) < 0.002  # and silent between descriptions
    first = record["cues"][0]
    decoder = pocketsphinx.Decoder(samprate=rate, nfft=1024)
    decoder.start_utt()
    decoder.process_raw(pcm[int(first["narration"]["start"] * rate) * 2: int(first["narration"]["end"] * rate) * 2],
                        full_utt=True)
    decoder.end_utt()
    heard = decoder.hyp().hypstr.split() if decoder.hyp() else []
    content = [w for w in first["alt_text"].lower().strip(".").replace(",", "").split() if len(w) > 3]
    assert set(content) & set(heard), (content, heard)


def tone_level(samples, start, end, rate=16000, hz=440):
    import numpy as np

    part = samples[int(start * rate): int(end * rate)]
    return float(np.abs(np.fft.rfft(part * np.hanning(len(part))))[round(hz * len(part) / rate)] / len(part))


def test_the_described_copy_keeps_the_streams_and_ducks_the_sound_under_the_narration(tmp_path):
    import av

    videos, out = tmp_path / "videos", tmp_path / "out"
    videos.mkdir()
    make_video(videos / "a.mp4", [((200, 30, 30), 4), ((30, 30, 200), 6)], tone_hz=440)
    (out).mkdir()
    (out / "a.mp4.narration.wav").write_bytes(b"a user's own file")
    assert cli.main(["describe-video", "--input", str(videos), "--output", str(out), "--tts", "espeak"]) == 3
    assert (out / "a.mp4.narration.wav").read_bytes() == b"a user's own file"  # never replaced
    errors = [json.loads(line) for line in (out / "errors.jsonl").open()]
    assert [(e["kind"], e["stage"]) for e in errors] == [("output_exists", "write")]
    record = json.loads((out / "a.mp4.scenes.json").read_text())
    assert record["files"] == ["a.mp4.descriptions.vtt", "a.mp4.described.mp4"]
    with av.open(str(videos / "a.mp4")) as original, av.open(str(out / "a.mp4.described.mp4")) as copy:
        assert [s.codec_context.name for s in copy.streams] == ["h264", "aac", "aac"]
        assert copy.streams.audio[1].metadata.get("name", copy.streams.audio[1].metadata.get("title")) == \
            "Audio description"
        assert copy.streams.audio[1].disposition & av.stream.Disposition.visual_impaired  # players name it so
        count = lambda media: sum(1 for p in media.demux(media.streams.video[0]) if p.size)  # noqa: E731
        assert count(copy) == count(original)  # the video copied, frame for frame
    described = audio_of(out / "a.mp4.described.mp4", 1)
    assert len(described) / 16000 == pytest.approx(10, abs=0.2)
    first = record["cues"][0]["narration"]
    speaking = (first["start"] + 0.3, first["end"] - 0.3)
    after = (first["end"] + 0.5, record["cues"][1]["start"] - 0.1) if len(record["cues"]) > 1 else (8.5, 9.8)
    original = audio_of(videos / "a.mp4", 0)
    assert tone_level(described, *after) == pytest.approx(tone_level(original, *after), rel=0.25)  # untouched
    assert tone_level(described, *speaking) < 0.4 * tone_level(original, *speaking)  # ducked under the voice


def test_a_zip_of_videos_in_a_bucket_is_described_into_the_bucket(tmp_path, gcs, tiny_model):
    import io
    import zipfile

    import fsspec

    make_video(tmp_path / "a.mp4", SHOTS[:2], tone_hz=440)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as members:
        members.write(tmp_path / "a.mp4", "clips/a.mp4")
        members.writestr("clips/notes.txt", "not a video")
    fs = fsspec.filesystem("gs")
    fs.pipe_file(f"{gcs[5:]}/videos.zip", archive.getvalue())
    argv = ["describe-video", "--input", f"{gcs}/videos.zip", "--output", f"{gcs}/described-videos",
            "--model", str(tiny_model), "--tts", "espeak"]
    assert cli.main(argv) == 0
    record = json.loads(fs.cat_file(f"{gcs[5:]}/described-videos/clips/a.mp4.scenes.json"))
    assert record["complete"] and len(record["scenes"]) == 2
    assert record["files"] == ["a.mp4.descriptions.vtt", "a.mp4.narration.wav", "a.mp4.described.mp4"]
    assert fs.cat_file(f"{gcs[5:]}/described-videos/clips/a.mp4.descriptions.vtt").startswith(b"WEBVTT")
    assert cli.main(argv) == 0  # a scheduled rerun: nothing new
    manifest = [json.loads(line) for line in fs.cat_file(f"{gcs[5:]}/described-videos/manifest.jsonl").splitlines()]
    assert manifest == [{"image": "clips/a.mp4", "status": "up_to_date"}]


def test_sound_that_starts_late_keeps_its_time_in_the_description_track(tmp_path):
    from altvoice.narration import with_description_track, write_narration

    make_video(tmp_path / "a.mp4", [((200, 30, 30), 5)], tone_hz=440, tone_from=2.0)
    write_narration([], [], 5.0, str(tmp_path / "silent.wav"))  # nothing said: the track is the sound alone
    with_description_track(str(tmp_path / "a.mp4"), str(tmp_path / "silent.wav"), [], str(tmp_path / "copy.mp4"))
    tone = tone_level(audio_of(tmp_path / "a.mp4", 0), 0.5, 2.5)  # the sound's own level (decoded from its start)
    described = audio_of(tmp_path / "copy.mp4", 1)
    assert tone_level(described, 0.2, 1.6) < 0.05 * tone  # silence before it starts
    assert tone_level(described, 2.5, 4.5) == pytest.approx(tone, rel=0.25)


def test_archive_members_that_would_leave_the_output_are_refused_and_junk_is_not_read(tmp_path):
    import tarfile
    import types
    import zipfile

    import fsspec
    from apache_beam.pvalue import TaggedOutput

    from altvoice.pipelines.video_sources import ListVideos
    from altvoice.sources import open_source

    make_video(tmp_path / "a::b.mp4", SHOTS[:1])  # a local name fsspec would read as a URL chain
    with zipfile.ZipFile(tmp_path / "v.zip", "w") as members:
        for name in ("ok/a.mp4", "../../evil.mp4", "__MACOSX/ok/._a.mp4", "ok/._a.mp4"):
            members.write(tmp_path / "a::b.mp4", name)
    with tarfile.open(tmp_path / "v.tar", "w") as members:
        members.add(tmp_path / "a::b.mp4", "ok/a.mp4")
    settings = types.SimpleNamespace(exclude=None, force=True)
    listed = list(ListVideos(settings).process(str(tmp_path / "v.zip")))
    assert [x[0] for x in listed if not isinstance(x, TaggedOutput)] == ["ok/a.mp4"]
    assert [(e.value["image"], e.value["kind"]) for e in listed if isinstance(e, TaggedOutput)] == [
        ("../../evil.mp4", "unsafe_path")]
    (relpath, url, stamp), = ListVideos(settings).process(str(tmp_path / "v.tar"))
    assert relpath == "ok/a.mp4" and stamp["archive"]["size"] == (tmp_path / "v.tar").stat().st_size  # tar: + archive
    (_, local, _), = [x for x in ListVideos(settings).process(str(tmp_path)) if x[0] == "a::b.mp4"]
    with open_source(local) as f:
        assert f.read() == (tmp_path / "a::b.mp4").read_bytes()
    fsspec.filesystem("memory").pipe("memory://videos/a::b.mp4", b"in a bucket")  # nor is a URL read as a chain
    with open_source("memory://videos/a::b.mp4") as f:
        assert f.read() == b"in a bucket"


@pytest.mark.parametrize("flag", [["--audio-format", "mp3"], ["--prune"], ["--embed-metadata"], ["--review"],
                                  ["--max-file-mb", "5"], ["--max-megapixels", "2"]])
def test_caption_flags_it_has_no_use_for_are_refused_not_ignored(tmp_path, capsys, flag):
    assert cli.main(["describe-video", "--input", str(tmp_path), "--output", str(tmp_path / "out"), *flag]) == 2
    assert f"{flag[0]}: caption's, not describe-video's" in capsys.readouterr().err


def test_a_negative_specificity_is_refused(tmp_path, capsys):
    argv = ["describe-video", "--input", str(tmp_path), "--output", str(tmp_path / "out"), "--specificity", "-0.5"]
    assert cli.main(argv) == 2 and "--specificity must be a number of at least 0" in capsys.readouterr().err


def test_an_output_store_that_fails_costs_that_video_only():
    import types

    from apache_beam.pvalue import TaggedOutput

    from altvoice.pipelines.video_outputs import WriteTrack

    writer = WriteTrack(types.SimpleNamespace(output_root="nosuch://bucket", model_id="m", voice_id=None))
    info = {"spans": [(0.0, 2.0, 1.0)], "stamp": {"size": 1}, "duration": 2.0, "has_audio": False, "url": "x.mp4"}
    out = list(writer.process(("a.mp4", {"video": [info], "captions": []})))
    assert out[0] == {"image": "a.mp4", "status": "failed"}
    assert [(o.value["kind"], o.value["stage"]) for o in out[1:] if isinstance(o, TaggedOutput)] == [
        ("write_failed", "write")]
