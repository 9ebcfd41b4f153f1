"""When the engine must stop, and how: abort on cancel, leave uploads open otherwise; stop before
the Lambda's time runs out, but never reserve more than half of an invocation's time."""

from __future__ import annotations

from typing import Any

from chalicelib.jobs.model import CreateJobRequest, UploadJob, new_job_document, utcnow
from chalicelib.upload.engine import StopMode
from chalicelib.worker.handler import stop_mode
from chalicelib.worker.progress import ProgressRecorder
from chalicelib.worker.results import WorkerOptions
from chalicelib.worker.supervisor import StopReason, Supervisor


def a_job() -> UploadJob:
    request = CreateJobRequest.model_validate(
        {
            "jobType": "upload-video-to-s3",
            "resourceType": "film",
            "resourceId": "64b7f0c2a1b2c3d4e5f60718",
            "sourcePath": "movie.mp4",
        }
    )
    return UploadJob.from_document(new_job_document(request, bucket="b", max_attempts=5, now=utcnow()))


def supervisor(remaining_ms: float, margin_ms: float = 1000) -> Supervisor:
    unused: Any = None  # the thread is never started: no store or queue is touched
    return Supervisor(
        store=unused,
        queue=unused,
        notifier=unused,
        job=a_job(),
        owner="me",
        recorder=ProgressRecorder(),
        lease_seconds=120,
        progress_interval_seconds=1,
        cancel_poll_seconds=0.5,
        remaining_ms=lambda: remaining_ms,
        margin_ms=margin_ms,
        receipt_handle=None,
    )


def test_with_time_left_and_no_request_the_engine_goes_on() -> None:
    assert stop_mode(supervisor(remaining_ms=5000)) is None


def test_time_running_short_suspends_leaving_uploads_open() -> None:
    watched = supervisor(remaining_ms=900)

    assert stop_mode(watched) == StopMode.SUSPEND
    assert watched.reason == StopReason.DEADLINE


def test_a_cancel_aborts_and_the_first_reason_wins() -> None:
    watched = supervisor(remaining_ms=5000)
    watched.stop(StopReason.CANCEL)
    watched.stop(StopReason.LEASE_LOST)

    assert stop_mode(watched) == StopMode.CANCEL
    assert watched.reason == StopReason.CANCEL


def test_a_lost_lease_suspends_for_the_new_owner() -> None:
    watched = supervisor(remaining_ms=5000)
    watched.stop(StopReason.LEASE_LOST)

    assert stop_mode(watched) == StopMode.SUSPEND


def test_the_time_margin_can_be_set_from_the_environment(monkeypatch: Any) -> None:
    monkeypatch.setenv("WORKER_TIME_MARGIN_SECONDS", "2.5")

    assert WorkerOptions.from_environment().time_margin_seconds == 2.5


def test_the_margin_never_takes_more_than_half_an_invocation() -> None:
    options = WorkerOptions(time_margin_seconds=60)

    assert options.margin_ms(900_000) == 60_000
    assert options.margin_ms(3_000) == 1_500
