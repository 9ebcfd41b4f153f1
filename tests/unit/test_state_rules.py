"""SPEC 3's transition table and the rules derived from it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.jobs import states
from chalicelib.jobs.model import JobStatus

W, A, C, F, X = (JobStatus.WAITING, JobStatus.ACTIVE, JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


@pytest.mark.parametrize(
    ("source", "target"),
    [(W, A), (A, W), (A, C), (A, F), (W, X), (A, X), (F, W), (X, W), (W, F)],
)
def test_allowed_transitions(source: JobStatus, target: JobStatus) -> None:
    assert states.allowed(source, target)


@pytest.mark.parametrize(
    ("source", "target"),
    [(C, W), (C, F), (C, X), (C, A), (F, A), (X, A), (F, X), (X, F), (W, C), (W, W), (A, A)],
)
def test_forbidden_transitions(source: JobStatus, target: JobStatus) -> None:
    assert not states.allowed(source, target)


def test_no_finished_job_is_ever_reopened_except_by_retry() -> None:
    for finished in states.FINISHED:
        targets = {dst for src, dst in states.TRANSITIONS if src == finished}
        assert targets <= {W}
    assert not {dst for src, dst in states.TRANSITIONS if src == C}


def test_can_cancel_exactly_waiting_and_active() -> None:
    assert {s for s in JobStatus if states.can_cancel(s)} == {W, A}


def test_sources_of_cancelled_are_waiting_and_active() -> None:
    assert states.sources_of(X) == {W, A}
    assert states.sources_of(A) == {W}


def test_backoff_grows_exponentially_and_stays_under_sqs_ceiling() -> None:
    highest = [states.backoff_seconds(attempt, rand=lambda: 1.0) for attempt in range(1, 15)]
    lowest = [states.backoff_seconds(attempt, rand=lambda: 0.0) for attempt in range(1, 15)]
    assert highest[:5] == [2, 4, 8, 16, 32]
    assert max(highest) == 900
    assert all(low <= high for low, high in zip(lowest, highest, strict=True))
    assert lowest[4] == 16  # jitter keeps at least half the delay


def test_status_fields_of_finished_states_release_the_lease() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for target in states.FINISHED:
        fields = states.status_fields(target, now)
        assert fields["finishedAt"] == now
        assert fields["canCancel"] is False
        assert fields["leaseOwner"] is None
    assert states.status_fields(C, now)["completedAt"] == now
    assert states.status_fields(F, now)["failedAt"] == now
    assert states.status_fields(X, now)["cancelledAt"] == now
    waiting = states.status_fields(W, now)
    assert waiting["canCancel"] is True
    assert waiting["finishedAt"] is None


def test_history_push_caps_at_fifty() -> None:
    push = states.history_push(W, A, at=datetime(2026, 1, 1, tzinfo=UTC), reason="claim", actor="w1")
    assert push["history"]["$slice"] == -50
    assert push["history"]["$each"][0]["from"] == "waiting"
    assert push["history"]["$each"][0]["to"] == "active"
