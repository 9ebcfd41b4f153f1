"""`GET /v1/studio/upload-jobs/analytics` over jobs inserted with known times, through chalice.test.Client."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

ANALYTICS = "/v1/studio/upload-jobs/analytics"
T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
MIB = 1024 * 1024
VIDEO = {"jobType": "upload-video-to-s3", "sourcePath": "films/x/movie.mp4", "hlsDir": None, "label": None}


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def get(api: Any, query: str) -> Any:
    return api.http.get(f"{ANALYTICS}?{query}", headers=api.admin_headers)


def ended(status: str, created: float, finished: float, **fields: Any) -> dict[str, Any]:
    """Fields of a job created and finished at these minutes after T0."""
    return {"now": at(created), "status": status, "finishedAt": at(finished), "canCancel": False, **fields}


@pytest.fixture
def three_hours(make_job: Any) -> None:
    """Jobs created and finished over T0's first three hours, and two outside them."""
    make_job(jobId="h1", **ended("completed", 10, 20, durationSeconds=10.0, uploadedBytes=3600 * MIB))
    make_job(jobId="h2", **ended("completed", 30, 70, durationSeconds=20.0, uploadedBytes=7200 * MIB))
    make_job(jobId="v1", **VIDEO, **ended("completed", 15, 150, durationSeconds=100.0, uploadedBytes=0))
    make_job(jobId="h3", **ended("failed", 65, 80, errorCode="SOURCE_NOT_FOUND", failedReason="older"))
    make_job(jobId="h4", **ended("failed", 66, 90, errorCode="SOURCE_NOT_FOUND", failedReason="newest"))
    make_job(jobId="h5", **ended("failed", 120, 130, errorCode="ACCESS_DENIED", failedReason="denied"))
    make_job(jobId="h6", **ended("cancelled", 121, 125))
    make_job(jobId="before", **ended("completed", -60, -30, durationSeconds=999.0, uploadedBytes=MIB))
    make_job(jobId="after", **ended("failed", 240, 250, errorCode="ACCESS_DENIED"))


def window(**extra: str) -> str:
    query = {"from": iso(T0), "to": iso(at(180)), **extra}
    return "&".join(f"{name}={value}" for name, value in query.items())


def test_each_hour_counts_what_was_created_and_what_ended_in_it(api: Any, three_hours: None) -> None:
    answer = get(api, window()).json_body
    assert (answer["from"], answer["to"], answer["bucket"]) == (iso(T0), iso(at(180)), "hour")
    rows = [
        (b["start"], b["created"], b["completed"], b["failed"], b["cancelled"], b["bytesUploaded"])
        for b in answer["buckets"]
    ]
    assert rows == [
        (iso(T0), 3, 1, 0, 0, 3600 * MIB),
        (iso(at(60)), 2, 1, 2, 0, 7200 * MIB),
        (iso(at(120)), 2, 1, 1, 1, 0),
    ]
    assert [b["throughputMiBps"] for b in answer["buckets"]] == [1.0, 2.0, 0.0]


def test_duration_percentiles_by_job_type_cover_the_jobs_completed_in_the_window(api: Any, three_hours: None) -> None:
    durations = get(api, window()).json_body["durations"]
    assert durations == {
        "upload-hls-to-s3": {"p50": 10.0, "p95": 20.0, "p99": 20.0},
        "upload-video-to-s3": {"p50": 100.0, "p95": 100.0, "p99": 100.0},
    }


def test_failure_reasons_most_frequent_first_with_the_newest_as_example(api: Any, three_hours: None) -> None:
    reasons = get(api, window()).json_body["failureReasons"]
    assert [(r["errorCode"], r["count"]) for r in reasons] == [("SOURCE_NOT_FOUND", 2), ("ACCESS_DENIED", 1)]
    assert reasons[0]["example"] == {"jobId": "h4", "failedReason": "newest", "at": iso(at(90))}


def test_the_list_filters_narrow_every_part(api: Any, three_hours: None) -> None:
    answer = get(api, window(jobType="upload-video-to-s3")).json_body
    assert [b["created"] for b in answer["buckets"]] == [1, 0, 0]
    assert [b["completed"] for b in answer["buckets"]] == [0, 0, 1]
    assert list(answer["durations"]) == ["upload-video-to-s3"]
    assert answer["failureReasons"] == []
    failed_only = get(api, window(status="failed")).json_body
    assert [b["completed"] for b in failed_only["buckets"]] == [0, 0, 0]
    assert [b["failed"] for b in failed_only["buckets"]] == [0, 2, 1]
    assert failed_only["durations"] == {}


def test_day_buckets_start_at_utc_midnight(api: Any, three_hours: None) -> None:
    query = f"from={iso(T0 - timedelta(hours=12))}&to={iso(at(180))}&bucket=day"
    buckets = get(api, query).json_body["buckets"]
    assert [(b["start"], b["created"], b["completed"]) for b in buckets] == [
        (iso(T0 - timedelta(days=1)), 1, 1),
        (iso(T0), 8, 3),  # the day bucket holds the whole day, "after" included
    ]
    assert buckets[1]["throughputMiBps"] == pytest.approx(10800 / 86400, abs=1e-6)


def test_backlog_counts_waiting_and_active_now_and_the_longest_wait(api: Any, make_job: Any, services: Any) -> None:
    now = services.store.now()
    make_job(jobId="w-old", waitingSince=now - timedelta(seconds=300), now=now - timedelta(days=3))
    make_job(jobId="w-new", waitingSince=now - timedelta(seconds=60))
    make_job(jobId="a1", status="active")
    backlog = get(api, window()).json_body["backlog"]
    assert (backlog["waiting"], backlog["active"], backlog["oldestWaitingJobId"]) == (2, 1, "w-old")
    assert 300 <= backlog["oldestWaitingSeconds"] < 360
    assert set(backlog["queues"]) == {"upload-hls-to-s3", "upload-master-playlist"}


def test_without_from_and_to_the_window_is_the_last_24_hours(api: Any, make_job: Any, services: Any) -> None:
    make_job(jobId="now")
    make_job(jobId="two-days-ago", now=services.store.now() - timedelta(days=2))
    answer = api.http.get(ANALYTICS, headers=api.admin_headers).json_body
    assert len(answer["buckets"]) in (24, 25)  # 25 unless now is exactly on the hour
    assert sum(b["created"] for b in answer["buckets"]) == 1
    assert answer["buckets"][-1]["created"] == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("bucket=week", "bucket"),
        (f"from={iso(at(180))}&to={iso(T0)}", "from"),
        (f"from={iso(T0)}&to={iso(T0 + timedelta(days=17))}", "from"),  # 408 hours
        (f"from={iso(T0)}&to={iso(T0 + timedelta(days=401))}&bucket=day", "from"),
        ("from=yesterday", "from"),
        ("status=stuck", "status"),
        ("limit=5", "limit"),
    ],
)
def test_bad_parameters_are_400_naming_the_field(api: Any, query: str, field: str) -> None:
    response = get(api, query)
    assert response.status_code == 400
    assert response.json_body["Code"] == "BadRequestError"
    assert response.json_body["Message"].startswith(f"{field}:")


def test_400_buckets_are_allowed(api: Any) -> None:
    response = get(api, f"from={iso(T0)}&to={iso(T0 + timedelta(hours=400))}")
    assert response.status_code == 200
    assert len(response.json_body["buckets"]) == 400


def test_analytics_needs_a_token(api: Any) -> None:
    assert api.http.get(ANALYTICS).status_code == 401
