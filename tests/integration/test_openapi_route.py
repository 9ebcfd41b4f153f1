"""`GET /v1/openapi.json`: the committed document, to anyone, without a token."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_the_served_document_is_the_committed_one_and_needs_no_token(api: Any) -> None:
    response = api.http.get("/v1/openapi.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.body) == json.loads(COMMITTED.read_text(encoding="utf-8"))


def test_a_bad_token_does_not_hide_the_document(api: Any) -> None:
    response = api.http.get("/v1/openapi.json", headers={"Authorization": "Bearer garbage"})
    assert response.status_code == 200
    assert json.loads(response.body)["openapi"] == "3.1.0"
