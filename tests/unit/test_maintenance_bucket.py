"""Which keys and multipart uploads are a job's own, and how aborts and deletes report back
(S3 answers played by botocore's Stubber)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.jobs.model import CreateJobRequest, UploadJob, new_job_document
from chalicelib.maintenance.bucket import (
    OpenUpload,
    abort_uploads,
    delete_keys,
    listed_uploads,
    own_keys,
    owns_key,
)

RESOURCE = "64b7f0c2a1b2c3d4e5f60718"
HLS = f"films/{RESOURCE}/hls/"
FINISHED = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def job(**spec: Any) -> UploadJob:
    fields = {
        "jobType": "upload-hls-to-s3",
        "resourceType": "film",
        "resourceId": RESOURCE,
        "hlsDir": "a",
        "label": "720p",
    }
    fields.update(spec)
    document = new_job_document(CreateJobRequest.model_validate(fields), bucket="media", max_attempts=5, now=FINISHED)
    return UploadJob.model_validate({**document, "status": "failed", "finishedAt": FINISHED})


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_an_hls_job_owns_every_key_of_its_rendition_folder_only() -> None:
    rendition = job()
    assert owns_key(rendition, HLS + "720p/seg000.ts")
    assert owns_key(rendition, HLS + "720p/sub/init.mp4")
    assert not owns_key(rendition, HLS + "1080p/seg000.ts")
    assert not owns_key(rendition, HLS + "master.m3u8")


def test_a_master_job_owns_the_master_playlist_only() -> None:
    master = job(jobType="upload-master-playlist", masterPlaylistPath="m.m3u8", hlsDir=None, label=None)
    assert owns_key(master, HLS + "master.m3u8")
    assert not owns_key(master, HLS + "720p/index.m3u8")


def test_a_subtitle_job_owns_its_languages_vtt_and_playlist() -> None:
    subtitle = job(jobType="upload-subtitle-to-s3", subtitlePath="subs/movie.fr.vtt", hlsDir=None, label=None)
    subtitles = f"films/{RESOURCE}/subtitles/"
    assert owns_key(subtitle, subtitles + "fr.vtt")
    assert owns_key(subtitle, subtitles + "fr.m3u8")
    assert not owns_key(subtitle, subtitles + "en.vtt")


def test_a_video_job_owns_its_file_and_a_job_owns_what_it_recorded() -> None:
    video = job(jobType="upload-video-to-s3", sourcePath="in/movie.mp4", hlsDir=None, label=None)
    assert owns_key(video, f"films/{RESOURCE}/video/movie.mp4")
    assert not owns_key(video, f"films/{RESOURCE}/video/trailer.mp4")
    recorded = video.model_copy(update={"written_keys": ["elsewhere/x.mp4"]})
    assert owns_key(recorded, "elsewhere/x.mp4")


def test_listed_uploads_skip_other_jobs_keys_and_uploads_begun_after_the_job_finished(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    before, after = datetime(2030, 1, 1, 11, 0, tzinfo=UTC), datetime(2030, 1, 1, 13, 0, tzinfo=UTC)
    uploads = [
        {"Key": HLS + "720p/a.ts", "UploadId": "mine", "Initiated": before},
        {"Key": HLS + "720p/b.ts", "UploadId": "newer-job", "Initiated": after},
        {"Key": HLS + "1080p/a.ts", "UploadId": "other-rendition", "Initiated": before},
    ]
    stubber.add_response(
        "list_multipart_uploads", {"Bucket": "media", "Uploads": uploads}, {"Bucket": "media", "Prefix": HLS + "720p/"}
    )

    # The job recorded both 720p keys before writing them: only keys it recorded are ever its own.
    recorded = job().model_copy(update={"written_keys": [HLS + "720p/a.ts", HLS + "720p/b.ts"]})

    assert list(listed_uploads(client, recorded, set(own_keys(recorded)))) == [OpenUpload(HLS + "720p/a.ts", "mine")]


def test_abort_counts_only_uploads_still_open_and_raises_on_other_errors(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response("abort_multipart_upload", {}, {"Bucket": "media", "Key": "a", "UploadId": "1"})
    stubber.add_client_error("abort_multipart_upload", "NoSuchUpload", http_status_code=404)
    stubber.add_client_error("abort_multipart_upload", "AccessDenied", http_status_code=403)

    assert abort_uploads(client, "media", [OpenUpload("a", "1"), OpenUpload("b", "2"), OpenUpload("a", "1")]) == 1
    with pytest.raises(client.exceptions.ClientError):
        abort_uploads(client, "media", [OpenUpload("c", "3")])


def test_delete_reports_only_the_keys_that_went(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response(
        "delete_objects",
        {"Deleted": [{"Key": "a"}], "Errors": [{"Key": "b", "Code": "AccessDenied", "Message": "no"}]},
        {"Bucket": "media", "Delete": {"Objects": [{"Key": "a"}, {"Key": "b"}]}},
    )

    assert delete_keys(client, "media", ["a", "b", "a"]) == ["a"]
