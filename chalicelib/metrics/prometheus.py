"""`GET /v1/studio/metrics`: the store and the queues in the Prometheus text exposition format.

Each scrape reads a snapshot (jobs as the store holds them, JOB_RETENTION_DAYS of history, and SQS's
depths) into a registry of its own, so nothing accumulates between scrapes and every worker process
answers the same. prometheus_client writes the text; it is imported on the first scrape only, so
`import app` (the Lambda cold start) does not pay for it. Every metric is named `studio_uploads_*`:

- `studio_uploads_jobs{status, jobType}`: jobs in the store
- `studio_uploads_uploaded_bytes{jobType}`: bytes of the completed jobs in the store
- `studio_uploads_job_duration_seconds{jobType}`: histogram of the completed jobs' durations
- `studio_uploads_queue_messages{queue, state="visible"|"in_flight"}`, `studio_uploads_dead_letter_messages{queue}`
- `studio_uploads_queue_depths_available`: 1 when SQS answered, else 0 (and no queue series)
- `studio_uploads_oldest_waiting_job_age_seconds`: 0 when nothing waits
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from chalicelib.jobs.analytics import oldest_waiting, queue_depths
from chalicelib.jobs.model import JobStatus, JobType
from chalicelib.jobs.store import JobStore
from chalicelib.queue import JobQueue

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

PREFIX = "studio_uploads"
# Upper bounds (seconds) of the duration histogram: a subtitle takes seconds, a long video an hour.
DURATION_BOUNDS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)
INFINITY = "+Inf"


def job_counts(store: JobStore) -> list[dict[str, Any]]:
    """Jobs and bytes by (status, jobType): at most 5 x 4 groups."""
    pipeline = [
        {
            "$group": {
                "_id": {"status": "$status", "jobType": "$jobType"},
                "count": {"$sum": 1},
                "bytes": {"$sum": "$uploadedBytes"},
            }
        }
    ]
    return list(store.collection.aggregate(pipeline))


def duration_buckets(store: JobStore) -> list[dict[str, Any]]:
    """Completed jobs by (jobType, the smallest bound their duration fits under): at most 4 x 12 groups."""
    branches = [{"case": {"$lte": ["$durationSeconds", bound]}, "then": bound} for bound in DURATION_BOUNDS]
    pipeline = [
        {"$match": {"status": JobStatus.COMPLETED.value, "durationSeconds": {"$type": "number"}}},
        {
            "$group": {
                "_id": {"jobType": "$jobType", "le": {"$switch": {"branches": branches, "default": INFINITY}}},
                "count": {"$sum": 1},
                "sum": {"$sum": "$durationSeconds"},
            }
        },
    ]
    return list(store.collection.aggregate(pipeline))


def cumulative(groups: list[dict[str, Any]]) -> dict[str, tuple[list[tuple[str, float]], float]]:
    """Prometheus histogram buckets (cumulative counts per `le`, ending in +Inf) and sums, by jobType."""
    by_type: dict[str, dict[str, Any]] = {}
    for group in groups:
        entry = by_type.setdefault(str(group["_id"]["jobType"]), {"counts": {}, "sum": 0.0})
        entry["counts"][group["_id"]["le"]] = int(group["count"])
        entry["sum"] += float(group["sum"])
    histograms = {}
    for job_type, entry in sorted(by_type.items()):
        running, buckets = 0, []
        for bound in (*DURATION_BOUNDS, INFINITY):
            running += entry["counts"].get(bound, 0)
            buckets.append((INFINITY if bound == INFINITY else repr(float(bound)), float(running)))
        histograms[job_type] = (buckets, entry["sum"])
    return histograms


class Snapshot:
    """A prometheus_client collector over metric families read once (one scrape)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def families(store: JobStore, queue: JobQueue) -> list[Metric]:
    from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

    jobs = GaugeMetricFamily(f"{PREFIX}_jobs", "Upload jobs in the store.", labels=["status", "jobType"])
    uploaded = GaugeMetricFamily(
        f"{PREFIX}_uploaded_bytes", "Bytes uploaded by the completed jobs in the store.", labels=["jobType"]
    )
    counted = {(str(g["_id"]["status"]), str(g["_id"]["jobType"])): g for g in job_counts(store)}
    for status in JobStatus:  # every series exists, at 0 when no job has it, so alerts see zeros
        for job_type in JobType:
            jobs.add_metric(
                [status.value, job_type.value], int(counted.get((status.value, job_type.value), {}).get("count", 0))
            )
    for job_type in JobType:
        done = counted.get((JobStatus.COMPLETED.value, job_type.value), {})
        uploaded.add_metric([job_type.value], int(done.get("bytes", 0)))

    durations = HistogramMetricFamily(
        f"{PREFIX}_job_duration_seconds", "Durations of the completed jobs in the store.", labels=["jobType"]
    )
    for name, (buckets, total) in cumulative(duration_buckets(store)).items():
        durations.add_metric([name], buckets, total)

    oldest = oldest_waiting(store, {})
    age = GaugeMetricFamily(
        f"{PREFIX}_oldest_waiting_job_age_seconds",
        "How long the longest-waiting job has been waiting (0 when none waits).",
        value=oldest[1] if oldest else 0.0,
    )
    return [jobs, uploaded, durations, age, *queue_families(queue)]


def queue_families(queue: JobQueue) -> list[Metric]:
    from prometheus_client.core import GaugeMetricFamily

    depths = queue_depths(queue)
    available = GaugeMetricFamily(
        f"{PREFIX}_queue_depths_available", "1 when SQS answered for the queue depths, else 0.", value=int(bool(depths))
    )
    messages = GaugeMetricFamily(
        f"{PREFIX}_queue_messages", "Messages in each upload queue (SQS, approximate).", labels=["queue", "state"]
    )
    dead = GaugeMetricFamily(
        f"{PREFIX}_dead_letter_messages", "Messages in each queue's dead-letter queue.", labels=["queue"]
    )
    for name, depth in sorted((depths or {}).items()):
        messages.add_metric([name, "visible"], depth["visible"])
        messages.add_metric([name, "in_flight"], depth["inFlight"])
        dead.add_metric([name], depth["deadLetter"])
    return [available, messages, dead]


def exposition(*, store: JobStore, queue: JobQueue) -> tuple[str, str]:
    """The scrape's text and its Content-Type (text format 0.0.4, which every Prometheus reads)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Snapshot(families(store, queue)))
    return generate_latest(registry).decode(), CONTENT_TYPE_PLAIN_0_0_4
