"""Robust decoding: formats, modes, orientation, and refusals with a reason."""
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from altvoice.images import ImageError, decode_image, decode_sizes, open_image
from testdata import encode, scene_image

RED = (220, 30, 30)


def centre(pixels):
    return pixels[pixels.shape[0] // 2, pixels.shape[1] // 2].astype(int)


@pytest.mark.parametrize(
    "fmt, mode",
    [("JPEG", "RGB"), ("PNG", "RGB"), ("GIF", "P"), ("BMP", "RGB"), ("WEBP", "RGB"), ("TIFF", "RGB"),
     ("JPEG", "CMYK"), ("PNG", "RGBA"), ("PNG", "LA"), ("JPEG", "L"), ("PNG", "P")],
)
def test_formats_and_modes_decode_to_rgb(fmt, mode):
    pixels = decode_image(encode(scene_image(RED, mode=mode), fmt), 32)
    assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8
    expected = np.asarray(scene_image(RED, mode=mode).convert("RGB"))[24, 24].astype(int)
    assert np.abs(centre(pixels) - expected).max() < 40


def test_alpha_is_composited_on_white():
    rgba = np.zeros((20, 20, 4), np.uint8)  # fully transparent black
    pixels = decode_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"), 8)
    assert (pixels == 255).all()


def test_sixteen_bit_grayscale_is_scaled_not_clipped():
    mid = np.full((16, 16), 32768, np.uint16)
    pixels = decode_image(encode(Image.fromarray(mid), "PNG"), 8)
    assert abs(int(pixels[0, 0, 0]) - 128) <= 1


def test_exif_orientation_is_applied():
    wide = np.zeros((10, 30, 3), np.uint8)
    wide[:, :10] = 255  # white on the left
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(wide).save(buffer, "JPEG", exif=exif, quality=95)
    pixels = decode_image(buffer.getvalue(), 30)
    assert pixels[2, 15].mean() > 200 and pixels[28, 15].mean() < 60  # white moved to the top


def test_animated_gif_uses_first_frame():
    frames = [scene_image(RED, mode="P"), scene_image((30, 30, 220), mode="P")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    assert centre(decode_image(buffer.getvalue(), 16))[0] > 60  # red half-tone, not blue


@pytest.mark.parametrize(
    "data, kind",
    [
        (b"", "empty_file"),
        (b"plain text, not pixels", "not_an_image"),
        (encode(scene_image(RED), "JPEG")[:200], "corrupt_image"),
        (encode(scene_image(RED), "PNG")[:-40], "corrupt_image"),
    ],
)
def test_bad_bytes_are_refused_with_a_kind(data, kind):
    with pytest.raises(ImageError) as caught:
        decode_image(data, 16)
    assert caught.value.kind == kind and str(caught.value)


def test_decompression_bomb_is_refused_before_decoding():
    huge = encode(Image.new("1", (20000, 20000)), "PNG")  # 400 megapixels, a few kB on disk
    with pytest.raises(ImageError) as caught:
        decode_image(huge, 16)
    assert caught.value.kind == "too_large"


def test_pixel_limit_is_configurable():
    with pytest.raises(ImageError, match="over the limit"):
        decode_image(encode(scene_image(RED, size=100), "PNG"), 16, max_pixels=5000)


def test_one_decode_gives_every_size_and_the_first_exactly_as_alone():
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 255, (375, 500, 3), np.uint8)).resize((500, 375))
    data = encode(photo, "JPEG")
    first, second = decode_sizes(data, (160, 224))
    assert first.shape == (160, 160, 3) and second.shape == (224, 224, 3)
    assert np.array_equal(first, decode_image(data, 160))  # the captioner sees what it saw in training


def sixteen_bit(width, height, value=30000) -> bytes:
    return encode(Image.new("I;16", (width, height), value), "PNG")  # a few kB however big


def test_sixteen_bit_png_over_the_decoded_bytes_limit_is_refused_before_decoding(monkeypatch):
    def no_decoding(self):
        raise AssertionError("pixels were decoded")

    data = sixteen_bit(3000, 2000)  # 6 MP at 2 bytes a pixel: 12 MB decoded, ~15 kB on disk
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    for decode in (lambda **limit: decode_image(data, 16, **limit), lambda **limit: decode_sizes(data, (16, 8), **limit),
                   lambda **limit: open_image(data, **limit)):
        with pytest.raises(ImageError, match="I;16 image decodes to 11 MiB, over the limit of 10 MiB") as caught:
            decode(max_decoded_bytes=10 * 2**20)
        assert caught.value.kind == "too_large"


