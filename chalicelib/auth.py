"""JWT verification (SPEC 4): HS256 with AUTH_JWT_SECRET, `exp` required, admin by role claims."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import jwt

from chalicelib.errors import Forbidden, Unauthorized

ALGORITHMS = ["HS256"]
ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    subject: str
    is_admin: bool
    claims: dict[str, Any] = field(default_factory=dict)


def has_admin_role(claims: dict[str, Any]) -> bool:
    roles = claims.get("roles")
    return claims.get("role") == ADMIN or (isinstance(roles, list) and ADMIN in roles)


def verify_token(token: str, secret: str) -> Principal:
    """Decode and check a token; Unauthorized for anything but a valid, unexpired, signed one."""
    try:
        claims = jwt.decode(token, secret, algorithms=ALGORITHMS, options={"require": ["exp"]})
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("the token has expired") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthorized("the token has no exp claim") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"the token is not valid: {exc}") from exc
    return Principal(subject=str(claims.get("sub", "")), is_admin=has_admin_role(claims), claims=claims)


def bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <token>")
    return token.strip()


def authenticate_admin(token: str, secret: str) -> Principal:
    """The one rule for HTTP and WebSocket: a valid token (401 otherwise) of an admin (403 otherwise)."""
    principal = verify_token(token, secret)
    if not principal.is_admin:
        raise Forbidden("this token does not carry the admin role")
    return principal


def issue_token(secret: str, *, subject: str = "admin", roles: tuple[str, ...] = (ADMIN,), ttl: int = 12 * 3600) -> str:
    """An HS256 token for local use and tests (`make token`)."""
    now = int(time.time())
    claims = {"sub": subject, "roles": list(roles), "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm=ALGORITHMS[0])
