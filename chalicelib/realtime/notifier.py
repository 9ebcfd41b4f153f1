"""Job events to the WebSocket connections that follow them (SPEC 8), throttled and 410-pruning.

`publish` only puts the event in a queue and returns: the caller (a worker between two parts, an HTTP
route) never waits for MongoDB or for a client. One dispatcher thread takes events in order, throttles
`uploadProgress`, looks up the interested connections and hands each message to that connection's
lane. Lanes run on a bounded thread pool: messages to one connection go in order, connections go in
parallel, so one slow or dead client delays nobody else. A connection that answers 410 is removed.

A Lambda may freeze as soon as its handler returns, with messages still queued: every invocation
ends with `flush_all(timeout)` (the websocket blueprint registers it as a middleware), which waits
until what was published has been delivered, or the timeout passes.

The dispatcher survives what it handles: an event it cannot dispatch is logged and skipped, and a
dispatcher thread that ended anyway is started again by the next publish or flush. The queue in front
of it is bounded (`queue_limit` events): when it is full, the oldest queued uploadProgress is dropped
to make room (counted in `dropped_progress`; the job's next progress or final event supersedes it).
Every other event (JobQueued, JobCompleted, JobFailed, JobCancelled, JobDeleted) is never dropped: with
no progress left to drop it goes in beyond the limit, so the queue grows only by one per job turn.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from chalicelib.jobs.model import UploadJob
from chalicelib.logs import logger
from chalicelib.realtime.connections import ConnectionRegistry
from chalicelib.realtime.events import JobEvent, event_payload
from chalicelib.realtime.senders import ConnectionGone, Sender

SEND_WORKERS = 8
QUEUE_LIMIT = 10_000  # events waiting for the dispatcher; about 1,000 jobs' worth of unthrottled progress
T = TypeVar("T")


class ProgressThrottle(Generic[T]):
    """At most one progress message per job per interval; the newest held back is sent when the interval ends.

    The first message of a job, and any marked final (100 %), go at once. Times are seconds of one clock.
    """

    def __init__(self, interval_seconds: float) -> None:
        self._interval = interval_seconds
        self._last_sent: dict[str, float] = {}
        self._held: dict[str, tuple[float, T]] = {}  # job id -> (due time, newest message held back)

    def offer(self, job_id: str, message: T, at: float, *, final: bool = False) -> bool:
        """True: send `message` now. False: it is held back (replacing any older one) until `next_due()`."""
        last = self._last_sent.get(job_id)
        if final or last is None or at - last >= self._interval:
            self._last_sent[job_id] = at
            self._held.pop(job_id, None)
            return True
        self._held[job_id] = (last + self._interval, message)
        return False

    def next_due(self) -> float | None:
        return min((due for due, _ in self._held.values()), default=None)

    def release_due(self, now: float) -> list[T]:
        """The held messages whose interval has ended by `now`; each counts as sent at `now`."""
        return self._release([job_id for job_id, (due, _) in self._held.items() if due <= now], now)

    def release_all(self, now: float) -> list[T]:
        return self._release(list(self._held), now)

    def forget(self, job_id: str) -> None:
        """Another event superseded the job's progress (queued again, finished, deleted): drop what is held."""
        self._last_sent.pop(job_id, None)
        self._held.pop(job_id, None)

    def _release(self, job_ids: list[str], now: float) -> list[T]:
        released = []
        for job_id in job_ids:
            _, message = self._held.pop(job_id)
            self._last_sent[job_id] = now
            released.append(message)
        return released


@dataclass
class _Outgoing:
    """One published event: its payload, and who it concerns."""

    event: JobEvent
    job_id: str
    client_id: str | None
    payload: dict[str, Any]
    at: float

    @property
    def is_progress(self) -> bool:
        return self.event == JobEvent.PROGRESS


@dataclass
class _Flush:
    done: threading.Event = field(default_factory=threading.Event)


_STOP = object()


