"""Which storage errors are worth a retry and which fail the job at once (SPEC 6)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, ReadTimeoutError

from chalicelib.errors import ErrorCode, PermanentUploadError, RetryableUploadError, UploadError
from chalicelib.upload.engine import classify_error


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": f"{code} happened"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


def classify(error: BaseException) -> BaseException:
    return classify_error(error, bucket="media", key="films/x/seg.ts", operation="PutObject")


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        (client_error("SlowDown", 503), RetryableUploadError, ErrorCode.THROTTLED),
        (client_error("Throttling", 400), RetryableUploadError, ErrorCode.THROTTLED),
        (client_error("RequestTimeout", 400), RetryableUploadError, ErrorCode.THROTTLED),
        (client_error("InternalError", 500), RetryableUploadError, ErrorCode.STORAGE_ERROR),
        (client_error("BadGateway", 502), RetryableUploadError, ErrorCode.STORAGE_ERROR),
        (client_error("BadDigest", 400), RetryableUploadError, ErrorCode.UPLOAD_FAILED),
        (client_error("NoSuchUpload", 404), RetryableUploadError, ErrorCode.UPLOAD_FAILED),
        (EndpointConnectionError(endpoint_url="http://x"), RetryableUploadError, ErrorCode.NETWORK),
        (ReadTimeoutError(endpoint_url="http://x"), RetryableUploadError, ErrorCode.NETWORK),
        (ConnectionResetError(), RetryableUploadError, ErrorCode.NETWORK),
        (client_error("AccessDenied", 403), PermanentUploadError, ErrorCode.ACCESS_DENIED),
        (client_error("Forbidden", 403), PermanentUploadError, ErrorCode.ACCESS_DENIED),
        (client_error("InvalidAccessKeyId", 403), PermanentUploadError, ErrorCode.ACCESS_DENIED),
        (client_error("SignatureDoesNotMatch", 403), PermanentUploadError, ErrorCode.ACCESS_DENIED),
        (client_error("NoSuchBucket", 404), PermanentUploadError, ErrorCode.ACCESS_DENIED),
        (NoCredentialsError(), PermanentUploadError, ErrorCode.ACCESS_DENIED),
        (client_error("EntityTooLarge", 400), PermanentUploadError, ErrorCode.UPLOAD_FAILED),
    ],
)
def test_classification(error: BaseException, kind: type[UploadError], code: ErrorCode) -> None:
    classified = classify(error)
    assert isinstance(classified, kind)
    assert classified.code == code


def test_reason_is_for_people_detail_is_technical() -> None:
    classified = classify(client_error("NoSuchBucket", 404))
    assert isinstance(classified, PermanentUploadError)
    assert classified.reason == "The bucket 'media' does not exist; check SPACES_BUCKET."
    assert "PutObject s3://media/films/x/seg.ts" in classified.detail
    assert "NoSuchBucket" in classified.detail


def test_unknown_exceptions_pass_through_unchanged() -> None:
    error = ValueError("a bug")
    assert classify(error) is error
