"""What a queue of jobs will cost: the sum of the known ETAs times the price per hour.

A job whose ETA is unknown (queued, or running before its first progress line) is counted as unknown, never
as zero: the estimate says how many jobs it leaves out.

>>> c = queue_cost([3600.0, 1800.0, None], price_per_hour=0.40, spent=1.2)
>>> round(c.cost, 2), c.unknown_jobs
(0.6, 1)
>>> c.summary()
'$0.400/h · spent ≈ $1.20 · queue ≈ $0.600 (1.5 h; 1 job without ETA)'
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

__all__ = ["QueueCost", "queue_cost", "money"]


def money(x: float) -> str:
    """Dollars, with more digits under $1: ``money(0.4) == '$0.400'``, ``money(12.345) == '$12.35'``."""
    return f"${x:.3f}" if abs(x) < 1 else f"${x:.2f}"


@dataclass(frozen=True)
class QueueCost:
    """Price per hour, spend so far and the estimated cost of the running and queued jobs."""

    price_per_hour: float | None
    spent: float | None
    known_seconds: float
    known_jobs: int
    unknown_jobs: int

    @property
    def cost(self) -> float | None:
        """ETA hours x price for the jobs with an ETA; None without a price."""
        return None if self.price_per_hour is None else self.known_seconds / 3600 * self.price_per_hour

    def summary(self) -> str:
        """One line: ``$0.400/h · spent ≈ $1.20 · queue ≈ $0.60 (1.5 h; 1 job without ETA)``."""
        parts = [f"{money(self.price_per_hour)}/h" if self.price_per_hour is not None else "price unknown"]
        if self.spent is not None:
            parts.append(f"spent ≈ {money(self.spent)}")
        jobs = self.known_jobs + self.unknown_jobs
        if not jobs:
            parts.append("queue empty")
        else:
            unknown = f"{self.unknown_jobs} job{'s' * (self.unknown_jobs != 1)} without ETA"
            if self.known_jobs and self.cost is not None:
                hours = f"{self.known_seconds / 3600:.1f} h"
                parts.append(f"queue ≈ {money(self.cost)} ({hours}" + (f"; {unknown})" if self.unknown_jobs else ")"))
            else:
                parts.append(f"queue cost unknown ({unknown})")
        return " · ".join(parts)


def queue_cost(etas: Iterable[float | None], price_per_hour: float | None, spent: float | None = None) -> QueueCost:
    """Sum the ETAs (seconds) of the running and queued jobs; ``None`` ETAs are counted as unknown."""
    items = list(etas)
    known = [max(0.0, float(e)) for e in items if e is not None]
    return QueueCost(price_per_hour, spent, sum(known), len(known), len(items) - len(known))
