"""What a WebSocket client may ask (SPEC 8) and the answers, through the local gateway."""

from __future__ import annotations

from typing import Any


def test_ping_is_answered_pong(ws_connect: Any) -> None:
    assert ws_connect().ask({"action": "ping"}) == {"event": "pong"}


def test_whoami_gives_each_connection_its_own_id(ws_connect: Any, realtime_services: Any) -> None:
    first = ws_connect().ask({"action": "whoami"})
    second = ws_connect().ask({"action": "whoami"})

    assert first["event"] == "whoami"
    assert first["connectionId"] != second["connectionId"]
    assert realtime_services.connections.find(first["connectionId"]) is not None


def test_each_subscription_change_is_answered_with_the_state_after_it(ws_connect: Any) -> None:
    client = ws_connect()

    assert client.ask({"action": "subscribe", "all": True}) == {"event": "subscribed", "all": True, "jobIds": []}
    assert client.ask({"action": "subscribe", "jobIds": ["job-1", "job-2"]}) == {
        "event": "subscribed",
        "all": True,
        "jobIds": ["job-1", "job-2"],
    }
    assert client.ask({"action": "subscribe", "jobIds": ["job-2", "job-3"]})["jobIds"] == ["job-1", "job-2", "job-3"]
    assert client.ask({"action": "unsubscribe", "all": True}) == {
        "event": "subscribed",
        "all": False,
        "jobIds": ["job-1", "job-2", "job-3"],
    }
    assert client.ask({"action": "unsubscribe", "jobIds": ["job-1"]})["jobIds"] == ["job-2", "job-3"]
    assert client.ask({"action": "unsubscribe", "all": False})["jobIds"] == ["job-2", "job-3"]
    assert client.ask({"action": "unsubscribe"}) == {"event": "subscribed", "all": False, "jobIds": []}


def test_a_message_that_is_not_understood_is_answered_with_an_error_and_the_connection_stays(
    ws_connect: Any,
) -> None:
    client = ws_connect()

    client.connection.send("not json")
    not_json = client.recv()
    unknown = client.ask({"action": "dance"})
    bad_ids = client.ask({"action": "subscribe", "jobIds": ["../etc"]})
    empty = client.ask({"action": "subscribe"})

    assert not_json["event"] == "error"
    assert "not JSON" in not_json["message"]
    assert unknown["event"] == "error"
    assert "dance" in unknown["message"]
    assert bad_ids["event"] == "error"
    assert "jobIds" in bad_ids["message"]
    assert empty["event"] == "error"
    assert client.ask({"action": "ping"}) == {"event": "pong"}
