"""Recognise one frame of a tqdm progress bar in a console line.

>>> b = parse_tqdm("steps:  25%|██▌       | 10/40 [00:05<00:15,  1.98it/s, avr_loss=0.131]")
>>> (b.n, b.total, round(b.rate, 2), b.eta, b.postfix["avr_loss"])
(10, 40, 1.98, 15.0, '0.131')
>>> round(parse_tqdm("x: 1/4 [00:10<00:30, 10.00s/it]").rate, 3)
0.1
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["TqdmFrame", "parse_tqdm", "parse_clock"]

_BAR = re.compile(
    r"(?P<prefix>.*?)(?:(?P<pct>\d{1,3})%\|[^|]*\|\s*)?"
    r"(?P<n>\d+)/(?P<total>\d+)\s*"
    r"\[(?P<elapsed>[\d:]+)(?:<(?P<remaining>[\d:?]+))?"
    r"(?:,\s*(?P<rate>[\d.]+|\?)\s*(?P<unit>[A-Za-z]+/[A-Za-z]+))?"
    r"(?:,\s*(?P<postfix>[^\]]*))?\]"
)


@dataclass(frozen=True, slots=True)
class TqdmFrame:
    prefix: str
    n: int
    total: int
    elapsed: float | None
    eta: float | None
    rate: float | None          # per second, whatever the bar printed (s/it is inverted)
    unit: str | None            # "it/s" style
    postfix: dict[str, str] = field(default_factory=dict)


def parse_clock(text: str | None) -> float | None:
    """``"01:02:03"`` or ``"02:03"`` to seconds; ``None`` for ``"?"`` or nothing."""
    if not text or "?" in text:
        return None
    total = 0.0
    for part in text.split(":"):
        if not part.isdigit():
            return None
        total = total * 60 + int(part)
    return total


def parse_tqdm(line: str) -> TqdmFrame | None:
    """The tqdm frame in ``line``, or None if it has none."""
    if "/" not in line or "[" not in line:
        return None
    m = _BAR.search(line)
    if m is None:
        return None
    rate = unit = None
    if m.group("rate") and m.group("rate") != "?":
        value = float(m.group("rate"))
        per, _, base = (m.group("unit") or "it/s").partition("/")
        if per == "s" and value > 0:          # "s/it": seconds per item
            rate, unit = 1.0 / value, f"{base}/s"
        else:
            rate, unit = value, f"{per}/s"
    postfix: dict[str, str] = {}
    for item in (m.group("postfix") or "").split(","):
        key, sep, value = item.partition("=")
        if sep:
            postfix[key.strip()] = value.strip()
    return TqdmFrame(
        prefix=m.group("prefix").strip().rstrip(":").strip(),
        n=int(m.group("n")), total=int(m.group("total")),
        elapsed=parse_clock(m.group("elapsed")), eta=parse_clock(m.group("remaining")),
        rate=rate, unit=unit, postfix=postfix,
    )
