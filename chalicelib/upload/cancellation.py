"""How a run is told to stop, and how a unit of work that can stop midway says it did."""

from __future__ import annotations

from enum import StrEnum

# While its units run, the job thread asks `should_stop()` at least this often: a deadline or a
# cancel is noticed even when no unit ends for a long time.
STOP_POLL_SECONDS = 0.2


class StopMode(StrEnum):
    """What `should_stop()` answers when the run must stop."""

    CANCEL = "cancel"  # the job is cancelled: abort open multipart uploads
    SUSPEND = "suspend"  # time is running out: leave them open, the continuation resumes them


def never_stop() -> StopMode | None:
    return None


class UnitInterrupted(Exception):
    """A unit of work stopped midway because its run is stopping."""
