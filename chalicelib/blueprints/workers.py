"""The upload workers' Lambda entry points: one SQS queue each, batches of 1 (SPEC 6).

Thin on purpose: each record goes to `chalicelib.worker.handle_message`, the function the local
pollers call too. A handler that returns lets Lambda delete the message; one that raises leaves it
for SQS to deliver again (only MongoDB or SQS being unreachable does that).
"""

from __future__ import annotations

import os
from typing import Any

from chalice import Blueprint
from chalice.app import SQSEvent

from chalicelib.jobs.model import QueueName

# The SQS queue names: a stage prefix (QUEUE_PREFIX) + the logical name, read once at import.
QUEUE_PREFIX = os.environ.get("QUEUE_PREFIX", "")
HLS_QUEUE = f"{QUEUE_PREFIX}{QueueName.HLS.value}"
MASTER_QUEUE = f"{QUEUE_PREFIX}{QueueName.MASTER.value}"

workers_bp = Blueprint(__name__)


def handle_event(event: SQSEvent) -> None:
    """Every record of the batch (one, as configured) through the worker, with the Lambda's clock;
    then the metrics of the job it finished, if it did (chalicelib/worker/metrics.py)."""
    from chalicelib.services import get_services  # imported here: `import app` stays cheap
    from chalicelib.worker import WorkerOptions, handle_message
    from chalicelib.worker.metrics import publish_result

    services = get_services()
    options = WorkerOptions.from_environment()
    context: Any = event.context  # Chalice types it as a dict; Lambda passes its LambdaContext
    for record in event:
        result = handle_message(
            record.body,
            services=services,
            context_remaining_ms=context.get_remaining_time_in_millis,
            receipt_handle=record.receipt_handle,
            options=options,
        )
        publish_result(result, services.settings.stage)  # before returning: Lambda may freeze us


@workers_bp.on_sqs_message(queue=HLS_QUEUE, batch_size=1)
def upload_hls_worker(event: SQSEvent) -> None:
    """Renditions, subtitles and whole videos."""
    handle_event(event)


@workers_bp.on_sqs_message(queue=MASTER_QUEUE, batch_size=1)
def upload_master_worker(event: SQSEvent) -> None:
    """Master playlists (they wait for their renditions)."""
    handle_event(event)
