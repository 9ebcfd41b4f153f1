"""The title view: every upload job of one title (a film, episode or season), grouped the way an
admin asks "is it fully live?", and one action that retries everything failed for it.

A title is `(resourceType, resourceId)`. Its jobs are grouped into parts: one per rendition
(HLS label), per subtitle language, per video file name, and the master playlist. A part is
published once any of its jobs completed (a newer job of the same part re-publishes over it);
otherwise it stands at the status of its newest job. The title's public URL is the completed
master playlist's. At most TITLE_JOB_LIMIT jobs are read, newest first (`truncated` says so).
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib.errors import Conflict, ErrorCode, NotFound
from chalicelib.jobs import layout
from chalicelib.jobs.model import (
    OBJECT_ID,
    JobStatus,
    JobType,
    ResourceType,
    RetryRequest,
    UploadJob,
    iso_z,
)
from chalicelib.jobs.store import JobStore
from chalicelib.maintenance import MaintenanceServices
from chalicelib.usecases.bulk import BulkAction, BulkRequest, ErrorCodeOf, run_bulk

# A title has a few dozen jobs at most (renditions, subtitles, re-uploads); this bounds one answer.
TITLE_JOB_LIMIT = 500
# The master's MISSING_REFERENCES failure lists the keys in its errorMessage (worker/outcomes.py).
MISSING_PREFIX = "missing: "
PART_KINDS: dict[JobType, str] = {
    JobType.HLS: "rendition",
    JobType.SUBTITLE: "subtitle",
    JobType.VIDEO: "video",
    JobType.MASTER: "master",
}
RUNNING = frozenset({JobStatus.WAITING, JobStatus.ACTIVE})


class TitleStatus(StrEnum):
    LIVE = "live"  # every part published, the master among them, nothing missing
    IN_PROGRESS = "in-progress"  # nothing failed, some part still waiting or active
    FAILED = "failed"  # some part's newest job failed and no job of it ever completed
    PARTIAL = "partial"  # anything else: no master yet, a part cancelled, a subtitle not uploaded


class TitleRef(BaseModel):
    """The path of the title routes, validated as the job fields of the same names."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    resource_type: ResourceType = Field(alias="resourceType")
    resource_id: str = Field(alias="resourceId", json_schema_extra={"pattern": OBJECT_ID.pattern})

    @field_validator("resource_id")
    @classmethod
    def _resource_id(cls, value: str) -> str:
        if not OBJECT_ID.match(value):
            raise ValueError("resourceId must be a 24-character hex ObjectId")
        return value.lower()  # as jobs store it

    def describe(self) -> str:
        return f"{self.resource_type} {self.resource_id}"


@dataclass(frozen=True)
class Part:
    kind: str
    key: str
    jobs: tuple[UploadJob, ...]  # newest first

    @property
    def published(self) -> UploadJob | None:
        return next((job for job in self.jobs if job.status == JobStatus.COMPLETED), None)

    @property
    def status(self) -> JobStatus:
        return JobStatus.COMPLETED if self.published else JobStatus(self.jobs[0].status)

    def api(self) -> dict[str, Any]:
        published = self.published
        return {
            "key": self.key,
            "status": self.status.value,
            "publicUrl": published.public_url if published else None,
            "jobs": [job.to_api() for job in self.jobs],
        }


def _subtitle_language(job: UploadJob) -> str | None:
    if job.subtitle_metadata and job.subtitle_metadata.language:
        return job.subtitle_metadata.language
    from chalicelib.upload import hls  # m3u8 and webvtt stay out of `import app`

    return hls.language_from_filename(job.subtitle_path or "")


def _video_name(job: UploadJob) -> str | None:
    return job.filename or posixpath.basename((job.source_path or "").rstrip("/")) or None


def part_key(job: UploadJob) -> str:
    """What a job publishes within its title; a job whose key cannot be told is a part of its own."""
    job_type = JobType(job.job_type)
    keys = {
        JobType.HLS: lambda: job.label,
        JobType.SUBTITLE: lambda: _subtitle_language(job),
        JobType.VIDEO: lambda: _video_name(job),
        JobType.MASTER: lambda: "master",
    }
    return keys[job_type]() or job.job_id


def group_parts(jobs: Sequence[UploadJob]) -> dict[str, list[Part]]:
    """The parts by kind, each kind in key order; `jobs` come newest first and stay so in a part."""
    grouped: dict[tuple[str, str], list[UploadJob]] = {}
    for job in jobs:
        grouped.setdefault((PART_KINDS[JobType(job.job_type)], part_key(job)), []).append(job)
    parts: dict[str, list[Part]] = {kind: [] for kind in PART_KINDS.values()}
    for (kind, key), members in sorted(grouped.items()):
        parts[kind].append(Part(kind, key, tuple(members)))
    return parts


def _missing(kind: str, key: str, reason: str) -> dict[str, str]:
    return {"kind": kind, "key": key, "reason": reason}


def _unreferenced_keys(master: UploadJob) -> list[str]:
    """The keys a master failed for want of (MISSING_REFERENCES); none for any other master."""
    message = master.error_message or ""
    if master.status != JobStatus.FAILED or master.error_code != ErrorCode.MISSING_REFERENCES:
        return []
    if not message.startswith(MISSING_PREFIX):
        return []
    return [key.strip() for key in message.removeprefix(MISSING_PREFIX).split(", ") if key.strip()]


