"""Robust decoding: formats, modes, orientation, and refusals with a reason."""
import io

import numpy as np
import pytest
from PIL import Image

from altvoice.images import ImageError, decode_image, decode_sizes
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