def test_decoded_bytes_count_sixteen_bits_as_two_bytes():
    limit = 7_000_000  # 3000x2000 is 6 MB at a byte a pixel, 12 MB at two
    assert decode_image(encode(Image.new("L", (3000, 2000), 128), "PNG"), 8, max_decoded_bytes=limit).shape == (8, 8, 3)
    with pytest.raises(ImageError) as caught:
        decode_image(sixteen_bit(3000, 2000), 8, max_decoded_bytes=limit)
    assert caught.value.kind == "too_large"
    assert decode_image(sixteen_bit(3000, 2000), 8, max_decoded_bytes=12_000_000).shape == (8, 8, 3)  # at the limit


def test_sixteen_bit_png_under_the_limit_maps_values_as_before():
    values = np.linspace(0, 65535, 48 * 48).astype(np.uint16).reshape(48, 48)
    values[0, :6] = [0, 256, 257, 32767, 32768, 65535]
    pixels = decode_image(encode(Image.fromarray(values), "PNG"), 48)  # same size: no resampling
    expected = np.clip(values / 65535.0 * 255.0, 0, 255).astype(np.uint8)  # the float64 mapping used before
    assert np.array_equal(pixels[..., 0], expected) and (pixels == pixels[..., :1]).all()
    assert list(pixels[0, :6, 0]) == [0, 0, 1, 127, 127, 255]


def reference(image: Image.Image, size: int) -> np.ndarray:
    """The old way: everything converted at full size, then one bilinear resize."""
    if image.mode == "RGBA":
        image = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image)
    return np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)).astype(int)


def test_big_images_reduced_early_stay_close_to_a_full_size_resize():
    rows, cols = np.mgrid[0:1800, 0:2400]
    ramp = (cols * 27 + rows * 9).astype(np.uint16)  # 16-bit, spanning 0..~60000
    gray = np.clip(ramp / 65535.0 * 255.0, 0, 255).astype(np.uint8)
    rgba = np.dstack([gray, 255 - gray, (rows % 256).astype(np.uint8), ((cols // 300) * 36).astype(np.uint8)])
    for image, expected in [(Image.fromarray(ramp), Image.fromarray(gray)), (Image.fromarray(rgba, "RGBA"),) * 2]:
        data = encode(image, "PNG", compress_level=1)
        first, second = decode_sizes(data, (224, 64))
        assert np.array_equal(first, decode_image(data, 224))
        assert np.abs(first.astype(int) - reference(expected, 224)).max() <= 3
        assert np.abs(second.astype(int) - reference(expected, 64)).max() <= 3


PEAK_RSS = """
import resource, sys
from altvoice.images import decode_sizes
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
pixels = decode_sizes(data, (299, 224))
assert pixels[0].shape == (299, 299, 3) and abs(int(pixels[0][150, 150, 0]) - 127) <= 2
scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is in bytes on macOS, KiB on Linux
print(before * scale, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale)
"""


def test_decoding_a_big_sixteen_bit_png_stays_memory_light(tmp_path):
    pytest.importorskip("resource")
    ramp = (np.arange(6000, dtype=np.uint32) * 65535 // 5999).astype(np.uint16)
    path = tmp_path / "ramp16.png"  # 6000x6000 16-bit: 72 MB decoded, 0.3 MB on disk
    Image.fromarray(np.broadcast_to(ramp, (6000, 6000)).copy()).save(path, compress_level=1)
    root = Path(__file__).resolve().parents[2]
    # On Linux a child's ru_maxrss starts at its parent's high-water mark (this test process's, maybe GBs),
    # so measure in a grandchild, started by a small child, whose count starts afresh.
    hop = "import subprocess, sys; sys.exit(subprocess.run([sys.executable, '-c', *sys.argv[1:]]).returncode)"
    done = subprocess.run([sys.executable, "-c", hop, PEAK_RSS, str(path)], cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    before, peak = map(int, done.stdout.split())
    # The decoded image itself is 72 MB; converting it through float64, as before, peaked over 1 GB.
    assert peak < 600 * 2**20, f"peak RSS {peak / 2**20:.0f} MiB (before decoding {before / 2**20:.0f} MiB)"
