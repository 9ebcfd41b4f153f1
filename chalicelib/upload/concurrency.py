"""The adaptive concurrency rule (AIMD): how many requests a run keeps in flight.

Pure: it is told when a request starts and ends (with the time, and whether the storage asked
to slow down) and answers the limit; the scheduler does the rest.

- Start at `start` (UPLOAD_CONCURRENCY).
- Growth: a window is `limit` completed requests (about one round trip's worth, as TCP grows
  once per round trip). When a window ends while the limit was what held requests back
  (`saturated`: work was waiting for a slot), and its throughput (requests per second) did not
  drop below the previous window's (within TOLERANCE), the limit grows. Small files are latency
  bound: twice the requests in flight is twice the throughput, until the link, the storage or
  `maximum` says otherwise.
  - Slow start, as TCP's: the limit doubles each window until the first window whose throughput
    dropped or the first throttling answer. A rendition of 600 segments is only a few windows
    long: growing by a step from 32 it would reach about 90 by its end; doubling reaches 128 in two.
  - Then additive increase: `step` per window.
- Multiplicative decrease: a throttling answer (503 SlowDown and kin) halves the limit, never
  below 1. Once per round: answers to requests that started before the last decrease were
  sent at the old rate and say nothing new, so they do not halve it again.
- `maximum` (UPLOAD_CONCURRENCY_MAX) caps it; `maximum <= start` is a fixed limit (never
  changes, and the scheduler keeps today's behaviour of failing the run on throttling).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

INCREASE_STEP = 8
DECREASE_FACTOR = 0.5
# A window this much slower than the previous one is a drop, not noise.
TOLERANCE = 0.1

# What the storage answers when it wants fewer requests (S3, Spaces, and the AWS SDKs' list).
THROTTLE_CODES = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequests",
        "TooManyRequestsException",
    }
)
THROTTLE_STATUSES = frozenset({429, 503})


def is_throttle_answer(code: str, status: int) -> bool:
    """An error answer that asks the client to slow down."""
    return code in THROTTLE_CODES or status in THROTTLE_STATUSES


@dataclass(frozen=True)
class ConcurrencySummary:
    """How a run's limit moved: where it started, its lowest and highest, where it ended, and
    how many requests the storage throttled (counting each answer botocore retried)."""

    start: int
    lowest: int
    highest: int
    final: int
    throttled: int


class AdaptiveConcurrency:
    """The limit of one run. Not thread-safe: the job thread alone calls it."""

    def __init__(self, start: int, maximum: int, *, step: int = INCREASE_STEP) -> None:
        self.start = max(1, start)
        self.maximum = max(self.start, maximum)
        self.step = step
        self.limit = self.start
        self._lowest = self._highest = self.start
        self._throttled = 0
        self._started = 0  # tickets handed out
        self._decreased_at = 0  # first ticket sent after the last decrease
        self._window_start: float | None = None
        self._window_count = 0
        self._window_saturated = False
        self._last_rate: float | None = None
        self._slow_start = True

    @property
    def adaptive(self) -> bool:
        return self.maximum > self.start

    def started(self) -> int:
        """A request starts; its ticket, to hand back when it ends."""
        self._started += 1
        return self._started

    def finished(self, ticket: int, now: float, *, throttled: bool, saturated: bool) -> None:
        """The request `ticket` ended at `now` (seconds, any monotonic clock). `throttled`: the
        storage asked to slow down (on any attempt); `saturated`: work was waiting for a slot."""
        self._throttled += throttled
        if not self.adaptive:
            return
        if throttled:
            self._decrease(ticket, now)
            return
        if self._window_start is None:
            self._window_start = now  # the first completion opens the first window
            return
        self._window_count += 1
        self._window_saturated |= saturated
        if self._window_count >= self.limit:
            self._close_window(now)

    def summary(self) -> ConcurrencySummary:
        return ConcurrencySummary(self.start, self._lowest, self._highest, self.limit, self._throttled)

    def _decrease(self, ticket: int, now: float) -> None:
        if ticket <= self._decreased_at:
            return  # sent before the last decrease: already answered for
        self.limit = max(1, math.floor(self.limit * DECREASE_FACTOR))
        self._lowest = min(self._lowest, self.limit)
        self._decreased_at = self._started
        self._slow_start = False
        self._last_rate = None  # the new limit's throughput is a new baseline
        self._open_window(now)

    def _close_window(self, now: float) -> None:
        assert self._window_start is not None
        rate = self._window_count / max(now - self._window_start, 1e-9)
        no_drop = self._last_rate is None or rate >= self._last_rate * (1 - TOLERANCE)
        if not no_drop:
            self._slow_start = False
        elif self._window_saturated:
            grown = self.limit * 2 if self._slow_start else self.limit + self.step
            self.limit = min(self.maximum, grown)
            self._highest = max(self._highest, self.limit)
        self._last_rate = rate
        self._open_window(now)

    def _open_window(self, now: float) -> None:
        self._window_start = now
        self._window_count = 0
        self._window_saturated = False
