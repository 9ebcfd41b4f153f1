"""The transfer engine (SPEC 6): files and parts over one thread pool and one boto3 S3 client.

`TransferEngine.upload(bucket, items, ...)` runs one batch on the caller's thread (the job
thread), which is the only scheduler. The engine is cut into roles, as boto's s3transfer is:

- `engine` (this module): the facade, one pool over one client; the names callers import.
- `scheduler`: one run; cuts the batch into units of work (a single PutObject; a multipart
  "begin" = resume check + CreateMultipartUpload or ListParts; one UploadPart; one
  CompleteMultipartUpload), keeps a bounded number in flight, handles their results. A unit never
  waits on another unit, so the pool cannot deadlock however full it is, and several runs (jobs)
  may share one engine: each bounds its own in-flight units.
- `single_put`, `multipart`: the units themselves (run on pool threads).
- `resume`: the listing of what the bucket holds, ETag comparison, ListParts verification.
- `concurrency`: the adaptive concurrency rule (AIMD), pure.
- `cancellation`: StopMode and how a unit stops midway; `failures`: error classification;
  `listeners`: progress accounting; `parts`: part arithmetic and ETags; `items`: the data types.

- `concurrency` requests in flight to start with; the adaptive rule (`concurrency`) grows the
  limit while throughput grows and halves it on 503 SlowDown, up to `concurrency_max`.
- At most `part_concurrency` parts of one object in flight (Spaces allows 10 PUTs per object),
  at most ceil(concurrency / part_concurrency) multipart uploads open at once, and beyond
  `concurrency` requests a unit starts only within the memory budget, so memory stays within
  part size x concurrency whatever the limit: a part's bytes are read when its unit starts.
- Every PUT carries Content-MD5 (the client is configured not to add CRC checksums). Over
  HTTPS that also spares botocore the SHA-256 of the body: it signs UNSIGNED-PAYLOAD when a
  Content-MD5 header is present.
- Resume: the destination folder is listed once per run (ListObjectsV2, no HEAD per file); a
  file whose size and ETag match is skipped. An interrupted multipart upload continues from its
  checkpoint: ListParts says which parts are there, only the others are sent.
- Stop: `should_stop()` is asked before every file and every part, and every STOP_POLL_SECONDS
  while the job thread waits for its units (`cancellation`). On a stop nothing new starts, a unit that can stop
  midway does (hashing a large source to compare it with the bucket's copy), the requests in
  flight finish, then open multipart uploads are aborted (CANCEL) or left open for the next
  attempt (SUSPEND).
- Errors: classified into RetryableUploadError / PermanentUploadError; a permanent one aborts
  the run's open multipart uploads, a retryable one leaves them for the next attempt.

The client the engine expects (built by services.py, see chalicelib/spaces.py):

    Config(request_checksum_calculation="when_required",   # Spaces: no CRC headers; we send MD5
           response_checksum_validation="when_required",
           max_pool_connections=max(UPLOAD_CONCURRENCY, UPLOAD_CONCURRENCY_MAX) + 8,  # one per thread
           retries={"mode": "standard"})
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalicelib.logs import logger
from chalicelib.upload import multipart
from chalicelib.upload.cancellation import StopMode, never_stop
from chalicelib.upload.failures import classify_error, watch_throttle_answers
from chalicelib.upload.items import (
    EngineConfig,
    MultipartCheckpoint,
    RunStatus,
    UploadItem,
    UploadResult,
    upload_item,
)
from chalicelib.upload.listeners import NullListener, RecordingListener, TransferListener
from chalicelib.upload.parts import (
    MAX_PART_SIZE,
    MAX_PARTS,
    MIB,
    MIN_PART_SIZE,
    choose_part_size,
    multipart_etag,
    part_count,
    part_range,
)
from chalicelib.upload.resume import expected_etag, list_existing
from chalicelib.upload.scheduler import Run
from chalicelib.upload.single_put import send_body_at_once

# The names callers import from the engine; each lives in the module of its role.
__all__ = [
    "MAX_PARTS",
    "MAX_PART_SIZE",
    "MIB",
    "MIN_PART_SIZE",
    "EngineConfig",
    "MultipartCheckpoint",
    "NullListener",
    "RecordingListener",
    "RunStatus",
    "StopMode",
    "TransferEngine",
    "TransferListener",
    "UploadItem",
    "UploadResult",
    "choose_part_size",
    "classify_error",
    "expected_etag",
    "list_existing",
    "multipart_etag",
    "never_stop",
    "part_count",
    "part_range",
    "upload_item",
]


class TransferEngine:
    """One pool of `config.ceiling` threads over one boto3 S3 client; `upload()` runs one batch.

    Thread-safe: several threads may call `upload()` at once (each run bounds its own units).
    """

    def __init__(self, client: Any, config: EngineConfig | None = None) -> None:
        self.client = client
        self.config = config or EngineConfig()
        # Threads start as the runs need them: the pool is sized to what the adaptive limit may reach.
        self._pool = ThreadPoolExecutor(max_workers=self.config.ceiling, thread_name_prefix="upload")
        # Fewer pooled connections than threads makes urllib3 open and drop one per request.
        client_config = getattr(getattr(client, "meta", None), "config", None)
        if client_config is not None and client_config.max_pool_connections < self.config.ceiling:
            logger.warning(
                "the S3 client keeps %d connections for %d upload threads; raise max_pool_connections",
                client_config.max_pool_connections,
                self.config.ceiling,
            )
        send_body_at_once(client)
        watch_throttle_answers(client)

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
        run = Run(
            self.client, self.config, self._pool, bucket, items, listener or NullListener(), should_stop, checkpoints
        )
        return run.execute()

    def abort(self, bucket: str, key: str, upload_id: str) -> bool:
        """Abort one multipart upload; False when it was already gone. For cleanup too."""
        return multipart.abort(self.client, bucket, key, upload_id)

    def list_existing(self, bucket: str, keys: Iterable[str]) -> dict[str, tuple[int, str]]:
        return list_existing(self.client, bucket, keys)
