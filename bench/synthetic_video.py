"""A synthetic video to describe: photographs as shots, each slowly panned and zoomed, over a chord
that changes with every shot.

    .venv/bin/python bench/synthetic_video.py OUT.mp4 [--photos DIR] [--minutes 0.5] [--seed 0]

Without --photos it uses the scikit-image sample photographs the demo uses, so it needs nothing but
`make setup`. Shots last 2-8 s (drawn from --seed); the cut times are printed, one a line. H.264
and AAC in an MP4, 640x360 at 25 frames a second.
"""
import argparse
import os
import random
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

SIZE, FPS, RATE = (640, 360), 25, 44100
SHOT_SECONDS = (2.0, 8.0)


def demo_photos() -> list[str]:
    import skimage

    from altvoice.demo import PHOTOS

    return [os.path.join(os.path.dirname(skimage.__file__), "data", name) for name in PHOTOS]


def shots(photos: list[str], seconds: float, seed: int = 0) -> list[tuple[str, float]]:
    """(photo, length) of each shot, photos in turn, lengths drawn from SHOT_SECONDS, adding up to `seconds`."""
    draw, found, total = random.Random(seed), [], 0.0
    while total < seconds - 1e-6:
        length = min(round(draw.uniform(*SHOT_SECONDS), 2), round(seconds - total, 2))
        found.append((photos[len(found) % len(photos)], length))
        total += length
    return found


def _frames(photo: str, count: int):
    """The shot's frames: a 16:9 crop of the photo zooming from all of it to 80%, drifting sideways."""
    from PIL import Image

    image = Image.open(photo).convert("RGB")
    width, height = image.size
    crop_w, crop_h = (width, width * SIZE[1] / SIZE[0]) if width / height < SIZE[0] / SIZE[1] else \
        (height * SIZE[0] / SIZE[1], height)
    for index in range(count):
        zoom = 1 - 0.2 * index / max(1, count - 1)
        w, h = crop_w * zoom, crop_h * zoom
        left, top = (width - w) * index / max(1, count - 1), (height - h) / 2
        yield np.asarray(image.resize(SIZE, Image.BILINEAR, box=(left, top, left + w, top + h)))


def make_clip(path: str, plan: list[tuple[str, float]]) -> list[float]:
    """Writes the video of `plan` (from `shots`) to `path`; returns its cut times in seconds."""
    import av

    cuts, done = [], 0
    with av.open(path, "w") as out:
        video = out.add_stream("libx264", rate=FPS, options={"preset": "veryfast", "crf": "23"})
        video.width, video.height, video.pix_fmt = *SIZE, "yuv420p"
        audio = out.add_stream("aac", rate=RATE, layout="stereo")
        for number, (photo, seconds) in enumerate(plan):
            frames = round(seconds * FPS)
            for picture in _frames(photo, frames):
                for packet in video.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                    out.mux(packet)
            for packet in _chord(audio, number, done, done + frames * RATE // FPS):
                out.mux(packet)
            done += frames * RATE // FPS
            cuts.append(round(done / RATE, 3))
        for stream in (video, audio):
            for packet in stream.encode():
                out.mux(packet)
    return cuts[:-1]


def _chord(stream, number: int, first: int, last: int):
    """Packets of a quiet two-note chord from sample `first` to `last`, its notes set by the shot."""
    import av

    low, high = 220 * 2 ** ((number * 5 % 12) / 12), 330 * 2 ** ((number * 7 % 12) / 12)
    for start in range(first, last, 1024):
        t = np.arange(start, min(start + 1024, last)) / RATE
        wave = (0.1 * np.sin(2 * np.pi * low * t) + 0.08 * np.sin(2 * np.pi * high * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = RATE, start
        yield from stream.encode(frame)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", help="the .mp4 to write")
    parser.add_argument("--photos", help="a folder of photos (default: scikit-image's samples)")
    parser.add_argument("--minutes", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    photos = sorted(os.path.join(args.photos, n) for n in os.listdir(args.photos)) if args.photos else demo_photos()
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    for cut in make_clip(args.output, shots(photos, args.minutes * 60, args.seed)):
        print(f"{cut:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
