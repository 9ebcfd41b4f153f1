"""The notification queue's Lambda entry point: one message a call, delivered by chalicelib.notify.

A handler that returns lets Lambda delete the message; one that raises (the receiver failed) leaves
it hidden for its backoff, then SQS delivers it again (docs/notifications.md).
"""

from __future__ import annotations

import os

from chalice import Blueprint
from chalice.app import SQSEvent

from chalicelib.notify.messages import NOTIFICATION_QUEUE

QUEUE_PREFIX = os.environ.get("QUEUE_PREFIX", "")  # read once, when Chalice builds the handlers
NOTIFY_QUEUE = f"{QUEUE_PREFIX}{NOTIFICATION_QUEUE}"

notifications_bp = Blueprint(__name__)


@notifications_bp.on_sqs_message(queue=NOTIFY_QUEUE, batch_size=1)
def deliver_notifications(event: SQSEvent) -> list[str]:
    from chalicelib.notify.delivery import deliver_notification  # imported here: `import app` stays cheap
    from chalicelib.services import get_services

    services = get_services()
    outcomes = []
    for record in event:
        attributes = record.to_dict().get("attributes", {})
        outcome = deliver_notification(
            record.body,
            receive_count=int(attributes.get("ApproximateReceiveCount") or 1),
            receipt_handle=record.receipt_handle,
            services=services,
        )
        outcomes.append(outcome.value)
    return outcomes
