"""studio-uploads: Chalice entry points only. Each parses its input, calls one chalicelib function
and shapes the answer. Nothing here connects to anything at import time."""

from __future__ import annotations

from typing import Any

from chalice import Chalice, Response
from chalice.app import Request

from chalicelib.blueprints.dashboard import dashboard as dashboard_blueprint
from chalicelib.blueprints.invocations import invocations as invocations_blueprint
from chalicelib.blueprints.maintenance import bp as maintenance_blueprint
from chalicelib.blueprints.maintenance import hls_dead_letters, master_dead_letters, scheduled_maintenance
from chalicelib.blueprints.notifications import deliver_notifications, notifications_bp
from chalicelib.blueprints.websocket import on_ws_connect, on_ws_disconnect, on_ws_message
from chalicelib.blueprints.websocket import websocket as websocket_blueprint
from chalicelib.blueprints.workers import upload_hls_worker, upload_master_worker, workers_bp
from chalicelib.errors import Forbidden, Unauthorized
from chalicelib.http import as_chalice_error, error_code, http_errors, json_body
from chalicelib.jobs import analytics
from chalicelib.jobs.model import ClearRequest, CreateJobRequest, ListFilters, RetryRequest
from chalicelib.metrics import prometheus
from chalicelib.responses import (
    AnalyticsReport,
    BulkResult,
    Cleared,
    Deleted,
    Health,
    JobList,
    JobStats,
    TitleUploads,
)
from chalicelib.services import get_services
from chalicelib.usecases import bulk, jobs, titles
from chalicelib.validation import parse

# Chalice packages a blueprint's event handler under its own module, so Lambda would enter it without
# importing this one: no blueprint registered, no middleware (aws/chalice#1566). infra/package.py points
# every such function at its re-export here instead.
__all__ = [
    "app",
    "deliver_notifications",
    "hls_dead_letters",
    "master_dead_letters",
    "on_ws_connect",
    "on_ws_disconnect",
    "on_ws_message",
    "scheduled_maintenance",
    "upload_hls_worker",
    "upload_master_worker",
]

# Chalice's own logger is named after the app, as the service's JSON logger is (chalicelib/logs.py): without
# configure_logs=False it would add a plain-text handler to it and set it to ERROR.
app = Chalice(app_name="studio-uploads", configure_logs=False)
app.experimental_feature_flags.update(["WEBSOCKETS"])
app.register_blueprint(invocations_blueprint)  # first: its middleware wraps the others, their lines carry the id
app.register_blueprint(maintenance_blueprint)
app.register_blueprint(dashboard_blueprint)
app.register_blueprint(websocket_blueprint)
app.register_blueprint(workers_bp)
app.register_blueprint(notifications_bp)

BASE = "/v1/studio/upload-jobs"
TITLE = "/v1/studio/resources/{resource_type}/{resource_id}"
PUBLIC_PATHS = frozenset({"/v1/health", "/v1/openapi.json", "/dashboard", "/dashboard/{asset}"})


@app.middleware("http")
def require_admin(event: Request, get_response: Any) -> Response:
    """SPEC 4: every route but health and the dashboard page needs an admin JWT."""
    if event.context.get("resourcePath") in PUBLIC_PATHS or event.method == "OPTIONS":
        return get_response(event)
    from chalicelib.auth import TokenPolicy, authenticate_http_admin

    try:
        authenticate_http_admin(event.headers.get("authorization"), TokenPolicy.from_settings(get_services().settings))
    except (Unauthorized, Forbidden) as exc:
        error = as_chalice_error(exc)
        assert error is not None
        return Response(body={"Code": type(error).__name__, "Message": str(exc)}, status_code=error.STATUS_CODE)
    return get_response(event)


def _request() -> Request:
    request = app.current_request
    assert request is not None  # always set while a route runs
    return request


def _body() -> Any:
    return json_body(_request())


@app.route("/v1/health", methods=["GET"])
def health() -> dict[str, Any]:
    return Health(status="ok").api()


@app.route("/v1/openapi.json", methods=["GET"])
def openapi_document() -> Response:
    """docs/openapi.json, built from the models on the first request (import app stays cheap)."""
    from chalicelib.openapi import served_document

    return Response(body=served_document(), status_code=200, headers={"Content-Type": "application/json"})


