"""`stats` stays within MongoDB's document limit: its aggregations answer in small documents, whatever
the number of jobs (the old one pushed every duration into one array, past 16 MB near a million jobs)."""

from __future__ import annotations

import math
import random
from typing import Any

import bson

from chalicelib.jobs.store import JOBS_COLLECTION, JobStore

JOBS = 1_000


class Recording:
    """A collection whose aggregations note the BSON size of every document they return."""

    def __init__(self, collection: Any, sizes: list[int]) -> None:
        self._collection = collection
        self._sizes = sizes

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)

    def aggregate(self, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results = list(self._collection.aggregate(pipeline))
        self._sizes.extend(len(bson.encode(result)) for result in results)
        return results


def test_stats_answers_in_small_documents_and_keeps_its_figures(database: Any) -> None:
    rng = random.Random(7)
    durations = [round(rng.lognormvariate(3, 1), 3) for _ in range(JOBS)]
    database[JOBS_COLLECTION].insert_many(
        [
            {"jobId": f"j{i}", "status": "completed", "durationSeconds": d, "uploadedBytes": 10}
            for i, d in enumerate(durations)
        ]
        + [{"jobId": "f", "status": "failed", "durationSeconds": None, "uploadedBytes": 0}]
    )
    sizes: list[int] = []
    store = JobStore({JOBS_COLLECTION: Recording(database[JOBS_COLLECTION], sizes)})
    stats = store.stats()

    assert max(sizes) < 1024  # one group or one histogram bin per document
    assert (stats["completed"], stats["failed"], stats["total"]) == (JOBS, 1, JOBS + 1)
    metrics = stats["metrics"]
    assert metrics["bytesUploaded"] == 10 * JOBS
    assert metrics["avgDurationSeconds"] == round(sum(durations) / JOBS, 3)
    exact_p95 = sorted(durations)[math.ceil(JOBS * 0.95) - 1]
    assert abs(metrics["p95DurationSeconds"] / exact_p95 - 1) < 0.047
