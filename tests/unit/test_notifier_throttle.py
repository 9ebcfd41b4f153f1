"""uploadProgress throttle (SPEC 8): the first at once, then at most one per job per interval, the newest
held back is sent when the interval ends, and the one at 100 always goes."""

from __future__ import annotations

from chalicelib.realtime.notifier import ProgressThrottle

INTERVAL = 1.0


def test_first_progress_of_a_job_goes_at_once_and_the_next_waits_for_the_interval() -> None:
    throttle: ProgressThrottle[int] = ProgressThrottle(INTERVAL)

    assert throttle.offer("job", 5, at=10.0)
    assert not throttle.offer("job", 10, at=10.4)
    assert throttle.offer("job", 30, at=11.0)


def test_the_newest_held_back_progress_is_released_when_the_interval_ends() -> None:
    throttle: ProgressThrottle[int] = ProgressThrottle(INTERVAL)
    throttle.offer("job", 5, at=10.0)
    throttle.offer("job", 10, at=10.2)
    throttle.offer("job", 20, at=10.6)

    assert throttle.next_due() == 11.0
    assert throttle.release_due(10.9) == []
    assert throttle.release_due(11.0) == [20]
    assert throttle.next_due() is None
    # The release counts as a send: the next progress waits a full interval again.
    assert not throttle.offer("job", 25, at=11.5)


def test_progress_at_100_always_goes_and_drops_what_was_held() -> None:
    throttle: ProgressThrottle[int] = ProgressThrottle(INTERVAL)
    throttle.offer("job", 5, at=10.0)
    throttle.offer("job", 90, at=10.1)

    assert throttle.offer("job", 100, at=10.2, final=True)
    assert throttle.release_all(20.0) == []


def test_jobs_are_throttled_independently() -> None:
    throttle: ProgressThrottle[str] = ProgressThrottle(INTERVAL)

    assert throttle.offer("a", "a1", at=10.0)
    assert throttle.offer("b", "b1", at=10.1)
    assert not throttle.offer("a", "a2", at=10.2)
    assert not throttle.offer("b", "b2", at=10.3)
    assert throttle.release_due(11.05) == ["a2"]
    assert throttle.release_all(11.06) == ["b2"]


def test_a_job_event_resets_the_job_so_its_next_progress_goes_at_once() -> None:
    throttle: ProgressThrottle[int] = ProgressThrottle(INTERVAL)
    throttle.offer("job", 40, at=10.0)
    throttle.offer("job", 45, at=10.1)

    throttle.forget("job")  # e.g. JobQueued after a retryable error: the held 45 % is stale

    assert throttle.release_all(10.2) == []
    assert throttle.offer("job", 0, at=10.3)


def test_a_zero_interval_sends_every_progress() -> None:
    throttle: ProgressThrottle[int] = ProgressThrottle(0.0)

    assert all(throttle.offer("job", percent, at=10.0) for percent in range(0, 100, 10))