@app.route("/v1/studio/ws-tokens", methods=["POST"])
@http_errors
def create_websocket_token() -> Response:
    """A token of a few minutes for the WebSocket URL, where a long-lived one would end up in access logs."""
    from chalicelib.auth import TokenPolicy, authenticate_http_admin, websocket_token

    policy = TokenPolicy.from_settings(get_services().settings)
    principal = authenticate_http_admin(_request().headers.get("authorization"), policy)
    return Response(body=websocket_token(principal, policy).api(), status_code=201)


@app.route(BASE, methods=["GET"])
@http_errors
def list_jobs() -> dict[str, Any]:
    filters = parse(ListFilters, dict(_request().query_params or {}))
    return JobList.model_validate(jobs.list_jobs(filters, store=get_services().store)).api()


@app.route(f"{BASE}/stats", methods=["GET"])
@http_errors
def job_stats() -> dict[str, Any]:
    services = get_services()
    return JobStats.model_validate(jobs.job_stats(store=services.store, queue=services.queue)).api()


@app.route(f"{BASE}/analytics", methods=["GET"])
@http_errors
def job_analytics() -> dict[str, Any]:
    request = parse(analytics.AnalyticsRequest, dict(_request().query_params or {}))
    services = get_services()
    return AnalyticsReport.model_validate(
        analytics.analytics(request, store=services.store, queue=services.queue)
    ).api()


@app.route("/v1/studio/metrics", methods=["GET"])
@http_errors
def prometheus_metrics() -> Response:
    services = get_services()
    text, content_type = prometheus.exposition(store=services.store, queue=services.queue)
    return Response(body=text, headers={"Content-Type": content_type})


@app.route(f"{BASE}/{{job_id}}", methods=["GET"])
@http_errors
def get_job(job_id: str) -> dict[str, Any]:
    return get_services().store.get(job_id).to_api()


@app.route(BASE, methods=["POST"])
@http_errors
def create_job() -> Response:
    request = parse(CreateJobRequest, _body())
    services = get_services()
    job, created = jobs.create_job(
        request, store=services.store, queue=services.queue, notifier=services.notifier, settings=services.settings
    )
    return Response(body=job.to_api(), status_code=201 if created else 200)


@app.route(f"{BASE}/{{job_id}}/retry", methods=["POST"])
@http_errors
def retry_job(job_id: str) -> dict[str, Any]:
    request = parse(RetryRequest, _body())
    services = get_services()
    job = jobs.retry_job(job_id, request, store=services.store, queue=services.queue, notifier=services.notifier)
    return job.to_api()


@app.route(f"{BASE}/{{job_id}}/cancel", methods=["POST"])
@http_errors
def cancel_job(job_id: str) -> dict[str, Any]:
    services = get_services()
    return jobs.cancel_job(job_id, store=services.store, notifier=services.notifier).to_api()


@app.route(f"{BASE}/{{job_id}}", methods=["DELETE"])
@http_errors
def delete_job(job_id: str) -> dict[str, Any]:
    jobs.delete_job(job_id, services=get_services())
    return Deleted(deleted=True).api()


@app.route(f"{BASE}/bulk", methods=["POST"])
@http_errors
def bulk_action() -> dict[str, Any]:
    request = parse(bulk.BulkRequest, _body())
    return BulkResult.model_validate(bulk.run_bulk(request, get_services(), error_code)).api()


@app.route(f"{BASE}/clear", methods=["POST"])
@http_errors
def clear_jobs() -> dict[str, Any]:
    request = parse(ClearRequest, _body())
    return Cleared(deleted=jobs.clear_jobs(request, services=get_services())).api()


def _title(resource_type: str, resource_id: str) -> titles.TitleRef:
    return parse(titles.TitleRef, {"resourceType": resource_type, "resourceId": resource_id})


@app.route(f"{TITLE}/uploads", methods=["GET"])
@http_errors
def title_uploads(resource_type: str, resource_id: str) -> dict[str, Any]:
    title = titles.title_uploads(_title(resource_type, resource_id), store=get_services().store)
    return TitleUploads.model_validate(title).api()


@app.route(f"{TITLE}/retry-failed", methods=["POST"])
@http_errors
def retry_title_failed(resource_type: str, resource_id: str) -> dict[str, Any]:
    title = _title(resource_type, resource_id)
    request = parse(RetryRequest, _body())
    return BulkResult.model_validate(titles.retry_failed(title, request, get_services(), error_code)).api()
