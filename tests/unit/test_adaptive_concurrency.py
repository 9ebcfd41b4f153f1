"""The AIMD rule: grows while throughput grows, halves on throttling, stays within its bounds."""

from __future__ import annotations

import pytest

from chalicelib.upload.concurrency import INCREASE_STEP, AdaptiveConcurrency, is_throttle_answer


def run_window(rule: AdaptiveConcurrency, start: float, seconds: float, *, saturated: bool = True) -> float:
    """`rule.limit` requests start together and all end `seconds` later (a latency-bound round)."""
    tickets = [rule.started() for _ in range(rule.limit)]
    end = start + seconds
    for ticket in tickets:
        rule.finished(ticket, end, throttled=False, saturated=saturated)
    return end


def warmed_up(start: int = 32, maximum: int = 128) -> AdaptiveConcurrency:
    rule = AdaptiveConcurrency(start, maximum)
    rule.finished(rule.started(), 0.0, throttled=False, saturated=True)  # opens the first window
    return rule


def test_it_starts_at_the_configured_level() -> None:
    assert AdaptiveConcurrency(32, 128).limit == 32


def test_it_doubles_each_round_while_throughput_grows_from_the_start() -> None:
    rule = warmed_up(32, 512)
    now = 0.0
    limits = []
    for _ in range(3):
        now = run_window(rule, now, 0.1)  # same latency, more requests: more throughput
        limits.append(rule.limit)
    assert limits == [64, 128, 256]


def test_after_the_first_drop_it_grows_by_a_step_each_round() -> None:
    rule = warmed_up(32, 512)
    now = run_window(rule, 0.0, 0.1)
    now = run_window(rule, now, 0.5)  # a drop: slow start is over, the limit stays
    assert rule.limit == 64
    limits = []
    for _ in range(2):
        now = run_window(rule, now, 0.1)
        limits.append(rule.limit)
    assert limits == [64 + INCREASE_STEP, 64 + 2 * INCREASE_STEP]


def test_it_stops_growing_when_throughput_drops() -> None:
    rule = warmed_up()
    now = run_window(rule, 0.0, 0.1)
    grown = rule.limit
    run_window(rule, now, 0.5)  # more requests in flight, each much slower: the link is full
    assert rule.limit == grown


def test_it_does_not_grow_when_the_limit_was_not_what_held_requests_back() -> None:
    rule = warmed_up()
    run_window(rule, 0.0, 0.1, saturated=False)
    assert rule.limit == 32


def test_it_never_grows_above_the_maximum() -> None:
    rule = warmed_up(32, 50)
    now = 0.0
    for _ in range(10):
        now = run_window(rule, now, 0.1)
    assert rule.limit == 50


def test_a_throttling_answer_halves_the_limit_once_per_round() -> None:
    rule = warmed_up(32, 128)
    in_flight = [rule.started() for _ in range(32)]
    for ticket in in_flight:  # every request of the round is answered SlowDown
        rule.finished(ticket, 1.0, throttled=True, saturated=True)
    assert rule.limit == 16
    rule.finished(rule.started(), 1.1, throttled=True, saturated=True)  # sent after the decrease
    assert rule.limit == 8


def test_it_never_goes_below_one() -> None:
    rule = warmed_up(2, 8)
    for step in range(5):
        rule.finished(rule.started(), float(step), throttled=True, saturated=True)
    assert rule.limit == 1


def test_it_grows_again_after_a_decrease() -> None:
    rule = warmed_up(32, 128)
    rule.finished(rule.started(), 1.0, throttled=True, saturated=True)
    run_window(rule, 1.0, 0.1)
    assert rule.limit == 16 + INCREASE_STEP


@pytest.mark.parametrize("maximum", [32, 8])
def test_a_maximum_at_or_below_the_start_is_a_fixed_limit(maximum: int) -> None:
    rule = warmed_up(32, maximum)
    assert not rule.adaptive
    now = run_window(rule, 0.0, 0.1)
    rule.finished(rule.started(), now, throttled=True, saturated=True)
    run_window(rule, now, 0.1)
    assert rule.limit == 32


@pytest.mark.parametrize(
    ("code", "status", "throttle"),
    [
        ("SlowDown", 503, True),
        ("ServiceUnavailable", 503, True),
        ("RequestLimitExceeded", 400, True),
        ("Throttling", 400, True),
        ("ThrottlingException", 400, True),
        ("", 503, True),
        ("", 429, True),
        ("InternalError", 500, False),
        ("AccessDenied", 403, False),
        ("RequestTimeout", 400, False),
    ],
)
def test_throttling_answers_are_recognised(code: str, status: int, throttle: bool) -> None:
    assert is_throttle_answer(code, status) is throttle
