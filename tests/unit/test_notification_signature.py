"""X-Studio-Signature signs the timestamp with the raw body: tampering and replays are refused."""

from __future__ import annotations

import hashlib
import hmac

from chalicelib.notify.signature import signature_header, verify

SECRET = "whsec-test"
BODY = b'{"event":"JobFailed","jobId":"j1"}'
NOW = 1_800_000_000


def test_the_header_is_the_documented_hmac_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature_header(SECRET, BODY, NOW) == f"t={NOW},v1={expected}"


def test_a_fresh_signature_verifies() -> None:
    assert verify(SECRET, signature_header(SECRET, BODY, NOW), BODY, now=NOW + 10)


def test_a_changed_body_another_secret_or_a_changed_timestamp_does_not_verify() -> None:
    header = signature_header(SECRET, BODY, NOW)
    assert not verify(SECRET, header, BODY.replace(b"j1", b"j2"), now=NOW)
    assert not verify("another-secret", header, BODY, now=NOW)
    assert not verify(SECRET, header.replace(f"t={NOW}", f"t={NOW + 1}"), BODY, now=NOW)


def test_an_old_timestamp_is_refused_as_a_replay() -> None:
    header = signature_header(SECRET, BODY, NOW)
    assert verify(SECRET, header, BODY, now=NOW + 300)
    assert not verify(SECRET, header, BODY, now=NOW + 301)


def test_a_malformed_header_does_not_verify() -> None:
    for header in ("", "garbage", "t=abc,v1=00", "v1=00", f"t={NOW}"):
        assert not verify(SECRET, header, BODY, now=NOW)
