"""The transfer engine (SPEC 6): files and parts over one thread pool and one boto3 S3 client.

Shape
-----
`TransferEngine.upload(bucket, items, ...)` runs on the caller's thread (the job thread), which is
the only scheduler. It cuts the batch into units of work (a single PutObject; a multipart
"begin" = resume check + CreateMultipartUpload or ListParts; one UploadPart; one
CompleteMultipartUpload), submits them to the pool while fewer than `concurrency` of this run's
units are in flight, and handles their results as they come back through a queue. A unit never
waits on another unit, so the pool cannot deadlock however full it is, and several runs (jobs)
may share one engine: each bounds its own in-flight units.

- At most `part_concurrency` parts of one object in flight (Spaces allows 10 PUTs per object),
  at most ceil(concurrency / part_concurrency) multipart uploads open at once, so memory stays
  within part size x concurrency: a part's bytes are read when its unit starts, not when queued.
- Every PUT carries Content-MD5 (the client is configured not to add CRC checksums). Over
  HTTPS that also spares botocore the SHA-256 of the body: it signs UNSIGNED-PAYLOAD when a
  Content-MD5 header is present.
- A single PutObject sends its body at once: the engine removes the `Expect: 100-continue`
  botocore puts on every PutObject, which costs a round trip per file (headers, wait for the
  server's 100, then the body). Parts keep it: at 5 MiB and more, not sending a body the
  server would refuse is worth a round trip.
- Resume: the destination folder is listed once per run (ListObjectsV2, no HEAD per file); a
  file whose size and ETag match is skipped. An interrupted multipart upload continues from its
  checkpoint: ListParts says which parts are there, only the others are sent.
- Stop: `should_stop()` is asked before every file and every part, and every STOP_POLL_SECONDS
  while the job thread waits for its units. On a stop nothing new starts, a unit that can stop
  midway does (hashing a large source to compare it with the bucket's copy), the requests in
  flight finish, then open multipart uploads are aborted (CANCEL) or left open for the next
  attempt (SUSPEND).
- Errors: classified into RetryableUploadError / PermanentUploadError; a permanent one aborts
  the run's open multipart uploads, a retryable one leaves them for the next attempt.

The client the engine expects (built by services.py):

    Config(request_checksum_calculation="when_required",   # Spaces: no CRC headers; we send MD5
           response_checksum_validation="when_required",
           max_pool_connections=max(UPLOAD_CONCURRENCY, 10),  # one connection per pool thread
           retries={"mode": "standard"})
"""

from __future__ import annotations

import base64
import hashlib
import math
import posixpath
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Any, Protocol

from botocore import exceptions as botocore_errors
from botocore.exceptions import ClientError
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from chalicelib.config import Settings
from chalicelib.errors import ErrorCode, PermanentUploadError, RetryableUploadError, UploadError
from chalicelib.logs import logger
from chalicelib.upload.layout import acl_for, headers_for
from chalicelib.upload.sources import SourceFile

MIB = 1024 * 1024
MIN_PART_SIZE = 5 * MIB  # S3's floor for every part but the last
MAX_PART_SIZE = 5 * 1024 * MIB
MAX_PARTS = 10_000
# While its units run, the job thread asks `should_stop()` at least this often: a deadline or a
# cancel is noticed even when no unit ends for a long time.
STOP_POLL_SECONDS = 0.2


# --- part arithmetic and ETags --------------------------------------------------------------------


def choose_part_size(file_size: int, configured_part_size: int = 8 * MIB) -> int:
    """The configured part size, never below 5 MiB, grown (to whole MiB) to stay within 10,000 parts."""
    part_size = max(configured_part_size, MIN_PART_SIZE)
    if file_size > part_size * MAX_PARTS:
        part_size = math.ceil(file_size / MAX_PARTS / MIB) * MIB
    if part_size > MAX_PART_SIZE:
        raise PermanentUploadError(
            ErrorCode.VALIDATION,
            "The file is too large for a multipart upload (more than 10,000 parts of 5 GiB).",
            f"{file_size} bytes",
        )
    return part_size


