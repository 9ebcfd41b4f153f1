"""Jobs for tests that need one and do not care which: an HLS rendition as the create route takes it,
its new MongoDB document (chalicelib.jobs.model.new_job_document) and the UploadJob read from it.
Fields passed in overwrite the document's (camelCase, as stored)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.jobs.model import CreateJobRequest, UploadJob, new_job_document, utcnow

RESOURCE_ID = "64b7f0c2a1b2c3d4e5f60718"
BUCKET = "studio-media"


def hls_body(**fields: Any) -> dict[str, Any]:
    """A create body for a 720p rendition of one film."""
    return {
        "jobType": "upload-hls-to-s3",
        "resourceType": "film",
        "resourceId": RESOURCE_ID,
        "hlsDir": "films/x/720p",
        "label": "720p",
        **fields,
    }


def hls_document(job_id: str | None = None, *, now: datetime | None = None, **fields: Any) -> dict[str, Any]:
    """The document a create writes for `hls_body`, waiting, with `fields` over it."""
    request = CreateJobRequest.model_validate(hls_body(**({"jobId": job_id} if job_id else {})))
    document = new_job_document(request, bucket=BUCKET, max_attempts=5, now=now or utcnow())
    return {**document, **fields}


def hls_job(job_id: str | None = None, **fields: Any) -> UploadJob:
    return UploadJob.from_document(hls_document(job_id, **fields))
