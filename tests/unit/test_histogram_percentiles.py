"""Percentiles read from a durations histogram (chalicelib/jobs/percentiles.py): pure math."""

from __future__ import annotations

import math
import random
from collections import defaultdict

import pytest

from chalicelib.jobs.percentiles import BINS_PER_DECADE, Bin, key_of, percentile, summary


def exact(values: list[float], fraction: float) -> float:
    """Nearest rank, the definition the histogram approximates."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * fraction)) - 1]


def histogram(values: list[float]) -> list[Bin]:
    """What the store's $group builds: count, min and max per bin."""
    grouped: dict[int, list[float]] = defaultdict(list)
    for value in values:
        grouped[key_of(value)].append(value)
    return [Bin(key, len(vs), min(vs), max(vs)) for key, vs in grouped.items()]


def test_an_empty_histogram_has_no_percentile() -> None:
    assert percentile([], 0.95) is None
    assert summary([], {"p50": 0.5}) == {"p50": None}


def test_bins_of_equal_values_or_of_two_values_give_the_exact_answer() -> None:
    values = [10.0, 20.0, 20.5, 300.0, 300.0, 300.0, 305.0]  # 20 and 20.5 share a bin
    for fraction in (0.01, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0):
        assert percentile(histogram(values), fraction) == exact(values, fraction)


def test_a_rank_inside_a_crowded_bin_is_interpolated_between_its_extremes() -> None:
    # 5 durations in one bin from 100 to 104: the 3rd of 5 is read halfway between them.
    assert percentile([Bin(key=100, count=5, low=100.0, high=104.0)], 0.6) == 102.0


def test_bin_order_not_input_order_decides() -> None:
    bins = [Bin(key=key_of(50.0), count=1, low=50.0, high=50.0), Bin(key=key_of(5.0), count=9, low=5.0, high=5.0)]
    assert percentile(bins, 0.9) == 5.0
    assert percentile(bins, 0.91) == 50.0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_many_durations_stay_within_one_bin_width_of_the_exact_percentile(seed: int) -> None:
    rng = random.Random(seed)
    values = [rng.lognormvariate(3, 1.5) for _ in range(20_000)]
    bins = histogram(values)
    assert len(bins) < 600  # bounded by the range of durations, not by their number
    width = 10 ** (1 / BINS_PER_DECADE)
    for fraction in (0.5, 0.9, 0.95, 0.99):
        answer, truth = percentile(bins, fraction), exact(values, fraction)
        assert answer is not None
        assert truth / width <= answer <= truth * width


def test_zero_and_tiny_durations_share_the_lowest_bin() -> None:
    assert key_of(0.0) == key_of(-1.0) == key_of(0.0001) == key_of(0.001)
    assert percentile(histogram([0.0, 0.0, 7.5]), 0.5) == 0.0


def test_summary_rounds_to_the_millisecond() -> None:
    assert summary(histogram([1.23456]), {"p99": 0.99}) == {"p99": 1.235}