def part_count(file_size: int, part_size: int) -> int:
    return max(1, math.ceil(file_size / part_size))


def part_range(part_number: int, file_size: int, part_size: int) -> tuple[int, int]:
    """(offset, length) of a 1-based part."""
    offset = (part_number - 1) * part_size
    return offset, min(part_size, file_size - offset)


def _md5(data: bytes) -> Any:
    return hashlib.md5(data, usedforsecurity=False)


def _content_md5(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _bare(etag: str) -> str:
    return etag.strip('"')


def multipart_etag(part_digests: Sequence[bytes]) -> str:
    """S3's ETag of a multipart object: md5 of the concatenated part md5s, `-` part count."""
    return f"{_md5(b''.join(part_digests)).hexdigest()}-{len(part_digests)}"


class UnitInterrupted(Exception):
    """A unit of work stopped midway because its run is stopping."""


def expected_etag(
    source: SourceFile, part_size: int, remote_etag: str, interrupted: Callable[[], bool] = lambda: False
) -> str | None:
    """The ETag `source` would have in the bucket, in the same form as `remote_etag` (single or
    multipart); None when the remote one has a part count our part size cannot give. Reads the
    source a part at a time, and raises UnitInterrupted as soon as `interrupted()` says so."""
    remote = _bare(remote_etag)
    parts = part_count(source.size, part_size)
    if "-" in remote and remote.rsplit("-", 1)[1] != str(parts):
        return None  # uploaded with another part size: cannot compare without guessing it
    whole = _md5(b"")
    digests = []
    for number in range(1, parts + 1):
        if interrupted():
            raise UnitInterrupted(f"stopped hashing {source} at part {number} of {parts}")
        data = source.read(*part_range(number, source.size, part_size))
        whole.update(data)
        digests.append(_md5(data).digest())
    return multipart_etag(digests) if "-" in remote else whole.hexdigest()


# --- public data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadItem:
    """One file to put at `key`. Build it with `upload_item` for the layout's headers."""

    key: str
    source: SourceFile
    content_type: str
    cache_control: str

    @property
    def size(self) -> int:
        return self.source.size


def upload_item(key: str, source: SourceFile, *, master: bool = False) -> UploadItem:
    """An item with the Content-Type and Cache-Control the layout gives `key`."""
    headers = headers_for(key, master=master)
    return UploadItem(key, source, headers.content_type, headers.cache_control)


@dataclass(frozen=True)
class MultipartCheckpoint:
    """An open multipart upload, as a job checkpoints it to resume later.

    `parts` (part number -> ETag) is informational: on resume ListParts is the truth, and a part
    listed here but not there is sent again.
    """

    key: str
    upload_id: str
    part_size: int
    size: int
    parts: dict[int, str] = field(default_factory=dict)

    def to_document(self) -> dict[str, Any]:
        """camelCase, string-keyed: storable in the job's `multipartUploads`."""
        return {
            "key": self.key,
            "uploadId": self.upload_id,
            "partSize": self.part_size,
            "size": self.size,
            "parts": [{"partNumber": n, "etag": e} for n, e in sorted(self.parts.items())],
        }

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> MultipartCheckpoint:
        return cls(
            key=document["key"],
            upload_id=document["uploadId"],
            part_size=int(document["partSize"]),
            size=int(document["size"]),
            parts={int(p["partNumber"]): p["etag"] for p in document.get("parts", [])},
        )


class StopMode(StrEnum):
    """What `should_stop()` answers when the run must stop."""

    CANCEL = "cancel"  # the job is cancelled: abort open multipart uploads
    SUSPEND = "suspend"  # time is running out: leave them open, the continuation resumes them


class RunStatus(StrEnum):
    COMPLETED = "completed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class UploadResult:
    """How a run ended.

    `open_uploads`: multipart uploads still open when the run ended: on SUSPEND those it was
    working on, and always the checkpoints it was given for keys outside the batch (on CANCEL,
    only those whose abort failed). The caller keeps them in its checkpoint.
    """

    status: RunStatus
    written: tuple[str, ...]
    skipped: tuple[str, ...]
    open_uploads: tuple[MultipartCheckpoint, ...] = ()
    stop_mode: StopMode | None = None

    @property
    def done(self) -> tuple[str, ...]:
        """Keys that are in the bucket with the source's bytes (written now or already there)."""
        return self.written + self.skipped


class TransferListener(Protocol):
    """What a run reports. Every method is called on the thread that called `upload()`, one at a
    time, never from the pool, so an implementation needs no locking for the engine's sake. Keep
    them quick: the scheduler waits for them (throttle database writes in the implementation).
    An exception raised here stops the run like an upload error would."""

    def will_write(self, keys: Sequence[str]) -> None:
        """The run is about to write these keys, which the bucket does not hold yet. Called once,
        before the first request: a caller that must never lose track of what it wrote (a crash
        right after a PUT) records them here."""

    def bytes_done(self, key: str, count: int) -> None:
        """`count` more bytes of `key` are in the bucket: sent now, or found already there
        (a skipped file, parts of a resumed upload), so progress reflects what the bucket holds."""

    def file_done(self, key: str, size: int, skipped: bool) -> None:
        """`key` is complete in the bucket; `skipped` when identical bytes were already there."""

    def multipart_started(self, checkpoint: MultipartCheckpoint) -> None:
        """A multipart upload was created, or resumed (`checkpoint.parts` = parts already there).
        Called before its first part is sent: a caller that must not lose the UploadId (a crash
        would orphan the upload) records it here."""

    def part_done(self, key: str, upload_id: str, part_number: int, etag: str) -> None:
        """One part was uploaded."""

    def multipart_completed(self, key: str, upload_id: str) -> None:
        """CompleteMultipartUpload succeeded: forget the checkpoint."""

    def multipart_aborted(self, key: str, upload_id: str) -> None:
        """The upload is no longer open (aborted by us, or found gone): forget the checkpoint."""


class NullListener:
    """Listens to nothing."""

    def will_write(self, keys: Sequence[str]) -> None:
        pass

    def bytes_done(self, key: str, count: int) -> None:
        pass

    def file_done(self, key: str, size: int, skipped: bool) -> None:
        pass

    def multipart_started(self, checkpoint: MultipartCheckpoint) -> None:
        pass

    def part_done(self, key: str, upload_id: str, part_number: int, etag: str) -> None:
        pass

    def multipart_completed(self, key: str, upload_id: str) -> None:
        pass

    def multipart_aborted(self, key: str, upload_id: str) -> None:
        pass


@dataclass
class RecordingListener:
    """Records every call, for tests and for callers that want a summary."""

    events: list[tuple[Any, ...]] = field(default_factory=list)
    total_bytes: int = 0

    def will_write(self, keys: Sequence[str]) -> None:
        self.events.append(("will_write", tuple(keys)))

    def bytes_done(self, key: str, count: int) -> None:
        self.total_bytes += count

    def file_done(self, key: str, size: int, skipped: bool) -> None:
        self.events.append(("file_done", key, size, skipped))

    def multipart_started(self, checkpoint: MultipartCheckpoint) -> None:
        self.events.append(("multipart_started", checkpoint))

    def part_done(self, key: str, upload_id: str, part_number: int, etag: str) -> None:
        self.events.append(("part_done", key, upload_id, part_number, etag))

    def multipart_completed(self, key: str, upload_id: str) -> None:
        self.events.append(("multipart_completed", key, upload_id))

    def multipart_aborted(self, key: str, upload_id: str) -> None:
        self.events.append(("multipart_aborted", key, upload_id))

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [event for event in self.events if event[0] == name]


def never_stop() -> StopMode | None:
    return None


@dataclass(frozen=True)
class EngineConfig:
    concurrency: int = 32
    part_concurrency: int = 8
    part_size: int = 8 * MIB
    multipart_threshold: int = 8 * MIB
    acl: str = "public-read"

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineConfig:
        return cls(
            concurrency=settings.upload_concurrency,
            part_concurrency=settings.part_concurrency,
            part_size=settings.part_size,
            multipart_threshold=settings.multipart_threshold,
            acl=acl_for(settings.public_read),
        )

    @property
    def max_open_multipart(self) -> int:
        """Enough open uploads to fill the pool with parts, no more (bounds checkpoints too)."""
        return max(1, math.ceil(self.concurrency / self.part_concurrency))


# --- error classification -------------------------------------------------------------------------

_ACCESS_CODES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled", "AccountProblem"}
)
_THROTTLE_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "TooManyRequests", "RequestLimitExceeded"}
)
# The bytes arrived damaged or the upload vanished (aborted elsewhere): a fresh attempt fixes it.
_TRANSIENT_CODES = frozenset({"BadDigest", "InvalidDigest", "NoSuchUpload", "IncompleteBody"})
# botocore wraps most urllib3 failures (HTTPClientError); a few escape raw, or as OS errors.
_NETWORK_ERRORS = (
    botocore_errors.ConnectionError,  # EndpointConnectionError, ConnectTimeoutError, ...
    botocore_errors.HTTPClientError,  # ReadTimeoutError, ConnectionClosedError, ...
    botocore_errors.ResponseStreamingError,
    Urllib3HTTPError,
    ConnectionError,
    TimeoutError,
)


