"""The upload job (SPEC 2) and the request models of the HTTP API. Pure: no I/O here.

Attributes are snake_case in Python and camelCase in JSON and MongoDB (aliases).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import (
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from chalicelib.errors import UploadError
from chalicelib.jobs.search import SEARCH_FIELD, search_words

OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")
# Route names under /upload-jobs/: a job with one of these ids could never be read or deleted.
RESERVED_JOB_IDS = frozenset({"stats", "clear", "fix-stuck", "bulk"})
HISTORY_LIMIT = 50
MAX_PATH_LENGTH = 1024
MAX_METADATA_DEPTH = 8
# A key segment of uploadPath: what a CDN path can carry without any encoding.
KEY_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
# Characters that look like a separator or a dot but that NFKC does not fold into one.
SEPARATOR_LOOKALIKES = frozenset("\u2215\u2044\u29f8\u29f5\u2216\ufe68\u2024\u2025\u2026")


class JobStatus(StrEnum):
    WAITING = "waiting"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobType(StrEnum):
    HLS = "upload-hls-to-s3"
    SUBTITLE = "upload-subtitle-to-s3"
    VIDEO = "upload-video-to-s3"
    MASTER = "upload-master-playlist"


class UploadType(StrEnum):
    HLS = "hls"
    SUBTITLE = "subtitle"
    VIDEO = "video"
    MASTER_PLAYLIST = "master_playlist"


class ContentType(StrEnum):
    VIDEO = "video"
    AUDIO = "audio"
    SUBTITLE = "subtitle"
    PLAYLIST = "playlist"


class ResourceType(StrEnum):
    FILM = "film"
    EPISODE = "episode"
    SEASON = "season"


class QueueName(StrEnum):
    HLS = "upload-hls-to-s3"
    MASTER = "upload-master-playlist"


class JobTypeRule(BaseModel):
    queue: QueueName
    upload_type: UploadType
    content_types: tuple[ContentType, ...]
    source_field: str


# SPEC 2's table: queue, uploadType, allowed contentType (first = default), required source field.
JOB_TYPE_RULES: dict[JobType, JobTypeRule] = {
    JobType.HLS: JobTypeRule(
        queue=QueueName.HLS,
        upload_type=UploadType.HLS,
        content_types=(ContentType.VIDEO, ContentType.AUDIO),
        source_field="hls_dir",
    ),
    JobType.SUBTITLE: JobTypeRule(
        queue=QueueName.HLS,
        upload_type=UploadType.SUBTITLE,
        content_types=(ContentType.SUBTITLE,),
        source_field="subtitle_path",
    ),
    JobType.VIDEO: JobTypeRule(
        queue=QueueName.HLS,
        upload_type=UploadType.VIDEO,
        content_types=(ContentType.VIDEO,),
        source_field="source_path",
    ),
    JobType.MASTER: JobTypeRule(
        queue=QueueName.MASTER,
        upload_type=UploadType.MASTER_PLAYLIST,
        content_types=(ContentType.PLAYLIST,),
        source_field="master_playlist_path",
    ),
}


def utcnow() -> datetime:
    """Now, in UTC, at the millisecond precision that MongoDB keeps (so cursors round-trip)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso_z(value: datetime) -> str:
    """UTC, ISO 8601 with `Z`, millisecond precision (what MongoDB keeps)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def as_utc(value: datetime) -> datetime:
    """MongoDB hands back naive datetimes that are UTC; make them aware."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, PlainSerializer(iso_z, return_type=str, when_used="json")]

CAMEL = ConfigDict(
    alias_generator=AliasGenerator(validation_alias=to_camel, serialization_alias=to_camel),
    populate_by_name=True,
    use_enum_values=True,
)


def pattern_of(regex: re.Pattern[str]) -> Any:
    """The regex a validator below enforces, stated in the JSON Schema (the message stays ours)."""
    return Field(json_schema_extra={"pattern": regex.pattern})


ObjectIdText = Annotated[str, pattern_of(OBJECT_ID)]
SafeName = Annotated[str, pattern_of(SAFE_NAME)]


