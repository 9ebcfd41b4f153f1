"""GET /dashboard: the admin page is public, carries no secret, and points at the right URLs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.blueprints.dashboard import assets, stage_prefix, websocket_url
from chalicelib.config import Settings
from chalicelib.services import Services, set_services

SECRET = "a-dashboard-test-secret-that-is-long-enough-for-hs256"


@pytest.fixture
def client() -> Iterator[Any]:
    settings = Settings(
        stage="test", auth_jwt_secret=SECRET, spaces_secret="spaces-secret-key", dashboard_websocket_url="ws://ws.test"
    )
    set_services(Services(settings, database=object()))  # the page must not touch the database
    with Client(app_module.app, stage_name="local") as test_client:
        yield test_client
    set_services(None)


def page_config(body: str) -> dict[str, str]:
    match = re.search(r'<script id="dashboard-config" type="application/json">(.*?)</script>', body)
    assert match, "the page carries its configuration"
    config: dict[str, str] = json.loads(match.group(1))
    return config


def test_the_page_answers_html_without_a_token(client: Any) -> None:
    response = client.http.get("/dashboard")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<title>Studio uploads</title>" in response.body.decode()


def test_the_page_and_its_files_hold_no_secret(client: Any) -> None:
    bodies = [client.http.get("/dashboard").body.decode()]
    bodies += [client.http.get(f"/dashboard/{name}").body.decode() for name in assets()]
    for body in bodies:
        assert SECRET not in body
        assert "spaces-secret-key" not in body


def test_the_page_tells_its_api_and_websocket_urls(client: Any) -> None:
    config = page_config(client.http.get("/dashboard").body.decode())
    assert config == {"apiBase": "/v1/studio", "websocketUrl": "ws://ws.test", "stage": "test"}


def test_the_page_allows_its_websocket_and_no_inline_script(client: Any) -> None:
    policy = client.http.get("/dashboard").headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "connect-src 'self' ws://ws.test;" in policy


def test_scripts_and_styles_are_served_without_a_token(client: Any) -> None:
    script = client.http.get("/dashboard/app.js")
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("text/javascript")
    style = client.http.get("/dashboard/style.css")
    assert style.headers["Content-Type"].startswith("text/css")


def test_an_unchanged_file_is_not_sent_again(client: Any) -> None:
    first = client.http.get("/dashboard/api.js")
    again = client.http.get("/dashboard/api.js", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.body == b""


def test_only_the_page_files_are_served(client: Any) -> None:
    assert client.http.get("/dashboard/index.html").status_code == 404
    assert client.http.get("/dashboard/..%2Fblueprints%2Fdashboard.py").status_code == 404


def test_the_api_stays_closed_without_a_token(client: Any) -> None:
    assert client.http.get("/v1/studio/upload-jobs").status_code in (401, 403)


@pytest.mark.parametrize(
    ("path", "prefix"),
    [("/dashboard", ""), ("/api/dashboard", "/api"), ("/prod/dashboard/", "/prod")],
)
def test_the_stage_prefix_comes_from_the_request_path(path: str, prefix: str) -> None:
    assert stage_prefix(path) == prefix


@pytest.mark.parametrize(
    ("settings", "url"),
    [
        ({"dashboard_websocket_url": "ws://127.0.0.1:8001"}, "ws://127.0.0.1:8001"),
        (
            {"websocket_api_domain": "abc.execute-api.eu-west-1.amazonaws.com", "websocket_api_stage": "api"},
            "wss://abc.execute-api.eu-west-1.amazonaws.com/api",
        ),
        ({"websocket_api_domain": "ws.example.com"}, "wss://ws.example.com"),
        ({"websocket_api_domain": "http://127.0.0.1:5000"}, "ws://127.0.0.1:5000"),
        ({}, ""),
    ],
)
def test_the_websocket_url_comes_from_the_settings(settings: dict[str, str], url: str) -> None:
    assert websocket_url(Settings(stage="test", **settings)) == url
