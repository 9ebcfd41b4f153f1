"""One `upload()` call: the job thread cuts the batch into units of work, keeps a bounded number
of them in flight on the engine's pool, and handles their results as they come back.

How many: the adaptive rule's limit (upload/concurrency.py), told of every unit's end. Beyond
`concurrency` units in flight, a unit starts only if the bodies in flight stay within
`memory_budget` (part size x concurrency): a higher limit buys more small requests, never more
memory than the fixed engine's bound. A unit the storage throttled is sent again after the
decrease (at most MAX_THROTTLE_RETRIES times); with a fixed limit it fails the run as before.

Every attribute of `Run` is read and written by the job thread only; pool threads run the unit
functions (single_put, multipart), which touch nothing but their arguments and the client.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Any

from chalicelib.errors import PermanentUploadError
from chalicelib.logs import logger
from chalicelib.upload import multipart
from chalicelib.upload.cancellation import STOP_POLL_SECONDS, StopMode, UnitInterrupted
from chalicelib.upload.concurrency import AdaptiveConcurrency
from chalicelib.upload.failures import classify_error, is_throttle, watching_throttles, worst
from chalicelib.upload.items import EngineConfig, MultipartCheckpoint, RunStatus, UploadItem, UploadResult
from chalicelib.upload.listeners import TransferListener
from chalicelib.upload.multipart import Begun, OpenUpload
from chalicelib.upload.parts import part_count, part_range
from chalicelib.upload.resume import list_existing
from chalicelib.upload.single_put import put_file

# A unit throttled this many times fails the run (retryable): the job's next attempt resumes it.
# (With an adaptive limit botocore does not retry a throttled request: this is the only retry.)
MAX_THROTTLE_RETRIES = 10


class _Kind(StrEnum):
    """The units of work; the value names the S3 operation, for error messages."""

    PUT = "PutObject"
    BEGIN = "CreateMultipartUpload"
    PART = "UploadPart"
    COMPLETE = "CompleteMultipartUpload"


@dataclass(frozen=True)
class _Unit:
    """One unit in flight: what it works on, its ticket from the rule, the body bytes it holds."""

    kind: _Kind
    subject: Any  # UploadItem (PUT) or OpenUpload
    number: int  # the part number of a PART, else 0
    ticket: int = 0
    cost: int = 0

    @property
    def key(self) -> str:
        return str(self.subject.item.key if isinstance(self.subject, OpenUpload) else self.subject.key)


# A unit's end as the queue carries it: (unit, value, error, throttled).
_Event = tuple[_Unit, Any, BaseException | None, bool]


class Run:
    """One batch over `pool` and `client`, bounded by `config`."""

    def __init__(
        self,
        client: Any,
        config: EngineConfig,
        pool: Executor,
        bucket: str,
        items: Sequence[UploadItem],
        listener: TransferListener,
        should_stop: Callable[[], StopMode | None],
        checkpoints: Iterable[MultipartCheckpoint],
    ) -> None:
        self.client = client
        self.config = config
        self.pool = pool
        self.bucket = bucket
        self.listener = listener
        self.should_stop = should_stop
        self.pending = deque(items)
        self.checkpoints = {c.key: c for c in checkpoints}
        self.existing: dict[str, tuple[int, str]] = {}
        self.open: dict[str, OpenUpload] = {}
        self.events: queue.SimpleQueue[_Event] = queue.SimpleQueue()
        self.halt = threading.Event()  # set once the run stops: units that can stop midway do
        self.in_flight = 0
        self.limit = AdaptiveConcurrency(config.concurrency, config.concurrency_max)
        self.bytes_in_flight = 0
        self.saturated = False  # the limit, not a lack of work, held units back at the last schedule
        self.throttle_retries: Counter[tuple[_Kind, str, int]] = Counter()
        self.errors: list[BaseException] = []
        self.stop_mode: StopMode | None = None
        self.written: list[str] = []
        self.skipped: list[str] = []

    def execute(self) -> UploadResult:
        self._ask_stop()
        if self.stop_mode is None and self.pending:
            try:
                self.existing = list_existing(self.client, self.bucket, (i.key for i in self.pending))
            except Exception as error:  # classified, raised by _finish once nothing is in flight
                self.errors.append(classify_error(error, bucket=self.bucket, key="", operation="ListObjectsV2"))
            else:
                self._announce_new_keys()
        while True:
            try:
                self._schedule()
                if self.in_flight == 0:
                    break
                self._wait_for_unit()
            except Exception as error:  # should_stop or a listener failed: stop as for an upload error
                self.errors.append(error)
        return self._finish()

    def _ask_stop(self) -> None:
        self.stop_mode = self.should_stop()
        if self.stop_mode is not None:
            self.halt.set()

    def _wait_for_unit(self) -> None:
        """Handle the next unit's end; while none ends, ask `should_stop()` every STOP_POLL_SECONDS."""
        try:
            event = self.events.get(timeout=STOP_POLL_SECONDS)
        except queue.Empty:
            if self.stop_mode is None:
                self._ask_stop()
            return
        self._handle(event)

    def _announce_new_keys(self) -> None:
        new_keys = [item.key for item in self.pending if item.key not in self.existing]
        if not new_keys:
            return
        try:
            self.listener.will_write(new_keys)
        except Exception as error:  # a listener that fails stops the run like an upload error
            self.errors.append(error)

    def _halted(self) -> bool:
        return bool(self.errors) or self.stop_mode is not None

    # -- scheduling ------------------------------------------------------------------------

    def _schedule(self) -> None:
        self.saturated = False
        while not self._halted():
            unit = self._next_unit()
            if unit is None:
                return
            if self.in_flight >= self.limit.limit:
                self.saturated = True
                return
            if self.in_flight >= self.config.concurrency and not self._fits(unit):
                return
            self._ask_stop()
            if self.stop_mode is not None:
                return
            self._submit(unit)

    def _fits(self, unit: _Unit) -> bool:
        return self.bytes_in_flight + self._cost(unit) <= self.config.memory_budget

    def _cost(self, unit: _Unit) -> int:
        """Body bytes the unit holds while it runs (a begin unit hashes the source a part at a time)."""
        if unit.kind == _Kind.PUT:
            return int(unit.subject.size)
        if unit.kind == _Kind.PART:
            return part_range(unit.number, unit.subject.item.size, unit.subject.part_size)[1]
        return self.config.part_size if unit.kind == _Kind.BEGIN else 0

    def _next_unit(self) -> _Unit | None:
        """The next unit that may start: parts of open uploads first (finish what is started),
        then the next file. None when nothing may start now."""
        for upload in self.open.values():
            if upload.upload_id is None or upload.completing:
                continue
            if upload.todo and upload.in_flight < self.config.part_concurrency:
                return _Unit(_Kind.PART, upload, upload.todo[0])
            if not upload.todo and upload.in_flight == 0:
                return _Unit(_Kind.COMPLETE, upload, 0)
        if not self.pending:
            return None
        item = self.pending[0]
        if item.size < self.config.multipart_threshold:
            return _Unit(_Kind.PUT, item, 0)
        if len(self.open) < self.config.max_open_multipart:
            return _Unit(_Kind.BEGIN, item, 0)
        return None

    def _submit(self, unit: _Unit) -> None:
        """Reserve the unit in the state and hand the pool a call whose arguments are copies:
        pool threads never read the scheduler's state."""
        kind, subject, number = unit.kind, unit.subject, unit.number
        cost = self._cost(unit)
        client, bucket, acl = self.client, self.bucket, self.config.acl
        work: Callable[[], Any]
        if kind == _Kind.PART:
            subject.todo.popleft()
            subject.in_flight += 1
            work = partial(
                multipart.upload_part, client, bucket, subject.item, subject.upload_id, subject.part_size, number
            )
        elif kind == _Kind.COMPLETE:
            subject.completing = True
            work = partial(multipart.complete, client, bucket, subject.item.key, subject.upload_id, dict(subject.done))
        elif kind == _Kind.BEGIN:
            self.pending.popleft()
            item: UploadItem = subject
            subject = self.open[item.key] = OpenUpload(item, self.checkpoints.pop(item.key, None))
            work = partial(
                multipart.begin,
                client,
                bucket,
                item,
                subject.checkpoint,
                self.existing.get(item.key),
                part_size=self.config.part_size,
                acl=acl,
                halt=self.halt,
            )
        else:
            self.pending.popleft()
            work = partial(put_file, client, bucket, subject, acl, self.existing.get(subject.key))
        ticket = self.limit.started()
        self.pool.submit(self._run_unit, _Unit(kind, subject, number, ticket, cost), work)
        self.in_flight += 1  # only once submitted: a unit that never ran must not be waited for
        self.bytes_in_flight += cost

    # -- results ---------------------------------------------------------------------------

    def _handle(self, event: _Event) -> None:
        unit, value, error, throttled = event
        kind, subject, number = unit.kind, unit.subject, unit.number
        self.in_flight -= 1
        self.bytes_in_flight -= unit.cost
        if kind == _Kind.PART:
            subject.in_flight -= 1
        self.limit.finished(unit.ticket, time.monotonic(), throttled=throttled, saturated=self.saturated)
        if isinstance(error, UnitInterrupted):
            self._put_back(subject)
        elif error is not None and self._may_retry(unit, error):
            self._retry(unit)
        elif error is not None:
            self.errors.append(classify_error(error, bucket=self.bucket, key=unit.key, operation=kind.value))
        elif kind == _Kind.PUT:
            self._on_put(subject, value)
        elif kind == _Kind.BEGIN:
            self._on_begin(subject, value)
        elif kind == _Kind.PART:
            self._on_part(subject, number, value)
        else:
            self._on_complete(subject)

    def _may_retry(self, unit: _Unit, error: BaseException) -> bool:
        """A throttled unit is sent again (the limit has just been lowered), a few times at most."""
        if not (self.limit.adaptive and is_throttle(error)):
            return False
        identity = (unit.kind, unit.key, unit.number)
        self.throttle_retries[identity] += 1
        return self.throttle_retries[identity] <= MAX_THROTTLE_RETRIES

    def _retry(self, unit: _Unit) -> None:
        """Make the unit the next of its kind to start again."""
        if unit.kind == _Kind.PUT:
            self.pending.appendleft(unit.subject)
        elif unit.kind == _Kind.PART:
            unit.subject.todo.appendleft(unit.number)
        elif unit.kind == _Kind.COMPLETE:
            unit.subject.completing = False
        else:
            self._put_back(unit.subject)

    def _put_back(self, upload: OpenUpload) -> None:
        """A begin unit that stopped midway: the file is still to do, its checkpoint still open."""
        del self.open[upload.item.key]
        self.pending.appendleft(upload.item)
        if upload.checkpoint is not None:
            self.checkpoints[upload.item.key] = upload.checkpoint

    def _on_put(self, item: UploadItem, skipped: bool) -> None:
        (self.skipped if skipped else self.written).append(item.key)
        self.listener.bytes_done(item.key, item.size)
        self.listener.file_done(item.key, item.size, skipped)

    def _on_begin(self, upload: OpenUpload, begun: Begun) -> None:
        key = upload.item.key
        for upload_id in begun.gone:
            self.listener.multipart_aborted(key, upload_id)
        if begun.skipped:
            del self.open[key]
            self.skipped.append(key)
            self.listener.bytes_done(key, upload.item.size)
            self.listener.file_done(key, upload.item.size, True)
            return
        upload.part_size, upload.upload_id, upload.done = begun.part_size, begun.upload_id, dict(begun.found)
        total = part_count(upload.item.size, upload.part_size)
        upload.todo = deque(n for n in range(1, total + 1) if n not in upload.done)
        self.listener.multipart_started(
            MultipartCheckpoint(key, begun.upload_id, begun.part_size, upload.item.size, dict(begun.found))
        )
        found_bytes = sum(part_range(n, upload.item.size, upload.part_size)[1] for n in begun.found)
        if found_bytes:
            self.listener.bytes_done(key, found_bytes)

    def _on_part(self, upload: OpenUpload, number: int, etag: str) -> None:
        assert upload.upload_id is not None  # parts are scheduled only once begun
        upload.done[number] = etag
        self.listener.part_done(upload.item.key, upload.upload_id, number, etag)
        self.listener.bytes_done(upload.item.key, part_range(number, upload.item.size, upload.part_size)[1])

    def _on_complete(self, upload: OpenUpload) -> None:
        assert upload.upload_id is not None
        key = upload.item.key
        del self.open[key]
        self.written.append(key)
        self.listener.multipart_completed(key, upload.upload_id)
        self.listener.file_done(key, upload.item.size, False)

    # -- the end ---------------------------------------------------------------------------

    def _left_open(self) -> list[MultipartCheckpoint]:
        """Every multipart upload this run knows to be open: its own, and checkpoints it has not
        resumed (keys outside the batch, or a begin unit that failed)."""
        left: list[MultipartCheckpoint] = []
        for upload in self.open.values():
            if upload.upload_id is not None:
                item = upload.item
                left.append(
                    MultipartCheckpoint(item.key, upload.upload_id, upload.part_size, item.size, dict(upload.done))
                )
            elif upload.checkpoint is not None:
                left.append(upload.checkpoint)
        return left + list(self.checkpoints.values())

    def _finish(self) -> UploadResult:
        """Every unit has ended: abort or keep the open uploads, then return or raise."""
        summary = self.limit.summary()
        if self.limit.adaptive and (
            summary.throttled or summary.lowest != summary.start or summary.highest != summary.start
        ):
            logger.info("upload to %s: concurrency %s", self.bucket, summary)  # only a run whose limit moved
        left_open = self._left_open()
        if self.errors:
            error = worst(self.errors)
            if isinstance(error, PermanentUploadError):
                self._abort_all(left_open)
            raise error
        done = not self.pending and not self.open
        if self.stop_mode == StopMode.CANCEL:
            left_open = self._abort_all(left_open)
        return UploadResult(
            RunStatus.COMPLETED if done else RunStatus.STOPPED,
            tuple(self.written),
            tuple(self.skipped),
            tuple(left_open),
            None if done else self.stop_mode,
            self.limit.summary(),
        )

    def _abort_all(self, uploads: Sequence[MultipartCheckpoint]) -> list[MultipartCheckpoint]:
        """Abort each upload; returns those that could not be aborted (still open)."""
        still_open = []
        for upload in uploads:
            try:
                multipart.abort(self.client, self.bucket, upload.key, upload.upload_id)
            except Exception:  # best effort: the checkpoint stays, cleanup can abort it later
                logger.warning("could not abort %s (%s)", upload.key, upload.upload_id, exc_info=True)
                still_open.append(upload)
                continue
            self.listener.multipart_aborted(upload.key, upload.upload_id)
        return still_open

    # -- pool threads ----------------------------------------------------------------------

    def _run_unit(self, unit: _Unit, work: Callable[[], Any]) -> None:
        # Whatever happens, the job thread must hear of it, or it would wait forever.
        with watching_throttles(engine_retries=self.limit.adaptive) as throttles:
            try:
                value = work()
            except BaseException as error:
                self.events.put((unit, None, error, throttles.answers > 0 or is_throttle(error)))
            else:
                self.events.put((unit, value, None, throttles.answers > 0))
