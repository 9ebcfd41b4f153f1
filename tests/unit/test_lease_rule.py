"""The one lease rule (jobs.recovery) every actor applies: a lease is live until its expiry, and
an active job with no lease at all counts as expired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.jobs.recovery import lease_expired_at

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expires_at", "expired"),
    [
        (None, True),
        (NOW - timedelta(microseconds=1), True),
        (NOW, False),
        (NOW + timedelta(seconds=30), False),
    ],
)
def test_a_lease_is_live_until_its_expiry_and_no_lease_is_an_expired_one(
    expires_at: datetime | None, expired: bool
) -> None:
    assert lease_expired_at(expires_at, NOW) is expired
