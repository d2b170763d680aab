"""Robust image decoding: any common format, mode or orientation to an RGB uint8 array.

Handles JPEG, PNG, GIF (first frame), BMP, WebP, TIFF; grayscale, palette, alpha
(composited on white), CMYK, 16-bit and float images; EXIF orientation; and refuses
empty, truncated, non-image and oversized ("decompression bomb") files with a reason.

Memory: the only full-size buffer is the decoded image itself, whose size is checked
(pixels and bytes) before any pixel is decoded. 16-bit and float images are mapped to
8 bits a strip at a time, and big non-JPEG images are box-reduced strip by strip to a
few times the output size before any other full-size conversion. JPEGs are instead
decoded at a reduced scale (draft), exactly as before.
"""
import io
import warnings

import numpy as np
from PIL import ExifTags, Image, ImageMode, ImageOps, UnidentifiedImageError

MAX_PIXELS = 64_000_000  # larger images are refused before their pixels are decoded
# Decoded size limit, width x height x bytes a pixel of the image's mode (counted as 1 for
# 1-bit, P and L, 2 for I;16 and LA, 3 for RGB, 4 for RGBA, CMYK, I and F), also checked
# before decoding. 256 MiB lets the largest image MAX_PIXELS allows through in the usual
# modes: a 64 MP 8-bit RGB photo is 192 MB (and Pillow really holds RGB at 4 bytes a pixel,
# so 256 MB), a 64 MP RGBA/CMYK or 16-bit one 256 or 128 MB. It bounds the one full-size
# buffer a decode makes even when max_pixels is raised, e.g. for panoramas, while one
# decode stays well inside a pipeline worker's memory with a few running side by side.
MAX_DECODED_BYTES = 256 * 1024 * 1024
# Big non-JPEG images are box-reduced by whole factors while staying at least this many times
# the output size on each side, before the final bilinear resize (as Pillow's reducing_gap;
# 3 is indistinguishable from resizing the full image). Images under this size (the usual
# case) are not reduced at all, so they decode exactly as before.
REDUCING_GAP = 3.0
STRIP_PIXELS = 1 << 20  # pixels converted at a time: some 10-20 MB of temporaries however big the image

_WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")  # mapped to 8-bit L by scaling
_SIXTEEN_BIT = np.clip(np.arange(65536) / 65535.0 * 255.0, 0, 255).astype(np.uint8)  # = value // 257


class ImageError(ValueError):
    """An input that can't be decoded as an image; `kind` is a short label to count by."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind


def decoded_bytes(image: Image.Image) -> int:
    """Bytes the (first frame of the) image's pixels take once decoded, by its mode; known before decoding."""
    width, height = image.size
    try:
        mode = ImageMode.getmode(image.mode)
        per_pixel = len(mode.bands) * int(mode.typestr[-1])  # "1" is "|b1": a byte a pixel, as Pillow holds it
    except (KeyError, ValueError):
        per_pixel = 4  # an unusual mode: assume the widest
    return width * height * per_pixel


def open_image(data: bytes, max_pixels: int = MAX_PIXELS, *, max_decoded_bytes: int = MAX_DECODED_BYTES) -> Image.Image:
    """Opens image bytes lazily, checking emptiness, format and size (pixels and decoded bytes) before decoding pixels."""
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
    size = decoded_bytes(image)
    if size > max_decoded_bytes:
        raise ImageError(
            "too_large",
            f"{width}x{height} {image.mode} image decodes to {size / 2**20:.0f} MiB, "
            f"over the limit of {max_decoded_bytes / 2**20:.0f} MiB",
        )
    if width == 0 or height == 0:
        raise ImageError("corrupt_image", f"image has no pixels ({width}x{height})")
    return image


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


def _orient(image: Image.Image) -> Image.Image:
    """ImageOps.exif_transpose, without its full-size copy when there is nothing to turn."""
    if image.getexif().get(ExifTags.Base.Orientation, 1) in (2, 3, 4, 5, 6, 7, 8):
        return ImageOps.exif_transpose(image)
    return image


def _to_8bit(strip: Image.Image, top: float) -> Image.Image:
    """A (small) 16-bit, 32-bit integer or float image to 8-bit L: value / top * 255, clipped and truncated."""
    pixels = np.asarray(strip)
    if strip.mode.startswith("I;16"):
        return Image.fromarray(_SIXTEEN_BIT[pixels], "L")  # exactly the old float64 formula, by table
    if strip.mode == "I":  # integers: the same truncation as the float formula, without floats
        if top == 255.0:
            return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "L")
        return Image.fromarray(_SIXTEEN_BIT[np.clip(pixels, 0, 65535)], "L")
    scaled = pixels.astype(np.float64)  # float: the old formula exactly, in place on one strip-sized array
    scaled /= top
    scaled *= 255.0
    return Image.fromarray(np.clip(scaled, 0, 255, out=scaled).astype(np.uint8), "L")


