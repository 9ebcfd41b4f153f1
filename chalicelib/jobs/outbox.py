"""The message that follows a state change, made crash-safe by an outbox kept on the job itself.

A write that leaves a job waiting for a message (create, retry, a worker going back to waiting) sets
`sendPendingAt` in that same write; the actor then sends the message and clears the field, guarded
by the value it set (a newer pending send is left alone). An actor that dies or fails in between
leaves the field set, and `send_pending` (run by every worker invocation and by the 5-minute
schedule) re-sends the message of every waiting job whose send has been pending for longer than
`send_grace_seconds`, with what is left of its backoff (`nextAttemptAt`) as the delay.

A send that happened but was not yet cleared may go twice: the worker tolerates duplicates (one
claim wins; a message for a job that is not due is put back for the rest of its delay).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, Protocol

from chalicelib.jobs.model import JobStatus, QueueName, UploadJob
from chalicelib.jobs.store import JobStore
from chalicelib.logs import logger

SEND_PENDING = "sendPendingAt"
SWEEP_LIMIT = 100  # a bound on one sweep's sends; what is left goes in the next sweep


class MessageQueue(Protocol):
    """The part of chalicelib.queue.JobQueue the outbox uses: the domain names what it needs of the
    SQS adapter instead of importing it (the adapter imports the domain's model)."""

    def send(self, queue: QueueName, job_id: str, *, delay_seconds: int = 0, continuation: bool = False) -> object: ...


def pending_send(now: datetime) -> dict[str, datetime]:
    """The `$set` field that records, with a state change, that its message is still to send."""
    return {SEND_PENDING: now}


def send_grace_seconds(lease_seconds: float) -> float:
    """How long a healthy actor may take between its write and clearing it: the send and the
    clearing write take one call budget each at most (LEASE_SECONDS/6, chalicelib/timeouts.py);
    half a lease leaves room to spare."""
    return lease_seconds / 2


def mark_sent(store: JobStore, job: UploadJob) -> None:
    """The message of `job`'s pending send is on its way: clear that pending send only."""
    if job.send_pending_at is not None:
        store.update_fields(job.job_id, {SEND_PENDING: job.send_pending_at}, {"$unset": {SEND_PENDING: ""}})


def send(
    store: JobStore, queue: MessageQueue, job: UploadJob, *, delay_seconds: int = 0, continuation: bool = False
) -> None:
    """Send `job`'s message, then clear its pending send. Raises if SQS fails (the field stays)."""
    queue.send(job.queue_name, job.job_id, delay_seconds=delay_seconds, continuation=continuation)
    mark_sent(store, job)


def remaining_delay(job: UploadJob, now: datetime) -> int:
    """Whole seconds until the job's next attempt is due (0 when due or unknown)."""
    if job.next_attempt_at is None:
        return 0
    return max(0, math.ceil((job.next_attempt_at - now).total_seconds()))


def overdue_query(now: datetime, grace_seconds: float) -> dict[str, Any]:
    """Waiting jobs whose message has been pending for longer than the grace (status, sendPendingAt index)."""
    return {"status": JobStatus.WAITING.value, SEND_PENDING: {"$lte": now - timedelta(seconds=grace_seconds)}}


def send_pending(store: JobStore, queue: MessageQueue, *, grace_seconds: float, limit: int = SWEEP_LIMIT) -> int:
    """Re-send every overdue pending send (at most `limit`); how many were sent. A send that
    fails ends the sweep (it stays pending for the next one); only MongoDB failing raises."""
    now = store.now()
    sent = 0
    for document in store.scan(overdue_query(now, grace_seconds), limit=limit):
        job = UploadJob.from_document(document)
        try:
            send(store, queue, job, delay_seconds=remaining_delay(job, now))
        except Exception:  # SQS is failing: the rest waits for the next sweep
            logger.exception(
                "could not send the pending message of %s; the next sweep will", job.job_id, jobId=job.job_id
            )
            break
        logger.info(
            "sent the pending message of %s (its sender stopped before sending it)", job.job_id, jobId=job.job_id
        )
        sent += 1
    return sent
