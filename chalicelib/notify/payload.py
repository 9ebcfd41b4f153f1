"""The JSON a receiver gets: the WebSocket event's fields, a few more of the job, and a `text` line.

`text` is one Slack-compatible line (Slack's incoming webhooks show it as the message; `&`, `<` and
`>` are escaped as Slack asks). `notificationId` is the same each time one ending of one job is
announced (a final event may be published again, chalicelib/worker/handler.py): a receiver that
keeps the ids it has seen drops the repeats, and SQS's own redeliveries with them.
"""

from __future__ import annotations

import hashlib
from typing import Any

from chalicelib.jobs.model import UploadJob, iso_z
from chalicelib.realtime.events import JobEvent, event_payload

MARKS = {JobEvent.FAILED: ":x:", JobEvent.COMPLETED: ":white_check_mark:", JobEvent.CANCELLED: ":no_entry_sign:"}
REASON_SHOWN = 300  # characters of failedReason in `text`; the payload has all of it


def notification_id(event: JobEvent, job: UploadJob) -> str:
    ended = job.finished_at or job.updated_at
    return hashlib.sha256(f"{job.job_id}|{event.value}|{iso_z(ended)}".encode()).hexdigest()[:32]


def build_payload(event: JobEvent, job: UploadJob, *, stage: str) -> dict[str, Any]:
    """The notification of `event` on `job`, `text` included."""
    payload = event_payload(event, job)
    payload.update(
        notificationId=notification_id(event, job),
        stage=stage,
        resourceName=job.resource_name,
        attempts=job.attempts,
        maxAttempts=job.max_attempts,
        finishedAt=iso_z(job.finished_at) if job.finished_at else None,
    )
    payload["text"] = slack_text(payload)
    return payload


def slack_text(payload: dict[str, Any]) -> str:
    """One line: what happened to which job of which title, and why (or where it is published)."""
    event = JobEvent(payload["event"])
    title = payload.get("resourceName") or payload["resourceId"]
    what = " ".join(str(part) for part in (payload["jobType"], payload.get("label")) if part)
    line = f"{MARKS.get(event, '')} {event.value} `{payload['jobId']}` ({what}) of {payload['resourceType']} {title}"
    if event == JobEvent.FAILED:
        reason = str(payload.get("failedReason") or "")
        if len(reason) > REASON_SHOWN:
            reason = reason[: REASON_SHOWN - 1] + "…"
        line += f": {payload.get('errorCode') or 'failed'}: {reason}"
    elif event == JobEvent.COMPLETED:
        seconds = payload.get("durationSeconds")
        line += (f" in {seconds:.1f} s" if isinstance(seconds, int | float) else "") + f": {payload.get('publicUrl')}"
    return _escape(f"{line} [stage {payload['stage']}]".strip())


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
