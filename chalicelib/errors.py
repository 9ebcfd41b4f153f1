"""The one exception hierarchy of the service; app.py maps it to HTTP at the edge."""

from __future__ import annotations

from enum import StrEnum


class StudioError(Exception):
    """Base of every error the service raises on purpose."""


class NotFound(StudioError):
    """No such job (404)."""


class ConflictReason(StrEnum):
    """Why a state change was refused, for callers that count refusals (bulk actions) instead of
    reading the message."""

    WRONG_STATE = "wrong-state"
    CLEANUP_RUNNING = "cleanup-running"
    SOURCE_REMOVED = "source-removed"


class Conflict(StudioError):
    """The operation is not allowed in the job's current state (409). `reason` is None when the
    state allowed it but something else stopped it (the bucket refused a delete)."""

    def __init__(self, message: str, reason: ConflictReason | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class Invalid(StudioError):
    """Malformed or invalid input (400). The message names the field."""


class TooLarge(StudioError):
    """A request body over the documented limit (413)."""


class NotificationNotDelivered(StudioError):
    """A notification's receiver did not take it; SQS delivers the message again (chalicelib/notify)."""


class ConfigurationError(StudioError):
    """A required setting is missing or wrong; raised at start, not deep in a request."""


class ErrorCode(StrEnum):
    """The `errorCode` values a failed job can carry (SPEC 6, 7, 5)."""

    SOURCE_NOT_FOUND = "SOURCE_NOT_FOUND"
    SOURCE_FORBIDDEN = "SOURCE_FORBIDDEN"
    ACCESS_DENIED = "ACCESS_DENIED"
    INVALID_PLAYLIST = "INVALID_PLAYLIST"
    INVALID_SUBTITLE = "INVALID_SUBTITLE"
    VALIDATION = "VALIDATION"
    MISSING_REFERENCES = "MISSING_REFERENCES"
    STALLED = "STALLED"
    DEAD_LETTERED = "DEAD_LETTERED"
    UPLOAD_FAILED = "UPLOAD_FAILED"
    NETWORK = "NETWORK"
    THROTTLED = "THROTTLED"
    STORAGE_ERROR = "STORAGE_ERROR"


class UploadError(StudioError):
    """An upload could not go on. `reason` is a sentence for a person, `detail` the technical text."""

    def __init__(self, code: ErrorCode, reason: str, detail: str = "") -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.detail = detail or reason


class PermanentUploadError(UploadError):
    """Retrying cannot help (bad source, access denied, invalid file): the job fails at once."""


class RetryableUploadError(UploadError):
    """A transient failure (network, 5xx, throttling): retried with backoff while attempts remain."""


class Unauthorized(StudioError):
    """No token, or a token that is malformed, badly signed, expired or without `exp` (401)."""


class Forbidden(StudioError):
    """A valid token without the admin role (403)."""
