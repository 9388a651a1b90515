"""Looking at one image file: is it an image, what is it, and does a trainer read it right.

kohya sd-scripts opens images with Pillow and converts them to RGB, without applying
EXIF rotation; 16-bit grayscale converts to near-white that way. :func:`inspect_image`
decodes an image once (JPEG in draft mode), finds such traps and computes a
perceptual hash; :func:`normalized_bytes` re-encodes an image so a trainer sees what
the user sees.

>>> import io
>>> from PIL import Image
>>> buf = io.BytesIO(); Image.new("RGB", (64, 48), "red").save(buf, "PNG")
>>> info = inspect_image(buf.getvalue())
>>> (info.width, info.height, info.format, info.needs_fix)
(64, 48, 'png', None)
"""
from __future__ import annotations

import io
import os
import struct
import warnings
from dataclasses import dataclass
from typing import Union

__all__ = ["IMAGE_EXTS", "TRAINER_EXTS", "CAPTION_EXTS", "ImageInfo", "inspect_image", "normalized_bytes",
           "is_image_name", "is_caption_name", "read_header", "BrokenImage", "phash_image", "hamming"]

# What kohya finds in a folder (any case). Other image formats are converted to PNG on import.
TRAINER_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
IMAGE_EXTS = TRAINER_EXTS + (".gif", ".tif", ".tiff", ".jfif", ".jpe", ".avif")
CAPTION_EXTS = (".txt", ".caption")
FORMAT_EXT = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "bmp": ".bmp", "mpo": ".jpg"}
DEFAULT_MAX_PIXELS = 120_000_000

Source = Union[bytes, str, os.PathLike]


class BrokenImage(Exception):
    """An image file that cannot be used (the message is one short reason)."""