def _object_id(value: str | None, field: str) -> str | None:
    if value is not None and not OBJECT_ID.match(value):
        raise ValueError(f"{field} must be a 24-character hex ObjectId")
    return value.lower() if value else value


def path_problem(value: str) -> str | None:
    """Why a path given in a request could be read as another path, or None when it cannot.

    Refused: control characters (NUL among them), backslashes (a separator on some systems),
    percent escapes (`%2e%2e` is `..` to whoever decodes it), characters that look like a
    separator or a dot (`\uff0e\uff0e`, `\u2215`), `..` parts, and anything longer than MAX_PATH_LENGTH."""
    if len(value) > MAX_PATH_LENGTH:
        return f"is longer than {MAX_PATH_LENGTH} characters"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "contains a control character"
    if "\\" in value:
        return "contains a backslash"
    if PERCENT_ESCAPE.search(value):
        return "contains a percent escape"
    for char in value:
        if char in SEPARATOR_LOOKALIKES or (
            char not in "./" and any(c in "./\\" for c in unicodedata.normalize("NFKC", char))
        ):
            return f"contains {char!r}, which looks like a separator or a dot"
    if ".." in value.split("/"):
        return "contains '..'"
    return None


def _safe_path(value: str | None, field: str) -> str | None:
    """A source path or reference: absolute paths stay allowed (the source rules check the root)."""
    if value is not None and (problem := path_problem(value)):
        raise ValueError(f"{field} {problem}")
    return value


def _relative_path(value: str | None, field: str) -> str | None:
    """uploadPath: a key prefix inside the bucket; no `..`, no leading `/`, plain segments only."""
    if value is None:
        return None
    _safe_path(value, field)
    parts = value.strip("/").split("/") if value else []
    if value.startswith("/") or not value or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"{field} must be a relative path without '..', '.' or empty parts")
    if not all(KEY_SEGMENT.match(part) for part in parts):
        raise ValueError(f"{field} parts must be letters, digits, '_', '-' or '.' (not first)")
    return value.strip("/")


