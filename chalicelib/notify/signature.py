"""`X-Studio-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + raw body, keyed by the secret>`.

The timestamp is signed with the body, so a receiver that refuses old timestamps refuses a replayed
request: nobody without the secret can make a fresh one. docs/notifications.md has the receiver's
snippet; `verify` is that snippet.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Studio-Signature"
TOLERANCE_SECONDS = 300


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    return f"t={timestamp},v1={_digest(secret, body, timestamp)}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance: float = TOLERANCE_SECONDS) -> bool:
    """True when `header` signs `body` with `secret` and its timestamp is within `tolerance` of `now`."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(fields.get("v1", ""), _digest(secret, body, timestamp))


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
