"""Maintenance entry points: cleanup, sync and fix-stuck routes, the 5-minute schedule, and the
handlers of both dead-letter queues. Each parses its input and calls one chalicelib function."""

from __future__ import annotations

import os
from typing import Any

from chalice import Blueprint
from chalice.app import CloudWatchEvent, SQSEvent

from chalicelib import maintenance
from chalicelib.http import http_errors, json_body
from chalicelib.jobs.model import CleanupRequest, QueueName
from chalicelib.queue import DEAD_LETTER_SUFFIX
from chalicelib.responses import CleanupResult, FixStuckResult, SyncResult
from chalicelib.services import get_services
from chalicelib.usecases.dead_letter import handle_dead_letter
from chalicelib.validation import parse

bp = Blueprint(__name__)

BASE = "/v1/studio/upload-jobs"
# The real SQS queue names carry the stage's prefix; read once, when Chalice builds the handlers.
QUEUE_PREFIX = os.environ.get("QUEUE_PREFIX", "")
DEAD_LETTER_BATCH = 10  # each record is handled on its own; a batch only saves invocations


def dead_letter_queue(queue: QueueName) -> str:
    return f"{QUEUE_PREFIX}{queue.value}{DEAD_LETTER_SUFFIX}"


def _body() -> Any:
    return json_body(bp.current_request)


@bp.route(f"{BASE}/{{job_id}}/cleanup", methods=["POST"])
@http_errors
def cleanup_job(job_id: str) -> dict[str, Any]:
    request = parse(CleanupRequest, _body())
    return CleanupResult.model_validate(maintenance.cleanup_job(job_id, request, get_services())).api()


@bp.route(f"{BASE}/{{job_id}}/sync", methods=["POST"])
@http_errors
def sync_job(job_id: str) -> dict[str, Any]:
    return SyncResult.model_validate(maintenance.sync_job(job_id, get_services())).api()


@bp.route(f"{BASE}/fix-stuck", methods=["POST"])
@http_errors
def fix_stuck() -> dict[str, Any]:
    return FixStuckResult.model_validate(maintenance.fix_stuck(get_services())).api()


@bp.schedule("rate(5 minutes)")
def scheduled_maintenance(event: CloudWatchEvent) -> dict[str, Any]:
    return maintenance.run_scheduled_maintenance(get_services())


@bp.on_sqs_message(queue=dead_letter_queue(QueueName.HLS), batch_size=DEAD_LETTER_BATCH)
def hls_dead_letters(event: SQSEvent) -> list[str]:
    return _dead_letters(event)


@bp.on_sqs_message(queue=dead_letter_queue(QueueName.MASTER), batch_size=DEAD_LETTER_BATCH)
def master_dead_letters(event: SQSEvent) -> list[str]:
    return _dead_letters(event)


def _dead_letters(event: SQSEvent) -> list[str]:
    """One outcome per record. An exception (MongoDB unreachable) fails the batch: SQS redelivers
    it, and marking a job again is harmless (a finished job is left alone)."""
    services = get_services()
    outcomes = []
    for record in event:
        receive_count = _receive_count(record.to_dict())
        outcomes.append(handle_dead_letter(record.body, receive_count, services).value)
    return outcomes


def _receive_count(record: dict[str, Any]) -> int:
    try:
        return int(record.get("attributes", {}).get("ApproximateReceiveCount", 0))
    except (TypeError, ValueError):
        return 0
