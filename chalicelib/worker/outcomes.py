"""How a claimed job ends its turn: completed, failed, cancelled, or back to waiting and re-sent.

Every write here is guarded by the lease (`leaseOwner`): a worker that lost the job changes
nothing and reports LEASE_LOST. Going back to waiting is also guarded by `cancelRequested` not
being set, so a cancel that arrives during a retry or continuation is finished here, not lost.
Going back to waiting records its message as a pending send in the same write, so a worker dying
before the send leaves it to the outbox sweep (chalicelib/jobs/outbox.py), not to the overdue rule.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib.config import Settings
from chalicelib.errors import ErrorCode, PermanentUploadError, UploadError
from chalicelib.jobs import outbox, states
from chalicelib.jobs.model import JobStatus, UploadJob
from chalicelib.jobs.store import JobStore
from chalicelib.logs import logger
from chalicelib.queue import JobQueue
from chalicelib.realtime.events import JobEvent, Notifier
from chalicelib.upload.engine import MultipartCheckpoint, TransferEngine
from chalicelib.worker.lease import NOT_CANCELLED, renew
from chalicelib.worker.progress import ProgressRecorder
from chalicelib.worker.results import Action, WorkerResult

MISSING_SHOWN = 5  # how many missing keys a failedReason or history entry names


def abort_upload(engine: TransferEngine, bucket: str, upload: MultipartCheckpoint) -> bool:
    """Abort one multipart upload, best effort: False if it may still be open."""
    try:
        engine.abort(bucket, upload.key, upload.upload_id)
    except Exception:  # cleanup can abort it later: it stays in multipartUploads
        logger.warning("could not abort %s (%s)", upload.key, upload.upload_id, exc_info=True)
        return False
    return True


def abort_uploads(engine: TransferEngine, bucket: str, uploads: list[MultipartCheckpoint]) -> list[dict[str, Any]]:
    """Abort multipart uploads, best effort; returns the checkpoints of those still open."""
    return [upload.to_document() for upload in uploads if not abort_upload(engine, bucket, upload)]


def cancel_waiting(
    store: JobStore, notifier: Notifier, engine: TransferEngine, job: UploadJob, actor: str
) -> WorkerResult:
    """A waiting job with cancelRequested (a cancel that raced a retry): abort what it left open,
    then cancelled."""
    left = [MultipartCheckpoint.from_document(doc) for doc in job.multipart_uploads]
    still_open = abort_uploads(engine, job.bucket_name, left)
    cancelled = store.transition(
        job.job_id,
        JobStatus.CANCELLED,
        sources=[JobStatus.WAITING],
        reason="cancel requested",
        actor=actor,
        condition={"cancelRequested": True},
        set_fields={"multipartUploads": still_open},
    )
    if cancelled is None:
        return WorkerResult(Action.IGNORED, job.job_id, detail="another actor moved the job first")
    notifier.publish(JobEvent.CANCELLED, cancelled)
    return WorkerResult(Action.CANCELLED, job.job_id, JobStatus.CANCELLED)


def missing_sentence(keys: tuple[str, ...]) -> str:
    shown = ", ".join(keys[:MISSING_SHOWN])
    more = f" and {len(keys) - MISSING_SHOWN} more" if len(keys) > MISSING_SHOWN else ""
    return f"{shown}{more}"


class Finisher:
    """Ends the turn of one claimed job (`job` as the claim returned it)."""

    def __init__(
        self,
        *,
        store: JobStore,
        queue: JobQueue,
        notifier: Notifier,
        settings: Settings,
        engine: TransferEngine,
        job: UploadJob,
        owner: str,
        recorder: ProgressRecorder,
    ) -> None:
        self._store = store
        self._queue = queue
        self._notifier = notifier
        self._settings = settings
        self._engine = engine
        self._job = job
        self._owner = owner
        self._recorder = recorder

    @property
    def _id(self) -> str:
        return self._job.job_id

    def _guard(self, *, allow_cancelled: bool = True) -> dict[str, Any]:
        return {"leaseOwner": self._owner} if allow_cancelled else {"leaseOwner": self._owner, **NOT_CANCELLED}

    def _final_write(self) -> bool:
        """Write the last progress and checkpoint (renewing the lease); False if the job is not ours."""
        update = self._recorder.take_update(force=True)
        return renew(self._store, self._id, self._owner, self._settings.lease_seconds, update) is not None

    def lost(self) -> WorkerResult:
        logger.warning("job %s: lost the lease; another actor owns the job", self._id)
        return WorkerResult(Action.LEASE_LOST, self._id, detail="the job is no longer ours")

    # Endings -----------------------------------------------------------------------------------

    def complete(self, *, public_url: str, total_bytes: int, total_files: int) -> WorkerResult:
        if not self._final_write():
            return self.lost()
        # Checkpoints of keys the plan no longer has (the source changed): nothing will resume them.
        still_open = abort_uploads(self._engine, self._job.bucket_name, self._recorder.checkpoints())
        now = self._store.now()
        started = self._job.started_at or now
        fields = {
            "completedAt": now,
            "finishedAt": now,
            "durationSeconds": round((now - started).total_seconds(), 3),
            "progress": 100,
            "uploadedBytes": total_bytes,
            "uploadedFiles": total_files,
            "publicUrl": public_url,
            "multipartUploads": still_open,
            "nextAttemptAt": None,
            "errorCode": None,
            "failedReason": None,
            "errorMessage": None,
        }
        job = self._store.transition(
            self._id,
            JobStatus.COMPLETED,
            sources=[JobStatus.ACTIVE],
            reason="every file is in the bucket",
            actor=self._owner,
            condition=self._guard(),
            set_fields=fields,
        )
        if job is None:
            return self.lost()
        self._notifier.publish(JobEvent.PROGRESS, job)
        self._notifier.publish(JobEvent.COMPLETED, job)
        return WorkerResult(Action.COMPLETED, self._id, JobStatus.COMPLETED, job=job)

    def fail(self, error: UploadError, reason: str | None = None) -> WorkerResult:
        if not self._final_write():
            return self.lost()
        job = self._store.transition(
            self._id,
            JobStatus.FAILED,
            sources=[JobStatus.ACTIVE],
            reason=f"{error.code}: {reason or error.reason}",
            actor=self._owner,
            condition=self._guard(),
            set_fields={
                "errorCode": str(error.code),
                "failedReason": reason or error.reason,
                "errorMessage": error.detail,
                "nextAttemptAt": None,
            },
        )
        if job is None:
            return self.lost()
        logger.info("job %s failed: %s (%s)", self._id, error.code, error.detail, errorCode=str(error.code))
        self._notifier.publish(JobEvent.FAILED, job)
        return WorkerResult(Action.FAILED, self._id, JobStatus.FAILED, str(error.code), job=job)

    def retry_or_fail(self, error: UploadError) -> WorkerResult:
        attempts = self._job.attempts
        if attempts >= self._job.max_attempts:
            plural = "s" if attempts != 1 else ""
            return self.fail(error, f"{error.reason} It failed {attempts} time{plural}; no attempts are left.")
        delay = states.backoff_seconds(attempts)
        if not self._final_write():
            return self.lost()
        job = self._back_to_waiting(
            reason=f"attempt {attempts} failed ({error.code}); retry in {delay} s",
            set_fields={
                "nextAttemptAt": self._store.now() + timedelta(seconds=delay),
                "errorCode": str(error.code),
                "errorMessage": f"attempt {attempts} of {self._job.max_attempts}: {error.reason} {error.detail}",
            },
        )
        if job is None:
            return self._cancel_or_lost()
        outbox.send(self._store, self._queue, job, delay_seconds=delay)
        self._notifier.publish(JobEvent.QUEUED, job)
        return WorkerResult(Action.RETRY_SCHEDULED, self._id, JobStatus.WAITING, f"retry in {delay} s")

    def continue_later(self) -> WorkerResult:
        """Lambda time runs short: checkpoint written, back to waiting without spending the attempt."""
        if not self._final_write():
            return self.lost()
        job = self._back_to_waiting(
            reason="the invocation's time ran short; continued in a new message",
            set_fields={"nextAttemptAt": self._store.now()},
            inc={"attempts": -1, "continuations": 1},
        )
        if job is None:
            return self._cancel_or_lost()
        outbox.send(self._store, self._queue, job, continuation=True)
        self._notifier.publish(JobEvent.QUEUED, job)
        return WorkerResult(Action.CONTINUED, self._id, JobStatus.WAITING)

    def wait_for_references(self, missing: tuple[str, ...]) -> WorkerResult:
        """A master whose references are not all there: re-checked later, without spending an
        attempt or announcing a JobQueued, until MASTER_WAIT_SECONDS since its first check."""
        now = self._store.now()
        waited = (now - (self._job.started_at or now)).total_seconds()
        if waited >= self._settings.master_wait_seconds:
            minutes = round(waited / 60)
            error = PermanentUploadError(
                ErrorCode.MISSING_REFERENCES,
                f"The master playlist was not published: after waiting {minutes} minutes these files it "
                f"references are still not in the bucket: {missing_sentence(missing)}.",
                "missing: " + ", ".join(missing),
            )
            return self.fail(error)
        recheck = self._settings.master_recheck_seconds
        job = self._back_to_waiting(
            reason=f"waiting for {missing_sentence(missing)}",
            set_fields={"nextAttemptAt": now + timedelta(seconds=recheck)},
            inc={"attempts": -1},
        )
        if job is None:
            return self._cancel_or_lost()
        outbox.send(self._store, self._queue, job, delay_seconds=recheck)
        return WorkerResult(Action.MASTER_WAITING, self._id, JobStatus.WAITING, f"re-check in {recheck} s")

    def cancel(self) -> WorkerResult:
        """cancelRequested: nothing new started, requests in flight ended; abort what is open."""
        for upload in self._recorder.checkpoints():
            if abort_upload(self._engine, self._job.bucket_name, upload):
                self._recorder.multipart_aborted(upload.key, upload.upload_id)
        if not self._final_write():
            return self.lost()
        job = self._store.transition(
            self._id,
            JobStatus.CANCELLED,
            sources=[JobStatus.ACTIVE],
            reason="cancel requested",
            actor=self._owner,
            condition=self._guard(),
            set_fields={"nextAttemptAt": None},
        )
        if job is None:
            return self.lost()
        self._notifier.publish(JobEvent.CANCELLED, job)
        return WorkerResult(Action.CANCELLED, self._id, JobStatus.CANCELLED)

    # Helpers -----------------------------------------------------------------------------------

    def _back_to_waiting(
        self, *, reason: str, set_fields: dict[str, Any], inc: dict[str, int] | None = None
    ) -> UploadJob | None:
        return self._store.transition(
            self._id,
            JobStatus.WAITING,
            sources=[JobStatus.ACTIVE],
            reason=reason,
            actor=self._owner,
            condition=self._guard(allow_cancelled=False),
            set_fields={**set_fields, **outbox.pending_send(self._store.now())},
            inc=inc,
        )

    def _cancel_or_lost(self) -> WorkerResult:
        """Going back to waiting failed: either a cancel arrived (finish it) or the job is gone."""
        current = self._store.find(self._id)
        if current and current.status == JobStatus.ACTIVE and current.lease_owner == self._owner:
            return self.cancel()
        return self.lost()