def classify_error(error: BaseException, *, bucket: str, key: str, operation: str) -> BaseException:
    """The UploadError an exception from `operation` on `key` means; other exceptions unchanged."""
    if isinstance(error, UploadError):
        return error
    detail = f"{operation} s3://{bucket}/{key}: {error}"
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code == "NoSuchBucket":
            return PermanentUploadError(
                ErrorCode.ACCESS_DENIED, f"The bucket {bucket!r} does not exist; check SPACES_BUCKET.", detail
            )
        if code in _ACCESS_CODES or status == 403:
            return PermanentUploadError(
                ErrorCode.ACCESS_DENIED,
                f"The storage refused access to bucket {bucket!r}; check the Spaces key, secret and permissions.",
                detail,
            )
        if code in _THROTTLE_CODES or status in (429, 503):
            return RetryableUploadError(ErrorCode.THROTTLED, "The storage asked us to slow down.", detail)
        if status >= 500 or code in ("InternalError", "ServiceUnavailable"):
            return RetryableUploadError(ErrorCode.STORAGE_ERROR, "The storage had an internal error.", detail)
        if code in _TRANSIENT_CODES:
            return RetryableUploadError(ErrorCode.UPLOAD_FAILED, "An upload was interrupted; it will resume.", detail)
        return PermanentUploadError(ErrorCode.UPLOAD_FAILED, f"The storage rejected the upload of {key!r}.", detail)
    if isinstance(error, botocore_errors.NoCredentialsError | botocore_errors.PartialCredentialsError):
        return PermanentUploadError(ErrorCode.ACCESS_DENIED, "No storage credentials are configured.", detail)
    if isinstance(error, _NETWORK_ERRORS):
        return RetryableUploadError(ErrorCode.NETWORK, "The connection to the storage failed.", detail)
    return error