class EventInbox:
    """The dispatcher's queue: bounded for uploadProgress, never dropping any other item (see the module doc)."""

    def __init__(self, limit: int) -> None:
        self._limit = max(1, limit)
        self._items: deque[object] = deque()
        self._changed = threading.Condition()
        self.dropped_progress = 0

    def __len__(self) -> int:
        with self._changed:
            return len(self._items)

    def put(self, item: object) -> None:
        with self._changed:
            if len(self._items) >= self._limit and not self._drop_oldest_progress() and _is_progress(item):
                self.dropped_progress += 1  # every queued item matters more than this one
                return
            self._items.append(item)
            self._changed.notify()

    def get(self, timeout: float | None = None) -> object | None:
        """The oldest item; None when `timeout` passed first."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._items, timeout=timeout):
                return None
            return self._items.popleft()

    def _drop_oldest_progress(self) -> bool:
        for index, queued in enumerate(self._items):
            if _is_progress(queued):
                del self._items[index]
                self.dropped_progress += 1
                return True
        return False


def _is_progress(item: object) -> bool:
    return isinstance(item, _Outgoing) and item.is_progress


@dataclass
class _Queued:
    job_id: str
    is_progress: bool
    data: str


class DeliveryLanes:
    """One ordered lane per connection, drained on a bounded pool; a lane is only ever drained by one thread."""

    def __init__(self, sender: Sender, on_gone: Callable[[str], None], workers: int = SEND_WORKERS) -> None:
        self._sender = sender
        self._on_gone = on_gone
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ws-send")
        self._lanes: dict[str, list[_Queued]] = {}
        self._idle = threading.Condition()

    def post(self, connection_id: str, message: _Queued) -> None:
        with self._idle:
            lane = self._lanes.get(connection_id)
            if lane is None:
                self._lanes[connection_id] = [message]
                self._pool.submit(self._drain, connection_id)
                return
            # A slow client's newer progress replaces the older one it has not received yet.
            previous = next((queued for queued in reversed(lane) if queued.job_id == message.job_id), None)
            if previous is not None and previous.is_progress and message.is_progress:
                previous.data = message.data
            else:
                lane.append(message)

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: not self._lanes, timeout=max(timeout, 0.0))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _drain(self, connection_id: str) -> None:
        while (message := self._next(connection_id)) is not None:
            try:
                self._sender.send(connection_id, message.data)
            except ConnectionGone:
                self._on_gone(connection_id)
                self._drop(connection_id)  # after on_gone: a flush that returns finds the registry pruned
                return
            except Exception as exc:  # this delivery failed; the client still gets the next ones
                logger.warning("could not send to WebSocket connection %s: %s", connection_id, exc)

    def _next(self, connection_id: str) -> _Queued | None:
        with self._idle:
            lane = self._lanes.get(connection_id)
            if lane:
                return lane.pop(0)
            self._lanes.pop(connection_id, None)
            self._idle.notify_all()
            return None

    def _drop(self, connection_id: str) -> None:
        with self._idle:
            self._lanes.pop(connection_id, None)
            self._idle.notify_all()


# The started notifiers of this process, for `flush_all` at the end of an invocation.
_notifiers: set[WebSocketNotifier] = set()


def flush_all(timeout: float) -> bool:
    """Wait until every notifier of this process has delivered what was published (or `timeout` passes)."""
    deadline = time.monotonic() + timeout
    delivered = [notifier.flush(deadline - time.monotonic()) for notifier in list(_notifiers)]
    return all(delivered)  # every notifier is flushed, even after one timed out


class WebSocketNotifier:
    """The Notifier of events.py over the connection registry and a sender. Never raises into the caller."""

    def __init__(
        self,
        connections: ConnectionRegistry,
        sender: Sender,
        *,
        progress_interval_ms: int,
        workers: int = SEND_WORKERS,
        clock: Callable[[], float] = time.monotonic,
        queue_limit: int = QUEUE_LIMIT,
    ) -> None:
        self._connections = connections
        self._throttle: ProgressThrottle[_Outgoing] = ProgressThrottle(progress_interval_ms / 1000)
        self._lanes = DeliveryLanes(sender, self._forget_connection, workers)
        self._clock = clock
        self._inbox = EventInbox(queue_limit)
        self._dispatcher: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False

    @property
    def dropped_progress(self) -> int:
        """uploadProgress events dropped because the queue was full."""
        return self._inbox.dropped_progress

    def publish(self, event: JobEvent, job: UploadJob) -> None:
        try:
            self._ensure_started()
            self._inbox.put(_Outgoing(event, job.job_id, job.client_id, event_payload(event, job), self._clock()))
        except Exception:
            logger.exception("could not publish %s for job %s", event, job.job_id, jobId=job.job_id)

    def flush(self, timeout: float) -> bool:
        """Send held-back progress now and wait until every lane is empty; False when `timeout` passed first."""
        if self._dispatcher is None:
            return True
        self._ensure_started()  # a dead dispatcher would never answer the marker
        deadline = time.monotonic() + timeout
        marker = _Flush()
        self._inbox.put(marker)
        if not marker.done.wait(max(timeout, 0.0)):
            return False
        return self._lanes.wait_idle(deadline - time.monotonic())

    def close(self) -> None:
        """Stop the dispatcher and the send pool (tests, shutdown); undelivered messages are dropped."""
        with self._start_lock:
            self._closed = True
        if self._dispatcher is not None:
            self._inbox.put(_STOP)
            self._dispatcher.join(timeout=5)
        self._lanes.shutdown()
        _notifiers.discard(self)

    def _ensure_started(self) -> None:
        """Start the dispatcher on first use, and again if the one before has ended (never after close)."""
        dispatcher = self._dispatcher
        if dispatcher is None or not dispatcher.is_alive():
            self._start_dispatcher(replacing=dispatcher)

    def _start_dispatcher(self, replacing: threading.Thread | None) -> None:
        with self._start_lock:
            if self._closed or self._dispatcher is not replacing:
                return  # closed, or another caller has started one already
            if replacing is not None:
                logger.error("the WebSocket event dispatcher stopped; starting a new one")
            thread = threading.Thread(target=self._dispatch_forever, name="ws-dispatch", daemon=True)
            self._dispatcher = thread
            thread.start()
            _notifiers.add(self)

    def _dispatch_forever(self) -> None:
        stopped = False
        try:
            while not stopped:
                item = self._next_item()
                stopped = item is _STOP
                try:
                    self._dispatch(item)
                except Exception:  # one event that cannot be dispatched must not end the dispatcher
                    logger.exception("could not dispatch a WebSocket event; going on with the next")
                finally:
                    if isinstance(item, _Flush):
                        item.done.set()
        finally:
            if not stopped:  # ended by what no handler catches: the queue still needs a dispatcher
                self._start_dispatcher(replacing=threading.current_thread())

    def _dispatch(self, item: object) -> None:
        for held in self._throttle.release_due(self._clock()):
            self._deliver(held)
        if isinstance(item, _Flush):
            for held in self._throttle.release_all(self._clock()):
                self._deliver(held)
        elif isinstance(item, _Outgoing):
            self._route(item)

    def _next_item(self) -> object | None:
        due = self._throttle.next_due()
        return self._inbox.get(None if due is None else max(due - self._clock(), 0.0))

    def _route(self, outgoing: _Outgoing) -> None:
        if not outgoing.is_progress:
            self._throttle.forget(outgoing.job_id)
            self._deliver(outgoing)
            return
        final = int(outgoing.payload.get("progress") or 0) >= 100
        if self._throttle.offer(outgoing.job_id, outgoing, outgoing.at, final=final):
            self._deliver(outgoing)

    def _deliver(self, outgoing: _Outgoing) -> None:
        try:
            recipients = self._connections.interested(outgoing.job_id, outgoing.client_id)
        except Exception:
            logger.exception(
                "could not look up the connections following job %s", outgoing.job_id, jobId=outgoing.job_id
            )
            return
        data = json.dumps(outgoing.payload, separators=(",", ":"))
        for connection_id in recipients:
            self._lanes.post(connection_id, _Queued(outgoing.job_id, outgoing.is_progress, data))

    def _forget_connection(self, connection_id: str) -> None:
        try:
            self._connections.remove(connection_id)
        except Exception:
            logger.exception("could not remove gone WebSocket connection %s", connection_id)
