"""`python -m bench.analytics` on its own: it times every analytics figure and merges them into results.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("analytics_insert_seconds", "analytics_hour_ms", "analytics_day_ms", "stats_ms", "metrics_ms", "search_ms")


def test_the_analytics_step_runs_alone_and_keeps_the_other_figures(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"machine": {"cpus": 2}, "import_app_ms": {"value": 1.0}}))
    command = [sys.executable, "-m", "bench.analytics", "--jobs", "300", "--repeats", "1", "--out", str(out)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["machine"] == {"cpus": 2} and results["import_app_ms"] == {"value": 1.0}
    for key in KEYS:
        assert results[key]["value"] > 0, key
    assert "300 jobs" in results["search_ms"]["section"] and "mongomock" in results["search_ms"]["section"]
