"""Puts the notification of each notified event on the notification queue, one message per sink.

`publish` is called right after the write that ended the job, so the job's outcome is stored before
anything here runs; it makes one SQS SendMessageBatch call (a client of its own with short timeouts,
chalicelib/services.py) and never calls a receiver. A failure to enqueue is logged and that
notification is lost: it never fails or delays the job further.
"""

from __future__ import annotations

from typing import Any

from chalicelib.config import Settings
from chalicelib.jobs.model import UploadJob
from chalicelib.logs import logger
from chalicelib.notify.messages import EMAIL_SINK, NotificationMessage, webhook_sink
from chalicelib.notify.payload import build_payload
from chalicelib.notify.rules import is_notified, parse_event_filter
from chalicelib.realtime.events import JobEvent, Notifier

SQS_BATCH = 10  # entries per SendMessageBatch call


def configured_sinks(settings: Settings) -> list[str]:
    return [webhook_sink(url) for url in settings.notify_webhook_urls] + (
        [EMAIL_SINK] if settings.notify_email_to else []
    )


class NotificationEnqueuer:
    """A Notifier (chalicelib/realtime/events.py) for the events NOTIFY_EVENTS names. Never raises."""

    def __init__(self, sqs: Any, settings: Settings) -> None:
        self._sqs = sqs
        self._queue_url = settings.notify_queue_url
        self._stage = settings.stage
        self._filters = tuple(parse_event_filter(entry) for entry in settings.notify_events)
        self._sinks = configured_sinks(settings)

    def publish(self, event: JobEvent, job: UploadJob) -> None:
        if not is_notified(self._filters, event, job.error_code):
            return
        try:
            self._enqueue(build_payload(event, job, stage=self._stage))
        except Exception:
            logger.exception("could not enqueue the %s notification of job %s; it is not sent", event, job.job_id)

    def _enqueue(self, payload: dict[str, Any]) -> None:
        bodies = [NotificationMessage(sink=sink, payload=payload).body() for sink in self._sinks]
        for start in range(0, len(bodies), SQS_BATCH):
            entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + SQS_BATCH])]
            failed = self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=entries).get("Failed") or []
            for entry in failed:
                logger.error(
                    "could not enqueue a %s notification of job %s: %s", payload["event"], payload["jobId"], entry
                )
        logger.info(
            "enqueued the %s notification of job %s for %d sinks", payload["event"], payload["jobId"], len(bodies)
        )


class FanOutNotifier:
    """Every event to each notifier in turn (the WebSocket one, then the notification enqueuer)."""

    def __init__(self, *notifiers: Notifier) -> None:
        self.notifiers = notifiers

    def publish(self, event: JobEvent, job: UploadJob) -> None:
        for notifier in self.notifiers:
            notifier.publish(event, job)