def _worst(errors: Sequence[BaseException]) -> BaseException:
    """The error to raise: a permanent one if any (retrying cannot help), else the first."""
    return next((e for e in errors if isinstance(e, PermanentUploadError)), errors[0])


def list_existing(client: Any, bucket: str, keys: Iterable[str]) -> dict[str, tuple[int, str]]:
    """{key: (size, bare ETag)} for those `keys` already in the bucket.

    One ListObjectsV2 walk per folder of keys, starting at the keys' common prefix and not
    descending into subfolders (Delimiter `/`): a folder of 2,000 segments is 2 requests,
    a lone master playlist in a big folder is 1.
    """
    wanted = set(keys)
    folders: dict[str, list[str]] = {}
    for key in wanted:
        folders.setdefault(posixpath.dirname(key), []).append(key)
    found: dict[str, tuple[int, str]] = {}
    paginator = client.get_paginator("list_objects_v2")
    for group in folders.values():
        prefix = posixpath.commonprefix(group)
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            for item in page.get("Contents", []):
                if item["Key"] in wanted:
                    found[item["Key"]] = (int(item["Size"]), _bare(item["ETag"]))
    return found


# --- the engine -------------------------------------------------------------------------------------

_SEND_BODY_AT_ONCE = "studio-putobject-without-expect"


