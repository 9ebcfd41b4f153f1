"""SQS: the message schema of SPEC 5, sending and re-sending with a delay, queue depths."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.errors import Invalid
from chalicelib.jobs.model import QueueName

MAX_DELAY_SECONDS = 900
DEAD_LETTER_SUFFIX = "-dlq"


class QueueMessage(BaseModel):
    """`{"v": 1, "jobId": "...", "job": {...optional full create body...}}`."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    v: Literal[1]
    job_id: str | None = Field(default=None, alias="jobId", min_length=1)
    job: dict[str, Any] | None = None
    continuation: bool = False

    def body(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True, exclude_defaults=False)


def parse_message(body: str) -> QueueMessage:
    """Parse an SQS body; Invalid (never anything else) for a malformed one."""
    try:
        message = QueueMessage.model_validate(json.loads(body))
    except (ValueError, ValidationError) as exc:
        raise Invalid(f"malformed queue message: {exc}") from exc
    if message.job_id is None and not (message.job and message.job.get("jobId")):
        raise Invalid("queue message names no jobId")
    return message


def dead_letter_url(queue_url: str) -> str:
    """Each queue's dead-letter queue is named like it with `-dlq` at the end (SPEC 5)."""
    return queue_url.rstrip("/") + DEAD_LETTER_SUFFIX


class JobQueue:
    """Sends job messages to the SQS queue of each logical queue name."""

    def __init__(self, sqs_client: Any, queue_urls: Mapping[QueueName, str]) -> None:
        self._sqs = sqs_client
        self._urls = dict(queue_urls)

    def url(self, queue: QueueName | str) -> str:
        return self._urls[QueueName(queue)]

    def send(
        self,
        queue: QueueName | str,
        job_id: str,
        *,
        delay_seconds: int = 0,
        job: Mapping[str, Any] | None = None,
        continuation: bool = False,
    ) -> str:
        message = QueueMessage(v=1, jobId=job_id, job=dict(job) if job else None, continuation=continuation)
        response = self._sqs.send_message(
            QueueUrl=self.url(queue),
            MessageBody=message.body(),
            DelaySeconds=max(0, min(MAX_DELAY_SECONDS, int(delay_seconds))),
        )
        return str(response["MessageId"])

    def change_visibility(self, queue: QueueName | str, receipt_handle: str, seconds: int) -> None:
        self._sqs.change_message_visibility(
            QueueUrl=self.url(queue), ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )

    def depths(self) -> dict[str, dict[str, int]]:
        """Visible, in-flight and dead-letter counts per logical queue, from SQS attributes."""
        return {str(name.value): self._depth(url) for name, url in self._urls.items()}

    def _depth(self, url: str) -> dict[str, int]:
        main = self._attributes(url)
        dead = self._attributes(dead_letter_url(url))
        return {
            "visible": main.get("ApproximateNumberOfMessages", 0),
            "inFlight": main.get("ApproximateNumberOfMessagesNotVisible", 0),
            "deadLetter": dead.get("ApproximateNumberOfMessages", 0),
        }

    def _attributes(self, url: str) -> dict[str, int]:
        response = self._sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
        return {name: int(value) for name, value in response.get("Attributes", {}).items()}
