"""The OpenAPI 3.1 document of the HTTP API, generated from the models the routes parse and answer
with (chalicelib/jobs/model.py, chalicelib/responses.py). Never written by hand: `make openapi`
writes docs/openapi.json, `GET /v1/openapi.json` serves the same document built on first request,
and tests/unit/test_openapi_document.py fails when the committed file is not what this module builds.

OPERATIONS lists every route once; the test checks it against the routes the app registers.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from chalicelib.auth import WebSocketToken
from chalicelib.http import MAX_BODY_BYTES
from chalicelib.jobs.analytics import AnalyticsRequest
from chalicelib.jobs.model import (
    JOB_ID,
    OBJECT_ID,
    CleanupRequest,
    ClearRequest,
    CreateJobRequest,
    ListFilters,
    ResourceType,
    RetryRequest,
    UploadJob,
)
from chalicelib.responses import (
    JOB_SCHEMA_NAME,
    AnalyticsReport,
    BulkResult,
    CleanupResult,
    Cleared,
    Deleted,
    ErrorBody,
    FixStuckResult,
    Health,
    JobList,
    JobStats,
    SyncResult,
    TitleUploads,
)
from chalicelib.usecases.bulk import BULK_LIMIT, BulkRequest
from chalicelib.usecases.titles import TITLE_JOB_LIMIT

TITLE = "studio-uploads"
VERSION = "1"
BASE = "/v1/studio/upload-jobs"
REF = "#/components/schemas/{model}"
SECURITY_SCHEME = "bearerAuth"

ERRORS = {
    400: "Malformed or invalid input: the message names each bad field",
    401: "No token, or one that is malformed, badly signed, expired, not yet valid or without exp",
    403: "A valid token without the admin role",
    404: "No such job",
    409: "Not allowed in the job's current state",
    413: f"The body is larger than {MAX_BODY_BYTES} bytes",
    415: "A Content-Type other than application/json",
}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    responses: Mapping[int, tuple[str, type[BaseModel] | None]]
    errors: tuple[int, ...] = ()
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    public: bool = False
    tag: str = "jobs"
    media_type: str = "application/json"
    extra_parameters: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def all_errors(self) -> tuple[int, ...]:
        """Every 4xx the route can answer: the auth ones unless public, 400/413/415 with a body."""
        codes = set(self.errors)
        if not self.public:
            codes |= {401, 403}
        if self.body is not None:
            codes |= {400, 413, 415}
        if self.query is not None:
            codes.add(400)
        return tuple(sorted(codes))


def _job(description: str) -> tuple[str, type[BaseModel]]:
    return description, UploadJob


JOB_ID_PARAMETER = {
    "name": "jobId",
    "in": "path",
    "required": True,
    "description": "The job's id (any other string answers 404)",
    "schema": {"type": "string", "pattern": JOB_ID.pattern},
}

TITLE_PATH = "/v1/studio/resources/{resourceType}/{resourceId}"
TITLE_PARAMETERS = (
    {
        "name": "resourceType",
        "in": "path",
        "required": True,
        "description": "The title's kind, as the jobs' resourceType",
        "schema": {"type": "string", "enum": [t.value for t in ResourceType]},
    },
    {
        "name": "resourceId",
        "in": "path",
        "required": True,
        "description": "The title's id, as the jobs' resourceId",
        "schema": {"type": "string", "pattern": OBJECT_ID.pattern},
    },
)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "get", "/v1/health", "health", "Liveness, no token needed", {200: ("Alive", Health)}, public=True, tag="meta"
    ),
    Operation(
        "get",
        "/v1/openapi.json",
        "openapi",
        "This document, no token needed",
        {200: ("The OpenAPI 3.1 document", None)},
        public=True,
        tag="meta",
    ),
    Operation("get", BASE, "listJobs", "List jobs, newest first", {200: ("One page", JobList)}, query=ListFilters),
    Operation(
        "post",
        BASE,
        "createJob",
        "Create a job and enqueue it; a repeated jobId returns the existing job",
        {201: _job("Created (waiting)"), 200: _job("A job with this jobId already existed: that job")},
        body=CreateJobRequest,
    ),
    Operation("get", f"{BASE}/stats", "jobStats", "Counts, metrics and queue depths", {200: ("Statistics", JobStats)}),
    Operation(
        "get",
        f"{BASE}/analytics",
        "jobAnalytics",
        "Jobs created and ended per hour or day, throughput, duration percentiles, failure reasons, backlog",
        {200: ("The report (docs/operations.md describes its fields)", AnalyticsReport)},
        query=AnalyticsRequest,
        tag="operations",
    ),
    Operation(
        "get",
        "/v1/studio/metrics",
        "metrics",
        "Prometheus text exposition: every metric named studio_uploads_*",
        {200: ("The metrics (text/plain; version=0.0.4)", None)},
        tag="operations",
        media_type="text/plain",
    ),
    Operation(
        "post",
        "/v1/studio/ws-tokens",
        "createWebSocketToken",
        "A WebSocket-only token of a few minutes, for the WebSocket URL's ?token=",
        {201: ("The token", WebSocketToken)},
        tag="auth",
    ),
    Operation("get", f"{BASE}/{{jobId}}", "getJob", "One job", {200: _job("The job")}, errors=(404,)),
    Operation(
        "delete",
        f"{BASE}/{{jobId}}",
        "deleteJob",
        "Delete a finished job (completed, failed or cancelled)",
        {200: ("Deleted", Deleted)},
        errors=(404, 409),
    ),
    Operation(
        "post",
        f"{BASE}/{{jobId}}/retry",
        "retryJob",
        "Retry a failed or cancelled job (body optional)",
        {200: _job("The job, waiting again")},
        errors=(404, 409),
        body=RetryRequest,
    ),
    Operation(
        "post",
        f"{BASE}/{{jobId}}/cancel",
        "cancelJob",
        "Cancel: a waiting job at once, an active one by request",
        {200: _job("The job, cancelled or with cancelRequested")},
        errors=(404, 409),
    ),
    Operation(
        "post",
        f"{BASE}/clear",
        "clearJobs",
        "Delete finished jobs of one status (or all), optionally only older ones",
        {200: ("How many were deleted", Cleared)},
        body=ClearRequest,
    ),
    Operation(
        "post",
        f"{BASE}/bulk",
        "bulkAction",
        f"Retry, cancel, delete or clean up many jobs (by id or by filter, at most {BULK_LIMIT}), each as its "
        "own route would; a filter matching more is refused whole (409)",
        {200: ("What happened to each job, counted", BulkResult)},
        errors=(409,),
        body=BulkRequest,
    ),
    Operation(
        "post",
        f"{BASE}/{{jobId}}/cleanup",
        "cleanupJob",
        "Undo what a failed or cancelled job wrote (and its sources with removeSource); idempotent",
        {200: ("What was removed", CleanupResult)},
        errors=(404, 409),
        body=CleanupRequest,
        tag="maintenance",
    ),
    Operation(
        "post",
        f"{BASE}/{{jobId}}/sync",
        "syncJob",
        "Bring one job in line with the queue and the workers",
        {200: ("What was done", SyncResult)},
        errors=(404,),
        tag="maintenance",
    ),
    Operation(
        "post",
        f"{BASE}/fix-stuck",
        "fixStuck",
        "sync over every job that needs it",
        {200: ("Counts", FixStuckResult)},
        tag="maintenance",
    ),
    Operation(
        "get",
        f"{TITLE_PATH}/uploads",
        "titleUploads",
        f"Every job of one title (at most {TITLE_JOB_LIMIT}), grouped: renditions, subtitles, master, videos; "
        "what is published, missing or failed",
        {200: ("The title (docs/http-api.md describes its fields)", TitleUploads)},
        errors=(400, 404),
        extra_parameters=TITLE_PARAMETERS,
    ),
    Operation(
        "post",
        f"{TITLE_PATH}/retry-failed",
        "retryTitleFailed",
        "Retry every failed job of one title, each as the single-job retry does (body optional)",
        {200: ("What was retried and skipped (a bulk retry of the failed jobs)", BulkResult)},
        errors=(404, 409),
        body=RetryRequest,
        extra_parameters=TITLE_PARAMETERS,
    ),
    Operation(
        "get",
        "/dashboard",
        "dashboard",
        "The admin page (static HTML; it asks for a token)",
        {200: ("The page", None)},
        public=True,
        tag="dashboard",
        media_type="text/html",
    ),
    Operation(
        "get",
        "/dashboard/{asset}",
        "dashboardAsset",
        "A script or stylesheet of the admin page",
        {200: ("The file (text/javascript or text/css)", None)},
        errors=(404,),
        public=True,
        tag="dashboard",
        media_type="text/javascript",
        extra_parameters=(
            {"name": "asset", "in": "path", "required": True, "schema": {"type": "string"}},
            {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}},
        ),
    ),
)

# Models and the mode their schema is generated in: requests as validated, answers as serialized.
MODELS: tuple[tuple[type[BaseModel], JsonSchemaMode], ...] = (
    (CreateJobRequest, "validation"),
    (RetryRequest, "validation"),
    (ClearRequest, "validation"),
    (CleanupRequest, "validation"),
    (BulkRequest, "validation"),
    (ListFilters, "validation"),
    (AnalyticsRequest, "validation"),
    (WebSocketToken, "serialization"),
    (AnalyticsReport, "serialization"),
    (UploadJob, "serialization"),
    (JobList, "serialization"),
    (JobStats, "serialization"),
    (Deleted, "serialization"),
    (Cleared, "serialization"),
    (CleanupResult, "serialization"),
    (SyncResult, "serialization"),
    (FixStuckResult, "serialization"),
    (TitleUploads, "serialization"),
    (BulkResult, "serialization"),
    (Health, "serialization"),
    (ErrorBody, "serialization"),
)


def _untitled(schema: Any) -> Any:
    """Pydantic titles every property after its Python name ("Jobid"): noise for a reader."""
    if isinstance(schema, dict):
        props = schema.get("properties")
        if isinstance(props, dict):
            for prop in props.values():
                if isinstance(prop, dict):
                    prop.pop("title", None)
        for value in schema.values():
            _untitled(value)
    elif isinstance(schema, list):
        for value in schema:
            _untitled(value)
    return schema


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a string, never null: `X | None` becomes X."""
    branches = [b for b in schema.get("anyOf", []) if b != {"type": "null"}]
    if len(branches) == 1 and len(schema["anyOf"]) == 2:
        rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
        return {**branches[0], **rest}
    return schema


