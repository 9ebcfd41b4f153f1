"""One queue message: find or create the job, claim it, run it, end its turn (SPEC 6).

`handle_message` is what the Lambda handlers and the local pollers call. It returns normally
whenever the message should be deleted (including malformed messages and jobs with nothing to
do); it raises only when SQS should deliver the message again: MongoDB or SQS unreachable.
Every invocation first sends the messages other actors left pending (chalicelib/jobs/outbox.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from pymongo.errors import PyMongoError

from chalicelib import logs
from chalicelib.errors import ErrorCode, Invalid, PermanentUploadError, RetryableUploadError, UploadError
from chalicelib.jobs import layout, outbox
from chalicelib.jobs.model import JobStatus, UploadJob
from chalicelib.logs import logger
from chalicelib.queue import parse_message
from chalicelib.realtime.events import JobEvent
from chalicelib.services import Services
from chalicelib.upload.engine import StopMode, TransferEngine
from chalicelib.upload.sources import Sources
from chalicelib.usecases.intake import create_from_spec, message_job_id
from chalicelib.worker import lease
from chalicelib.worker.outcomes import Finisher, cancel_waiting
from chalicelib.worker.plans import plan_job, public_url
from chalicelib.worker.progress import ProgressRecorder
from chalicelib.worker.results import Action, WorkerOptions, WorkerResult
from chalicelib.worker.runner import Failed, MissingReferences, RunOutcome, Stopped, missing_keys, run_plan
from chalicelib.worker.supervisor import VISIBILITY_MARGIN_SECONDS, StopReason, Supervisor

FINAL_EVENTS = {
    JobStatus.COMPLETED: JobEvent.COMPLETED,
    JobStatus.FAILED: JobEvent.FAILED,
    JobStatus.CANCELLED: JobEvent.CANCELLED,
}
# A dead worker's message comes back at most a lease and a margin after its last renewal.
REANNOUNCE_LEASES = 2
UNEXPECTED_REASON = "The upload stopped on an unexpected error; it will be tried again."
WORKER_SWEEP_LIMIT = 10  # pending sends one invocation takes on; the schedule takes any backlog


def handle_message(
    body: str,
    *,
    services: Services,
    context_remaining_ms: Callable[[], float],
    receipt_handle: str | None = None,
    options: WorkerOptions | None = None,
    engine: TransferEngine | None = None,
) -> WorkerResult:
    """Handle one SQS body. Returns what was done; raises only to have SQS redeliver it."""
    send_overdue_messages(services)
    try:
        message = parse_message(body)
    except Invalid as exc:
        logger.warning("acknowledging a malformed message: %s", exc)
        return WorkerResult(Action.MALFORMED, detail=str(exc))
    job_id = message_job_id(message)
    job = services.store.find(job_id)
    if job is None:
        if not message.job:
            logger.warning(
                "acknowledging a message for unknown job %s (it carries no job to create)", job_id, jobId=job_id
            )
            return WorkerResult(Action.UNKNOWN_JOB, job_id)
        try:
            job = create_from_spec(
                job_id, message.job, store=services.store, notifier=services.notifier, settings=services.settings
            )
        except Invalid as exc:
            logger.warning("acknowledging a message whose job %s is invalid: %s", job_id, exc, jobId=job_id)
            return WorkerResult(Action.INVALID_SPEC, job_id, detail=str(exc))
    turn = JobTurn(
        services,
        engine or services.engine,
        options or WorkerOptions(),
        context_remaining_ms=context_remaining_ms,
        receipt_handle=receipt_handle,
    )
    return turn.take(job)


def send_overdue_messages(services: Services) -> None:
    """Send the messages whose senders died after their state change (best effort: the schedule
    sweeps too, and a failure here must not stop this message's turn)."""
    grace = outbox.send_grace_seconds(services.settings.lease_seconds)
    try:
        outbox.send_pending(services.store, services.queue, grace_seconds=grace, limit=WORKER_SWEEP_LIMIT)
    except Exception:
        logger.warning("could not sweep the pending sends", exc_info=True)


class JobTurn:
    """One worker's turn on one job: from the claim to the end of this invocation's work."""

    def __init__(
        self,
        services: Services,
        engine: TransferEngine,
        options: WorkerOptions,
        *,
        context_remaining_ms: Callable[[], float],
        receipt_handle: str | None,
    ) -> None:
        self._services = services
        self._store = services.store
        self._settings = services.settings
        self._engine = engine
        self._options = options
        self._remaining_ms = context_remaining_ms
        self._receipt_handle = receipt_handle
        self._owner = lease.new_owner(options.worker_id)

    def take(self, job: UploadJob) -> WorkerResult:
        logs.job_context(job.job_id, job.attempts)
        claimed = self._acquire(job)
        if isinstance(claimed, WorkerResult):
            return claimed
        logs.job_context(claimed.job_id, claimed.attempts)  # the claim counted this attempt
        return self._work(claimed)

    # The claim ---------------------------------------------------------------------------------

    def _acquire(self, job: UploadJob) -> UploadJob | WorkerResult:
        if job.is_finished:
            self._announce_again_if_just_finished(job)
            return WorkerResult(Action.IGNORED, job.job_id, JobStatus(job.status), f"the job is {job.status}")
        if job.status == JobStatus.ACTIVE:
            if not lease.lease_expired(job, self._store):
                return WorkerResult(Action.IGNORED, job.job_id, JobStatus.ACTIVE, "another worker holds a live lease")
            released = lease.release_expired(self._store, job, self._owner)
            if released is None:
                return WorkerResult(Action.IGNORED, job.job_id, detail="another actor recovered the job first")
            if released.status == JobStatus.FAILED:
                self._services.notifier.publish(JobEvent.FAILED, released)
                return WorkerResult(Action.FAILED, job.job_id, JobStatus.FAILED, ErrorCode.STALLED.value, job=released)
            job = released
        if job.cancel_requested:
            return cancel_waiting(self._store, self._services.notifier, self._engine, job, self._owner)
        claimed = lease.claim(self._store, job.job_id, self._owner, self._settings.lease_seconds)
        if claimed is not None:
            return claimed
        current = self._store.find(job.job_id)
        if current is not None and current.status == JobStatus.WAITING and current.cancel_requested:
            return cancel_waiting(self._store, self._services.notifier, self._engine, current, self._owner)
        if current is not None and lease.not_due(current, self._store.now()):
            return self._not_due(current)
        return WorkerResult(Action.IGNORED, job.job_id, detail="another worker claimed the job first")

    def _announce_again_if_just_finished(self, job: UploadJob) -> None:
        """A message for a job that finished moments ago is most likely the redelivery of one whose
        worker died between the final write and its event (killed, or frozen before the flush):
        the final event goes again, so every subscriber gets it at least once (maybe twice)."""
        window = timedelta(seconds=REANNOUNCE_LEASES * (self._settings.lease_seconds + VISIBILITY_MARGIN_SECONDS))
        if job.finished_at is not None and self._store.now() - job.finished_at <= window:
            self._services.notifier.publish(FINAL_EVENTS[JobStatus(job.status)], job)

    def _not_due(self, job: UploadJob) -> WorkerResult:
        """A message that came before the job's backoff ended (a redelivery, a duplicate): sent
        again for the rest of the delay, no attempt spent."""
        delay = outbox.remaining_delay(job, self._store.now())
        self._services.queue.send(job.queue_name, job.job_id, delay_seconds=delay)
        return WorkerResult(Action.NOT_DUE, job.job_id, JobStatus.WAITING, f"due in {delay} s: re-sent with that delay")

    # The work ----------------------------------------------------------------------------------

    def _work(self, job: UploadJob) -> WorkerResult:
        recorder = ProgressRecorder(job.multipart_uploads)
        supervisor = Supervisor(
            store=self._store,
            queue=self._services.queue,
            notifier=self._services.notifier,
            job=job,
            owner=self._owner,
            recorder=recorder,
            lease_seconds=self._settings.lease_seconds,
            progress_interval_seconds=self._settings.progress_interval_ms / 1000,
            cancel_poll_seconds=self._options.cancel_poll_seconds,
            remaining_ms=self._remaining_ms,
            margin_ms=self._options.margin_ms(self._remaining_ms()),
            receipt_handle=self._receipt_handle,
        )
        with supervisor:
            outcome = self._attempt(job, recorder, supervisor)
        if supervisor.reason == StopReason.LEASE_LOST and supervisor.error is not None:
            raise supervisor.error  # the lease could not be renewed: SQS delivers the message again
        finisher = Finisher(
            store=self._store,
            queue=self._services.queue,
            notifier=self._services.notifier,
            settings=self._settings,
            engine=self._engine,
            job=job,
            owner=self._owner,
            recorder=recorder,
        )
        if supervisor.reason == StopReason.LEASE_LOST:
            return finisher.lost()
        return self._end_turn(job, outcome, finisher)

    def _attempt(self, job: UploadJob, recorder: ProgressRecorder, supervisor: Supervisor) -> RunOutcome:
        """Plan and upload. Upload errors become an outcome; MongoDB failures propagate."""
        try:
            plan = plan_job(job, Sources.from_settings(self._settings, self._services.s3))
            missing = missing_keys(self._engine.client, job.bucket_name, plan.required_keys)
            if missing:
                return MissingReferences(tuple(missing))
            recorder.set_totals(
                plan.total_bytes,
                len(plan.items),
                destinationPrefix=layout.destination_prefix(job),
                publicUrl=public_url(job, plan, self._settings),
                **plan.fields,
            )
            supervisor.write_progress()  # the totals, and the first uploadProgress, as soon as known
            return run_plan(
                plan,
                engine=self._engine,
                bucket=job.bucket_name,
                recorder=recorder,
                stop_mode=lambda: stop_mode(supervisor),
            )
        except UploadError as error:
            return Failed(error)
        except PyMongoError:
            raise
        except Exception as exc:
            logger.exception("job %s: unexpected error during the upload", job.job_id)
            detail = f"{type(exc).__name__}: {exc}"
            return Failed(RetryableUploadError(ErrorCode.UPLOAD_FAILED, UNEXPECTED_REASON, detail))

    def _end_turn(self, job: UploadJob, outcome: RunOutcome, finisher: Finisher) -> WorkerResult:
        if isinstance(outcome, Failed):
            if isinstance(outcome.error, PermanentUploadError):
                return finisher.fail(outcome.error)
            return finisher.retry_or_fail(outcome.error)
        if isinstance(outcome, MissingReferences):
            return finisher.wait_for_references(outcome.keys)
        if isinstance(outcome, Stopped):
            return finisher.cancel() if outcome.mode == StopMode.CANCEL else finisher.continue_later()
        return finisher.complete(
            public_url=public_url(job, outcome.plan, self._settings),
            total_bytes=outcome.plan.total_bytes,
            total_files=len(outcome.plan.items),
        )


def stop_mode(supervisor: Supervisor) -> StopMode | None:
    """The engine's question, answered from the supervisor: abort on cancel, else leave uploads open."""
    if not supervisor.should_stop():
        return None
    return StopMode.CANCEL if supervisor.reason == StopReason.CANCEL else StopMode.SUSPEND
