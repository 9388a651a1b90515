"""Thumbnails: JPEG files cached in ``<dataset>/.lora-nb/thumbs``, keyed by path + mtime + file size + thumbnail size.

A JPEG is decoded in Pillow's draft mode (the decoder scales by 1/2, 1/4 or 1/8 while
it decodes), so a 3-megapixel photo costs a fraction of a full decode; many thumbnails
are made by a thread pool (Pillow releases the GIL while decoding). A second visit
only looks at file dates. Thumbnails show the stored pixels, as a trainer sees them
(EXIF rotation is not applied: the report points such images out).
"""
from __future__ import annotations

import hashlib
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..errors import InvalidInput

if TYPE_CHECKING:  # pragma: no cover
    from .dataset import Dataset

__all__ = ["thumbnail", "thumbnails", "make_thumbnail", "cache_key"]


def cache_key(rel: str, st: os.stat_result, size: int) -> str:
    return hashlib.sha1(f"{rel}\0{st.st_mtime_ns}\0{st.st_size}\0{size}".encode("utf-8", "surrogatepass")).hexdigest()


def make_thumbnail(src: Path, dst: Path, size: int) -> None:
    """Decode ``src`` (draft mode for JPEG), shrink to fit ``size`` and write a JPEG to ``dst`` atomically."""
    from PIL import Image

    from ..files import atomic_write

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(src) as im:
            if im.format == "JPEG":
                im.draft("RGB", (size, size))
            im.thumbnail((size, size), Image.BILINEAR, reducing_gap=None)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                bg = Image.new("RGB", im.size, (238, 238, 238))
                bg.paste(im, mask=im.getchannel("A"))
                im = bg
            elif im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                from .images import _to_8bit

                im = _to_8bit(im)
            if im.mode not in ("RGB", "L"):
                im = im.convert("RGB")
            import io

            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=85)
    dst.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(dst, buf.getvalue())


def _target(ds: "Dataset", path: Path, size: int) -> tuple[Path, os.stat_result]:
    st = path.stat()
    key = cache_key(ds.rel(path), st, size)
    return ds.meta_dir / "thumbs" / str(size) / key[:2] / f"{key}.jpg", st


def thumbnail(ds: "Dataset", path: Path, size: int = 256) -> Path:
    """The cached thumbnail of one image; made now if missing."""
    if not isinstance(size, int) or not 16 <= size <= 2048:
        raise InvalidInput(f"size={size!r} is not a thumbnail size between 16 and 2048.", fix="Use 256.")
    try:
        dst, _ = _target(ds, path, size)
    except FileNotFoundError:
        from ..errors import NotFound

        raise NotFound(f"There is no image {ds.rel(path)!r} in dataset '{ds.name}'.", fix="Use a path from ds.images().") from None
    if not dst.exists():
        try:
            make_thumbnail(path, dst, size)
        except (OSError, ValueError, SyntaxError, EOFError) as e:
            raise InvalidInput(f"The image {ds.rel(path)!r} cannot be read ({e}).",
                               fix="Replace or remove the file (ds.report() lists every broken image).") from None
    return dst


def thumbnails(ds: "Dataset", paths: Sequence[Path], size: int = 256, workers: int | None = None) -> list[Path | None]:
    """Thumbnails of many images, in order; None for images that cannot be read."""
    def one(p: Path) -> Path | None:
        try:
            return thumbnail(ds, p, size)
        except (InvalidInput, OSError, LookupError):
            return None

    missing = []
    out: list[Path | None] = []
    for i, p in enumerate(paths):  # warm path first: only stat() calls
        try:
            dst, _ = _target(ds, p, size)
        except OSError:
            out.append(None)
            continue
        out.append(dst if dst.exists() else None)
        if out[-1] is None:
            missing.append(i)
    if missing:
        n = workers or min(8, (os.cpu_count() or 2) * 2)
        with ThreadPoolExecutor(max_workers=n) as pool:
            for i, r in zip(missing, pool.map(one, [paths[i] for i in missing])):
                out[i] = r
    return out
