"""The worker puts every job type's files in the bucket byte for byte, with the right key,
headers and ACL, and records the job as completed (SPEC 2, 6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chalicelib.jobs.model import JobStatus, UploadJob
from chalicelib.worker import Action, WorkerResult, handle_message

FILM = "films/64b7f0c2a1b2c3d4e5f60718"
MIB = 1024 * 1024


def run(services: Any, job_id: str, **options: Any) -> WorkerResult:
    return handle_message(
        json.dumps({"v": 1, "jobId": job_id}), services=services, context_remaining_ms=lambda: 900_000, **options
    )


def stored(s3: Any, bucket: str, key: str) -> tuple[bytes, str, str]:
    obj = s3.get_object(Bucket=bucket, Key=key)
    return obj["Body"].read(), obj["ContentType"], obj.get("CacheControl", "")


def is_public(s3: Any, bucket: str, key: str) -> bool:
    grants = s3.get_object_acl(Bucket=bucket, Key=key)["Grants"]
    return any(g["Grantee"].get("URI", "").endswith("/AllUsers") and g["Permission"] == "READ" for g in grants)


def test_an_hls_rendition_lands_byte_identical_with_its_headers(
    worker_services: Any, worker_job: Any, write_rendition: Any, s3: Any, bucket: str, worker_events: Any
) -> None:
    services = worker_services()
    files = write_rendition("films/x/720p", segments=4)
    job = worker_job(services)

    result = run(services, job.job_id)

    assert result.action == Action.COMPLETED
    for name, data in files.items():
        body, content_type, cache_control = stored(s3, bucket, f"{FILM}/hls/720p/{name}")
        assert body == data
        if name.endswith(".m3u8"):
            assert (content_type, cache_control) == ("application/vnd.apple.mpegurl", "public, max-age=10")
        else:
            assert (content_type, cache_control) == ("video/mp2t", "public, max-age=31536000, immutable")
    assert is_public(s3, bucket, f"{FILM}/hls/720p/index.m3u8")
    done = services.store.get(job.job_id)
    assert done.status == JobStatus.COMPLETED
    assert (done.progress, done.uploaded_files, done.total_files) == (100, 5, 5)
    assert done.uploaded_bytes == done.total_bytes == sum(len(d) for d in files.values())
    assert done.public_url is not None and done.public_url.endswith(f"{FILM}/hls/720p/index.m3u8")
    assert done.destination_prefix == f"{FILM}/hls/720p/"
    assert sorted(done.written_keys) == sorted(f"{FILM}/hls/720p/{n}" for n in files)
    assert done.duration_seconds is not None and done.completed_at is not None and done.lease_owner is None
    names = worker_events.names(job.job_id)
    assert names[0] == "uploadProgress" and names[-2:] == ["uploadProgress", "JobCompleted"]


def test_a_subtitle_goes_to_the_shared_folder_with_its_language(
    worker_services: Any, worker_job: Any, source_root: Path, s3: Any, bucket: str
) -> None:
    services = worker_services()
    vtt = b"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nBonjour\n"
    playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:60\n#EXTINF:60.0,\nfr.vtt\n#EXT-X-ENDLIST\n"
    (source_root / "subs").mkdir()
    (source_root / "subs/movie.fr.vtt").write_bytes(vtt)
    (source_root / "subs/fr.m3u8").write_bytes(playlist)
    job = worker_job(
        services,
        jobType="upload-subtitle-to-s3",
        subtitlePath="subs/movie.fr.vtt",
        subtitlePlaylistPath="subs/fr.m3u8",
    )

    assert run(services, job.job_id).action == Action.COMPLETED

    assert stored(s3, bucket, f"{FILM}/subtitles/fr.vtt")[:2] == (vtt, "text/vtt")
    assert stored(s3, bucket, f"{FILM}/subtitles/fr.m3u8")[:2] == (playlist, "application/vnd.apple.mpegurl")
    done = services.store.get(job.job_id)
    assert done.subtitle_metadata is not None
    assert (done.subtitle_metadata.language, done.subtitle_metadata.label) == ("fr", "French")


def test_a_whole_video_goes_up_in_parts_and_arrives_intact(
    worker_services: Any, worker_job: Any, source_root: Path, s3: Any, bucket: str, count_s3_requests: Any
) -> None:
    services = worker_services(part_size_mb=5, multipart_threshold_mb=5)
    data = bytes(range(256)) * (12 * MIB // 256) + b"tail"
    (source_root / "movie.mp4").write_bytes(data)
    job = worker_job(services, jobType="upload-video-to-s3", sourcePath="movie.mp4")
    requests = count_s3_requests(services.s3)

    assert run(services, job.job_id).action == Action.COMPLETED

    assert requests["UploadPart"] == 3 and requests["PutObject"] == 0
    body, content_type, cache_control = stored(s3, bucket, f"{FILM}/video/movie.mp4")
    assert body == data
    assert (content_type, cache_control) == ("video/mp4", "public, max-age=31536000, immutable")
    assert is_public(s3, bucket, f"{FILM}/video/movie.mp4")
    done = services.store.get(job.job_id)
    assert done.multipart_uploads == [] and done.written_keys == [f"{FILM}/video/movie.mp4"]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_master_playlist_is_published_once_its_references_are_there(
    worker_services: Any, worker_job: Any, source_root: Path, s3: Any, bucket: str
) -> None:
    services = worker_services()
    master = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=1280x720\n720p/index.m3u8\n"
    (source_root / "master.m3u8").write_bytes(master)
    s3.put_object(Bucket=bucket, Key=f"{FILM}/hls/720p/index.m3u8", Body=b"#EXTM3U\n")
    s3.put_object(Bucket=bucket, Key=f"{FILM}/subtitles/en.vtt", Body=b"WEBVTT\n")
    job = worker_job(
        services, jobType="upload-master-playlist", masterPlaylistPath="master.m3u8", subtitleLanguages=["en"]
    )

    assert run(services, job.job_id).action == Action.COMPLETED

    assert stored(s3, bucket, f"{FILM}/hls/master.m3u8") == (
        master,
        "application/vnd.apple.mpegurl",
        "public, max-age=60",
    )
    assert services.store.get(job.job_id).public_url.endswith(f"{FILM}/hls/master.m3u8")  # type: ignore[union-attr]


def test_the_lambda_handler_runs_a_job_created_through_the_api(
    api: Any, services: Any, write_rendition: Any, s3: Any, bucket: str, invoke_worker: Any
) -> None:
    write_rendition("films/x/1080p", segments=2)
    body = {
        "jobType": "upload-hls-to-s3",
        "resourceType": "episode",
        "resourceId": "64b7f0c2a1b2c3d4e5f60719",
        "hlsDir": "films/x/1080p",
        "label": "1080p",
    }
    created = api.http.post("/v1/studio/upload-jobs", headers=api.admin_headers, body=json.dumps(body))
    job_id = json.loads(created.body)["jobId"]

    event = api.events.generate_sqs_event([json.dumps({"v": 1, "jobId": job_id})], queue_name="upload-hls-to-s3")
    invoke_worker("upload_hls_worker", event)

    shown = json.loads(api.http.get(f"/v1/studio/upload-jobs/{job_id}", headers=api.admin_headers).body)
    assert (shown["status"], shown["progress"]) == ("completed", 100)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {
        f"episodes/64b7f0c2a1b2c3d4e5f60719/hls/1080p/{n}" for n in ("seg000.ts", "seg001.ts", "index.m3u8")
    }


def test_a_producer_can_send_the_job_straight_to_sqs(
    worker_services: Any, write_rendition: Any, worker_events: Any
) -> None:
    services = worker_services()
    write_rendition("films/x/720p", segments=1)
    spec = {
        "jobType": "upload-hls-to-s3",
        "resourceType": "film",
        "resourceId": "64b7f0c2a1b2c3d4e5f60718",
        "hlsDir": "films/x/720p",
        "label": "720p",
    }
    body = json.dumps({"v": 1, "jobId": "from-sqs-1", "job": spec})

    first = handle_message(body, services=services, context_remaining_ms=lambda: 900_000)
    again = handle_message(body, services=services, context_remaining_ms=lambda: 900_000)

    assert (first.action, again.action) == (Action.COMPLETED, Action.IGNORED)
    assert services.store.get("from-sqs-1").status == JobStatus.COMPLETED
    assert [e for e in worker_events.events if e[0] == "JobQueued"] == [("JobQueued", "from-sqs-1", "waiting")]
    assert isinstance(services.store.get("from-sqs-1"), UploadJob)
