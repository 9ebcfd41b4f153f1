"""JWT verification (SPEC 4): HS256 with AUTH_JWT_SECRET, `exp` required, admin by role claims.

On top of SPEC 4 (issue 12): `aud` and `iss` are checked when AUTH_JWT_AUDIENCE / AUTH_JWT_ISSUER are
set; a token may live at most AUTH_JWT_MAX_LIFETIME_SECONDS (`exp - iat`, or `exp - now` without
`iat`); refusals say what is wrong in our own words, never the library's text (which can quote claims).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
from pydantic import BaseModel, ConfigDict, Field

from chalicelib.config import DEFAULT_JWT_MAX_LIFETIME_SECONDS, Settings
from chalicelib.errors import Forbidden, Unauthorized

ALGORITHMS = ["HS256"]
ADMIN = "admin"
DEFAULT_TTL_SECONDS = 12 * 3600
WEBSOCKET_TOKEN_TTL_SECONDS = 5 * 60
# The `use` claim of a WebSocket token: it opens a WebSocket and nothing else (it travels in a URL).
USE_CLAIM = "use"
WEBSOCKET_USE = "websocket"

# Library exception -> the sentence the client gets. Order matters: subclasses before their bases.
REFUSALS: tuple[tuple[type[jwt.InvalidTokenError], str], ...] = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.MissingRequiredClaimError, "the token lacks a required claim (exp, or aud/iss where configured)"),
    (jwt.ImmatureSignatureError, "the token is not valid yet (nbf or iat in the future)"),
    (jwt.InvalidAudienceError, "the token is not meant for this service (aud)"),
    (jwt.InvalidIssuerError, "the token was not issued by the expected issuer (iss)"),
    (jwt.InvalidAlgorithmError, "the token is not signed with HS256"),
    (jwt.InvalidSignatureError, "the token's signature does not match"),
)
NOT_VALID = "the token is not valid"


@dataclass(frozen=True)
class Principal:
    subject: str
    is_admin: bool
    claims: dict[str, Any] = field(default_factory=dict)

    @property
    def expires_at(self) -> int:
        """The token's `exp` (epoch seconds); every accepted token has one."""
        return int(self.claims["exp"])


@dataclass(frozen=True)
class TokenPolicy:
    """What a token must satisfy: the HS256 secret, optional audience and issuer, a maximum lifetime."""

    secret: str
    audience: str = ""
    issuer: str = ""
    max_lifetime_seconds: int = DEFAULT_JWT_MAX_LIFETIME_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenPolicy:
        return cls(
            secret=settings.auth_jwt_secret,
            audience=settings.auth_jwt_audience,
            issuer=settings.auth_jwt_issuer,
            max_lifetime_seconds=settings.auth_jwt_max_lifetime_seconds,
        )

    def issue(
        self,
        *,
        subject: str = "admin",
        roles: tuple[str, ...] = (ADMIN,),
        ttl: int = DEFAULT_TTL_SECONDS,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """A token this policy accepts (for `make token`, the local runtime and the ws-tokens route)."""
        claims = dict(extra or {})
        if self.audience:
            claims["aud"] = self.audience
        if self.issuer:
            claims["iss"] = self.issuer
        return issue_token(self.secret, subject=subject, roles=roles, ttl=min(ttl, self.max_lifetime_seconds), **claims)


def has_admin_role(claims: dict[str, Any]) -> bool:
    roles = claims.get("roles")
    return claims.get("role") == ADMIN or (isinstance(roles, list) and ADMIN in roles)


def verify_token(token: str, policy: TokenPolicy, *, now: float | None = None) -> Principal:
    """Decode and check a token; Unauthorized for anything but a valid, unexpired, signed one within the rules."""
    required = ["exp"] + (["aud"] if policy.audience else []) + (["iss"] if policy.issuer else [])
    try:
        claims = jwt.decode(
            token,
            policy.secret,
            algorithms=ALGORITHMS,
            audience=policy.audience or None,
            issuer=policy.issuer or None,
            # Without a configured audience, a token's `aud` is not ours to judge.
            options={"require": required, "verify_aud": bool(policy.audience)},
        )
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(_refusal(exc)) from exc
    _check_lifetime(claims, policy.max_lifetime_seconds, time.time() if now is None else now)
    return Principal(subject=str(claims.get("sub", "")), is_admin=has_admin_role(claims), claims=claims)


def _refusal(exc: jwt.InvalidTokenError) -> str:
    return next((sentence for kind, sentence in REFUSALS if isinstance(exc, kind)), NOT_VALID)


def _check_lifetime(claims: dict[str, Any], max_lifetime: int, now: float) -> None:
    """A stolen long-lived token is a long-lived key: refuse any that lives longer than the maximum."""
    exp = int(claims["exp"])  # PyJWT has checked it is an integer
    start = int(claims["iat"]) if "iat" in claims else now  # PyJWT has checked iat too
    if exp - start > max_lifetime:
        raise Unauthorized(f"the token lives longer than the allowed {max_lifetime} seconds")


def bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <token>")
    return token.strip()


def authenticate_admin(token: str, policy: TokenPolicy) -> Principal:
    """The one rule for WebSocket connects: a valid token (401 otherwise) of an admin (403 otherwise)."""
    principal = verify_token(token, policy)
    if not principal.is_admin:
        raise Forbidden("this token does not carry the admin role")
    return principal


def authenticate_http_admin(authorization: str | None, policy: TokenPolicy) -> Principal:
    """The HTTP rule: an admin's bearer token that is not a WebSocket token (those travel in URLs and logs)."""
    principal = authenticate_admin(bearer_token(authorization), policy)
    if principal.claims.get(USE_CLAIM) == WEBSOCKET_USE:
        raise Unauthorized("a WebSocket token only opens a WebSocket; send the admin token")
    return principal


class WebSocketToken(BaseModel):
    """The answer of `POST /v1/studio/ws-tokens`."""

    model_config = ConfigDict(populate_by_name=True)

    token: str = Field(description="A JWT for the WebSocket URL's ?token=; refused as an HTTP bearer token")
    expires_in: int = Field(alias="expiresIn", description="Seconds until it expires")
    expires_at: str = Field(alias="expiresAt", description="When it expires, UTC ISO 8601 with Z")

    def api(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)


def websocket_token(principal: Principal, policy: TokenPolicy, *, now: float | None = None) -> WebSocketToken:
    """A short-lived token to put in the WebSocket URL, never outliving the caller's own token."""
    issued_at = int(time.time() if now is None else now)
    ttl = max(0, min(WEBSOCKET_TOKEN_TTL_SECONDS, principal.expires_at - issued_at))
    # A jti of its own: two tokens fetched within one second are still two tokens.
    claims = {USE_CLAIM: WEBSOCKET_USE, "jti": secrets.token_urlsafe(12)}
    token = policy.issue(subject=principal.subject, ttl=ttl, extra=claims)
    expires_at = datetime.fromtimestamp(issued_at + ttl, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return WebSocketToken(token=token, expires_in=ttl, expires_at=expires_at)


def issue_token(
    secret: str,
    *,
    subject: str = "admin",
    roles: tuple[str, ...] = (ADMIN,),
    ttl: int = DEFAULT_TTL_SECONDS,
    **claims: Any,
) -> str:
    """An HS256 token for local use and tests; `claims` adds or overrides claims (aud, iss, ...)."""
    now = int(time.time())
    payload = {"sub": subject, "roles": list(roles), "iat": now, "exp": now + ttl, **claims}
    return jwt.encode(payload, secret, algorithm=ALGORITHMS[0])