def is_image_name(name: str) -> bool:
    """True for file names with an image extension (a .txt is never an image)."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTS


def is_caption_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in CAPTION_EXTS


@dataclass(frozen=True)
class ImageInfo:
    """What one decode of an image found out."""

    width: int
    height: int
    format: str                 # "png", "jpeg", "webp", ... (Pillow's name, lower case)
    mode: str                   # Pillow mode: "RGB", "CMYK", "I;16", "P", ...
    orientation: int            # EXIF orientation, 1 = upright
    phash: int | None           # 64-bit perceptual hash of the pixels as the user sees them
    needs_fix: str | None       # why the file should be re-encoded before training, or None

    @property
    def ext(self) -> str:
        """The extension kohya will find it under (".png" for formats it does not read)."""
        return FORMAT_EXT.get(self.format, ".png")


def _open(source: Source):
    from PIL import Image

    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise BrokenImage("the file is empty (0 bytes)")
        return Image.open(io.BytesIO(source))
    if os.path.getsize(source) == 0:
        raise BrokenImage("the file is empty (0 bytes)")
    return Image.open(source)


def read_header(path: str | os.PathLike) -> tuple[int, int, str]:
    """(width, height, format) from the file header only; raises BrokenImage."""
    from PIL import UnidentifiedImageError

    try:
        with _open(path) as im:
            return im.size[0], im.size[1], (im.format or "unknown").lower()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise BrokenImage(_reason(e)) from None


def _reason(e: BaseException) -> str:
    text = str(e)
    if "cannot identify image file" in text:
        return "not an image Pillow can read"
    if "truncated" in text:
        return "the image is truncated"
    return f"the image cannot be decoded ({text or type(e).__name__})"


def _orientation(im) -> int:
    try:
        return int(im.getexif().get(0x0112, 1) or 1)
    except Exception:  # a broken EXIF block is not a broken image
        return 1


def _why_fix(im, orientation: int) -> str | None:
    mode, fmt = im.mode, (im.format or "").lower()
    if orientation not in (1, 0) and 1 <= orientation <= 8:
        return f"EXIF orientation {orientation} (trainers ignore it)"
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return f"{mode} pixels (16-bit or float: trainers read it as near-white)"
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        return f"{mode} colour"
    if fmt not in FORMAT_EXT:
        return f"{fmt.upper() or 'unknown'} format (trainers read PNG, JPEG, WEBP and BMP)"
    return None


def inspect_image(source: Source, max_pixels: int = DEFAULT_MAX_PIXELS, want_hash: bool = True) -> ImageInfo:
    """Decode the whole image once (catching truncation and corruption) and describe it.

    JPEGs are decoded in draft mode (reduced DCT scale): every byte is still read, so a
    truncated file fails, at a fraction of the cost. Raises BrokenImage.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with _open(source) as im:
                w, h = im.size
                if w <= 0 or h <= 0:
                    raise BrokenImage("the image has no pixels")
                if w * h > max_pixels:
                    raise BrokenImage(f"the image is {w}x{h}, more than {max_pixels // 1_000_000} megapixels")
                fmt = (im.format or "unknown").lower()
                mode = im.mode
                orientation = _orientation(im)
                fix = _why_fix(im, orientation)
                if fmt == "jpeg" and mode in ("RGB", "L"):
                    im.draft(mode, (max(64, w // 8), max(64, h // 8)))
                im.load()
                ph = phash_image(_for_hash(im, orientation)) if want_hash else None
    except BrokenImage:
        raise
    except Image.DecompressionBombError as e:
        raise BrokenImage(f"the image is too large ({e})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, MemoryError, struct.error) as e:
        raise BrokenImage(_reason(e)) from None
    return ImageInfo(w, h, fmt, mode, orientation, ph, fix)


def _for_hash(im, orientation: int):
    from PIL import ImageOps

    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        im = _to_8bit(im)
    if orientation != 1:
        im = ImageOps.exif_transpose(im)
    return im


def _to_8bit(im):
    """16-bit / 32-bit / float grayscale to 8-bit "L", scaling the value range rather than clipping it."""
    import numpy as np
    from PIL import Image

    a = np.asarray(im)
    if im.mode.startswith("I;16") or (im.mode == "I" and a.max(initial=0) > 255):
        a = (a.astype(np.uint32) >> 8) if a.max(initial=0) > 255 else a
    elif im.mode == "F":
        lo, hi = float(a.min(initial=0)), float(a.max(initial=1))
        a = (a - lo) * (255.0 / (hi - lo or 1.0))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")


def normalized_bytes(source: Source) -> tuple[bytes, str]:
    """Re-encode an image so that a trainer sees what a viewer shows: (data, extension).

    EXIF rotation is applied, 16-bit gray scaled to 8 bits, CMYK and other colour
    spaces converted to RGB, formats kohya does not read (GIF, TIFF, AVIF) become PNG.
    JPEGs stay JPEG (quality 95, ICC profile kept).
    """
    from PIL import ImageOps

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with _open(source) as im:
            fmt = (im.format or "").lower()
            icc = im.info.get("icc_profile")
            im.load()
            orientation = _orientation(im)
            out = im
            if out.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                out = _to_8bit(out)
            if orientation != 1:
                out = ImageOps.exif_transpose(out)
            if out.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                out = out.convert("RGB")
                icc = None  # the profile described the old colour space
            buf = io.BytesIO()
            if fmt in ("jpeg", "mpo"):
                if out.mode not in ("RGB", "L"):
                    out = out.convert("RGB")
                out.save(buf, "JPEG", quality=95, **({"icc_profile": icc} if icc else {}))
                return buf.getvalue(), ".jpg"
            if fmt == "webp":
                out.save(buf, "WEBP", lossless=True)
                return buf.getvalue(), ".webp"
            if out.mode not in ("RGB", "RGBA", "L", "LA", "P", "1"):
                out = out.convert("RGBA" if "A" in out.mode else "RGB")
            params = {"icc_profile": icc} if icc else {}
            out.save(buf, "PNG", **params)
            return buf.getvalue(), ".png"


def phash_image(im) -> int:
    """64-bit DCT perceptual hash (the classic pHash: 32x32 gray, 8x8 low frequencies vs. their median)."""
    import numpy as np
    from PIL import Image

    g = im.convert("L").resize((32, 32), Image.BILINEAR)
    a = np.asarray(g, dtype=np.float64)
    n = 32
    k = np.arange(n)
    dct = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n))
    coeffs = (dct @ a @ dct.T)[:8, :8].flatten()
    med = np.median(coeffs[1:])
    bits = coeffs > med
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()
