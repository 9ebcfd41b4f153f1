"""Every WebSocket message the code makes is valid under docs/websocket-messages.json, and the
schema refuses what the server refuses."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from chalicelib.errors import Invalid
from chalicelib.jobs.model import UploadJob, utcnow
from chalicelib.realtime.connections import ConnectionRegistry
from chalicelib.realtime.events import JobEvent, event_payload
from chalicelib.realtime.messages import answer, error_reply, parse_message
from tests.factories import hls_job

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "websocket-messages.json").read_text())


def validator(definition: str) -> Any:
    schema = {**SCHEMA, "anyOf": [{"$ref": f"#/$defs/{definition}"}]}
    return jsonschema.Draft202012Validator(schema)


def a_job() -> UploadJob:
    return hls_job()


@pytest.mark.parametrize("event", list(JobEvent))
def test_every_job_event_is_a_server_message_of_its_own_shape(event: JobEvent) -> None:
    payload = event_payload(event, a_job())
    validator("ServerMessage").validate(payload)
    matching = [d for d in SCHEMA["$defs"]["ServerMessage"]["oneOf"] if _accepts(d, payload)]
    assert len(matching) == 1


def _accepts(reference: dict[str, str], payload: dict[str, Any]) -> bool:
    name = reference["$ref"].rsplit("/", 1)[-1]
    return validator(name).is_valid(payload)


def test_every_reply_is_a_server_message(database: Any) -> None:
    connections = ConnectionRegistry(database)
    connections.connect("c1", subject="admin", expires_at=utcnow() + timedelta(hours=1))
    for message in (
        {"action": "subscribe", "all": True},
        {"action": "subscribe", "jobIds": ["a", "b"]},
        {"action": "unsubscribe", "jobIds": ["a"]},
        {"action": "unsubscribe"},
        {"action": "ping"},
        {"action": "whoami"},
    ):
        validator("ClientMessage").validate(message)
        validator("ServerMessage").validate(answer(parse_message(json.dumps(message)), "c1", connections))
    validator("ServerMessage").validate(error_reply("unknown action"))


@pytest.mark.parametrize(
    "message",
    [
        {"action": "dance"},
        {"action": "subscribe", "jobIds": ["../x"]},
        {"action": "subscribe", "all": "yes"},
        {"all": True},
    ],
)
def test_what_the_server_refuses_the_schema_refuses(message: dict[str, Any]) -> None:
    with pytest.raises(Invalid):
        parse_message(json.dumps(message))
    assert not validator("ClientMessage").is_valid(message)
