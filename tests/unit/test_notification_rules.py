"""NOTIFY_EVENTS picks which job endings are notified; a delivery's answer decides retry or refusal."""

from __future__ import annotations

import pytest

from chalicelib.notify.rules import (
    BACKOFF_CAP_SECONDS,
    EventFilter,
    Verdict,
    backoff_seconds,
    is_notified,
    parse_event_filter,
    verdict,
)
from chalicelib.realtime.events import JobEvent

DEFAULT = (parse_event_filter("JobFailed"),)


@pytest.mark.parametrize("error_code", ["SOURCE_NOT_FOUND", "STALLED", "DEAD_LETTERED", None])
def test_the_default_notifies_every_failure_stalled_and_dead_lettered_included(error_code: str | None) -> None:
    assert is_notified(DEFAULT, JobEvent.FAILED, error_code)


@pytest.mark.parametrize("event", [JobEvent.COMPLETED, JobEvent.CANCELLED, JobEvent.PROGRESS, JobEvent.QUEUED])
def test_the_default_notifies_nothing_else(event: JobEvent) -> None:
    assert not is_notified(DEFAULT, event, None)


def test_completions_are_notified_on_request() -> None:
    assert is_notified((parse_event_filter("JobCompleted"),), JobEvent.COMPLETED, None)


def test_an_entry_narrowed_to_an_error_code_notifies_that_code_only() -> None:
    only_dead = (parse_event_filter(" JobFailed:DEAD_LETTERED "),)
    assert only_dead == (EventFilter(JobEvent.FAILED, "DEAD_LETTERED"),)
    assert is_notified(only_dead, JobEvent.FAILED, "DEAD_LETTERED")
    assert not is_notified(only_dead, JobEvent.FAILED, "STALLED")


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ("JobQueued", "JobFailed, JobCompleted, JobCancelled"),
        ("failed", "JobFailed, JobCompleted, JobCancelled"),
        ("JobFailed:NO_SUCH_CODE", "STALLED"),
        ("JobCompleted:STALLED", "only JobFailed takes an errorCode"),
    ],
)
def test_an_unknown_entry_is_refused_naming_what_is_allowed(entry: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        parse_event_filter(entry)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (None, Verdict.RETRY),  # no answer: refused connection, timeout
        (408, Verdict.RETRY),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (503, Verdict.RETRY),
        (301, Verdict.REFUSED),  # redirects are not followed
        (400, Verdict.REFUSED),
        (401, Verdict.REFUSED),
        (404, Verdict.REFUSED),
        (410, Verdict.REFUSED),
    ],
)
def test_what_an_answer_means(status: int | None, expected: Verdict) -> None:
    assert verdict(status) == expected


def test_the_backoff_doubles_from_the_base_up_to_the_longest_sqs_delay() -> None:
    assert [backoff_seconds(n, 30) for n in range(1, 8)] == [30, 60, 120, 240, 480, 900, 900]
    assert backoff_seconds(0, 30) == 30
    assert backoff_seconds(1000, 30) == BACKOFF_CAP_SECONDS
    assert backoff_seconds(5, 0) == 0
