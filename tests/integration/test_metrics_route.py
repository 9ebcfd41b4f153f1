"""`GET /v1/studio/metrics`: Prometheus text parsed back with prometheus_client, against inserted jobs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

METRICS = "/v1/studio/metrics"
VIDEO = {"jobType": "upload-video-to-s3", "sourcePath": "films/x/movie.mp4", "hlsDir": None, "label": None}
HLS = "upload-hls-to-s3"


def scrape(api: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape by (name, sorted labels)."""
    response = api.http.get(METRICS, headers={"Authorization": api.admin_headers["Authorization"]})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.body.decode()):
        assert family.name.startswith("studio_uploads_")
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.fixture
def jobs(make_job: Any, services: Any) -> None:
    now = services.store.now()
    make_job(jobId="c1", status="completed", durationSeconds=3.0, uploadedBytes=100)
    make_job(jobId="c2", status="completed", durationSeconds=45.0, uploadedBytes=200)
    make_job(jobId="f1", status="failed", errorCode="ACCESS_DENIED", **VIDEO)
    make_job(jobId="w1", waitingSince=now - timedelta(seconds=120))


def test_job_counts_by_status_and_job_type(api: Any, jobs: None) -> None:
    samples = scrape(api)
    jobs_of = {labels: value for (name, labels), value in samples.items() if name == "studio_uploads_jobs"}
    assert jobs_of[(("jobType", HLS), ("status", "completed"))] == 2
    assert jobs_of[(("jobType", "upload-video-to-s3"), ("status", "failed"))] == 1
    assert jobs_of[(("jobType", HLS), ("status", "waiting"))] == 1
    assert sum(jobs_of.values()) == 4
    assert len(jobs_of) == 5 * 4  # every status and jobType, zeros included
    assert samples[("studio_uploads_uploaded_bytes", (("jobType", HLS),))] == 300


def test_duration_histogram_of_completed_jobs(api: Any, jobs: None) -> None:
    samples = scrape(api)

    def bucket(le: str) -> float:
        return samples[("studio_uploads_job_duration_seconds_bucket", (("jobType", HLS), ("le", le)))]

    assert (bucket("1.0"), bucket("5.0"), bucket("30.0"), bucket("60.0"), bucket("+Inf")) == (0, 1, 1, 2, 2)
    assert samples[("studio_uploads_job_duration_seconds_count", (("jobType", HLS),))] == 2
    assert samples[("studio_uploads_job_duration_seconds_sum", (("jobType", HLS),))] == 48.0


def test_oldest_waiting_age_and_queue_depths(api: Any, jobs: None, sqs: Any, queues: dict[str, str]) -> None:
    sqs.send_message(QueueUrl=queues[HLS], MessageBody="{}")
    sqs.send_message(QueueUrl=queues["upload-master-playlist"] + "-dlq", MessageBody="{}")
    samples = scrape(api)
    assert 120 <= samples[("studio_uploads_oldest_waiting_job_age_seconds", ())] < 180
    assert samples[("studio_uploads_queue_depths_available", ())] == 1
    assert samples[("studio_uploads_queue_messages", (("queue", HLS), ("state", "visible")))] == 1
    assert samples[("studio_uploads_queue_messages", (("queue", HLS), ("state", "in_flight")))] == 0
    assert samples[("studio_uploads_dead_letter_messages", (("queue", "upload-master-playlist"),))] == 1
    assert samples[("studio_uploads_dead_letter_messages", (("queue", HLS),))] == 0


def test_an_empty_store_scrapes_zeros(api: Any) -> None:
    samples = scrape(api)
    assert samples[("studio_uploads_oldest_waiting_job_age_seconds", ())] == 0
    assert samples[("studio_uploads_jobs", (("jobType", HLS), ("status", "failed")))] == 0


def test_metrics_need_an_admin_token(api: Any, settings: Any) -> None:
    from chalicelib.auth import issue_token

    assert api.http.get(METRICS).status_code == 401
    viewer = issue_token(settings.auth_jwt_secret, roles=("viewer",))
    assert api.http.get(METRICS, headers={"Authorization": f"Bearer {viewer}"}).status_code == 403
