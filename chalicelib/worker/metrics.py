"""Which worker turns publish CloudWatch metrics (chalicelib/metrics/cloudwatch.py): a turn that
completed or failed its job; no other."""

from __future__ import annotations

from chalicelib.metrics import cloudwatch
from chalicelib.worker.results import Action, WorkerResult


def publish_result(result: WorkerResult, stage: str) -> None:
    """The metrics of one worker turn that finished its job; nothing for any other turn."""
    job = result.job
    if job is None:
        return
    if result.action == Action.COMPLETED:
        cloudwatch.publish_completed(stage, job.duration_seconds, job.uploaded_bytes)
    elif result.action == Action.FAILED:
        cloudwatch.publish_failed(stage, job.error_code or "UNKNOWN")
