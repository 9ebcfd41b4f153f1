"""What an exception from S3 means for a run: retryable (a later attempt can succeed) or permanent."""

from __future__ import annotations

from collections.abc import Sequence

from botocore import exceptions as botocore_errors
from botocore.exceptions import ClientError
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from chalicelib.errors import ErrorCode, PermanentUploadError, RetryableUploadError, UploadError

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