def _reference_missing(key: str, parts: dict[str, list[Part]], master: UploadJob) -> dict[str, str] | None:
    """What a key the master still waited for stands for, unless a part has published it since."""
    for part in parts["rendition"]:
        if any(job.destination_prefix and key.startswith(job.destination_prefix) for job in part.jobs):
            return None  # covered by the part itself: published, or listed as not completed
    subtitle_dir = f"{layout.resource_prefix(master)}/subtitles/"
    if key.startswith(subtitle_dir):
        language = posixpath.splitext(key.removeprefix(subtitle_dir))[0]
        if any(part.key == language for part in parts["subtitle"]):
            return None
        return _missing("subtitle", language, "referenced by the master playlist; no subtitle job")
    master_dir = posixpath.dirname(master.destination_prefix or "") + "/"
    relative = key.removeprefix(master_dir)
    if key.startswith(master_dir) and "/" in relative:
        return _missing("rendition", relative.split("/")[0], "referenced by the master playlist; no rendition job")
    return _missing("object", key, "referenced by the master playlist; not in the bucket")


def missing_parts(parts: dict[str, list[Part]]) -> list[dict[str, str]]:
    """What keeps the title from being fully live, as far as its jobs tell (no source is read)."""
    missing = [
        _missing(part.kind, part.key, f"its newest job {part.jobs[0].job_id} is {part.status}")
        for kind in PART_KINDS.values()
        for part in parts[kind]
        if part.status != JobStatus.COMPLETED
    ]
    if not parts["master"]:
        if parts["rendition"] or parts["subtitle"]:
            missing.append(_missing("master", "master", "no master playlist job"))
        return missing
    master = parts["master"][0].jobs[0]
    languages = {part.key for part in parts["subtitle"]}
    missing += [
        _missing("subtitle", language, "listed by the master playlist; no subtitle job")
        for language in master.subtitle_languages
        if language not in languages
    ]
    # The master's references include its subtitleLanguages' files: each thing is listed once.
    seen = {(item["kind"], item["key"]) for item in missing}
    for key in _unreferenced_keys(master):
        item = _reference_missing(key, parts, master)
        if item is not None and (item["kind"], item["key"]) not in seen:
            seen.add((item["kind"], item["key"]))
            missing.append(item)
    return missing


def title_status(parts: dict[str, list[Part]], missing: list[dict[str, str]]) -> TitleStatus:
    statuses = {part.status for kind in parts.values() for part in kind}
    if JobStatus.FAILED in statuses:
        return TitleStatus.FAILED
    if statuses & RUNNING:
        return TitleStatus.IN_PROGRESS
    return TitleStatus.PARTIAL if missing else TitleStatus.LIVE


def _jobs_of(ref: TitleRef, store: JobStore, *, limit: int, status: JobStatus | None = None) -> tuple[UploadJob, ...]:
    return store.title_jobs(ref.resource_type.value, ref.resource_id, limit=limit, status=status)


def title_uploads(ref: TitleRef, *, store: JobStore) -> dict[str, Any]:
    """`GET /resources/{resourceType}/{resourceId}/uploads`. NotFound when the title has no job."""
    jobs = _jobs_of(ref, store, limit=TITLE_JOB_LIMIT + 1)
    if not jobs:
        raise NotFound(f"no upload jobs for {ref.describe()}")
    truncated = len(jobs) > TITLE_JOB_LIMIT
    jobs = jobs[:TITLE_JOB_LIMIT]
    parts = group_parts(jobs)
    missing = missing_parts(parts)
    master = parts["master"][0].published if parts["master"] else None
    counts = Counter(str(job.status) for job in jobs)
    return {
        "resourceType": ref.resource_type.value,
        "resourceId": ref.resource_id,
        "resourceName": next((job.resource_name for job in jobs if job.resource_name), None),
        "status": title_status(parts, missing).value,
        # Set by the worker when it completed: layout.public_url of the master's key.
        "publicUrl": master.public_url if master else None,
        "publishedAt": iso_z(master.completed_at) if master and master.completed_at else None,
        "master": parts["master"][0].api() if parts["master"] else None,
        "renditions": [part.api() for part in parts["rendition"]],
        "subtitles": [part.api() for part in parts["subtitle"]],
        "videos": [part.api() for part in parts["video"]],
        "missing": missing,
        "failedJobIds": [job.job_id for job in jobs if job.status == JobStatus.FAILED],
        "counts": {status.value: counts.get(status.value, 0) for status in JobStatus},
        "total": len(jobs),
        "truncated": truncated,
    }


def retry_failed(
    ref: TitleRef, request: RetryRequest, services: MaintenanceServices, error_code: ErrorCodeOf
) -> dict[str, Any]:
    """`POST /resources/{resourceType}/{resourceId}/retry-failed`: a bulk retry (chalicelib/usecases/bulk.py)
    of every failed job of the title, each through the single-job retry (its guarded transition), so
    racing it, a worker or another call retries each job once. More than TITLE_JOB_LIMIT failed jobs
    is a Conflict: none is retried."""
    failed = _jobs_of(ref, services.store, limit=TITLE_JOB_LIMIT + 1, status=JobStatus.FAILED)
    if len(failed) > TITLE_JOB_LIMIT:
        raise Conflict(f"{ref.describe()} has more than {TITLE_JOB_LIMIT} failed jobs: retry them with the bulk route")
    if not failed:
        if not _jobs_of(ref, services.store, limit=1):
            raise NotFound(f"no upload jobs for {ref.describe()}")
        return {"matched": 0, "done": 0, "skipped": {}, "failed": [], "notReached": []}
    retry = BulkRequest(action=BulkAction.RETRY, job_ids=[job.job_id for job in failed], client_id=request.client_id)
    return run_bulk(retry, services, error_code)
