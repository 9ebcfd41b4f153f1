"""A state change whose answer a connection failure lost, but which MongoDB applied, counts as made.

Found by the chaos run (seed 9): the completing write of a job reached the server, the dropped
connection lost its answer, the worker raised, and the redelivered message found the job completed
and ignored it, so no JobCompleted ever went out. Atlas retries such a write once; a second blip,
or a server without retryable writes, leaves it to the store.
"""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.errors import AutoReconnect

from chalicelib.jobs.model import CreateJobRequest, JobStatus, new_job_document, utcnow
from chalicelib.jobs.store import JOBS_COLLECTION, JobStore
from chalicelib.worker import lease


class LosingOneAnswer:
    """The jobs collection, whose next find_one_and_update loses its answer: applied or not."""

    def __init__(self, collection: Any) -> None:
        self._collection = collection
        self.armed: str | None = None  # "applied" or "not applied"

    def find_one_and_update(self, *args: Any, **kwargs: Any) -> Any:
        if self.armed is None:
            return self._collection.find_one_and_update(*args, **kwargs)
        applied, self.armed = self.armed == "applied", None
        if applied:
            self._collection.find_one_and_update(*args, **kwargs)
        raise AutoReconnect("127.0.0.1:27017: [Errno 104] Connection reset by peer")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)


class Database:
    def __init__(self, database: Any, jobs: LosingOneAnswer) -> None:
        self._database = database
        self._jobs = jobs

    def __getitem__(self, name: str) -> Any:
        return self._jobs if name == JOBS_COLLECTION else self._database[name]


@pytest.fixture
def jobs(database: Any) -> LosingOneAnswer:
    return LosingOneAnswer(database[JOBS_COLLECTION])


@pytest.fixture
def losing_store(database: Any, jobs: LosingOneAnswer) -> JobStore:
    store = JobStore(Database(database, jobs))
    store.ensure_indexes()
    request = CreateJobRequest.model_validate(
        {
            "jobId": "j1",
            "jobType": "upload-hls-to-s3",
            "resourceType": "film",
            "resourceId": "64b7f0c2a1b2c3d4e5f60718",
            "hlsDir": "film/720p",
            "label": "720p",
        }
    )
    store.insert(new_job_document(request, bucket="media", max_attempts=5, now=utcnow()))
    return store


def test_an_applied_claim_whose_answer_was_lost_is_the_workers(losing_store: JobStore, jobs: LosingOneAnswer) -> None:
    jobs.armed = "applied"
    claimed = lease.claim(losing_store, "j1", "worker-a", lease_seconds=60)
    assert claimed is not None
    assert (claimed.status, claimed.lease_owner) == (JobStatus.ACTIVE, "worker-a")


def test_an_applied_completion_whose_answer_was_lost_returns_the_completed_job(
    losing_store: JobStore, jobs: LosingOneAnswer
) -> None:
    assert lease.claim(losing_store, "j1", "worker-a", lease_seconds=60) is not None
    jobs.armed = "applied"
    done = losing_store.transition(
        "j1", JobStatus.COMPLETED, sources=[JobStatus.ACTIVE], reason="done", actor="worker-a",
        condition={"leaseOwner": "worker-a"},
    )  # fmt: skip
    assert done is not None and done.status == JobStatus.COMPLETED


def test_a_lost_write_still_fails_and_changes_nothing(losing_store: JobStore, jobs: LosingOneAnswer) -> None:
    jobs.armed = "not applied"
    with pytest.raises(AutoReconnect):
        lease.claim(losing_store, "j1", "worker-a", lease_seconds=60)
    assert losing_store.get("j1").status == JobStatus.WAITING