def _storable(value: Any, field: str, depth: int = 0) -> None:
    """Free-form metadata MongoDB can store as given: bounded nesting, no `$` or NUL in keys."""
    if depth > MAX_METADATA_DEPTH:
        raise ValueError(f"{field} is nested deeper than {MAX_METADATA_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            if key.startswith("$") or "\x00" in key:
                raise ValueError(f"{field} has a key {key!r}: keys may not start with '$' or contain NUL")
            _storable(item, field, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _storable(item, field, depth + 1)


class HistoryEntry(BaseModel):
    model_config = CAMEL

    at: UtcDatetime
    from_: JobStatus | None = Field(default=None, alias="from")
    to: JobStatus
    reason: str = ""
    actor: str = ""

    @field_validator("at", mode="after")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return as_utc(value)


class SubtitleMetadata(BaseModel):
    model_config = ConfigDict(extra="allow")

    language: str | None = None
    label: str | None = None


# One valid body per job type: docs/openapi.json shows them and `make fuzz` sends them.
_RESOURCE = {"resourceType": "film", "resourceId": "64b7f0c2a1b2c3d4e5f60718"}
CREATE_EXAMPLES: list[Any] = [
    {"jobType": "upload-hls-to-s3", **_RESOURCE, "hlsDir": "films/long-take/720p", "label": "720p"},
    {
        "jobType": "upload-subtitle-to-s3",
        **_RESOURCE,
        "subtitlePath": "films/long-take/subs/en.vtt",
        "subtitleMetadata": {"language": "en", "label": "English"},
    },
    {"jobType": "upload-video-to-s3", **_RESOURCE, "sourcePath": "films/long-take/movie.mp4", "filename": "movie.mp4"},
    {
        "jobType": "upload-master-playlist",
        **_RESOURCE,
        "masterPlaylistPath": "films/long-take/master.m3u8",
        "subtitleLanguages": ["en"],
    },
]


class CreateJobRequest(BaseModel):
    """The body of `POST /upload-jobs`, and the `job` of a queue message (SPEC 5)."""

    model_config = ConfigDict(
        **CAMEL,
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": CREATE_EXAMPLES},
    )

    job_id: Annotated[str | None, pattern_of(JOB_ID)] = None
    job_type: JobType
    resource_type: ResourceType
    resource_id: ObjectIdText
    resource_name: str | None = Field(default=None, max_length=500)
    filename: str | None = Field(default=None, max_length=255)
    content_type: ContentType | None = None
    label: Annotated[str | None, pattern_of(SAFE_NAME)] = None
    hls_dir: str | None = None
    master_playlist_path: str | None = None
    subtitle_path: str | None = None
    subtitle_playlist_path: str | None = None
    source_path: str | None = None
    upload_path: str | None = None
    initial_metadata: dict[str, Any] | None = None
    subtitle_metadata: SubtitleMetadata | None = None
    subtitle_languages: list[SafeName] = Field(default_factory=list)
    bucket_name: str | None = None
    client_id: str | None = Field(default=None, max_length=128)
    film_id: Annotated[str | None, pattern_of(OBJECT_ID)] = None
    episode_id: Annotated[str | None, pattern_of(OBJECT_ID)] = None
    season_id: Annotated[str | None, pattern_of(OBJECT_ID)] = None
    # Strict: JSON has numbers and booleans, so "5" or "yes" are mistakes, not values to convert.
    max_attempts: StrictInt | None = Field(default=None, ge=1, le=100)

    @field_validator("job_id")
    @classmethod
    def _job_id(cls, value: str | None) -> str | None:
        if value is not None and not JOB_ID.match(value):
            raise ValueError("jobId must be 1-128 characters of letters, digits, '_', '-', '.', ':'")
        if value in RESERVED_JOB_IDS:
            raise ValueError(f"jobId {value!r} is reserved: it names a route")
        return value

    @field_validator("resource_id", "film_id", "episode_id", "season_id")
    @classmethod
    def _ids(cls, value: str | None, info: Any) -> str | None:
        return _object_id(value, to_camel(info.field_name))

    @field_validator("label")
    @classmethod
    def _label(cls, value: str | None) -> str | None:
        if value is not None and not SAFE_NAME.match(value):
            raise ValueError("label must be 1-64 letters, digits, '_', '-' or '.'")
        return value

    @field_validator("filename")
    @classmethod
    def _filename(cls, value: str | None) -> str | None:
        if value is not None and ("/" in value or value in (".", "..") or not value or path_problem(value)):
            raise ValueError("filename must be a plain file name")
        return value

    @field_validator("hls_dir", "master_playlist_path", "subtitle_path", "subtitle_playlist_path", "source_path")
    @classmethod
    def _source_path(cls, value: str | None, info: Any) -> str | None:
        return _safe_path(value, to_camel(info.field_name))

    @field_validator("initial_metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        _storable(value, "initialMetadata")
        return value

    @field_validator("subtitle_metadata")
    @classmethod
    def _subtitle_metadata(cls, value: SubtitleMetadata | None) -> SubtitleMetadata | None:
        if value is not None and value.language is not None and not SAFE_NAME.match(value.language):
            raise ValueError("subtitleMetadata.language must be 1-64 letters, digits, '_', '-' or '.'")
        _storable(value.model_extra if value is not None else None, "subtitleMetadata")
        return value

    @field_validator("subtitle_languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        for language in value:
            if not SAFE_NAME.match(language):
                raise ValueError(f"subtitleLanguages has an invalid language {language!r}")
        return value

    @field_validator("upload_path")
    @classmethod
    def _upload_path(cls, value: str | None) -> str | None:
        return _relative_path(value, "uploadPath")

    @model_validator(mode="after")
    def _required_by_type(self) -> CreateJobRequest:
        rule = JOB_TYPE_RULES[self.job_type]
        if not getattr(self, rule.source_field):
            raise ValueError(f"{to_camel(rule.source_field)} is required for {self.job_type}")
        if self.job_type == JobType.HLS and not self.label:
            raise ValueError(f"label is required for {self.job_type}")
        if self.content_type is None:
            self.content_type = rule.content_types[0]
        elif self.content_type not in rule.content_types:
            allowed = " or ".join(c.value for c in rule.content_types)
            raise ValueError(f"contentType must be {allowed} for {self.job_type}")
        return self

    @property
    def rule(self) -> JobTypeRule:
        return JOB_TYPE_RULES[self.job_type]

    def source_paths(self) -> dict[str, str]:
        """Every source the job reads, by its JSON field name."""
        names = ("hls_dir", "master_playlist_path", "subtitle_path", "subtitle_playlist_path", "source_path")
        return {to_camel(n): getattr(self, n) for n in names if getattr(self, n)}


class UploadJob(CreateJobRequest):
    """A job as stored in MongoDB and returned by the API (every SPEC 2 field)."""

    model_config = ConfigDict(**CAMEL, extra="ignore", json_schema_extra=None)
    # Kept for the workers and cleanup, never shown by the API or the WebSocket.
    API_EXCLUDED: ClassVar[frozenset[str]] = frozenset(
        {"written_keys", "multipart_uploads", "cleanup_owner", "cleanup_until", "send_pending_at"}
    )

    job_id: str
    queue_name: QueueName
    status: JobStatus = JobStatus.WAITING
    progress: int = Field(default=0, ge=0, le=100)
    upload_type: UploadType
    content_type: ContentType
    bucket_name: str
    can_cancel: bool = True
    cancel_requested: bool = False
    cancelled_at: UtcDatetime | None = None
    failed_reason: str | None = None
    error_message: str | None = None
    error_code: str | None = None
    attempts: int = 0
    max_attempts: int = 5
    retry_count: int = 0
    next_attempt_at: UtcDatetime | None = None
    started_at: UtcDatetime | None = None
    completed_at: UtcDatetime | None = None
    failed_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None
    duration_seconds: float | None = None
    total_bytes: int = 0
    uploaded_bytes: int = 0
    total_files: int = 0
    uploaded_files: int = 0
    destination_prefix: str | None = None
    public_url: str | None = None
    history: list[HistoryEntry] = Field(default_factory=list)
    # Worker lease: who holds the job and until when (SPEC 6).
    lease_owner: str | None = None
    lease_expires_at: UtcDatetime | None = None
    heartbeat_at: UtcDatetime | None = None
    # Checkpoint: keys this job PUT itself (cleanup deletes only these) and open multipart uploads.
    written_keys: list[str] = Field(default_factory=list)
    multipart_uploads: list[dict[str, Any]] = Field(default_factory=list)
    continuations: int = 0
    waiting_since: UtcDatetime | None = None
    # Set with a state change whose SQS message is still to send (chalicelib/jobs/outbox.py).
    send_pending_at: UtcDatetime | None = None
    cleaned_at: UtcDatetime | None = None
    # A cleanup's claim on the job (maintenance/cleanup.py): retry waits until it is released or lapses.
    cleanup_owner: str | None = None
    cleanup_until: UtcDatetime | None = None
    # Cleanup with removeSource deleted the sources: the job can no longer be retried.
    source_removed: bool = False
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @field_validator(
        "cancelled_at",
        "next_attempt_at",
        "started_at",
        "completed_at",
        "failed_at",
        "finished_at",
        "lease_expires_at",
        "heartbeat_at",
        "waiting_since",
        "send_pending_at",
        "cleaned_at",
        "cleanup_until",
        "created_at",
        "updated_at",
        mode="after",
    )
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return as_utc(value) if value is not None else None

    # Stored jobs were validated at creation, under the rules of their day: reading one never fails
    # because a rule became stricter since.
    @model_validator(mode="after")
    def _required_by_type(self) -> UploadJob:
        return self

    @field_validator("job_id")
    @classmethod
    def _job_id(cls, value: str | None) -> str | None:
        return value

    @field_validator("hls_dir", "master_playlist_path", "subtitle_path", "subtitle_playlist_path", "source_path")
    @classmethod
    def _source_path(cls, value: str | None, info: Any) -> str | None:
        return value

    @field_validator("initial_metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return value

    @field_validator("subtitle_metadata")
    @classmethod
    def _subtitle_metadata(cls, value: SubtitleMetadata | None) -> SubtitleMetadata | None:
        return value

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> UploadJob:
        return cls.model_validate({k: v for k, v in document.items() if k != "_id"})

    def to_api(self) -> dict[str, Any]:
        """The job as the API and the WebSocket show it (camelCase, ISO times)."""
        return self.model_dump(mode="json", by_alias=True, exclude=set(self.API_EXCLUDED))

    def cleanup_running(self, now: datetime) -> bool:
        """A cleanup holds the job (its claim has not lapsed)."""
        return self.cleanup_until is not None and self.cleanup_until >= now

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


def _destination_prefix(request: CreateJobRequest) -> str | None:
    """Known from the request alone, and set at creation: a waiting job that no worker has planned
    yet already tells cleanup which folder it will write into (maintenance/ownership.py)."""
    from chalicelib.jobs import layout  # layout imports this module

    try:
        return layout.destination_prefix(request)
    except UploadError:  # a layout the worker will refuse: the job never writes anything
        return None


def new_job_document(request: CreateJobRequest, *, bucket: str, max_attempts: int, now: datetime) -> dict[str, Any]:
    """The MongoDB document of a job that has just been created (status waiting)."""
    rule = request.rule
    job = UploadJob(
        **request.model_dump(exclude={"job_id", "max_attempts", "bucket_name"}),
        job_id=request.job_id or uuid.uuid4().hex,
        queue_name=rule.queue,
        upload_type=rule.upload_type,
        bucket_name=request.bucket_name or bucket,
        max_attempts=request.max_attempts or max_attempts,
        next_attempt_at=now,
        waiting_since=now,
        created_at=now,
        updated_at=now,
        history=[HistoryEntry(at=now, from_=None, to=JobStatus.WAITING, reason="created", actor="api")],
        destination_prefix=_destination_prefix(request),
    )
    # Unset fields stay absent, so `$min` can set startedAt on the first claim only.
    document = job.model_dump(mode="python", by_alias=True, exclude_none=True)
    document[SEARCH_FIELD] = search_words(request.resource_name, request.filename)
    return document


class JobFilters(BaseModel):
    """The job filters of `GET /upload-jobs`, shared by the analytics route."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    status: JobStatus | None = None
    type: ResourceType | None = None
    job_type: JobType | None = Field(default=None, alias="jobType")
    upload_type: UploadType | None = Field(default=None, alias="uploadType")
    content_type: ContentType | None = Field(default=None, alias="contentType")
    resource_id: str | None = Field(default=None, alias="resourceId", json_schema_extra={"pattern": OBJECT_ID.pattern})
    label: str | None = Field(default=None, max_length=64)
    from_: datetime | None = Field(default=None, alias="from")
    to: datetime | None = None
    q: str | None = Field(default=None, max_length=200)

    @field_validator("resource_id")
    @classmethod
    def _resource_id(cls, value: str | None) -> str | None:
        return _object_id(value, "resourceId")

    @field_validator("from_", "to", mode="after")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return as_utc(value) if value is not None else None


class ListFilters(JobFilters):
    """Query parameters of `GET /upload-jobs`: the filters and a page."""

    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=512)


class RetryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    client_id: str | None = Field(default=None, alias="clientId", max_length=128)


class ClearStatus(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ALL = "all"


class ClearRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    status: ClearStatus
    # At most a century: beyond, `now - olderThanDays` is before year 1 and cannot be computed.
    older_than_days: StrictFloat | None = Field(
        default=None, alias="olderThanDays", ge=0, le=36500, allow_inf_nan=False
    )


class CleanupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    remove_source: StrictBool = Field(default=False, alias="removeSource")
