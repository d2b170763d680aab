"""The narration and the description track (altvoice.narration): fitting, timing, odd streams, memory."""
import tracemalloc

import numpy as np
import pytest

from altvoice.narration import MAX_END_SPEEDUP, place, with_description_track, write_narration
from testdata import audio_of, encode_frames, make_video


def rms(samples, start: float, end: float, rate=16000) -> float:
    return float(np.sqrt(np.mean(samples[int(start * rate):int(end * rate)] ** 2)))


def test_the_last_description_is_sped_up_only_within_its_limit_and_only_with_room():
    assert place([0.0, 9.8], [3.0, 4.0], 10.0)[1] == (9.8, 1.0)  # 0.2 s left: it runs on past the end
    offset, speed = place([0.0, 8.0], [2.0, 10.0], 10.0)[1]
    assert offset == 8.0 and speed == MAX_END_SPEEDUP


def test_sound_with_a_gap_keeps_its_times_in_the_description_track(tmp_path):
    import av

    path = tmp_path / "gap.mp4"
    with av.open(str(path), "w") as out:
        picture = out.add_stream("libx264", rate=10)
        picture.width, picture.height, picture.pix_fmt = 96, 64, "yuv420p"
        sound = out.add_stream("aac", rate=16000)
        for _ in range(60):
            for packet in picture.encode(av.VideoFrame.from_ndarray(np.zeros((64, 96, 3), np.uint8), format="rgb24")):
                out.mux(packet)
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(1024) / 16000)).astype(np.float32)
        for start in [*range(0, 16000, 1024), *range(48000, 96000, 1024)]:  # sound at 0-1 s and 3-6 s
            frame = av.AudioFrame.from_ndarray(tone[None], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, start
            for packet in sound.encode(frame):
                out.mux(packet)
        for stream in (picture, sound):
            for packet in stream.encode():
                out.mux(packet)
    write_narration([], [], 6.0, str(tmp_path / "silent.wav"))
    with_description_track(str(path), str(tmp_path / "silent.wav"), [], str(tmp_path / "copy.mp4"))
    track = audio_of(tmp_path / "copy.mp4", 1)  # away from the edges, where AAC's frames blur them
    assert rms(track, 0.2, 0.8) > 0.1 and rms(track, 1.3, 2.7) < 0.01 and rms(track, 3.3, 5.7) > 0.1


def test_a_long_silent_video_is_described_in_little_memory(tmp_path):
    encode_frames(tmp_path / "v.mkv", [(0, (200, 30, 30)), (600, (30, 30, 200))])  # ten minutes, two frames
    write_narration([], [], 600.0, str(tmp_path / "silent.wav"))
    tracemalloc.start()
    with_description_track(str(tmp_path / "v.mkv"), str(tmp_path / "silent.wav"), [], str(tmp_path / "copy.mp4"))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 << 20  # ten minutes of mono float audio alone would be 53 MB
    assert len(audio_of(tmp_path / "copy.mp4", 0)) / 16000 == pytest.approx(600, abs=0.5)


def test_a_matroska_video_with_b_frames_is_copied_frame_for_frame(tmp_path):
    import av

    make_video(tmp_path / "v.mkv", [((200, 30, 30), 5), ((30, 30, 200), 5)], fmt="matroska", tone_hz=440)
    write_narration([], [], 10.0, str(tmp_path / "silent.wav"))
    with_description_track(str(tmp_path / "v.mkv"), str(tmp_path / "silent.wav"), [], str(tmp_path / "copy.mp4"))
    with av.open(str(tmp_path / "v.mkv")) as original, av.open(str(tmp_path / "copy.mp4")) as copy:
        assert sum(1 for _ in copy.decode(video=0)) == sum(1 for _ in original.decode(video=0)) == 100


def test_a_stream_that_never_gives_decode_times_is_refused_not_damaged(tmp_path):
    import av

    from altvoice.narration import _Timing

    make_video(tmp_path / "v.mkv", [((200, 30, 30), 5)], fmt="matroska")
    with av.open(str(tmp_path / "v.mkv")) as source, av.open(str(tmp_path / "copy.mp4"), "w") as target:
        output = target.add_stream_from_template(source.streams.video[0])
        timing = _Timing(target)
        with pytest.raises(ValueError, match="without decode times"):
            for packet in source.demux(source.streams.video[0]):
                if packet.size:
                    packet.dts = None
                    timing.mux(packet, output)
