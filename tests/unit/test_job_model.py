"""The job model: SPEC 2's fields, defaults and validation of create requests."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.jobs.model import CreateJobRequest, UploadJob, new_job_document, utcnow

RESOURCE = "64b7f0c2a1b2c3d4e5f60718"
SEED_FIELDS = {
    "jobId", "queueName", "jobType", "status", "progress", "resourceType", "resourceId", "resourceName",
    "filename", "uploadType", "contentType", "label", "hlsDir", "masterPlaylistPath", "subtitlePath",
    "uploadPath", "initialMetadata", "subtitleMetadata", "subtitleLanguages", "bucketName", "clientId",
    "canCancel", "cancelledAt", "failedReason", "errorMessage", "filmId", "episodeId", "seasonId",
    "createdAt", "updatedAt",
}  # fmt: skip
SPEC_FIELDS = {
    "attempts", "maxAttempts", "retryCount", "nextAttemptAt", "startedAt", "completedAt", "failedAt",
    "finishedAt", "durationSeconds", "cancelRequested", "errorCode", "totalBytes", "uploadedBytes",
    "totalFiles", "uploadedFiles", "destinationPrefix", "publicUrl", "history",
}  # fmt: skip


def request(**fields: Any) -> CreateJobRequest:
    body = {"jobType": "upload-hls-to-s3", "resourceType": "film", "resourceId": RESOURCE, "hlsDir": "a", "label": "SD"}
    body.update(fields)
    return CreateJobRequest.model_validate(body)


def test_a_stored_job_shows_every_field_of_the_seed_and_the_spec() -> None:
    document = new_job_document(request(), bucket="media", max_attempts=5, now=utcnow())
    shown = UploadJob.from_document(document).to_api()
    assert set(shown) >= SEED_FIELDS | SPEC_FIELDS


@pytest.mark.parametrize(
    ("job_type", "source", "upload_type", "content_type", "queue"),
    [
        ("upload-hls-to-s3", {"hlsDir": "x", "label": "HD"}, "hls", "video", "upload-hls-to-s3"),
        ("upload-subtitle-to-s3", {"subtitlePath": "x/en.vtt"}, "subtitle", "subtitle", "upload-hls-to-s3"),
        ("upload-video-to-s3", {"sourcePath": "x.mp4"}, "video", "video", "upload-hls-to-s3"),
        (
            "upload-master-playlist",
            {"masterPlaylistPath": "m.m3u8"},
            "master_playlist",
            "playlist",
            "upload-master-playlist",
        ),
    ],
)
def test_job_types_set_upload_type_content_type_and_queue(
    job_type: str, source: dict[str, str], upload_type: str, content_type: str, queue: str
) -> None:
    body = {"jobType": job_type, "resourceType": "season", "resourceId": RESOURCE, **source}
    job = UploadJob.from_document(
        new_job_document(CreateJobRequest.model_validate(body), bucket="b", max_attempts=3, now=utcnow())
    )
    assert (job.upload_type, job.content_type, job.queue_name) == (upload_type, content_type, queue)
    assert job.max_attempts == 3
    assert job.status == "waiting"


def test_audio_renditions_are_allowed() -> None:
    assert request(contentType="audio").content_type == "audio"


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"resourceId": "xyz"}, "resourceId"),
        ({"filmId": "123"}, "filmId"),
        ({"label": "a/b"}, "label"),
        ({"uploadPath": "/abs"}, "uploadPath"),
        ({"uploadPath": "a/../b"}, "uploadPath"),
        ({"filename": "a/b.mp4"}, "filename"),
        ({"jobId": "has space"}, "jobId"),
        ({"subtitleLanguages": ["en", "../x"]}, "subtitleLanguages"),
        ({"contentType": "playlist"}, "contentType"),
    ],
)
def test_invalid_fields_are_refused_with_their_name(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        request(**fields)
    assert named in str(caught.value)


def test_times_are_utc_iso_with_z() -> None:
    job = UploadJob.from_document(new_job_document(request(), bucket="b", max_attempts=5, now=utcnow()))
    assert job.to_api()["createdAt"].endswith("Z")
    assert job.to_api()["history"][0]["at"].endswith("Z")
