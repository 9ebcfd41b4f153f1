"""What an exception from S3 means for a run: retryable (a later attempt can succeed) or permanent."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore import exceptions as botocore_errors
from botocore.exceptions import ClientError
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from chalicelib.errors import ErrorCode, PermanentUploadError, RetryableUploadError, UploadError
from chalicelib.upload.concurrency import is_throttle_answer

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


def worst(errors: Sequence[BaseException]) -> BaseException:
    """The error to raise: a permanent one if any (retrying cannot help), else the first."""
    return next((e for e in errors if isinstance(e, PermanentUploadError)), errors[0])


def is_throttle(error: BaseException) -> bool:
    """The storage answered "slow down" (503 SlowDown and kin): retryable, and a signal to send less."""
    if not isinstance(error, ClientError):
        return False
    code = str(error.response.get("Error", {}).get("Code", ""))
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return is_throttle_answer(code, status)


# botocore retries a SlowDown itself (retries mode "standard"), backing off, before the engine
# sees an error. Each answer a unit receives is counted on the thread that runs the unit; with an
# adaptive limit, botocore is told not to retry it: the engine lowers its limit at once and sends
# the unit again itself.
_units = threading.local()
_WATCH_THROTTLES = "studio-watch-throttle-answers"


@dataclass
class ThrottleWatch:
    """The throttling answers one unit received; `engine_retries`: botocore leaves them to the engine."""

    engine_retries: bool
    answers: int = 0


def watch_throttle_answers(client: Any) -> None:
    """Let `watching_throttles` see the answers `client` receives (once per client)."""
    events = getattr(getattr(client, "meta", None), "events", None)
    if events is not None:  # fakes in tests have no event system
        # First: an answer of ours (False, do not retry) must come before botocore's retry handler's.
        events.register_first("needs-retry.s3", _note_answer, unique_id=_WATCH_THROTTLES)


@contextmanager
def watching_throttles(engine_retries: bool) -> Iterator[ThrottleWatch]:
    """Count the throttling answers to requests this thread sends inside the block."""
    watch = ThrottleWatch(engine_retries)
    _units.watch = watch
    try:
        yield watch
    finally:
        _units.watch = None


def _note_answer(response: tuple[Any, dict[str, Any]] | None = None, **_kwargs: Any) -> bool | None:
    """botocore's needs-retry event, after every attempt: None leaves the decision to botocore."""
    watch: ThrottleWatch | None = getattr(_units, "watch", None)
    if watch is None or response is None:
        return None
    http_response, parsed = response
    code = str(parsed.get("Error", {}).get("Code", ""))
    status = int(parsed.get("ResponseMetadata", {}).get("HTTPStatusCode") or http_response.status_code or 0)
    if not is_throttle_answer(code, status):
        return None
    watch.answers += 1
    return False if watch.engine_retries else None
