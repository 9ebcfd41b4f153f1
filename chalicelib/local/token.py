"""`make token`: print an admin JWT for the local runtime (AUTH_JWT_SECRET or the local default; aud/iss when set)."""

from __future__ import annotations

from chalicelib.auth import TokenPolicy
from chalicelib.config import get_settings

if __name__ == "__main__":
    print(TokenPolicy.from_settings(get_settings()).issue())
