"""A short `make fuzz`: schemathesis over every operation of the local runtime, good and bad tokens."""

from __future__ import annotations

import pytest

from chalicelib.openapi import OPERATIONS
from tools.fuzz import fuzz, local_runtime

pytestmark = pytest.mark.slow
EXAMPLES = 3  # per operation, mode and job id (1 per bad token): about 330 requests, under a minute


def test_fuzzing_every_operation_finds_no_server_error_and_no_schema_mismatch() -> None:
    with local_runtime() as (url, secret):
        report, seconds, total = fuzz(url, secret, EXAMPLES)
    summary = "\n".join(report.lines(seconds, total))
    assert len(report.operations) == total == len(OPERATIONS), summary  # every documented operation
    assert report.server_errors == [], summary
    assert report.schema_mismatches == [], summary
    assert report.negative_accepted == [], summary
    assert report.tokens_let_through == [], summary
    assert {200, 201, 400, 401, 403, 404, 409} <= set(report.statuses), summary