def _in_strips(image: Image.Image, factor: tuple[int, int]) -> Image.Image:
    """The image converted to L, RGBA or RGB and box-reduced by `factor`, one strip of rows at a time,
    so that no full-size converted copy is ever made. Reducing strip by strip is exact: strips start
    on whole reduction blocks. With factor (1, 1) this is a plain conversion."""
    image.load()
    width, height = image.size
    fx, fy = factor
    top = 255.0
    if image.mode in ("I", "F"):
        top = 65535.0 if image.getextrema()[1] > 255 else 255.0
    if image.mode in _WIDE_MODES or image.mode in ("1", "L"):
        mode = "L"  # gray stays one band until the final RGB conversion
    else:
        mode = "RGBA" if _has_alpha(image) else "RGB"
    out = Image.new(mode, (-(-width // fx), -(-height // fy)))
    rows = max(fy, STRIP_PIXELS // max(width, 1) // fy * fy)
    for y in range(0, height, rows):
        strip = image.crop((0, y, width, min(y + rows, height)))
        strip = _to_8bit(strip, top) if strip.mode in _WIDE_MODES else strip.convert(mode)
        if factor != (1, 1):
            strip = strip.reduce(factor)
        out.paste(strip, (0, y // fy))
    return out


def _reduction(size: tuple[int, int], target: int | None) -> tuple[int, int]:
    """Whole factors to box-reduce an image of `size` by, keeping each side >= REDUCING_GAP * target."""
    if not target:
        return 1, 1
    return tuple(max(1, int(side / target / REDUCING_GAP)) for side in size)


def _prepare(image: Image.Image, target: int | None = None) -> tuple[Image.Image, tuple[float, float, float, float] | None]:
    """to_rgb, box-reduced for output `target` pixels square if the image is much bigger; with the
    box of the result that covers the original image (None if not reduced), for the final resize."""
    image.seek(0)
    image = _orient(image)
    factor = _reduction(image.size, target)
    box = None
    if factor != (1, 1):
        box = (0.0, 0.0, image.width / factor[0], image.height / factor[1])
    if factor != (1, 1) or image.mode in _WIDE_MODES:
        image = _in_strips(image, factor)
    if _has_alpha(image):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB"), box
    return image.convert("RGB"), box


def to_rgb(image: Image.Image) -> Image.Image:
    """Orientation applied, first frame, 8-bit RGB (alpha composited on white)."""
    return _prepare(image)[0]


def decode_image(
    data: bytes, size: int, max_pixels: int = MAX_PIXELS, *, max_decoded_bytes: int = MAX_DECODED_BYTES
) -> np.ndarray:
    """Decodes image bytes to a [size, size, 3] uint8 RGB array, or raises ImageError."""
    return decode_sizes(data, (size,), max_pixels, max_decoded_bytes=max_decoded_bytes)[0]


def decode_sizes(
    data: bytes, sizes: tuple[int, ...], max_pixels: int = MAX_PIXELS, *, max_decoded_bytes: int = MAX_DECODED_BYTES
) -> list[np.ndarray]:
    """Decodes image bytes once to [size, size, 3] uint8 RGB arrays, one per size, or raises ImageError.
    A JPEG is decoded at the reduced scale the first size needs, and other big images are box-reduced
    to a few times the first size, so the first array is exactly decode_image(data, sizes[0])'s."""
    image = open_image(data, max_pixels, max_decoded_bytes=max_decoded_bytes)
    try:
        if image.format in ("JPEG", "MPO"):  # MPO: multi-picture JPEGs from cameras
            image.draft("RGB", (sizes[0], sizes[0]))  # decode at a reduced scale: much faster
            image, box = _prepare(image)  # never reduced further: JPEGs decode exactly as before
        else:
            image, box = _prepare(image, sizes[0])
        return [np.asarray(image.resize((size, size), Image.Resampling.BILINEAR, box), dtype=np.uint8) for size in sizes]
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise ImageError("corrupt_image", f"cannot decode image: {err}") from None


def thumbnail(data: bytes, size: int, max_pixels: int = MAX_PIXELS) -> tuple[bytes, int, int]:
    """(JPEG bytes, width, height) of the image shrunk to fit `size` pixels square, aspect kept,
    or ImageError; the same limits as decoding for captions."""
    image = open_image(data, max_pixels)
    try:
        if image.format in ("JPEG", "MPO"):
            image.draft("RGB", (size, size))
        image = _prepare(image, size)[0]
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=80, optimize=True)
        return out.getvalue(), image.width, image.height
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise ImageError("corrupt_image", f"cannot decode image: {err}") from None
