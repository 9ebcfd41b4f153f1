"""The WebSocket connection registry (SPEC 8): who is connected and which jobs each one follows.

One document per connection in `ws_connections`: `{connectionId, subject, all, jobIds, connectedAt,
expiresAt}`. A TTL index on `connectedAt` forgets a connection after 2 hours, API Gateway's longest
connection, in case its disconnect never arrived. `expiresAt` is the `exp` of the token the connection
opened with: from then on it receives no event and its messages are refused (it must connect again with
a fresh token), and the local gateway closes it. A connection the registry does not know (its record was
lost) is treated as expired: its token's `exp` is unknown. Queries stay within what MongoDB and
mongomock both support.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.errors import Unauthorized
from chalicelib.jobs.model import as_utc, utcnow

CONNECTIONS_COLLECTION = "ws_connections"
CONNECTION_TTL_SECONDS = 2 * 3600
ASCENDING = 1
RETURN_AFTER = True  # pymongo's ReturnDocument.AFTER, without importing pymongo
EXPIRED = "this connection's token has expired (or the connection is unknown): connect again with a fresh token"


class ConnectionExpired(Unauthorized):
    """The connection outlived its token, or the registry does not know it."""

    def __init__(self, connection_id: str) -> None:
        super().__init__(EXPIRED)
        self.connection_id = connection_id


@dataclass(frozen=True)
class Subscription:
    """What one connection follows: every job (`all`), and/or the jobs in `job_ids`."""

    connection_id: str
    all: bool = False
    job_ids: tuple[str, ...] = field(default_factory=tuple)
    expires_at: datetime | None = None

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Subscription:
        return cls(
            connection_id=str(document["connectionId"]),
            all=bool(document.get("all", False)),
            job_ids=tuple(document.get("jobIds", [])),
            expires_at=as_utc(document["expiresAt"]) if document.get("expiresAt") else None,
        )

    def to_reply(self) -> dict[str, Any]:
        """The `subscribed` answer of SPEC 8."""
        return {"event": "subscribed", "all": self.all, "jobIds": list(self.job_ids)}


class ConnectionRegistry:
    """WebSocket connections in MongoDB. Takes a pymongo `Database` (or the embedded one) and a clock."""

    def __init__(self, database: Any, clock: Callable[[], datetime] = utcnow) -> None:
        self._connections = database[CONNECTIONS_COLLECTION]
        self._clock = clock

    def ensure_indexes(self) -> None:
        """One index per branch of `interested`'s $or, so MongoDB answers it from indexes; and the TTL."""
        self._connections.create_index([("connectionId", ASCENDING)], unique=True, name="connectionId_unique")
        self._connections.create_index([("jobIds", ASCENDING)], name="jobIds")
        self._connections.create_index([("all", ASCENDING)], name="all")
        self._connections.create_index(
            [("connectedAt", ASCENDING)], expireAfterSeconds=CONNECTION_TTL_SECONDS, name="connectedAt_ttl"
        )

    def connect(self, connection_id: str, *, subject: str, expires_at: datetime) -> None:
        """Register a new connection, following nothing yet, live until `expires_at` (its token's exp)."""
        self._connections.update_one(
            {"connectionId": connection_id},
            {
                "$set": {"subject": subject, "connectedAt": self._clock(), "expiresAt": expires_at},
                "$setOnInsert": {"all": False, "jobIds": []},
            },
            upsert=True,
        )

    def live(self, connection_id: str) -> Subscription:
        """The connection's subscription; ConnectionExpired once its token has expired, or when it is unknown."""
        document = self._connections.find_one(self._live_filter(connection_id))
        if document is None:
            raise ConnectionExpired(connection_id)
        return Subscription.from_document(document)

    def remove(self, connection_id: str) -> None:
        """Forget a connection: it disconnected, or API Gateway answered 410 for it."""
        self._connections.delete_one({"connectionId": connection_id})

    def find(self, connection_id: str) -> Subscription | None:
        document = self._connections.find_one({"connectionId": connection_id})
        return Subscription.from_document(document) if document else None

    def subscribe(
        self, connection_id: str, *, all_jobs: bool | None = None, job_ids: Iterable[str] = ()
    ) -> Subscription:
        """Follow every job (`all_jobs`) and/or more jobs; returns the subscription after the change."""
        update: dict[str, Any] = {"$addToSet": {"jobIds": {"$each": list(job_ids)}}}
        if all_jobs is not None:
            update["$set"] = {"all": all_jobs}
        return self._update(connection_id, update)

    def unsubscribe(self, connection_id: str, *, all_jobs: bool = False, job_ids: Iterable[str] = ()) -> Subscription:
        """Stop following every job (`all_jobs`, the jobs named as well stay followed) and/or some jobs."""
        update: dict[str, Any] = {"$pull": {"jobIds": {"$in": list(job_ids)}}}
        if all_jobs:
            update["$set"] = {"all": False}
        return self._update(connection_id, update)

    def unsubscribe_everything(self, connection_id: str) -> Subscription:
        return self._update(connection_id, {"$set": {"all": False, "jobIds": []}})

    def interested(self, job_id: str, client_id: str | None) -> list[str]:
        """Live connections that receive `job_id`'s events: following all, following the job, or named by clientId."""
        branches: list[dict[str, Any]] = [{"all": True}, {"jobIds": job_id}]
        if client_id:
            branches.append({"connectionId": client_id})
        query = {"$or": branches, "expiresAt": {"$gt": self._clock()}}
        documents = self._connections.find(query, {"connectionId": 1, "_id": 0})
        return sorted({str(document["connectionId"]) for document in documents})

    def _live_filter(self, connection_id: str) -> dict[str, Any]:
        return {"connectionId": connection_id, "expiresAt": {"$gt": self._clock()}}

    def _update(self, connection_id: str, update: dict[str, Any]) -> Subscription:
        # Guarded by expiresAt, never an upsert: an expired or unknown connection changes nothing.
        document = self._connections.find_one_and_update(
            self._live_filter(connection_id), update, return_document=RETURN_AFTER
        )
        if document is None:
            raise ConnectionExpired(connection_id)
        return Subscription.from_document(document)
