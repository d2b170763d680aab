"""Shots and keyframes (altvoice.video): time ranges agree with one scan, odd timing, damaged files."""
import numpy as np
import pytest

from altvoice import video
from testdata import encode_frames, make_video

RED, BLUE, GREEN = (220, 30, 30), (30, 30, 220), (30, 200, 30)


def test_times_count_from_the_first_frame_when_the_stream_starts_late(tmp_path):
    encode_frames(tmp_path / "v.mp4", [(100 + t / 10, RED if t < 50 else BLUE) for t in range(100)])
    info, found, _ = video.scenes(str(tmp_path / "v.mp4"), range_seconds=2.5)
    assert info.origin == pytest.approx(100) and info.duration == pytest.approx(10, abs=0.2)
    assert [s.start for s in found] == pytest.approx([0, 5], abs=0.35) and found[-1].end == pytest.approx(10, abs=0.2)


def test_a_cut_on_a_range_edge_with_no_frame_just_before_it_is_still_a_cut(tmp_path):
    encode_frames(tmp_path / "v.mp4", [(t, RED if t < 8 else BLUE) for t in range(0, 16, 2)])  # a frame every 2 s
    whole = video.scenes(str(tmp_path / "v.mp4"), range_seconds=1000)[1]
    assert [s.start for s in whole] == [0, 8]
    for length in (2.5, 3.75, 8):
        assert video.scenes(str(tmp_path / "v.mp4"), range_seconds=length)[1] == whole


def test_long_scenes_get_a_keyframe_near_their_middle_whatever_the_range_length(tmp_path):
    make_video(tmp_path / "v.mp4", [(RED, 41.5), (BLUE, 10), (GREEN, 100)], fps=4)
    whole = video.scenes(str(tmp_path / "v.mp4"), range_seconds=1000)[1]
    assert [edge for s in whole for edge in (s.start, s.end)] == pytest.approx([0, 41.5, 41.5, 51.5, 51.5, 151.5],
                                                                               abs=0.35)
    for length in (1000, 20, 120):  # one range, and scenes across ranges
        ranged = video.scenes(str(tmp_path / "v.mp4"), range_seconds=length)[1]
        assert [(s.start, s.end) for s in ranged] == [(s.start, s.end) for s in whole]
        assert all(abs(s.keyframe_time - (s.start + s.end) / 2) <= (s.end - s.start) / 16 for s in ranged)


def test_a_file_damaged_midway_says_so_and_keeps_what_came_before(tmp_path):
    make_video(tmp_path / "v.mkv", [(RED, 4), (BLUE, 4), (GREEN, 4)], fmt="matroska")
    data = bytearray((tmp_path / "v.mkv").read_bytes())
    at = int(len(data) * 0.4)
    data[at: at + 256] = np.random.default_rng(1).integers(0, 256, 256, np.uint8).tobytes()
    (tmp_path / "v.mkv").write_bytes(bytes(data))
    info = video.probe(str(tmp_path / "v.mkv"))
    segments, _, broken = video.scan_range(str(tmp_path / "v.mkv"), last_frame=info.last_frame)
    assert broken and segments and segments[-1].end < 11.5  # ends where decoding stopped, not at the header's end


def test_thinning_a_long_scene_never_loses_the_short_scene_after_it(tmp_path):
    encode_frames(tmp_path / "a.mp4", [(i * 0.25, BLUE if i < 69 else RED) for i in range(70)])  # the cut on an odd slot
    segments, _, broken = video.scan_range(str(tmp_path / "a.mp4"))
    assert [s.start for s in segments] == [0, 17.25] and not broken
    encode_frames(tmp_path / "b.mp4", [(i * 0.25, BLUE if i <= 360 else RED if i <= 367 else GREEN) for i in range(400)])
    assert [s.start for s in video.scenes(str(tmp_path / "b.mp4"))[1]] == [0, 90.25, 92.0]  # the 1.75 s shot kept


def test_sound_longer_than_the_picture_is_not_damage(tmp_path):
    make_video(tmp_path / "v.mp4", [(RED, 5)], tone_hz=440)
    make_video(tmp_path / "long.mp4", [(RED, 12)], tone_hz=440)
    import av

    with av.open(str(tmp_path / "v.mp4")) as picture, av.open(str(tmp_path / "long.mp4")) as sound, \
            av.open(str(tmp_path / "both.mp4"), "w") as out:  # 5 s of video, 12 s of sound
        streams = {picture.streams.video[0]: out.add_stream_from_template(picture.streams.video[0]),
                   sound.streams.audio[0]: out.add_stream_from_template(sound.streams.audio[0])}
        for source, stream in (picture, picture.streams.video[0]), (sound, sound.streams.audio[0]):
            for packet in source.demux(stream):
                if packet.dts is not None:
                    packet.stream = streams[stream]
                    out.mux(packet)
    info = video.probe(str(tmp_path / "both.mp4"))
    assert info.duration == pytest.approx(5, abs=0.2)
    assert not video.scan_range(str(tmp_path / "both.mp4"), last_frame=info.last_frame)[2]


def test_a_header_without_a_duration_or_a_false_one_is_measured(tmp_path):
    encode_frames(tmp_path / "v.mkv", [(0, RED), (36000, RED)])  # two frames ten hours apart
    with pytest.raises(video.VideoError, match="more than 21600 s") as refused:
        video.probe(str(tmp_path / "v.mkv"))
    assert refused.value.kind == "too_long"
