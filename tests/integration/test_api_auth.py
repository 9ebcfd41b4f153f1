"""SPEC 4's auth rules on every route but health and the dashboard."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from chalicelib.auth import issue_token

ROUTES = [
    ("GET", "/v1/studio/upload-jobs"),
    ("GET", "/v1/studio/upload-jobs/stats"),
    ("GET", "/v1/studio/upload-jobs/some-job"),
    ("POST", "/v1/studio/upload-jobs"),
    ("POST", "/v1/studio/upload-jobs/some-job/retry"),
    ("POST", "/v1/studio/upload-jobs/some-job/cancel"),
    ("DELETE", "/v1/studio/upload-jobs/some-job"),
    ("POST", "/v1/studio/upload-jobs/clear"),
    ("POST", "/v1/studio/ws-tokens"),
    ("GET", "/v1/studio/resources/film/64b7f0c2a1b2c3d4e5f60718/uploads"),
    ("POST", "/v1/studio/resources/film/64b7f0c2a1b2c3d4e5f60718/retry-failed"),
]


def call(api: Any, method: str, path: str, headers: dict[str, str]) -> Any:
    return api.http.request(method, path, headers=headers, body=b"{}")


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_no_token_is_401(api: Any, method: str, path: str) -> None:
    response = call(api, method, path, {})
    assert response.status_code == 401
    assert response.json_body["Code"] == "UnauthorizedError"


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_non_admin_is_403(api: Any, settings: Any, method: str, path: str) -> None:
    token = issue_token(settings.auth_jwt_secret, roles=("editor",))
    response = call(api, method, path, {"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert response.json_body["Code"] == "ForbiddenError"


def encode(claims: dict[str, Any], secret: str) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.mark.parametrize(
    "make_token",
    [
        lambda secret: encode({"sub": "a", "role": "admin", "exp": int(time.time()) - 10}, secret),
        lambda secret: encode({"sub": "a", "role": "admin"}, secret),
        lambda secret: encode(
            {"sub": "a", "role": "admin", "exp": int(time.time()) + 60}, "another-secret-32-bytes-long!!!!"
        ),
        lambda secret: "not.a.token",
    ],
    ids=["expired", "no-exp", "wrong-secret", "garbage"],
)
def test_bad_tokens_are_401(api: Any, settings: Any, make_token: Any) -> None:
    headers = {"Authorization": f"Bearer {make_token(settings.auth_jwt_secret)}"}
    assert api.http.get("/v1/studio/upload-jobs", headers=headers).status_code == 401


def test_role_claim_or_roles_list_make_an_admin(api: Any, settings: Any) -> None:
    single = encode({"sub": "a", "role": "admin", "exp": int(time.time()) + 60}, settings.auth_jwt_secret)
    listed = encode({"sub": "b", "roles": ["viewer", "admin"], "exp": int(time.time()) + 60}, settings.auth_jwt_secret)
    for token in (single, listed):
        response = api.http.get("/v1/studio/upload-jobs", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200


def test_wrong_scheme_is_401(api: Any, admin_token: str) -> None:
    response = api.http.get("/v1/studio/upload-jobs", headers={"Authorization": f"Basic {admin_token}"})
    assert response.status_code == 401


def test_a_token_living_longer_than_the_maximum_is_401(api: Any, settings: Any) -> None:
    now = int(time.time())
    claims = {"sub": "a", "role": "admin", "iat": now, "exp": now + settings.auth_jwt_max_lifetime_seconds + 60}
    headers = {"Authorization": f"Bearer {encode(claims, settings.auth_jwt_secret)}"}
    response = api.http.get("/v1/studio/upload-jobs", headers=headers)
    assert response.status_code == 401
    assert "longer than" in response.json_body["Message"]


def test_a_refusal_does_not_echo_the_librarys_text(api: Any) -> None:
    headers = {"Authorization": "Bearer not.a.token"}
    response = api.http.get("/v1/studio/upload-jobs", headers=headers)
    assert response.status_code == 401
    assert response.json_body["Message"] == "the token is not valid"


def test_configured_audience_and_issuer_are_required_over_http(api: Any, services: Any, settings: Any) -> None:
    services.settings = settings.model_copy(update={"auth_jwt_audience": "studio", "auth_jwt_issuer": "https://id/"})
    claims = {"sub": "a", "role": "admin", "exp": int(time.time()) + 60}
    plain = encode(claims, settings.auth_jwt_secret)
    matching = encode({**claims, "aud": "studio", "iss": "https://id/"}, settings.auth_jwt_secret)
    assert api.http.get("/v1/studio/upload-jobs", headers={"Authorization": f"Bearer {plain}"}).status_code == 401
    assert api.http.get("/v1/studio/upload-jobs", headers={"Authorization": f"Bearer {matching}"}).status_code == 200
