"""docs/openapi.json and docs/websocket-messages.json are what the models generate, and cover every route."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chalicelib.openapi import GENERATED, OPERATIONS, build_document, render

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_the_committed_file_is_what_the_models_generate(name: str) -> None:
    committed = (DOCS / name).read_text(encoding="utf-8")
    assert committed == render(GENERATED[name]()), f"docs/{name} is stale: run `make openapi` and commit it"


def test_every_route_of_the_app_is_documented_once() -> None:
    import app

    registered = {
        (method.lower(), re.sub(r"_([a-z])", lambda m: m.group(1).upper(), path))  # {job_id} is {jobId}
        for path, entries in app.app.routes.items()
        for method in entries
    }
    documented = [(op.method, op.path) for op in OPERATIONS]
    assert len(documented) == len(set(documented))
    assert registered == set(documented)


def test_every_error_answer_has_the_code_and_message_body() -> None:
    document = build_document()
    error_schema = document["components"]["schemas"]["ErrorBody"]
    assert error_schema["required"] == ["Code", "Message"]
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            for status, response in operation["responses"].items():
                if status.startswith("4"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)


def test_only_health_openapi_and_the_dashboard_are_public() -> None:
    document = build_document()
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": document["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    assert document["security"] == [{"bearerAuth": []}]
    public = {(m, p) for p, ms in document["paths"].items() for m, op in ms.items() if op.get("security") == []}
    assert public == {
        ("get", "/v1/health"),
        ("get", "/v1/openapi.json"),
        ("get", "/dashboard"),
        ("get", "/dashboard/{asset}"),
    }
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if (method, path) not in public:
                assert {"401", "403"} <= set(operation["responses"]), (method, path)


def test_the_job_schema_hides_what_the_api_never_shows() -> None:
    job = build_document()["components"]["schemas"]["UploadJob"]["properties"]
    assert "writtenKeys" not in job and "multipartUploads" not in job
    assert {"jobId", "status", "progress", "history", "canCancel", "createdAt"} <= set(job)


def test_the_document_is_json_without_secrets() -> None:
    text = render(build_document())
    json.loads(text)
    assert "local-dev-secret" not in text


def test_the_document_is_valid_openapi_3_1() -> None:
    from openapi_spec_validator import OpenAPIV31SpecValidator, validate  # moto[server] brings it

    validate(build_document(), cls=OpenAPIV31SpecValidator)
