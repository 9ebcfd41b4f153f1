"""The title view and its retry-failed action, through chalice.test.Client over the store in use."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.http import error_code
from chalicelib.jobs.model import JobStatus, RetryRequest
from chalicelib.jobs.store import JobStore
from chalicelib.usecases import titles

FILM = "64b7f0c2a1b2c3d4e5f60718"
OTHER_FILM = "64b7f0c2a1b2c3d4e5f60719"
TITLE = f"/v1/studio/resources/film/{FILM}"


def get(api: Any, path: str) -> Any:
    return api.http.get(path, headers=api.admin_headers)


def post(api: Any, path: str, body: Any = None) -> Any:
    return api.http.post(path, headers=api.admin_headers, body=json.dumps(body) if body is not None else "")


def rendition(make_job: Any, label: str, status: str = "waiting", **fields: Any) -> Any:
    return make_job(jobId=f"hls-{label}", label=label, hlsDir=f"films/x/{label}", status=status, **fields)


def subtitle(make_job: Any, language: str, status: str = "waiting") -> Any:
    return make_job(
        jobId=f"sub-{language}", jobType="upload-subtitle-to-s3", subtitlePath=f"films/x/{language}.vtt", status=status
    )


def master(make_job: Any, status: str = "waiting", **fields: Any) -> Any:
    return make_job(
        jobId="master",
        jobType="upload-master-playlist",
        masterPlaylistPath="films/x/master.m3u8",
        publicUrl=f"https://cdn.example/films/{FILM}/hls/master.m3u8",  # set when planned, before completion
        status=status,
        **fields,
    )


def finish(store: JobStore, job_id: str, status: JobStatus) -> None:
    """Drive a waiting job to a finished state the way a worker would."""
    store.transition(job_id, JobStatus.ACTIVE, reason="claim", actor="test", inc={"attempts": 1})
    store.transition(job_id, status, reason="test", actor="test")


def parts(title: dict[str, Any], group: str) -> dict[str, str]:
    return {part["key"]: part["status"] for part in title[group]}


def test_a_title_groups_its_jobs_and_says_what_is_missing_or_failed(api: Any, make_job: Any) -> None:
    rendition(make_job, "720p", "completed", publicUrl="https://cdn.example/720p/index.m3u8", resourceName="Aurora")
    rendition(make_job, "1080p", "failed", errorCode="UPLOAD_FAILED")
    rendition(make_job, "480p", "active")
    subtitle(make_job, "en", "completed")
    master(make_job, subtitleLanguages=["en", "fr"])
    make_job(jobId="other-film", resourceId=OTHER_FILM, status="failed")
    make_job(jobId="an-episode", resourceType="episode", status="failed")  # same id, another kind of title

    response = get(api, f"{TITLE}/uploads")

    assert response.status_code == 200
    title = response.json_body
    assert (title["resourceType"], title["resourceId"], title["resourceName"]) == ("film", FILM, "Aurora")
    assert parts(title, "renditions") == {"1080p": "failed", "480p": "active", "720p": "completed"}
    assert parts(title, "subtitles") == {"en": "completed"}
    assert title["master"]["status"] == "waiting"
    assert title["renditions"][2]["publicUrl"] == "https://cdn.example/720p/index.m3u8"
    assert title["publicUrl"] is None  # the master's URL is known once planned, published only once completed
    assert title["status"] == "failed"
    assert title["failedJobIds"] == ["hls-1080p"]
    assert {(m["kind"], m["key"]) for m in title["missing"]} == {
        ("rendition", "1080p"),
        ("rendition", "480p"),
        ("master", "master"),
        ("subtitle", "fr"),
    }
    assert title["counts"] == {"waiting": 1, "active": 1, "completed": 2, "failed": 1, "cancelled": 0}
    assert (title["total"], title["truncated"]) == (5, False)


def test_the_public_url_is_the_masters_once_it_completed(api: Any, make_job: Any, store: JobStore) -> None:
    rendition(make_job, "720p", "completed")
    subtitle(make_job, "en", "completed")
    master(make_job, subtitleLanguages=["en"])
    assert get(api, f"{TITLE}/uploads").json_body["status"] == "in-progress"

    finish(store, "master", JobStatus.COMPLETED)

    title = get(api, f"{TITLE}/uploads").json_body
    assert title["status"] == "live"
    assert title["publicUrl"] == f"https://cdn.example/films/{FILM}/hls/master.m3u8"
    assert title["publishedAt"].endswith("Z")
    assert title["missing"] == []
    assert title["failedJobIds"] == []


def test_a_rendition_the_master_waited_for_in_vain_is_missing(api: Any, make_job: Any) -> None:
    rendition(make_job, "720p", "completed", destinationPrefix=f"films/{FILM}/hls/720p/")
    keys = [f"films/{FILM}/hls/720p/index.m3u8", f"films/{FILM}/hls/2160p/index.m3u8", f"films/{FILM}/subtitles/de.vtt"]
    master(
        make_job,
        "failed",
        subtitleLanguages=["de"],
        errorCode="MISSING_REFERENCES",
        errorMessage="missing: " + ", ".join(keys),
    )

    title = get(api, f"{TITLE}/uploads").json_body

    assert title["status"] == "failed"
    assert sorted((m["kind"], m["key"]) for m in title["missing"]) == [
        ("master", "master"),  # its own job failed
        ("rendition", "2160p"),  # no job at all: only the master's failure tells
        ("subtitle", "de"),  # listed by the master and among its missing references: once
    ]


def test_a_cancelled_part_leaves_the_title_partial(api: Any, make_job: Any) -> None:
    rendition(make_job, "720p", "completed")
    rendition(make_job, "1080p", "cancelled")
    master(make_job, "completed")

    title = get(api, f"{TITLE}/uploads").json_body

    assert title["status"] == "partial"
    assert title["publicUrl"] is not None
    assert title["missing"] == [
        {"kind": "rendition", "key": "1080p", "reason": "its newest job hls-1080p is cancelled"}
    ]


def test_a_part_published_once_stays_published_under_a_newer_failed_job(api: Any, make_job: Any) -> None:
    rendition(make_job, "720p", "completed")
    make_job(jobId="hls-720p-again", label="720p", status="failed")
    master(make_job, "completed")

    title = get(api, f"{TITLE}/uploads").json_body

    assert parts(title, "renditions") == {"720p": "completed"}
    assert [job["jobId"] for job in title["renditions"][0]["jobs"]] == ["hls-720p-again", "hls-720p"]
    assert title["status"] == "live"
    assert title["failedJobIds"] == ["hls-720p-again"]  # still one the retry action would retry


@pytest.mark.parametrize("route", ["uploads", "retry-failed"])
@pytest.mark.parametrize(
    ("path", "status", "field"),
    [
        (f"/v1/studio/resources/book/{FILM}", 400, "resourceType"),
        ("/v1/studio/resources/film/not-an-object-id", 400, "resourceId"),
        (f"/v1/studio/resources/film/{OTHER_FILM}", 404, OTHER_FILM),
        (f"/v1/studio/resources/episode/{FILM}", 404, FILM),
    ],
)
def test_bad_or_unknown_titles(api: Any, make_job: Any, route: str, path: str, status: int, field: str) -> None:
    make_job(jobId="the-film", status="failed")
    response = post(api, f"{path}/{route}") if route == "retry-failed" else get(api, f"{path}/{route}")
    assert response.status_code == status
    assert field in response.json_body["Message"]


def test_an_uppercase_resource_id_is_the_same_title(api: Any, make_job: Any) -> None:
    make_job(jobId="the-film")
    assert get(api, f"/v1/studio/resources/film/{FILM.upper()}/uploads").json_body["total"] == 1


def test_retry_failed_retries_only_the_failed_jobs(
    api: Any, make_job: Any, store: JobStore, sqs: Any, queues: dict[str, str]
) -> None:
    for label in ("1080p", "720p"):
        rendition(make_job, label, "failed", errorCode="UPLOAD_FAILED")
    rendition(make_job, "480p", "completed")
    rendition(make_job, "360p", "active")
    rendition(make_job, "240p", "cancelled")
    rendition(make_job, "144p", "failed", sourceRemoved=True)
    make_job(jobId="other-film", resourceId=OTHER_FILM, status="failed")

    response = post(api, f"{TITLE}/retry-failed", {"clientId": "admin-tab"})

    assert response.status_code == 200
    assert response.json_body == {
        "matched": 3,
        "done": 2,
        "skipped": {"source-removed": 1},
        "failed": [],
        "notReached": [],
    }
    statuses = {job_id: store.get(job_id).status for job_id in ("hls-1080p", "hls-720p", "hls-480p", "hls-360p")}
    assert statuses == {"hls-1080p": "waiting", "hls-720p": "waiting", "hls-480p": "completed", "hls-360p": "active"}
    assert (store.get("hls-240p").status, store.get("other-film").status) == ("cancelled", "failed")
    assert store.get("hls-1080p").client_id == "admin-tab"
    received = sqs.receive_message(QueueUrl=queues["upload-hls-to-s3"], MaxNumberOfMessages=10)
    assert sorted(json.loads(m["Body"])["jobId"] for m in received["Messages"]) == ["hls-1080p", "hls-720p"]
    again = post(api, f"{TITLE}/retry-failed").json_body
    assert again == {"matched": 1, "done": 0, "skipped": {"source-removed": 1}, "failed": [], "notReached": []}


def test_two_retry_failed_calls_at_once_retry_each_job_once(
    make_job: Any, services: Any, store: JobStore, race: Any
) -> None:
    job_ids = [rendition(make_job, f"{height}p", "failed").job_id for height in range(100, 1100, 100)]
    title = titles.TitleRef(resourceType="film", resourceId=FILM)

    def retry_all() -> dict[str, Any]:
        return titles.retry_failed(title, RetryRequest(), services, error_code)

    def retry_one() -> Any:
        try:
            return services.store.retry(job_ids[0], client_id=None)
        except Exception as exc:  # the single-job route's Conflict when a title call won
            return exc

    first, second, _ = race(retry_all, retry_all, retry_one)

    for result in (first, second):
        assert result["matched"] == result["done"] + sum(result["skipped"].values())
        assert set(result["skipped"]) <= {"not-retryable"}
        assert result["failed"] == []
    for job_id in job_ids:
        job = store.get(job_id)
        assert (job.status, job.retry_count) == ("waiting", 1), job_id
        assert [(h.from_, h.to) for h in job.history].count(("failed", "waiting")) == 1


def test_more_failed_jobs_than_the_limit_is_a_conflict_retrying_none(
    api: Any, make_job: Any, store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(titles, "TITLE_JOB_LIMIT", 2)
    for label in ("1080p", "720p", "480p"):
        rendition(make_job, label, "failed")

    view = get(api, f"{TITLE}/uploads").json_body
    response = post(api, f"{TITLE}/retry-failed")

    assert (view["total"], view["truncated"]) == (2, True)
    assert response.status_code == 409
    assert "more than 2 failed jobs" in response.json_body["Message"]
    assert {store.get(f"hls-{label}").status for label in ("1080p", "720p", "480p")} == {"failed"}
