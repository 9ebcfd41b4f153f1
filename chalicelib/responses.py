"""The bodies the HTTP API answers with, as models. The routes shape their answers through them and
docs/openapi.json is generated from them (chalicelib/openapi.py), so the two cannot drift apart.

A job itself is `UploadJob.to_api()`: its schema is UploadJob's without the internal fields.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from chalicelib.jobs.model import CAMEL, JobStatus

JOB_SCHEMA_NAME = "UploadJob"
# A job as `UploadJob.to_api()` made it; its schema is the UploadJob component of the document.
ApiJob = Annotated[dict[str, Any], WithJsonSchema({"$ref": f"#/components/schemas/{JOB_SCHEMA_NAME}"})]


class _Answer(BaseModel):
    model_config = ConfigDict(**CAMEL, extra="forbid")

    def api(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class ErrorBody(BaseModel):
    """Every 4xx (and Chalice's own 5xx): Chalice's error body."""

    model_config = ConfigDict(extra="forbid")

    Code: str = Field(description="The error's name, e.g. BadRequestError, NotFoundError, ConflictError")
    Message: str = Field(description="A sentence for a person; for 400 it names each bad field")


class Health(_Answer):
    status: Literal["ok"]


class JobList(_Answer):
    items: list[ApiJob]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class StatsMetrics(_Answer):
    completion_rate: float = Field(description="completed / (completed + failed + cancelled), 0 when none finished")
    failure_rate: float = Field(description="failed / (completed + failed + cancelled), 0 when none finished")
    avg_duration_seconds: float | None = Field(description="Mean durationSeconds of completed jobs")
    p95_duration_seconds: float | None = Field(description="95th percentile durationSeconds of completed jobs")
    bytes_uploaded: int = Field(description="uploadedBytes summed over completed jobs")


class QueueDepth(_Answer):
    visible: int
    in_flight: int
    dead_letter: int


class JobStats(_Answer):
    total: int = Field(description="The sum of the five status counts")
    waiting: int
    active: int
    completed: int
    failed: int
    cancelled: int
    metrics: StatsMetrics
    queues: dict[str, QueueDepth] = Field(description="By logical queue name; empty when SQS does not answer")


class Deleted(_Answer):
    deleted: Literal[True]


class Cleared(_Answer):
    deleted: int = Field(description="How many finished jobs were deleted")


class CleanupResult(_Answer):
    aborted_uploads: int
    deleted_objects: int
    removed_files: int


class SyncResult(_Answer):
    job_id: str
    before: JobStatus
    after: JobStatus
    action: Literal["none", "requeued", "failed", "cancelled"]
    reason: str


class FixStuckResult(_Answer):
    scanned: int = Field(description="Jobs examined")
    requeued: int
    failed: int
    cancelled: int


class AnalyticsBucket(_Answer):
    start: str = Field(description="The bucket's start, UTC ISO 8601 with Z")
    created: int = Field(description="Jobs created in the bucket")
    completed: int = Field(description="Jobs that completed in the bucket (by finishedAt)")
    failed: int
    cancelled: int
    bytes_uploaded: int = Field(description="uploadedBytes of the jobs that completed in the bucket")
    throughput_mi_bps: float = Field(
        alias="throughputMiBps", description="bytesUploaded in MiB over the bucket's length"
    )


class DurationPercentiles(_Answer):
    p50: float | None
    p95: float | None
    p99: float | None


class FailureExample(_Answer):
    job_id: str
    failed_reason: str | None
    at: str | None = Field(description="When it failed, UTC ISO 8601 with Z")


class FailureReason(_Answer):
    error_code: str | None
    count: int
    example: FailureExample = Field(description="The newest failure with this code")


class Backlog(_Answer):
    waiting: int
    active: int
    oldest_waiting_seconds: float | None
    oldest_waiting_job_id: str | None
    queues: dict[str, QueueDepth] | None = Field(description="By logical queue name; null when SQS does not answer")


class AnalyticsReport(_Answer):
    from_: str = Field(alias="from", description="The window's start (rounded out to the bucket), UTC")
    to: str = Field(description="The window's end (exclusive), UTC")
    bucket: Literal["hour", "day"]
    buckets: list[AnalyticsBucket]
    durations: dict[str, DurationPercentiles] = Field(description="By jobType, of the jobs completed in the window")
    failure_reasons: list[FailureReason] = Field(description="Most frequent first")
    backlog: Backlog


class TitlePart(_Answer):
    key: str = Field(description="The rendition's label, the subtitle's language, the video's file name, or `master`")
    status: JobStatus = Field(description="completed once any of its jobs completed, else its newest job's status")
    public_url: str | None = Field(description="The newest completed job's publicUrl; null until one completed")
    jobs: list[ApiJob] = Field(description="Every job of this part, newest first")


class MissingPart(_Answer):
    kind: Literal["rendition", "subtitle", "video", "master", "object"]
    key: str
    reason: str


class TitleUploads(_Answer):
    resource_type: str
    resource_id: str
    resource_name: str | None = Field(description="The newest resourceName any of its jobs gives")
    status: Literal["live", "in-progress", "failed", "partial"] = Field(
        description="live: every part published, the master among them; failed: a part failed and never "
        "completed; in-progress: a part waiting or active; partial: anything else (e.g. no master yet)"
    )
    public_url: str | None = Field(description="The master playlist's public URL once a master job completed")
    published_at: str | None = Field(description="When that master job completed, UTC ISO 8601 with Z")
    master: TitlePart | None
    renditions: list[TitlePart] = Field(description="HLS jobs, by label")
    subtitles: list[TitlePart] = Field(description="Subtitle jobs, by language")
    videos: list[TitlePart] = Field(description="Whole-video jobs, by file name")
    missing: list[MissingPart] = Field(description="What keeps the title from being fully live")
    failed_job_ids: list[str] = Field(description="The jobs `retry-failed` would retry")
    counts: dict[str, int] = Field(description="The title's jobs by status")
    total: int
    truncated: bool = Field(description="More than 500 jobs: only the newest 500 are shown")


class BulkFailure(_Answer):
    job_id: str
    code: str = Field(alias="Code", description="What the job's own route would answer, e.g. ConflictError")
    message: str = Field(alias="Message")


class BulkResult(_Answer):
    matched: int = Field(description="Distinct jobs named or matched; done + the skipped + the failed")
    done: int = Field(description="Jobs the action was applied to (a cancel of an active job: requested)")
    skipped: dict[str, int] = Field(
        description=(
            "By reason: not-found, not-retryable, not-cancellable, not-deletable, not-cleanable (the job's state "
            "does not allow the action), source-removed, cleanup-running, not-reached (the call's time ran out)"
        )
    )
    failed: list[BulkFailure] = Field(description="Jobs the action failed for, in the order they were tried")
    not_reached: list[str] = Field(description="The jobs not tried before the call's time ran out: send them again")
