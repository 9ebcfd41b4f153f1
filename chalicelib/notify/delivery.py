"""Deliver one message of the notification queue to its sink (the handler's body).

Delivered: the handler returns and SQS deletes the message. Retried (rules.py): the message is
hidden for `backoff_seconds(receive count)` (ChangeMessageVisibility) and NotificationNotDelivered
raised, so SQS delivers it again then; after the queue's maxReceiveCount SQS moves it to the
dead-letter queue. Refused: it goes to the dead-letter queue at once (sent there, then deleted
here). A message that is malformed, or names a sink no longer configured, is logged and dropped.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol

from chalicelib.config import Settings
from chalicelib.errors import Invalid, NotificationNotDelivered
from chalicelib.logs import logger
from chalicelib.notify.email import EmailSink
from chalicelib.notify.messages import EMAIL_SINK, NotificationMessage, parse_notification, webhook_sink
from chalicelib.notify.rules import Verdict, backoff_seconds
from chalicelib.notify.webhook import WebhookSink
from chalicelib.queue import dead_letter_url


class Sink(Protocol):
    def deliver(self, payload: dict[str, Any]) -> tuple[Verdict, str]: ...


class NotifyServices(Protocol):
    """What delivery needs from the container: chalicelib.services.Services provides it."""

    @property
    def settings(self) -> Settings: ...

    @property
    def notify_sqs(self) -> Any: ...

    @property
    def notification_sinks(self) -> dict[str, Sink]: ...


class DeliveryOutcome(StrEnum):
    DELIVERED = "delivered"
    REFUSED = "refused"  # moved to the dead-letter queue
    MALFORMED = "malformed"
    UNKNOWN_SINK = "unknown-sink"


def build_sinks(settings: Settings, ses: Any) -> dict[str, Sink]:
    """Sink name -> sink, for what the settings configure; `ses` is only called for the email sink."""
    sinks: dict[str, Sink] = {
        webhook_sink(url): WebhookSink(url, settings.notify_webhook_secret, timeout=settings.notify_timeout_seconds)
        for url in settings.notify_webhook_urls
    }
    if settings.notify_email_to:
        sinks[EMAIL_SINK] = EmailSink(ses(), sender=settings.notify_email_from, recipients=settings.notify_email_to)
    return sinks


def deliver_notification(
    body: str, *, receive_count: int, receipt_handle: str, services: NotifyServices
) -> DeliveryOutcome:
    """Deliver one message; raises NotificationNotDelivered when SQS should deliver it again."""
    try:
        message = parse_notification(body)
    except Invalid as error:
        logger.warning("dropping a malformed notification: %s", error)
        return DeliveryOutcome.MALFORMED
    what = f"the {message.payload.get('event')} notification of job {message.payload.get('jobId')} to {message.sink}"
    sink = services.notification_sinks.get(message.sink)
    if sink is None:
        logger.warning("dropping %s: that sink is no longer configured", what)
        return DeliveryOutcome.UNKNOWN_SINK
    result, detail = sink.deliver(message.payload)
    if result == Verdict.DELIVERED:
        logger.info("delivered %s (%s, delivery %d)", what, detail, receive_count)
        return DeliveryOutcome.DELIVERED
    if result == Verdict.REFUSED:
        _dead_letter(services, message, detail)
        logger.error("%s was refused (%s): moved to the dead-letter queue", what, detail)
        return DeliveryOutcome.REFUSED
    delay = backoff_seconds(receive_count, services.settings.notify_retry_base_seconds)
    _hide(services, receipt_handle, delay)
    raise NotificationNotDelivered(f"{what} failed ({detail}, delivery {receive_count}); next try in {delay} s")


def _hide(services: NotifyServices, receipt_handle: str, seconds: int) -> None:
    """The backoff: best effort, the queue's visibility timeout applies when it fails."""
    try:
        services.notify_sqs.change_message_visibility(
            QueueUrl=services.settings.notify_queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )
    except Exception:
        logger.warning("could not delay the next delivery of a notification", exc_info=True)


def _dead_letter(services: NotifyServices, message: NotificationMessage, detail: str) -> None:
    """Raises when SQS fails: the message is then delivered (and refused) again, never lost."""
    services.notify_sqs.send_message(
        QueueUrl=dead_letter_url(services.settings.notify_queue_url),
        MessageBody=message.body(),
        MessageAttributes={"refusal": {"DataType": "String", "StringValue": detail}},
    )