def _send_body_at_once(model: Any, params: dict[str, Any], **_kwargs: Any) -> None:
    """Drop botocore's `Expect: 100-continue` from a PutObject (measured: 601 files through a
    100 ms proxy took 4.7 s with it, 2.7 s without)."""
    if model.name == "PutObject":
        params["headers"].pop("Expect", None)


class TransferEngine:
    """One pool of `concurrency` threads over one boto3 S3 client; `upload()` runs one batch.

    Thread-safe: several threads may call `upload()` at once (each run bounds its own units).
    """

    def __init__(self, client: Any, config: EngineConfig | None = None) -> None:
        self.client = client
        self.config = config or EngineConfig()
        self._pool = ThreadPoolExecutor(max_workers=self.config.concurrency, thread_name_prefix="upload")
        # Fewer pooled connections than threads makes urllib3 open and drop one per request.
        client_config = getattr(getattr(client, "meta", None), "config", None)
        if client_config is not None and client_config.max_pool_connections < self.config.concurrency:
            logger.warning(
                "the S3 client keeps %d connections for %d upload threads; raise max_pool_connections",
                client_config.max_pool_connections,
                self.config.concurrency,
            )
        events = getattr(getattr(client, "meta", None), "events", None)
        if events is not None:  # fakes in tests have no event system
            # On botocore's own event, after its handler: one for PutObject would run before it.
            events.register_last("before-call.s3", _send_body_at_once, unique_id=_SEND_BODY_AT_ONCE)

    def __enter__(self) -> TransferEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def upload(
        self,
        bucket: str,
        items: Sequence[UploadItem],
        *,
        listener: TransferListener | None = None,
        should_stop: Callable[[], StopMode | None] = never_stop,
        checkpoints: Iterable[MultipartCheckpoint] = (),
    ) -> UploadResult:
        """Put every item in `bucket`; returns when all are there (COMPLETED) or a stop was
        honoured (STOPPED). Raises RetryableUploadError / PermanentUploadError (or an unexpected
        exception) only after every request in flight has ended.

        `should_stop` is called before every file and part, and every STOP_POLL_SECONDS while the
        run waits for its units: keep it cheap (cache a database read for a second or so).
        `checkpoints` are multipart uploads a previous attempt left open; those of keys in
        `items` are resumed, the others are aborted on CANCEL or on a permanent error and
        returned in `open_uploads` otherwise.
        """
        if len({item.key for item in items}) != len(items):
            raise ValueError("upload() got the same key twice in one batch")
        return _Run(self, bucket, items, listener or NullListener(), should_stop, checkpoints).execute()

    def abort(self, bucket: str, key: str, upload_id: str) -> bool:
        """Abort one multipart upload; False when it was already gone. For cleanup too."""
        try:
            self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "NoSuchUpload":
                return False
            raise classify_error(error, bucket=bucket, key=key, operation="AbortMultipartUpload") from error
        return True

    def list_existing(self, bucket: str, keys: Iterable[str]) -> dict[str, tuple[int, str]]:
        return list_existing(self.client, bucket, keys)


