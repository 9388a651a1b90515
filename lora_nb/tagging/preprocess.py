"""Image preprocessing exactly as WD14 taggers expect (and as kohya's tagging script does it).

1. transparency (RGBA, LA, or a palette with a transparent colour) goes onto white, else RGB;
2. RGB -> BGR;
3. pad to a square with white, centred (odd pixel to the bottom/right);
4. resize to the model's input size: OpenCV INTER_AREA when shrinking, PIL LANCZOS when enlarging;
5. float32, values 0-255 (not normalised), HWC.

>>> from PIL import Image
>>> preprocess(Image.new("RGB", (40, 20), (255, 0, 0)), 32).shape
(32, 32, 3)
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InvalidInput

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    from PIL import Image

__all__ = ["preprocess", "load_and_preprocess"]


def preprocess(image: "Image.Image", size: int) -> "np.ndarray":
    """One image as the model's input (H=W=size, BGR, float32 0-255)."""
    import numpy as np
    from PIL import Image

    if image.mode in ("RGBA", "LA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.split()[3])
        image = flat
    elif image.mode != "RGB":
        image = image.convert("RGB")
    bgr = np.asarray(image)[:, :, ::-1]
    h, w = bgr.shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    square = np.full((side, side, 3), 255, dtype=np.uint8)
    square[top:top + h, left:left + w] = bgr
    if side >= size:
        import cv2

        out = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)
    else:
        out = np.asarray(Image.fromarray(square).resize((size, size), Image.Resampling.LANCZOS))
    return out.astype(np.float32)


def load_and_preprocess(path: str | Path, size: int) -> "np.ndarray":
    """Open an image file and preprocess it; :class:`InvalidInput` for a broken or non-image file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            return preprocess(im, size)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise InvalidInput(f"{Path(path).name} is not a readable image ({e}).", fix="Remove or replace the file.") from None
