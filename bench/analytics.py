"""The analytics figures of `make bench`: analytics, stats, metrics and search over 100,000 jobs.

    python -m bench.analytics                        # 100,000 jobs on the embedded store; merges its
                                                     # figures into bench/results.json
    python -m bench.analytics --mongodb-uri URI      # the same against a MongoDB server
    python -m bench.analytics --jobs 1000 --repeats 1 --out FILE   # a quick check

The jobs are made in-process (no worker runs): 30 days of history before a fixed `now`, 80 %
completed, 10 % failed, 4 % cancelled, 4 % waiting, 2 % active, the four job types, log-normal
durations, a resource name of two words from a small vocabulary and a number. Each query is timed
through the same chalicelib function its route calls, median of the repeats, after one untimed run.
The embedded store (mongomock) uses no index: every query there scans the collection in Python, so
its figures are an upper bound of what the indexes buy on MongoDB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.report import Figure, merge_json, print_table, version
from chalicelib.jobs.analytics import AnalyticsRequest, BucketSize, analytics
from chalicelib.jobs.model import ListFilters
from chalicelib.jobs.search import search_words
from chalicelib.jobs.store import JobStore
from chalicelib.metrics.prometheus import exposition

BENCH = Path(__file__).resolve().parent
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HISTORY = timedelta(days=30)
STATUSES = (("completed", 80), ("failed", 10), ("cancelled", 4), ("waiting", 4), ("active", 2))
JOB_TYPES = ("upload-hls-to-s3", "upload-hls-to-s3", "upload-subtitle-to-s3", "upload-video-to-s3")
ERROR_CODES = ("SOURCE_NOT_FOUND", "ACCESS_DENIED", "STALLED", "DEAD_LETTERED", "INVALID_PLAYLIST")
WORDS = ("northern", "lights", "night", "train", "summer", "river", "silent", "city", "blue", "harbour")
SEARCH = "northern li"  # two word prefixes: about 1 job in 100 has both


class NoQueue:
    """Queue depths are SQS's, not the store's: left out of these figures."""

    def depths(self) -> dict[str, dict[str, int]]:
        return {}


def job_documents(count: int, seed: int = 13) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    statuses = [status for status, weight in STATUSES for _ in range(weight)]
    for index in range(count):
        created = NOW - HISTORY * rng.random()
        status = rng.choice(statuses)
        name = f"{rng.choice(WORDS).title()} {rng.choice(WORDS).title()} {index}"
        document: dict[str, Any] = {
            "jobId": f"bench-{index}",
            "queueName": "upload-hls-to-s3",
            "jobType": rng.choice(JOB_TYPES),
            "status": status,
            "resourceType": "film",
            "resourceId": uuid.UUID(int=index).hex[:24],
            "resourceName": name,
            "uploadType": "hls",
            "contentType": "video",
            "bucketName": "studio-media",
            "searchWords": search_words(name),
            "createdAt": created,
            "updatedAt": created,
            "waitingSince": created,
            "uploadedBytes": 0,
        }
        if status in ("completed", "failed", "cancelled"):
            duration = min(rng.lognormvariate(3.5, 1.2), 7200.0)
            finished = min(created + timedelta(seconds=duration), NOW)
            document.update(finishedAt=finished, updatedAt=finished)
            if status == "completed":
                document.update(durationSeconds=duration, completedAt=finished, uploadedBytes=rng.randint(1, 2**31))
            elif status == "failed":
                code = rng.choice(ERROR_CODES)
                document.update(errorCode=code, failedReason=f"{code} at {index}", failedAt=finished)
        yield document


def fill(store: JobStore, count: int, batch: int = 2_000) -> float:
    """Insert `count` jobs; the seconds it took."""
    started = time.perf_counter()
    pending: list[dict[str, Any]] = []
    for document in job_documents(count):
        pending.append(document)
        if len(pending) == batch:
            store.collection.insert_many(pending)
            pending = []
    if pending:
        store.collection.insert_many(pending)
    return time.perf_counter() - started


def timed(run: Callable[[], Any], repeats: int, warm_up: bool) -> tuple[float, list[float], Any]:
    """Median milliseconds over `repeats` runs (after an untimed one if `warm_up`), the samples, and
    the last answer."""
    answer = run() if warm_up else None
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        answer = run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), samples, answer


def queries(store: JobStore) -> dict[str, tuple[str, Callable[[], Any]]]:
    queue: Any = NoQueue()
    hourly = AnalyticsRequest()
    daily = AnalyticsRequest(bucket=BucketSize.DAY, **{"from": NOW - HISTORY, "to": NOW})
    return {
        "analytics_hour_ms": (
            "analytics, last 24 h by hour (the default)",
            lambda: analytics(hourly, store=store, queue=queue),
        ),
        "analytics_day_ms": ("analytics, 30 days by day", lambda: analytics(daily, store=store, queue=queue)),
        "stats_ms": ("stats (GET /upload-jobs/stats without SQS)", store.stats),
        "metrics_ms": (
            "Prometheus scrape (GET /v1/studio/metrics without SQS)",
            lambda: exposition(store=store, queue=queue),
        ),
        "search_ms": (f"search q={SEARCH!r}, first page of 50", lambda: store.list(ListFilters(q=SEARCH))),
    }


def spread(samples: list[float]) -> str:
    if len(samples) == 1:
        return "1 run"
    return f"median of {len(samples)}, {min(samples):.0f}-{max(samples):.0f} ms"


def describe_store(uri: str | None) -> str:
    if uri:
        return "a MongoDB server over the wire (--mongodb-uri)"
    return f"the embedded store (mongomock {version('mongomock')}, in-process, no index used)"


def open_store(uri: str | None) -> tuple[JobStore, Callable[[], None]]:
    if not uri:
        from chalicelib.embedded_mongo import embedded_database

        database: Any = embedded_database(f"bench_{uuid.uuid4().hex[:8]}")
        return JobStore(database, clock=lambda: NOW), lambda: None
    from pymongo import MongoClient

    client: Any = MongoClient(uri, tz_aware=False)
    name = f"bench_{uuid.uuid4().hex[:8]}"
    return JobStore(client[name], clock=lambda: NOW), lambda: (client.drop_database(name), client.close())


def analytics_figures(
    jobs: int, repeats: int, uri: str | None = None, warm_up: bool = True, log: Callable[[str], None] = print
) -> list[Figure]:
    load = os.getloadavg()[0]
    store, close = open_store(uri)
    try:
        log(f"inserting {jobs:,} jobs into {describe_store(uri)}")
        inserted = fill(store, jobs)
        store.ensure_indexes()  # after the insert: mongomock checks a unique index by scanning
        section = f"Analytics over {jobs:,} jobs (30 days), on {describe_store(uri)}"
        figures = [
            Figure(
                "analytics_insert_seconds",
                section,
                f"insert {jobs:,} jobs",
                inserted,
                "s",
                detail=f"insert_many in batches of 2,000, then the indexes; 1-minute load average {load:.2f} at start",
            )
        ]
        for key, (label, run) in queries(store).items():
            log(f"timing {label}")
            median, samples, answer = timed(run, repeats, warm_up)
            size = len(json.dumps(answer, default=str))
            figures.append(
                Figure(
                    key,
                    section,
                    label,
                    median,
                    "ms",
                    detail=f"{spread(samples)}{'' if warm_up else ', no warm-up'}; answer {size:,} bytes",
                    samples=samples,
                )
            )
        return figures
    finally:
        close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-warm-up", action="store_true", help="time the first run too (mongomock caches nothing)")
    parser.add_argument("--mongodb-uri", default=None, help="measure on this server instead of the embedded store")
    parser.add_argument("--out", type=Path, default=BENCH / "results.json")
    args = parser.parse_args(argv)
    started = time.monotonic()
    figures = analytics_figures(
        args.jobs, args.repeats, args.mongodb_uri, not args.no_warm_up, log=lambda m: print(m, file=sys.stderr)
    )
    merge_json(args.out, figures)
    print_table(figures, None)
    print(f"{time.monotonic() - started:.0f} s; merged into {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
