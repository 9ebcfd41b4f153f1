"""Token rules shared by HTTP and WebSocket (SPEC 4)."""

from __future__ import annotations

import time

import jwt
import pytest

from chalicelib.auth import authenticate_admin, bearer_token, issue_token, verify_token
from chalicelib.errors import Forbidden, Unauthorized

SECRET = "a-test-secret-that-is-32-bytes-long"


def test_issued_token_is_an_admin() -> None:
    principal = authenticate_admin(issue_token(SECRET, subject="ana"), SECRET)
    assert principal.subject == "ana"
    assert principal.is_admin


def test_token_without_exp_is_refused() -> None:
    token = jwt.encode({"sub": "x", "role": "admin"}, SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized, match="exp"):
        verify_token(token, SECRET)


def test_expired_token_is_refused() -> None:
    token = jwt.encode({"role": "admin", "exp": int(time.time()) - 1}, SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized, match="expired"):
        verify_token(token, SECRET)


def test_other_algorithms_are_refused() -> None:
    secret = SECRET * 2  # HS512 wants 64 bytes; the point is the algorithm, not the key
    token = jwt.encode({"role": "admin", "exp": int(time.time()) + 60}, secret, algorithm="HS512")
    with pytest.raises(Unauthorized):
        verify_token(token, secret)


def test_non_admin_is_forbidden_not_unauthorized() -> None:
    with pytest.raises(Forbidden):
        authenticate_admin(issue_token(SECRET, roles=("viewer",)), SECRET)


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Token abc"])
def test_missing_bearer_is_unauthorized(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        bearer_token(header)
