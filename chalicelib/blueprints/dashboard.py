"""`GET /dashboard`: the admin page (SPEC 4), served by the app itself, no auth and no secrets.

The page is plain files in chalicelib/dashboard (HTML, CSS, JavaScript modules; no build step).
The route fills in what differs between `make run` and API Gateway: where the page's own files
and the HTTP API live (the stage prefix, taken from the request's path, so the same page works
at `/dashboard` and at `/api/dashboard`) and the WebSocket URL (from the settings). The person
types a token into the page; nothing in it lets anyone in.
"""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import urlsplit

from chalice import Blueprint, NotFoundError, Response

from chalicelib.config import Settings
from chalicelib.services import get_services

DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "dashboard"
PAGE_PATH = "/dashboard"
API_PATH = "/v1/studio"
CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

dashboard = Blueprint(__name__)


@dataclass(frozen=True)
class Asset:
    body: str
    content_type: str
    etag: str


def assets() -> dict[str, Asset]:
    """The page's scripts and styles by file name; nothing else in the folder is served.

    Read at each request (a few small files): an edit shows at the next reload under `make run`."""
    found = {}
    for path in sorted(DASHBOARD_DIR.iterdir()):
        if path.suffix in CONTENT_TYPES:
            body = path.read_text(encoding="utf-8")
            etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:20] + '"'
            found[path.name] = Asset(body, CONTENT_TYPES[path.suffix], etag)
    return found


def page_template() -> Template:
    return Template((DASHBOARD_DIR / "index.html").read_text(encoding="utf-8"))


def stage_prefix(request_path: str) -> str:
    """What API Gateway puts before the route (`/api` in `/api/dashboard`); empty locally."""
    path = request_path.rstrip("/")
    return path[: -len(PAGE_PATH)] if path.endswith(PAGE_PATH) else ""


def websocket_url(settings: Settings) -> str:
    """Where the page's WebSocket connects: the explicit setting, else the WebSocket API's domain and stage."""
    if settings.dashboard_websocket_url:
        return settings.dashboard_websocket_url
    domain = settings.websocket_api_domain
    if not domain:
        return ""
    # A domain given as a URL (moto, tests) keeps its scheme, made ws: http -> ws, https -> wss.
    base = "ws" + domain.removeprefix("http") if domain.startswith(("http://", "https://")) else f"wss://{domain}"
    stage = settings.websocket_api_stage
    return f"{base.rstrip('/')}/{stage}" if stage else base.rstrip("/")


def page_config(settings: Settings, prefix: str) -> dict[str, str]:
    return {"apiBase": prefix + API_PATH, "websocketUrl": websocket_url(settings), "stage": settings.stage}


def script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no `</script>` or `<!--` can be formed."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(config: dict[str, str], prefix: str) -> str:
    return page_template().substitute(
        asset_base=html.escape(f"{prefix}{PAGE_PATH}/", quote=True), config=script_json(config)
    )


def page_headers(socket_url: str) -> dict[str, str | list[str]]:
    """Only the page's own files run; it talks to its own origin and the WebSocket API."""
    connect = ["'self'"]
    if socket_url:
        parts = urlsplit(socket_url)
        connect.append(f"{parts.scheme}://{parts.netloc}")
    policy = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {' '.join(connect)}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
    return {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


@dashboard.route(PAGE_PATH, methods=["GET"])
def dashboard_page() -> Response:
    request = dashboard.current_request
    prefix = stage_prefix(str(request.context.get("path") or PAGE_PATH))
    config = page_config(get_services().settings, prefix)
    return Response(body=render_page(config, prefix), status_code=200, headers=page_headers(config["websocketUrl"]))


@dashboard.route(PAGE_PATH + "/{asset}", methods=["GET"])
def dashboard_asset(asset: str) -> Response:
    found = assets().get(asset)
    if found is None:
        raise NotFoundError(f"the dashboard has no file {asset!r}")
    headers: dict[str, str | list[str]] = {
        "Content-Type": found.content_type,
        "Cache-Control": "no-cache",  # revalidated by ETag: a deploy is seen at once
        "ETag": found.etag,
        "X-Content-Type-Options": "nosniff",
    }
    if dashboard.current_request.headers.get("if-none-match") == found.etag:
        return Response(body="", status_code=304, headers=headers)
    return Response(body=found.body, status_code=200, headers=headers)
