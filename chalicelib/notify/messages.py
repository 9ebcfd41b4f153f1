"""The notification queue's message: `{"v": 1, "sink": "webhook:<id>" | "email", "payload": {...}}`.

One message per sink, so a receiver that fails is retried alone. A webhook is named by an id derived
from its URL, never by the URL: a webhook URL often carries its own token (Slack's do), and the id
keeps it out of queue messages and logs. A message whose sink is no longer configured is dropped.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from chalicelib.errors import Invalid

NOTIFICATION_QUEUE = "upload-notifications"  # the queue's logical name; QUEUE_PREFIX goes in front
EMAIL_SINK = "email"


class NotificationMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    v: Literal[1] = 1
    sink: str
    payload: dict[str, Any]

    def body(self) -> str:
        return self.model_dump_json()


def webhook_sink(url: str) -> str:
    return "webhook:" + hashlib.sha256(url.encode()).hexdigest()[:12]


def parse_notification(body: str) -> NotificationMessage:
    try:
        return NotificationMessage.model_validate(json.loads(body))
    except (ValueError, ValidationError) as exc:
        raise Invalid(f"malformed notification message: {exc}") from exc
