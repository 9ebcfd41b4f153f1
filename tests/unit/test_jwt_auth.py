"""Token rules shared by HTTP and WebSocket (SPEC 4, and issue 12's aud/iss, lifetime and refusal texts)."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from chalicelib.auth import (
    REFUSALS,
    WEBSOCKET_TOKEN_TTL_SECONDS,
    TokenPolicy,
    authenticate_admin,
    authenticate_http_admin,
    bearer_token,
    issue_token,
    verify_token,
    websocket_token,
)
from chalicelib.config import DEFAULT_JWT_MAX_LIFETIME_SECONDS, Settings
from chalicelib.errors import Forbidden, Unauthorized

SECRET = "a-test-secret-that-is-32-bytes-long"
POLICY = TokenPolicy(SECRET)
OUR_SENTENCES = {sentence for _, sentence in REFUSALS} | {"the token is not valid"}


def encode(claims: dict[str, Any], secret: str = SECRET, **headers: Any) -> str:
    return jwt.encode(claims, secret, algorithm="HS256", headers=headers or None)


def soon(seconds: int = 60) -> int:
    return int(time.time()) + seconds


def test_issued_token_is_an_admin() -> None:
    principal = authenticate_admin(issue_token(SECRET, subject="ana"), POLICY)
    assert principal.subject == "ana"
    assert principal.is_admin


def test_token_without_exp_is_refused() -> None:
    token = encode({"sub": "x", "role": "admin"})
    with pytest.raises(Unauthorized, match="exp"):
        verify_token(token, POLICY)


def test_expired_token_is_refused() -> None:
    token = encode({"role": "admin", "exp": int(time.time()) - 1})
    with pytest.raises(Unauthorized, match="expired"):
        verify_token(token, POLICY)


def test_other_algorithms_are_refused() -> None:
    secret = SECRET * 2  # HS512 wants 64 bytes; the point is the algorithm, not the key
    token = jwt.encode({"role": "admin", "exp": soon()}, secret, algorithm="HS512")
    with pytest.raises(Unauthorized):
        verify_token(token, TokenPolicy(secret))


def test_non_admin_is_forbidden_not_unauthorized() -> None:
    with pytest.raises(Forbidden):
        authenticate_admin(issue_token(SECRET, roles=("viewer",)), POLICY)


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Token abc"])
def test_missing_bearer_is_unauthorized(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        bearer_token(header)


# aud and iss --------------------------------------------------------------------------------


AUDIENCE_POLICY = TokenPolicy(SECRET, audience="studio-uploads", issuer="https://id.example.com/")


@pytest.mark.parametrize(
    "claims",
    [
        {},
        {"aud": "another-service", "iss": "https://id.example.com/"},
        {"iss": "https://id.example.com/"},
        {"aud": "studio-uploads"},
        {"aud": "studio-uploads", "iss": "https://evil.example.com/"},
    ],
    ids=["neither", "wrong-aud", "no-aud", "no-iss", "wrong-iss"],
)
def test_configured_audience_and_issuer_must_both_match(claims: dict[str, Any]) -> None:
    with pytest.raises(Unauthorized):
        verify_token(encode({"role": "admin", "exp": soon(), **claims}), AUDIENCE_POLICY)


def test_matching_audience_and_issuer_are_accepted() -> None:
    claims = {"role": "admin", "exp": soon(), "aud": ["other", "studio-uploads"], "iss": "https://id.example.com/"}
    assert verify_token(encode(claims), AUDIENCE_POLICY).is_admin


def test_without_a_configured_audience_a_token_naming_one_is_accepted() -> None:
    assert verify_token(encode({"role": "admin", "exp": soon(), "aud": "anything"}), POLICY).is_admin


def test_the_policy_issues_tokens_it_accepts() -> None:
    assert authenticate_admin(AUDIENCE_POLICY.issue(), AUDIENCE_POLICY).is_admin


def test_settings_carry_audience_issuer_and_lifetime() -> None:
    policy = TokenPolicy.from_settings(
        Settings(auth_jwt_secret=SECRET, auth_jwt_audience="a", auth_jwt_issuer="i", auth_jwt_max_lifetime_seconds=600)
    )
    assert policy == TokenPolicy(SECRET, audience="a", issuer="i", max_lifetime_seconds=600)


# Lifetime -----------------------------------------------------------------------------------


def test_a_token_living_longer_than_the_maximum_is_refused() -> None:
    now = int(time.time())
    token = encode({"role": "admin", "iat": now - 10, "exp": now - 10 + DEFAULT_JWT_MAX_LIFETIME_SECONDS + 1})
    with pytest.raises(Unauthorized, match="longer than"):
        verify_token(token, POLICY)


def test_a_token_without_iat_may_not_expire_further_ahead_than_the_maximum() -> None:
    token = encode({"role": "admin", "exp": soon(DEFAULT_JWT_MAX_LIFETIME_SECONDS + 60)})
    with pytest.raises(Unauthorized, match="longer than"):
        verify_token(token, POLICY)
    assert verify_token(encode({"role": "admin", "exp": soon(DEFAULT_JWT_MAX_LIFETIME_SECONDS - 60)}), POLICY)


def test_a_token_within_the_maximum_is_accepted() -> None:
    now = int(time.time())
    token = encode({"role": "admin", "iat": now, "exp": now + DEFAULT_JWT_MAX_LIFETIME_SECONDS})
    assert verify_token(token, POLICY).is_admin


def test_an_iat_in_the_future_cannot_stretch_the_lifetime() -> None:
    far = soon(10 * 365 * 86400)
    with pytest.raises(Unauthorized):
        verify_token(encode({"role": "admin", "iat": far - 60, "exp": far}), POLICY)


def test_the_policy_never_issues_a_token_it_would_refuse() -> None:
    short = TokenPolicy(SECRET, max_lifetime_seconds=600)
    principal = authenticate_admin(short.issue(ttl=12 * 3600), short)
    assert principal.expires_at - int(principal.claims["iat"]) == 600


# Refusal texts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "not.a.token",
        "a" * 40,
        encode({"role": "admin", "exp": soon()}, "another-secret-of-at-least-32-bytes!!"),
        encode({"role": "admin", "exp": soon(), "aud": "<script>alert(1)</script>"}),
        encode({"role": "admin", "exp": soon(), "nbf": soon(3600)}),
        encode({"role": "admin", "exp": "tomorrow"}),
        encode({"role": "admin", "exp": soon(), "iat": "yesterday"}),
        encode({"role": "admin", "exp": soon()}, kid="../../etc/passwd"),
    ],
    ids=["three-parts", "garbage", "other-key", "foreign-aud", "nbf", "exp-not-a-number", "iat-not-a-number", "kid"],
)
def test_refusals_are_our_own_sentences_never_the_librarys_text(token: str) -> None:
    policy = TokenPolicy(SECRET, audience="studio-uploads")
    with pytest.raises(Unauthorized) as refused:
        verify_token(token, policy)
    assert str(refused.value) in OUR_SENTENCES


# WebSocket tokens ---------------------------------------------------------------------------


def test_a_websocket_token_is_short_lived_and_opens_a_websocket() -> None:
    caller = authenticate_admin(issue_token(SECRET, subject="ana"), POLICY)
    answer = websocket_token(caller, POLICY).api()
    principal = authenticate_admin(answer["token"], POLICY)
    assert principal.subject == "ana"
    assert answer["expiresIn"] == WEBSOCKET_TOKEN_TTL_SECONDS <= 10 * 60
    assert principal.expires_at - int(principal.claims["iat"]) == WEBSOCKET_TOKEN_TTL_SECONDS
    assert answer["expiresAt"].endswith("Z")


def test_a_websocket_token_never_outlives_the_callers_token() -> None:
    caller = authenticate_admin(issue_token(SECRET, ttl=30), POLICY)
    principal = authenticate_admin(websocket_token(caller, POLICY).token, POLICY)
    assert principal.expires_at <= caller.expires_at


def test_a_websocket_token_is_refused_as_an_http_bearer() -> None:
    caller = authenticate_admin(issue_token(SECRET), POLICY)
    token = websocket_token(caller, POLICY).token
    with pytest.raises(Unauthorized, match="WebSocket"):
        authenticate_http_admin(f"Bearer {token}", POLICY)
    assert authenticate_http_admin(f"Bearer {issue_token(SECRET)}", POLICY).is_admin
