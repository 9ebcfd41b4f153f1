"""Duration percentiles from a histogram that MongoDB builds, never from every duration at once.

Collecting every duration into one array (`$push`) breaks Atlas's 16 MB document limit near a million
jobs, and `$percentile` exists only on MongoDB 7+ (mongomock lacks it). Instead a `$group` counts
durations per logarithmic bin (`floor(log10(seconds) * BINS_PER_DECADE)`), keeping each bin's
smallest and largest duration; the percentile is then read from those few hundred bins here.

The answer is a nearest-rank percentile within the bin that holds that rank, interpolated between
the bin's smallest and largest duration by position: exact when the bin's durations are all equal or
it holds at most two, and never further from the exact value than the bin's width (10^(1/50), 4.7 %).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

BINS_PER_DECADE = 50
# Shorter durations (a millisecond) share the lowest bin, and $log10 never sees zero or a negative.
SMALLEST_SECONDS = 0.001


@dataclass(frozen=True)
class Bin:
    """One histogram bin: how many durations fell in it, the smallest and the largest of them."""

    key: int
    count: int
    low: float
    high: float


def bin_key(field: str) -> dict[str, Any]:
    """The aggregation expression of a duration's bin (the Python twin is `key_of`)."""
    clamped = {"$max": [f"${field}", SMALLEST_SECONDS]}
    return {"$floor": {"$multiply": [{"$log10": clamped}, BINS_PER_DECADE]}}


def key_of(seconds: float) -> int:
    """The bin of one duration, as `bin_key` computes it in MongoDB."""
    return math.floor(math.log10(max(seconds, SMALLEST_SECONDS)) * BINS_PER_DECADE)


def bin_accumulators(field: str) -> dict[str, Any]:
    """The `$group` accumulators a bin needs."""
    return {"count": {"$sum": 1}, "low": {"$min": f"${field}"}, "high": {"$max": f"${field}"}}


def bins_from_groups(groups: Iterable[Mapping[str, Any]]) -> list[Bin]:
    """`Bin`s from `$group` results shaped `{"key", "count", "low", "high"}`, in key order."""
    bins = [Bin(int(g["key"]), int(g["count"]), float(g["low"]), float(g["high"])) for g in groups]
    return sorted(bins, key=lambda b: b.key)


def percentile(bins: Iterable[Bin], fraction: float) -> float | None:
    """The nearest-rank percentile (`fraction` in (0, 1]) of the histogram; None when it is empty."""
    ordered = sorted((b for b in bins if b.count > 0), key=lambda b: b.key)
    total = sum(b.count for b in ordered)
    if total == 0:
        return None
    rank = max(1, math.ceil(total * fraction))  # 1-based rank of the answer among all durations
    seen = 0
    for current in ordered:
        if seen + current.count >= rank:
            position = rank - seen - 1  # 0 .. count - 1 inside this bin
            if current.count == 1:
                return current.low
            return current.low + (current.high - current.low) * position / (current.count - 1)
        seen += current.count
    return ordered[-1].high  # unreachable: the last bin always reaches the rank


def summary(bins: Iterable[Bin], fractions: Mapping[str, float]) -> dict[str, float | None]:
    """Several percentiles of one histogram, each rounded to the millisecond: {"p50": ..., ...}."""
    kept = list(bins)
    return {name: _rounded(percentile(kept, fraction)) for name, fraction in fractions.items()}


def _rounded(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None
