"""What a WebSocket client may send (SPEC 8) and what each message is answered."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StrictBool,
    StringConstraints,
    ValidationError,
    model_validator,
)

from chalicelib.errors import Invalid
from chalicelib.jobs.model import CAMEL, JOB_ID
from chalicelib.realtime.connections import ConnectionRegistry

MAX_JOB_IDS = 500
JobId = Annotated[str, StringConstraints(pattern=JOB_ID.pattern)]
ACTIONS = ("subscribe", "unsubscribe", "ping", "whoami")


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Subscribe(_Message):
    """`{"action": "subscribe", "all": true}` and/or `{"action": "subscribe", "jobIds": [...]}`."""

    action: Literal["subscribe"]
    all: StrictBool | None = None  # JSON's true or false, never "yes" or 1
    job_ids: list[JobId] = Field(default_factory=list, alias="jobIds", max_length=MAX_JOB_IDS)

    @model_validator(mode="after")
    def _something(self) -> Subscribe:
        if self.all is None and not self.job_ids:
            raise ValueError('subscribe needs "all": true or "jobIds": [...]')
        return self


class Unsubscribe(_Message):
    """`"all": true` stops following every job, `jobIds` some jobs; neither stops following anything."""

    action: Literal["unsubscribe"]
    all: StrictBool | None = None
    job_ids: list[JobId] = Field(default_factory=list, alias="jobIds", max_length=MAX_JOB_IDS)

    @property
    def everything(self) -> bool:
        return self.all is None and not self.job_ids


class Ping(_Message):
    action: Literal["ping"]


class WhoAmI(_Message):
    action: Literal["whoami"]


class _Reply(BaseModel):
    model_config = ConfigDict(**CAMEL, extra="forbid")

    def api(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class SubscribedReply(_Reply):
    """The connection's subscriptions after a subscribe or unsubscribe."""

    event: Literal["subscribed"]
    all: bool
    job_ids: list[str]


class PongReply(_Reply):
    event: Literal["pong"]


class WhoAmIReply(_Reply):
    event: Literal["whoami"]
    connection_id: str = Field(description="Give it as clientId to receive a job's events without subscribing")


class ErrorReply(_Reply):
    """A message the server could not read or apply; the connection stays open."""

    event: Literal["error"]
    message: str


class ClientMessage(RootModel[Annotated[Subscribe | Unsubscribe | Ping | WhoAmI, Field(discriminator="action")]]):
    pass


def parse_message(body: str) -> ClientMessage:
    """The client's message, or Invalid with a sentence saying what is wrong with it."""
    try:
        data: Any = json.loads(body)
    except ValueError as exc:
        raise Invalid(f"the message is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise Invalid("the message must be a JSON object")
    if data.get("action") not in ACTIONS:
        raise Invalid(f"unknown action {data.get('action')!r}: expected one of {', '.join(ACTIONS)}")
    try:
        return ClientMessage.model_validate(data)
    except ValidationError as exc:
        raise Invalid("; ".join(_describe(error) for error in exc.errors())) from exc


def _describe(error: Any) -> str:
    # The first two parts of the location are the root model and the action tag.
    field = ".".join(str(part) for part in error["loc"][1:]) or "message"
    return f"{field}: {str(error['msg']).removeprefix('Value error, ')}"


def answer(message: ClientMessage, connection_id: str, connections: ConnectionRegistry) -> dict[str, Any]:
    """Apply the message and return the reply the client receives; ConnectionExpired once its token has expired."""
    request = message.root
    if isinstance(request, Ping | WhoAmI):  # the others are guarded by the update itself
        connections.live(connection_id)
    if isinstance(request, Subscribe):
        subscriptions = connections.subscribe(connection_id, all_jobs=request.all, job_ids=request.job_ids)
    elif isinstance(request, Unsubscribe) and request.everything:
        subscriptions = connections.unsubscribe_everything(connection_id)
    elif isinstance(request, Unsubscribe):
        subscriptions = connections.unsubscribe(connection_id, all_jobs=bool(request.all), job_ids=request.job_ids)
    elif isinstance(request, WhoAmI):
        return WhoAmIReply(event="whoami", connection_id=connection_id).api()
    else:
        return PongReply(event="pong").api()
    return SubscribedReply.model_validate(subscriptions.to_reply()).api()


def error_reply(message: str) -> dict[str, Any]:
    return ErrorReply(event="error", message=message).api()
