"""The connection registry in MongoDB (SPEC 8): connections expire after 2 hours, subscriptions survive
a lost record, and `interested` is one indexed query."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.jobs.model import utcnow
from chalicelib.realtime.connections import CONNECTION_TTL_SECONDS, ConnectionRegistry


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
    registry.connect("fresh", subject="admin")
    registry.subscribe("fresh", all_jobs=True)

    assert registry.find("stale") is None
    assert registry.interested("any-job", None) == ["fresh"]


def test_subscribing_an_unknown_connection_records_it(registry: ConnectionRegistry) -> None:
    subscription = registry.subscribe("lost-record", job_ids=["job-1"])

    assert subscription.to_reply() == {"event": "subscribed", "all": False, "jobIds": ["job-1"]}
    assert registry.interested("job-1", None) == ["lost-record"]


def test_each_branch_of_the_interested_query_has_an_index(database: Any, registry: ConnectionRegistry) -> None:
    keys = [index["key"] for index in database["ws_connections"].index_information().values()]

    assert [("all", 1)] in keys
    assert [("jobIds", 1)] in keys
    assert [("connectionId", 1)] in keys
