"""A message for a job that has just finished announces its final event again (at least once).

Found by the chaos run (seed 9): a worker process SIGKILLed between the completing write and the
delivery of JobCompleted left the job completed with no event; the redelivered message found the
job finished and acknowledged it silently, so subscribers never learned the job had completed.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from chalicelib.jobs.model import JobStatus
from chalicelib.jobs.store import JOBS_COLLECTION
from chalicelib.worker import Action, handle_message


def deliver(services: Any, job_id: str) -> Any:
    return handle_message(
        json.dumps({"v": 1, "jobId": job_id}), services=services, context_remaining_ms=lambda: 900_000
    )


def test_a_redelivered_message_of_a_job_just_completed_sends_job_completed_again(
    worker_services: Any, worker_job: Any, write_rendition: Any, worker_events: Any
) -> None:
    services = worker_services()
    write_rendition(segments=2)
    job = worker_job(services)
    assert deliver(services, job.job_id).action == Action.COMPLETED
    worker_events.events.clear()  # as if the worker had died before its events went out

    again = deliver(services, job.job_id)

    assert again.action == Action.IGNORED
    assert worker_events.names(job.job_id) == ["JobCompleted"]
    assert services.store.get(job.job_id).status == JobStatus.COMPLETED


def test_a_message_long_after_the_job_finished_announces_nothing(
    worker_services: Any, worker_job: Any, write_rendition: Any, worker_events: Any, database: Any
) -> None:
    services = worker_services()
    write_rendition(segments=2)
    job = worker_job(services)
    assert deliver(services, job.job_id).action == Action.COMPLETED
    finished = services.store.get(job.job_id).finished_at
    database[JOBS_COLLECTION].update_one({"jobId": job.job_id}, {"$set": {"finishedAt": finished - timedelta(hours=1)}})
    worker_events.events.clear()

    assert deliver(services, job.job_id).action == Action.IGNORED
    assert worker_events.names(job.job_id) == []
