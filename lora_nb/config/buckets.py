"""kohya sd-scripts' aspect-ratio bucketing, reproduced exactly (``BucketManager`` in train_util).

>>> sorted(bucket_counts([(64, 64)] * 4, resolution=(64, 64), min_bucket_reso=64, max_bucket_reso=128).items())
[((64, 64), 4)]
>>> bucket_counts([(1024, 768)], resolution=(512, 512))
{(576, 448): 1}
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Iterable

__all__ = ["make_bucket_resolutions", "select_bucket", "bucket_or_none", "bucket_counts"]


@lru_cache(maxsize=64)
def make_bucket_resolutions(max_reso: tuple[int, int], min_size: int = 256, max_size: int = 1024,
                            divisible: int = 64) -> tuple[tuple[int, int], ...]:
    """The predefined buckets: every (w, h) with w*h <= max area, sides multiples of ``divisible``."""
    max_width, max_height = max_reso
    max_area = max_width * max_height
    resos = set()
    side = int(math.sqrt(max_area) // divisible) * divisible
    resos.add((side, side))
    width = min_size
    while width <= max_size:
        height = min(max_size, int((max_area // width) // divisible) * divisible)
        if height >= min_size:
            resos.add((width, height))
            resos.add((height, width))
        width += divisible
    return tuple(sorted(resos))


def _round_to_steps(x: float, steps: int) -> int:
    x = int(x + 0.5)
    return x - x % steps


def select_bucket(width: int, height: int, resolution: tuple[int, int], min_bucket_reso: int = 256,
                  max_bucket_reso: int = 1024, bucket_reso_steps: int = 64, bucket_no_upscale: bool = False) -> tuple[int, int]:
    """The bucket kohya puts a ``width`` x ``height`` image in."""
    aspect = width / height
    if not bucket_no_upscale:
        resos = make_bucket_resolutions(tuple(resolution), min_bucket_reso, max_bucket_reso, bucket_reso_steps)
        best = min(range(len(resos)), key=lambda i: (abs(resos[i][0] / resos[i][1] - aspect), i))
        return resos[best]
    max_area = resolution[0] * resolution[1]
    steps = bucket_reso_steps
    if width * height > max_area:
        rw = math.sqrt(max_area * aspect)
        rh = max_area / rw
        bw = _round_to_steps(rw, steps)
        bh_in_w = _round_to_steps(bw / aspect, steps)
        ar_w = bw / bh_in_w
        bh = _round_to_steps(rh, steps)
        bw_in_h = _round_to_steps(bh * aspect, steps)
        ar_h = bw_in_h / bh
        if abs(ar_w - aspect) < abs(ar_h - aspect):
            size = (bw, int(bw / aspect + 0.5))
        else:
            size = (int(bh * aspect + 0.5), bh)
    else:
        size = (width, height)
    return (size[0] - size[0] % steps, size[1] - size[1] % steps)


def bucket_or_none(width: int, height: int, resolution: tuple[int, int], min_bucket_reso: int = 256,
                   max_bucket_reso: int = 1024, bucket_reso_steps: int = 64, bucket_no_upscale: bool = False) -> tuple[int, int] | None:
    """:func:`select_bucket`, or None for an image sd-scripts cannot bucket.

    With 'never upscale' a very small or very narrow image rounds a side down to 0 (the engine then
    divides by it and crashes).

    >>> bucket_or_none(2000, 20, (512, 512), bucket_no_upscale=True) is None
    True
    """
    try:
        bucket = select_bucket(width, height, resolution, min_bucket_reso, max_bucket_reso, bucket_reso_steps, bucket_no_upscale)
    except ZeroDivisionError:
        return None
    return None if 0 in bucket else bucket


def bucket_counts(sizes: Iterable[tuple[int, int]], resolution: tuple[int, int] | int = (512, 512), enable_bucket: bool = True,
                  min_bucket_reso: int = 256, max_bucket_reso: int = 1024, bucket_reso_steps: int = 64,
                  bucket_no_upscale: bool = False) -> dict[tuple[int, int], int]:
    """How many of the images of ``sizes`` land in each bucket (without repeats)."""
    if isinstance(resolution, int):
        resolution = (resolution, resolution)
    resolution = (int(resolution[0]), int(resolution[1]))
    counts: dict[tuple[int, int], int] = {}
    if not enable_bucket:
        n = sum(1 for _ in sizes)
        return {resolution: n} if n else {}
    # kohya rounds the bucket limits to the step size
    lo = min_bucket_reso - min_bucket_reso % bucket_reso_steps
    hi = max_bucket_reso - max_bucket_reso % bucket_reso_steps
    for w, h in sizes:
        if w <= 0 or h <= 0:
            continue
        b = select_bucket(w, h, resolution, lo, hi, bucket_reso_steps, bucket_no_upscale)
        counts[b] = counts.get(b, 0) + 1
    return counts