def component_schemas() -> tuple[dict[tuple[type[BaseModel], JsonSchemaMode], str], dict[str, Any]]:
    """Every model's JSON Schema under components/schemas, and each model's name there."""
    keys, schema = models_json_schema(MODELS, ref_template=REF)
    names: dict[tuple[type[BaseModel], JsonSchemaMode], str] = {
        (model, mode): str(value["$ref"]).rsplit("/", 1)[-1]
        for (model, mode), value in keys.items()
        if isinstance(model, type) and issubclass(model, BaseModel)
    }
    schemas: dict[str, Any] = _untitled(schema.get("$defs", {}))
    job = schemas.pop(names[(UploadJob, "serialization")])
    for internal in UploadJob.API_EXCLUDED:
        alias = UploadJob.model_fields[internal].serialization_alias or internal
        job["properties"].pop(alias, None)
        if alias in job.get("required", []):
            job["required"].remove(alias)
    job["description"] = "A job as the API and the WebSocket show it"
    schemas[JOB_SCHEMA_NAME] = job
    names[(UploadJob, "serialization")] = JOB_SCHEMA_NAME
    return names, schemas


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _query_parameters(model: type[BaseModel], schemas: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    """One `in: query` parameter per field of the query model, by its alias."""
    model_schema = schemas[name]
    required = set(model_schema.get("required", []))
    parameters = []
    for alias, prop in model_schema["properties"].items():
        prop = copy.deepcopy(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        parameter: dict[str, Any] = {
            "name": alias,
            "in": "query",
            "required": alias in required,
            "schema": _not_null(prop),
        }
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _operation(op: Operation, names: Mapping[tuple[type[BaseModel], JsonSchemaMode], str], schemas: Any) -> Any:
    document: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary, "tags": [op.tag]}
    parameters: list[dict[str, Any]] = []
    if "{jobId}" in op.path:
        parameters.append(copy.deepcopy(JOB_ID_PARAMETER))
    if op.query is not None:
        parameters += _query_parameters(op.query, schemas, names[(op.query, "validation")])
    parameters += [copy.deepcopy(p) for p in op.extra_parameters]
    if parameters:
        document["parameters"] = parameters
    if op.body is not None:
        document["requestBody"] = {
            "required": bool(schemas[names[(op.body, "validation")]].get("required")),
            "content": {"application/json": {"schema": _ref(names[(op.body, "validation")])}},
        }
    responses: dict[str, Any] = {}
    for status, (description, model) in sorted(op.responses.items()):
        if model is None:
            schema: dict[str, Any] = {"type": "object"} if op.media_type == "application/json" else {"type": "string"}
        else:
            schema = _ref(names[(model, "serialization")])
        responses[str(status)] = {"description": description, "content": {op.media_type: {"schema": schema}}}
    error = {"application/json": {"schema": _ref(names[(ErrorBody, "serialization")])}}
    for status in op.all_errors:
        responses[str(status)] = {"description": ERRORS[status], "content": error}
    document["responses"] = responses
    if op.public:
        document["security"] = []
    return document


def build_document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document, the same on every call."""
    names, schemas = component_schemas()
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, names, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": (
                "Uploads a video platform's finished media to DigitalOcean Spaces and lets admins watch and "
                "steer every upload. Every route but the public ones needs `Authorization: Bearer <JWT>` "
                '(HS256, exp required, role admin). Errors are `{"Code", "Message"}`. '
                "The contract in prose is docs/README.md of the repository."
            ),
        },
        "servers": [{"url": "/", "description": "The API's base URL (behind API Gateway: with the stage)"}],
        "security": [{SECURITY_SCHEME: []}],
        "tags": [{"name": name} for name in ("jobs", "maintenance", "meta", "dashboard")],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "HS256 with AUTH_JWT_SECRET; exp required; admin when role is admin or roles has it",
                }
            },
        },
    }


def render(document: Mapping[str, Any]) -> str:
    """The committed form: sorted keys would reorder the paths, so insertion order, 2-space indent."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


@functools.lru_cache(maxsize=1)
def served_document() -> str:
    """What `GET /v1/openapi.json` answers, built once per container on first request."""
    return render(build_document())


# --- The WebSocket messages (SPEC 8) as JSON Schema 2020-12 -------------------------------------------


def websocket_document() -> dict[str, Any]:
    """Every message of the WebSocket API: what a client sends, what the server answers and pushes."""
    from chalicelib.realtime.events import EVENT_MODELS
    from chalicelib.realtime.messages import ClientMessage, ErrorReply, PongReply, SubscribedReply, WhoAmIReply

    ws_ref = "#/$defs/{model}"
    client: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ClientMessage, "validation")]
    replies: list[type[BaseModel]] = [SubscribedReply, PongReply, WhoAmIReply, ErrorReply, *EVENT_MODELS.values()]
    server: list[tuple[type[BaseModel], JsonSchemaMode]] = [(model, "serialization") for model in replies]
    keys, schema = models_json_schema([*client, *server], ref_template=ws_ref)
    defs = _untitled(schema.get("$defs", {}))
    client_ref = keys[client[0]]
    defs["ServerMessage"] = {
        "description": "Everything the server sends: replies to the client's messages and job events",
        "oneOf": [keys[key] for key in server],
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{TITLE} WebSocket messages",
        "description": (
            "Connect with ?token=<JWT> (the HTTP API's rules). A client sends ClientMessage objects; the server "
            "answers each and pushes job events, all ServerMessage objects. Generated from chalicelib/realtime."
        ),
        "anyOf": [client_ref, {"$ref": ws_ref.format(model="ServerMessage")}],
        "$defs": dict(sorted(defs.items())),
    }


GENERATED = {"openapi.json": build_document, "websocket-messages.json": websocket_document}


def main(argv: list[str] | None = None) -> int:
    """`make openapi`: write every generated contract file into docs/ (or the folder given)."""
    import sys
    from pathlib import Path

    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else Path(__file__).resolve().parent.parent / "docs"
    for name, build in GENERATED.items():
        (folder / name).write_text(render(build()), encoding="utf-8")
        print(f"wrote {folder / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
