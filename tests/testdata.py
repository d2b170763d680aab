"""Test data the tests make themselves: drawn images, captions, splits and bad inputs."""
import io
import os

import numpy as np
from PIL import Image

# Six drawable scenes, each with five captions: enough words for a vocabulary and a model to learn.
SCENES = {
    "red": ((220, 30, 30), ["A red square on a white wall .", "a red box", "The red square is big .",
                            "a big red square", "red square on white"]),
    "blue": ((30, 30, 220), ["A blue circle in the sky .", "a blue ball", "The blue circle is round .",
                             "a round blue circle", "blue circle on white"]),
    "green": ((30, 200, 30), ["A green field of grass .", "green grass", "The grass is green .",
                              "a field of green grass", "green field"]),
    "black": ((10, 10, 10), ["A black night sky .", "a dark black sky", "The sky is black at night .",
                             "black night", "a black sky"]),
    "yellow": ((240, 220, 20), ["A yellow sun shines .", "the yellow sun", "A bright yellow sun .",
                                "yellow sun in the sky", "a sun that is yellow"]),
    "white": ((250, 250, 250), ["A white page .", "a blank white page", "The page is white .",
                                "white paper", "a sheet of white paper"]),
}


def scene_image(color, size=48, mode="RGB") -> Image.Image:
    """A flat colour with a darker square in the middle, so images differ in more than colour."""
    pixels = np.zeros((size, size, 3), np.uint8)
    pixels[:] = color
    pixels[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = np.asarray(color) // 2
    return Image.fromarray(pixels).convert(mode)


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def good_images() -> dict[str, bytes]:
    """Two files per scene in assorted formats and modes (JPEG, PNG with alpha, CMYK, grayscale, GIF, 16-bit)."""
    files = {}
    for index, (scene, (color, _)) in enumerate(SCENES.items()):
        files[f"{scene}_1.jpg"] = encode(scene_image(color), "JPEG", quality=90)
        variants = [
            ("png", lambda c: encode(scene_image(c, mode="RGBA"), "PNG")),
            ("jpg", lambda c: encode(scene_image(c, mode="CMYK"), "JPEG")),
            ("webp", lambda c: encode(scene_image(c), "WEBP")),
            ("gif", lambda c: encode(scene_image(c, mode="P"), "GIF")),
            ("bmp", lambda c: encode(scene_image(c), "BMP")),
            ("png", lambda c: encode(Image.fromarray(np.full((40, 40), int(np.mean(c)) * 257, np.uint16)), "PNG")),
        ]
        ext, make = variants[index % len(variants)]
        files[f"{scene}_2.{ext}"] = make(color)
    return files


def bad_images() -> dict[str, bytes]:
    jpeg = encode(scene_image((200, 100, 50)), "JPEG")
    return {
        "empty.jpg": b"",
        "truncated.jpg": jpeg[: len(jpeg) // 3],
        "notes.jpg": b"this is a text file, not an image\n",
    }


def caption_lines(names: list[str]) -> list[str]:
    """Flickr8k token lines for every good image, for the bad images, plus malformed and empty lines."""
    lines = []
    for name in names:
        scene = name.split("_")[0]
        lines += [f"{name}#{n}\t{text}" for n, text in enumerate(SCENES[scene][1])]
    lines += [f"{bad}#0\tA picture of something ." for bad in bad_images()]
    lines += [
        "missing.jpg#0\tA photo that is not there .",
        "this line has no tab",
        "#0\tA caption without an image name .",
        "red_1.jpg#5\t",
        "red_1.jpg#6\t123 !!!",
        "unlisted.jpg#0\tA caption for an image in no split .",
    ]
    return lines


def deep_folder(root, depth: int):
    """A chain of `depth` folders named "d" under root (made and removed level by level: os.makedirs
    and shutil.rmtree recurse once a level). Returns the deepest and a function that removes the chain."""
    import os

    chain = [os.path.join(str(root), "d")]
    for _ in range(depth - 1):
        chain.append(os.path.join(chain[-1], "d"))
    for level in chain:
        os.mkdir(level)

    def remove():
        for level in reversed(chain):
            for entry in os.scandir(level):
                if not entry.is_dir(follow_symlinks=False):
                    os.remove(entry.path)
            os.rmdir(level)

    return chain[-1], remove


HOSTILE_NAMES = ["<img src=x onerror=alert(1)>.png", "say \"cheese\" & 'smile'.png", "שלום עולם.png", "🐱 cat.png"]


def review_page_data(root) -> tuple[dict, list]:
    """(run, records) as the review page under `root` loads them from its data scripts."""
    import json

    def call(path):
        text = path.read_text(encoding="utf-8")
        return json.loads(text[text.index("(") + 1: text.rindex(")")])

    folder = root / "review" / "data"
    return call(folder / "run.js"), [r for chunk in sorted(folder.glob("records-*.js")) for r in call(chunk)]


def make_video(path, shots, fps=10, size=(96, 64), tone_hz=None, fmt=None, codecs=("libx264", "aac"),
               tone_from=0.0) -> list[float]:
    """A video (H.264, AAC unless `codecs`) of still shots [(RGB colour or image array, seconds)],
    with a sine tone as its audio from `tone_from` seconds when `tone_hz`; returns the cut times."""
    import av

    width, height = size
    with av.open(str(path), "w", format=fmt) as out:
        video = out.add_stream(codecs[0], rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = out.add_stream(codecs[1], rate=16000) if tone_hz else None
        cuts, t = [], 0.0
        for shot, seconds in shots:
            picture = np.asarray(scene_image(shot, size=max(size)).resize(size)) if isinstance(shot, tuple) else shot
            for _ in range(round(seconds * fps)):
                for packet in video.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")):
                    out.mux(packet)
            t += seconds
            cuts.append(round(t, 3))
        for packet in video.encode():
            out.mux(packet)
        if audio:
            samples = (0.3 * np.sin(2 * np.pi * tone_hz * np.arange(int((t - tone_from) * 16000)) / 16000))
            samples = samples.astype(np.float32)
            for start in range(0, len(samples), 1024):
                frame = av.AudioFrame.from_ndarray(samples[None, start:start + 1024], format="fltp", layout="mono")
                frame.sample_rate, frame.pts = 16000, start + int(tone_from * 16000)
                for packet in audio.encode(frame):
                    out.mux(packet)
            for packet in audio.encode():
                out.mux(packet)
    return cuts[:-1]


def make_audio_only(path, seconds=1.0):
    """An .mp4 with one AAC audio stream and no video."""
    import av

    with av.open(str(path), "w") as out:
        audio = out.add_stream("aac", rate=16000)
        for start in range(0, int(seconds * 16000), 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, start
            for packet in audio.encode(frame):
                out.mux(packet)
        for packet in audio.encode():
            out.mux(packet)


def make_long_header(path, hours=10.0):
    """A tiny video whose two frames are `hours` apart: a header claiming hours of (black) video."""
    import av

    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for pts in (0, round(25 * 3600 * hours)):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            frame.pts = pts
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def make_huge_frame(path, side=8200):
    """An AVI of one black MJPEG frame `side` pixels square (a 1 MB file of 67 megapixels)."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mjpeg", rate=1)
        stream.width, stream.height, stream.pix_fmt = side, side, "yuvj420p"
        for packet in [*stream.encode(av.VideoFrame(side, side, "yuvj420p")), *stream.encode()]:
            out.mux(packet)


def encode_frames(path, frames, rotation=0, fmt=None):
    """An H.264 video of [(time in seconds, RGB array or colour)] at exactly those times (any frame
    rate, any first time), in `fmt` (default: from the name)."""
    import av
    from fractions import Fraction

    pictures = [(t, np.asarray(p, np.uint8) if np.ndim(p) == 3 else np.full((64, 96, 3), p, np.uint8))
                for t, p in frames]
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream("libx264", rate=30)
        stream.height, stream.width = pictures[0][1].shape[:2]
        stream.pix_fmt, stream.time_base, stream.codec_context.time_base = "yuv420p", Fraction(1, 1000), Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        for t, picture in pictures:
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = round(t * 1000), Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def audio_of(path, stream: int, rate=16000) -> np.ndarray:
    """Mono float samples at `rate` of one audio stream of a media file."""
    import av

    with av.open(str(path)) as media:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        parts = [f.to_ndarray().reshape(-1) for d in media.decode(media.streams.audio[stream])
                 for f in resampler.resample(d)]
    return np.concatenate(parts)


def with_grounding(export):
    """Adds the bundled model's object classifier and word detectors fitted on noise to an export."""
    from altvoice.model.export import CLASSIFIER_FILE, CLASSIFIER_LICENCE, LIVING_WORDS_FILE, OBJECT_WORDS_FILE, add_classifier
    from altvoice.model.export import BUNDLED_MODEL

    bundled = [os.path.join(BUNDLED_MODEL, name) for name in (CLASSIFIER_FILE, OBJECT_WORDS_FILE, LIVING_WORDS_FILE,
                                                                    CLASSIFIER_LICENCE)]
    add_classifier(str(export), *bundled, {"source": "the bundled model's classifier"})
    from altvoice.model.detectors import DETECTORS_FILE, PEOPLE, WordDetectors
    from altvoice.model.export import read_card, write_card

    rng = np.random.default_rng(0)  # detectors of the right feature size, fitted on noise: they exercise the code
    features = rng.normal(size=(64, read_card(str(export))["decoder"]["feature_size"]))
    WordDetectors.fit(features, {PEOPLE: features[:, 0] > 0, "grass": features[:, 1] > 0}).save(str(export / DETECTORS_FILE))
    card = read_card(str(export))
    card["grounding"]["word_detectors"] = {"file": DETECTORS_FILE}
    write_card(str(export), card)
    return export


def without_image_prior(export, copy):
    """A copy of an export at `copy` whose card names no image prior and without image_prior.npy."""
    import json
    import shutil

    shutil.copytree(export, copy)
    card = json.loads((copy / "model_card.json").read_text())
    del card["decoding"]["image_prior"], card["decoding"]["image_prior_sha256"]
    (copy / "model_card.json").write_text(json.dumps(card))
    (copy / "image_prior.npy").unlink()
    return copy
