"""`make chaos` in small (issue 11): 30 jobs through the whole system with every fault on at once.

Worker processes SIGKILLed and restarted, duplicate SQS deliveries, S3 faults (503 SlowDown,
500, resets mid-body, slow answers) and dropped MongoDB connections, a few jobs designed to fail
and a few cancelled mid-upload; then every invariant of the full run must hold. It needs the
MongoDB wire server (a separate Python >= 3.13 virtualenv) and fails, never skips, without it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.run import FAILURE_KEYS, ChaosConfig, run_chaos

pytestmark = pytest.mark.slow  # the whole system, about a minute and a half

SEED = 20261203  # a failure names its seed; `python -m chaos.run --jobs 30 --seed N` plays it again


def test_thirty_jobs_under_every_fault_keep_every_invariant(tmp_path: Path) -> None:
    results = run_chaos(ChaosConfig.small(30, seed=SEED, workdir=tmp_path, results=None))

    broken = {key: results[key] for key in FAILURE_KEYS if results[key]}
    assert broken == {}, f"seed {SEED}: {broken}; examples: {results['examples']}"
    assert results["jobs"] == 30
    fired = {key: results[key] for key in ("worker_kills", "s3_faults", "mongo_drops", "duplicate_deliveries")}
    assert all(count > 0 for count in fired.values()), f"a fault never fired: {fired}"
