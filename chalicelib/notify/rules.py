"""Which job events are notified (NOTIFY_EVENTS), and what a delivery's answer means.

An entry of NOTIFY_EVENTS is a WebSocket event name (`JobFailed`, `JobCompleted`, `JobCancelled`),
optionally narrowed to one `errorCode` with a colon: `JobFailed:STALLED`. Stalled and dead-lettered
jobs are failed jobs (`JobFailed` with errorCode `STALLED` / `DEAD_LETTERED`), so the default
`JobFailed` notifies every failure, those two included.

A delivery answered 2xx is done. A network error, a timeout, 408, 429 or any 5xx is retried:
SQS delivers the message again after `backoff_seconds(receive count)`, until the queue's
maxReceiveCount moves it to the dead-letter queue. Any other answer (3xx: redirects are not
followed; 4xx: the receiver refuses this request, e.g. a bad signature or a removed hook) would
be refused again: the message goes to the dead-letter queue at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from chalicelib.config import NOTIFIABLE_EVENT_NAMES, checked_event_entry
from chalicelib.realtime.events import JobEvent

NOTIFIABLE_EVENTS = tuple(JobEvent(name) for name in NOTIFIABLE_EVENT_NAMES)
RETRIED_STATUSES = frozenset({408, 429})
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 900  # 15 minutes, the longest SQS delay


@dataclass(frozen=True)
class EventFilter:
    """One NOTIFY_EVENTS entry: an event, and the one errorCode it is narrowed to (None: any)."""

    event: JobEvent
    error_code: str | None = None

    def matches(self, event: JobEvent, error_code: str | None) -> bool:
        return event == self.event and (self.error_code is None or self.error_code == error_code)

    def __str__(self) -> str:
        return self.event.value if self.error_code is None else f"{self.event.value}:{self.error_code}"


def parse_event_filter(entry: str) -> EventFilter:
    """`JobFailed` or `JobFailed:STALLED`; ValueError naming what is allowed otherwise."""
    name, _, code = checked_event_entry(entry).partition(":")
    return EventFilter(JobEvent(name), code or None)


def is_notified(filters: tuple[EventFilter, ...], event: JobEvent, error_code: str | None) -> bool:
    return any(rule.matches(event, error_code) for rule in filters)


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    REFUSED = "refused"  # retrying cannot help: straight to the dead-letter queue


def verdict(status: int | None) -> Verdict:
    """What an HTTP answer means for the delivery; None is a network error or a timeout."""
    if status is not None and 200 <= status < 300:
        return Verdict.DELIVERED
    if status is None or status >= 500 or status in RETRIED_STATUSES:
        return Verdict.RETRY
    return Verdict.REFUSED


def backoff_seconds(receive_count: int, base_seconds: int = BACKOFF_BASE_SECONDS) -> int:
    """How long SQS keeps a message hidden after its `receive_count`-th delivery failed: doubling, capped."""
    exponent = min(max(receive_count, 1) - 1, 16)
    return int(min(base_seconds * 2**exponent, BACKOFF_CAP_SECONDS))
