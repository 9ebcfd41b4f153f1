"""The thread that watches over a running job: lease, message visibility, progress writes, cancel.

Engine threads never touch MongoDB: they report to the ProgressRecorder (memory only) and ask
`should_stop()` (flags only, plus the invocation's remaining time). This one thread does the I/O:

- every `cancel_poll_seconds` (0.5 s) it reads the job's status, lease owner and cancelRequested;
- at most once per PROGRESS_INTERVAL_MS it writes the recorder's pending progress and checkpoint,
  renewing the lease in the same write, and publishes uploadProgress;
- when no progress write renewed the lease for LEASE_SECONDS/3, it renews it alone;
- at its first tick and then every LEASE_SECONDS/3 it extends the SQS message's visibility past
  the lease (so a redelivery after a crash finds it expired, whenever the crash came).

A renewal that finds the job no longer ours (status or leaseOwner changed) stops the engine: we
lost the job. A tick that fails (MongoDB or SQS unreachable, a call that ran into its timeout,
chalicelib/timeouts.py) is logged and tried again at the next tick; what it had to write stays
pending. Once the lease can no longer be proven (LEASE_SECONDS since the start of the last
renewal that succeeded, less one call budget) the engine stops as LEASE_LOST, from the job
thread's own `should_stop()` too, so a supervisor stuck in a call cannot keep it uploading; the
failure is then raised to the caller, so that SQS delivers the message again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum

from chalicelib import logs
from chalicelib.jobs.model import JobStatus, UploadJob
from chalicelib.jobs.store import JobStore
from chalicelib.logs import logger
from chalicelib.queue import JobQueue
from chalicelib.realtime.events import JobEvent, Notifier
from chalicelib.timeouts import call_budget_seconds
from chalicelib.worker.lease import renew
from chalicelib.worker.progress import ProgressRecorder

TICK_SECONDS = 0.05
# The message stays invisible a little longer than the lease, so that SQS redelivers it to a
# worker that will find the lease expired (and take the job over) rather than still live: a
# redelivery that finds a live lease is acknowledged, which would leave a dead worker's job to
# fix-stuck. The lease may have been renewed up to one renewal interval after the visibility was
# last extended, so each extension covers the lease plus that interval, plus this margin.
VISIBILITY_MARGIN_SECONDS = 15


class StopReason(StrEnum):
    CANCEL = "cancel"  # cancelRequested: abort open multipart uploads, then cancelled
    DEADLINE = "deadline"  # Lambda time runs short: leave uploads open, continue in a new message
    LEASE_LOST = "lease-lost"  # someone else holds the job now, or we cannot prove we do: touch nothing more


class Supervisor:
    def __init__(
        self,
        *,
        store: JobStore,
        queue: JobQueue,
        notifier: Notifier,
        job: UploadJob,
        owner: str,
        recorder: ProgressRecorder,
        lease_seconds: int,
        progress_interval_seconds: float,
        cancel_poll_seconds: float,
        remaining_ms: Callable[[], float],
        margin_ms: float,
        receipt_handle: str | None,
    ) -> None:
        self._store = store
        self._queue = queue
        self._notifier = notifier
        self._job = job
        self._owner = owner
        self._recorder = recorder
        self._lease_seconds = lease_seconds
        self._progress_interval = progress_interval_seconds
        self._cancel_poll = cancel_poll_seconds
        self._remaining_ms = remaining_ms
        self._margin_ms = margin_ms
        self._receipt_handle = receipt_handle
        self._renew_every = lease_seconds / 3
        self._proof_margin = call_budget_seconds(lease_seconds)
        self._reason: StopReason | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._write_lock = threading.Lock()
        self._reason_lock = threading.Lock()
        # In the job thread's log context: the supervisor's lines name the job and attempt too.
        self._thread = threading.Thread(target=logs.in_context(self._run), name=f"supervisor-{job.job_id}", daemon=True)
        started = time.monotonic()
        self._last_poll = self._last_write = started
        self._last_visibility = (
            started - self._renew_every
        )  # extended at the first tick: the queue's default may be shorter
        self._visibility_seconds = round(lease_seconds + self._renew_every + VISIBILITY_MARGIN_SECONDS)
        self._lease_proven_until = started + lease_seconds  # the claim, written just before
        recorder.persist_with(self.write_progress)  # keys about to be written are recorded first

    # Engine side -----------------------------------------------------------------------------

    def should_stop(self) -> bool:
        """Cheap enough for every file and part: flags, the lease's proof, the invocation's time."""
        if self._reason is None:
            if self._lease_unproven(time.monotonic()):
                self.stop(StopReason.LEASE_LOST)
            elif self._remaining_ms() < self._margin_ms:
                self.stop(StopReason.DEADLINE)
        return self._reason is not None

    @property
    def reason(self) -> StopReason | None:
        return self._reason

    @property
    def error(self) -> BaseException | None:
        """The last failure of a supervision call since the lease was last proven, if any."""
        return self._error

    def stop(self, reason: StopReason) -> None:
        """The first reason wins: it decides what the worker does next."""
        with self._reason_lock:
            if self._reason is None:
                self._reason = reason
                logger.info("job %s: stopping (%s)", self._job.job_id, reason.value)

    # Lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> Supervisor:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()

    def write_progress(self, *, force: bool = False) -> UploadJob | None:
        """Write what the recorder has pending (renewing the lease) and publish uploadProgress.

        Returns the job after the write; None when nothing was pending or the job is no longer ours.
        """
        with self._write_lock:
            update = self._recorder.take_update(force=force)
            if update is None:
                return None
            started = time.monotonic()
            try:
                job = renew(self._store, self._job.job_id, self._owner, self._lease_seconds, update)
            except BaseException:
                self._recorder.requeue(update)  # not written: the next write carries it
                raise
            self._renewed(started, job)
        if job is None:
            self.stop(StopReason.LEASE_LOST)
            return None
        self._job = job
        self._notifier.publish(JobEvent.PROGRESS, job)
        return job

    # The thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._done.wait(TICK_SECONDS):
            try:
                self._tick(time.monotonic())
            except Exception as exc:  # MongoDB or SQS unreachable, or a call timed out: next tick
                if self._error is None:
                    logger.exception("job %s: supervision failed; retrying", self._job.job_id)
                self._error = exc
            if self._lease_unproven(time.monotonic()):
                self.stop(StopReason.LEASE_LOST)

    def _lease_unproven(self, now: float) -> bool:
        """The last renewal that succeeded no longer proves the lease (less a call budget, so
        requests in flight end before another worker could take the job over)."""
        return now >= self._lease_proven_until - self._proof_margin

    def _renewed(self, started: float, job: UploadJob | None) -> None:
        """A renewal begun at `started` came back: the lease holds until `started` + LEASE_SECONDS."""
        self._last_write = time.monotonic()
        if job is not None:
            self._lease_proven_until = max(self._lease_proven_until, started + self._lease_seconds)
            self._error = None

    def _tick(self, now: float) -> None:
        if now - self._last_poll >= self._cancel_poll:
            self._last_poll = now
            self._poll()
        if now - self._last_write >= self._progress_interval and self._recorder.has_pending():
            self.write_progress()
        elif now - self._last_write >= self._renew_every:
            self._renew_lease()
        if self._receipt_handle and now - self._last_visibility >= self._renew_every:
            self._last_visibility = now
            self._extend_visibility()

    def _poll(self) -> None:
        state = self._store.peek(self._job.job_id, ("status", "leaseOwner", "cancelRequested"))
        if not state or state.get("status") != JobStatus.ACTIVE.value or state.get("leaseOwner") != self._owner:
            self.stop(StopReason.LEASE_LOST)
        elif state.get("cancelRequested"):
            self.stop(StopReason.CANCEL)

    def _renew_lease(self) -> None:
        with self._write_lock:
            started = time.monotonic()
            job = renew(self._store, self._job.job_id, self._owner, self._lease_seconds)
            self._renewed(started, job)
        if job is None:
            self.stop(StopReason.LEASE_LOST)

    def _extend_visibility(self) -> None:
        assert self._receipt_handle is not None
        try:
            self._queue.change_visibility(self._job.queue_name, self._receipt_handle, self._visibility_seconds)
        except Exception as exc:  # the lease is what guards the job; a late redelivery is acknowledged
            logger.warning("job %s: could not extend the message's visibility: %s", self._job.job_id, exc)
