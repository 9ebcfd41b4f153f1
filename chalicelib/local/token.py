"""`make token`: print an admin JWT for the local runtime (AUTH_JWT_SECRET or the local default)."""

from __future__ import annotations

from chalicelib.auth import issue_token
from chalicelib.config import get_settings

if __name__ == "__main__":
    print(issue_token(get_settings().auth_jwt_secret))
