"""Robust image decoding: any common format, mode or orientation to an RGB uint8 array.

Handles JPEG, PNG, GIF (first frame), BMP, WebP, TIFF; grayscale, palette, alpha
(composited on white), CMYK, 16-bit and float images; EXIF orientation; and refuses
empty, truncated, non-image and oversized ("decompression bomb") files with a reason.
"""
import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 64_000_000  # larger images are refused before their pixels are decoded


class ImageError(ValueError):
    """An input that can't be decoded as an image; `kind` is a short label to count by."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind


def open_image(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Opens image bytes lazily, checking emptiness, format and size before decoding pixels."""
    if not data:
        raise ImageError("empty_file", "file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageError("not_an_image", "not a recognised image format") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError("too_large", str(err)) from None
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise ImageError("corrupt_image", f"cannot read image header: {err}") from None
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError("too_large", f"{width}x{height} pixels is over the limit of {max_pixels}")
    if width == 0 or height == 0:
        raise ImageError("corrupt_image", f"image has no pixels ({width}x{height})")
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Orientation applied, first frame, 8-bit RGB (alpha composited on white)."""
    image.seek(0)
    image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        top = 65535.0 if pixels.max(initial=0) > 255 or mode.startswith("I;16") else 255.0
        image = Image.fromarray(np.clip(pixels / top * 255.0, 0, 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def decode_image(data: bytes, size: int, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decodes image bytes to a [size, size, 3] uint8 RGB array, or raises ImageError."""
    return decode_sizes(data, (size,), max_pixels)[0]


def decode_sizes(data: bytes, sizes: tuple[int, ...], max_pixels: int = MAX_PIXELS) -> list[np.ndarray]:
    """Decodes image bytes once to [size, size, 3] uint8 RGB arrays, one per size, or raises ImageError.
    A JPEG is decoded at the reduced scale the first size needs, so the first array is exactly
    decode_image(data, sizes[0])'s."""
    image = open_image(data, max_pixels)
    try:
        if image.format == "JPEG":
            image.draft("RGB", (sizes[0], sizes[0]))  # decode at a reduced scale: much faster
        image = to_rgb(image)
        return [np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8) for size in sizes]
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise ImageError("corrupt_image", f"cannot decode image: {err}") from None
