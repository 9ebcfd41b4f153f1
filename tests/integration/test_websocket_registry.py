"""The connection registry in MongoDB (SPEC 8): connections expire after 2 hours and at their token's `exp`,
a lost record is refused like an expired one, and `interested` is one indexed query of live connections."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

import pytest

from chalicelib.jobs.model import utcnow
from chalicelib.realtime.connections import CONNECTION_TTL_SECONDS, ConnectionExpired, ConnectionRegistry

IN_AN_HOUR = timedelta(hours=1)


@pytest.fixture
def registry(database: Any) -> ConnectionRegistry:
    connections = ConnectionRegistry(database)
    connections.ensure_indexes()
    return connections


def test_connections_carry_a_two_hour_ttl(database: Any, registry: ConnectionRegistry) -> None:
    indexes = database["ws_connections"].index_information()
    ttl = [index for index in indexes.values() if "expireAfterSeconds" in index]

    assert CONNECTION_TTL_SECONDS == 7200
    assert [(index["key"], index["expireAfterSeconds"]) for index in ttl] == [([("connectedAt", 1)], 7200)]


@pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="MongoDB's TTL monitor runs once a minute")
def test_a_connection_older_than_two_hours_is_forgotten(database: Any, registry: ConnectionRegistry) -> None:
    connected_long_ago = utcnow() - timedelta(hours=2, minutes=1)
    database["ws_connections"].insert_one({"connectionId": "stale", "all": True, "connectedAt": connected_long_ago})
    registry.connect("fresh", subject="admin", expires_at=utcnow() + IN_AN_HOUR)
    registry.subscribe("fresh", all_jobs=True)

    assert registry.find("stale") is None
    assert registry.interested("any-job", None) == ["fresh"]


def test_a_connection_the_registry_lost_is_refused_and_not_recreated(registry: ConnectionRegistry) -> None:
    """Its token's exp is unknown, so it is treated as expired: it must connect again."""
    with pytest.raises(ConnectionExpired):
        registry.subscribe("lost-record", job_ids=["job-1"])
    with pytest.raises(ConnectionExpired):
        registry.live("lost-record")

    assert registry.find("lost-record") is None
    assert registry.interested("job-1", None) == []


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


def test_a_connection_gets_no_event_and_changes_nothing_once_its_token_expired(database: Any) -> None:
    clock = Clock()
    registry = ConnectionRegistry(database, clock=clock)
    registry.connect("watcher", subject="admin", expires_at=clock.now + timedelta(minutes=5))
    registry.connect("newcomer", subject="admin", expires_at=clock.now + IN_AN_HOUR)
    registry.subscribe("watcher", all_jobs=True)
    registry.subscribe("newcomer", job_ids=["job-1"])
    assert registry.interested("job-1", "watcher") == ["newcomer", "watcher"]
    assert registry.live("watcher").expires_at == clock.now + timedelta(minutes=5)

    clock.now += timedelta(minutes=5)

    assert registry.interested("job-1", "watcher") == ["newcomer"]
    for change in (
        lambda: registry.subscribe("watcher", job_ids=["job-2"]),
        lambda: registry.unsubscribe("watcher", all_jobs=True),
        lambda: registry.unsubscribe_everything("watcher"),
        lambda: registry.live("watcher"),
    ):
        with pytest.raises(ConnectionExpired):
            change()
    watcher = registry.find("watcher")
    assert watcher is not None and watcher.all and watcher.job_ids == ()


def test_each_branch_of_the_interested_query_has_an_index(database: Any, registry: ConnectionRegistry) -> None:
    keys = [index["key"] for index in database["ws_connections"].index_information().values()]

    assert [("all", 1)] in keys
    assert [("jobIds", 1)] in keys
    assert [("connectionId", 1)] in keys