# --- one run ----------------------------------------------------------------------------------------


@dataclass
class _Multipart:
    """Scheduler-side state of one multipart upload (touched by the job thread only)."""

    item: UploadItem
    checkpoint: MultipartCheckpoint | None
    part_size: int = 0
    upload_id: str | None = None  # None until the begin unit has returned
    todo: deque[int] = field(default_factory=deque)
    done: dict[int, str] = field(default_factory=dict)
    in_flight: int = 0
    completing: bool = False


@dataclass(frozen=True)
class _Begun:
    """What a begin unit found: skip the file, or an open upload and the parts already there."""

    skipped: bool
    part_size: int = 0
    upload_id: str = ""
    found: dict[int, str] = field(default_factory=dict)
    gone: tuple[str, ...] = ()  # earlier upload ids that are no longer open


class _Kind(StrEnum):
    """The units of work; the value names the S3 operation, for error messages."""

    PUT = "PutObject"
    BEGIN = "CreateMultipartUpload"
    PART = "UploadPart"
    COMPLETE = "CompleteMultipartUpload"


# A unit's end as the queue carries it: (kind, subject, part number, value, error).
_Event = tuple[_Kind, Any, int, Any, BaseException | None]


class _Run:
    """One `upload()` call. Every attribute is read and written by the job thread only; pool
    threads run the `_unit_*` methods, which touch nothing but their arguments and the client."""

    def __init__(
        self,
        engine: TransferEngine,
        bucket: str,
        items: Sequence[UploadItem],
        listener: TransferListener,
        should_stop: Callable[[], StopMode | None],
        checkpoints: Iterable[MultipartCheckpoint],
    ) -> None:
        self.engine = engine
        self.client = engine.client
        self.config = engine.config
        self.bucket = bucket
        self.listener = listener
        self.should_stop = should_stop
        self.pending = deque(items)
        self.checkpoints = {c.key: c for c in checkpoints}
        self.existing: dict[str, tuple[int, str]] = {}
        self.open: dict[str, _Multipart] = {}
        self.events: queue.SimpleQueue[_Event] = queue.SimpleQueue()
        self.halt = threading.Event()  # set once the run stops: units that can stop midway do
        self.in_flight = 0
        self.errors: list[BaseException] = []
        self.stop_mode: StopMode | None = None
        self.written: list[str] = []
        self.skipped: list[str] = []

    # -- the job thread --------------------------------------------------------------------

    def execute(self) -> UploadResult:
        self._ask_stop()
        if self.stop_mode is None and self.pending:
            try:
                self.existing = self.engine.list_existing(self.bucket, (i.key for i in self.pending))
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

    def _schedule(self) -> None:
        while self.in_flight < self.config.concurrency and not self._halted():
            unit = self._next_unit()
            if unit is None:
                return
            self._ask_stop()
            if self.stop_mode is not None:
                return
            self._submit(*unit)

    def _next_unit(self) -> tuple[_Kind, Any, int] | None:
        """The next unit that may start: parts of open uploads first (finish what is started),
        then the next file. None when nothing may start now."""
        for upload in self.open.values():
            if upload.upload_id is None or upload.completing:
                continue
            if upload.todo and upload.in_flight < self.config.part_concurrency:
                return _Kind.PART, upload, upload.todo[0]
            if not upload.todo and upload.in_flight == 0:
                return _Kind.COMPLETE, upload, 0
        if not self.pending:
            return None
        item = self.pending[0]
        if item.size < self.config.multipart_threshold:
            return _Kind.PUT, item, 0
        if len(self.open) < self.config.max_open_multipart:
            return _Kind.BEGIN, item, 0
        return None

    def _submit(self, kind: _Kind, subject: Any, number: int) -> None:
        """Reserve the unit in the state and hand the pool a call whose arguments are copies:
        pool threads never read the scheduler's state."""
        work: Callable[[], Any]
        if kind == _Kind.PART:
            subject.todo.popleft()
            subject.in_flight += 1
            work = partial(self._unit_part, subject.item, subject.upload_id, subject.part_size, number)
        elif kind == _Kind.COMPLETE:
            subject.completing = True
            work = partial(self._unit_complete, subject.item.key, subject.upload_id, dict(subject.done))
        elif kind == _Kind.BEGIN:
            self.pending.popleft()
            item: UploadItem = subject
            subject = self.open[item.key] = _Multipart(item, self.checkpoints.pop(item.key, None))
            work = partial(self._unit_begin, subject.item, subject.checkpoint, self.halt)
        else:
            self.pending.popleft()
            work = partial(self._unit_put, subject)
        self.engine._pool.submit(self._run_unit, kind, subject, number, work)
        self.in_flight += 1  # only once submitted: a unit that never ran must not be waited for

    def _handle(self, event: _Event) -> None:
        kind, subject, number, value, error = event
        self.in_flight -= 1
        if kind == _Kind.PART:
            subject.in_flight -= 1
        if isinstance(error, UnitInterrupted):
            self._put_back(subject)
        elif error is not None:
            key = subject.item.key if isinstance(subject, _Multipart) else subject.key
            self.errors.append(classify_error(error, bucket=self.bucket, key=key, operation=kind.value))
        elif kind == _Kind.PUT:
            self._on_put(subject, value)
        elif kind == _Kind.BEGIN:
            self._on_begin(subject, value)
        elif kind == _Kind.PART:
            self._on_part(subject, number, value)
        else:
            self._on_complete(subject)

    def _put_back(self, upload: _Multipart) -> None:
        """A begin unit that stopped midway: the file is still to do, its checkpoint still open."""
        del self.open[upload.item.key]
        self.pending.appendleft(upload.item)
        if upload.checkpoint is not None:
            self.checkpoints[upload.item.key] = upload.checkpoint

    def _on_put(self, item: UploadItem, skipped: bool) -> None:
        (self.skipped if skipped else self.written).append(item.key)
        self.listener.bytes_done(item.key, item.size)
        self.listener.file_done(item.key, item.size, skipped)

    def _on_begin(self, upload: _Multipart, begun: _Begun) -> None:
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

    def _on_part(self, upload: _Multipart, number: int, etag: str) -> None:
        assert upload.upload_id is not None  # parts are scheduled only once begun
        upload.done[number] = etag
        self.listener.part_done(upload.item.key, upload.upload_id, number, etag)
        self.listener.bytes_done(upload.item.key, part_range(number, upload.item.size, upload.part_size)[1])

    def _on_complete(self, upload: _Multipart) -> None:
        assert upload.upload_id is not None
        key = upload.item.key
        del self.open[key]
        self.written.append(key)
        self.listener.multipart_completed(key, upload.upload_id)
        self.listener.file_done(key, upload.item.size, False)

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
        left_open = self._left_open()
        if self.errors:
            error = _worst(self.errors)
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
        )

    def _abort_all(self, uploads: Sequence[MultipartCheckpoint]) -> list[MultipartCheckpoint]:
        """Abort each upload; returns those that could not be aborted (still open)."""
        still_open = []
        for upload in uploads:
            try:
                self.engine.abort(self.bucket, upload.key, upload.upload_id)
            except Exception:  # best effort: the checkpoint stays, cleanup can abort it later
                logger.warning("could not abort %s (%s)", upload.key, upload.upload_id, exc_info=True)
                still_open.append(upload)
                continue
            self.listener.multipart_aborted(upload.key, upload.upload_id)
        return still_open

    # -- pool threads ----------------------------------------------------------------------

    def _run_unit(self, kind: _Kind, subject: Any, number: int, work: Callable[[], Any]) -> None:
        # Whatever happens, the job thread must hear of it, or it would wait forever.
        try:
            value = work()
        except BaseException as error:
            self.events.put((kind, subject, number, None, error))
        else:
            self.events.put((kind, subject, number, value, None))

    def _unit_put(self, item: UploadItem) -> bool:
        """One PutObject; True when identical bytes were already there (nothing sent)."""
        data = item.source.read()  # small files are read in one go, when the unit starts
        digest = _md5(data)
        if self.existing.get(item.key) == (len(data), digest.hexdigest()):
            return True
        self.client.put_object(
            Bucket=self.bucket,
            Key=item.key,
            Body=data,
            ContentMD5=_content_md5(digest.digest()),
            ContentType=item.content_type,
            CacheControl=item.cache_control,
            ACL=self.config.acl,
        )
        return False

    def _unit_begin(self, item: UploadItem, checkpoint: MultipartCheckpoint | None, halt: threading.Event) -> _Begun:
        """Skip the file if the bucket has it; else resume the checkpoint's upload if it is still
        open and fits the file; else create a new one. Comparing with the bucket's copy reads the
        whole source: it stops (UnitInterrupted) as soon as the run halts."""
        usable = checkpoint if checkpoint is not None and checkpoint.size == item.size else None
        part_size = usable.part_size if usable else choose_part_size(item.size, self.config.part_size)
        remote = self.existing.get(item.key)
        if remote is not None and remote[0] == item.size:
            etag = remote[1]
            if expected_etag(item.source, part_size, etag, halt.is_set) == etag:
                return _Begun(skipped=True, gone=self._drop(checkpoint))
        if usable is not None:
            found = self._listed_parts(item, usable)
            if found is not None:
                return _Begun(False, part_size, usable.upload_id, found)
        response = self.client.create_multipart_upload(
            Bucket=self.bucket,
            Key=item.key,
            ContentType=item.content_type,
            CacheControl=item.cache_control,
            ACL=self.config.acl,
        )
        gone = (usable.upload_id,) if usable is not None else self._drop(checkpoint)
        return _Begun(False, part_size, response["UploadId"], gone=gone)

    def _drop(self, checkpoint: MultipartCheckpoint | None) -> tuple[str, ...]:
        """Abort a checkpointed upload we will not continue; its id, to report it gone."""
        if checkpoint is None:
            return ()
        self.engine.abort(self.bucket, checkpoint.key, checkpoint.upload_id)
        return (checkpoint.upload_id,)

    def _listed_parts(self, item: UploadItem, checkpoint: MultipartCheckpoint) -> dict[int, str] | None:
        """Parts of the checkpoint's upload already in the bucket with the right size (and the
        checkpoint's ETag when it knows one); None when the upload no longer exists."""
        found: dict[int, str] = {}
        paginator = self.client.get_paginator("list_parts")
        pages = paginator.paginate(Bucket=self.bucket, Key=item.key, UploadId=checkpoint.upload_id)
        total = part_count(item.size, checkpoint.part_size)
        try:
            for page in pages:
                for part in page.get("Parts", []):
                    number, etag = int(part["PartNumber"]), part["ETag"]
                    known = checkpoint.parts.get(number)
                    if (
                        number <= total
                        and int(part["Size"]) == part_range(number, item.size, checkpoint.part_size)[1]
                        and (known is None or _bare(known) == _bare(etag))
                    ):
                        found[number] = etag
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "NoSuchUpload":
                return None
            raise
        return found

    def _unit_part(self, item: UploadItem, upload_id: str, part_size: int, number: int) -> str:
        offset, length = part_range(number, item.size, part_size)
        data = item.source.read(offset, length)  # read now, not when scheduled: bounded memory
        response = self.client.upload_part(
            Bucket=self.bucket,
            Key=item.key,
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            ContentMD5=_content_md5(_md5(data).digest()),
        )
        etag: str = response["ETag"]
        return etag

    def _unit_complete(self, key: str, upload_id: str, parts: dict[int, str]) -> None:
        self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in sorted(parts.items())]},
        )
