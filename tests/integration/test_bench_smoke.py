"""`make bench` cannot rot: its smoke run (tiny data, one round, no thresholds) measures every figure.

The smoke run drives what the full benchmark drives (the system process with moto, the delay proxy,
the SlowDown proxy in front of two system processes, the WebSocket client, the contenders that are
installed, the import probes) and writes results.json; awscli, s5cmd and rclone are optional here
(`make bench` installs them). `--only uploads` runs on its own too and merges into an existing file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.contenders import FILE_CONTENDERS, installed
from bench.report import markdown

ROOT = Path(__file__).resolve().parents[2]


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("bench")
    out = folder / "results.json"
    command = [sys.executable, "-m", "bench.run", "--smoke", "--data", str(folder / "data"), "--out", str(out)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "targets met" in result.stdout
    return dict(json.loads(out.read_text()))


def test_every_upload_contest_times_the_service_and_each_installed_tool(results: dict[str, Any]) -> None:
    for endpoint in ("plain", "proxy"):
        assert results[f"upload_{endpoint}_seconds_service"]["value"] > 0
        for contender in installed():
            slug = _slug(contender.name)
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


def test_the_slowdown_contest_times_both_engines_and_the_tools_and_counts_their_503s(results: dict[str, Any]) -> None:
    tools = [_slug(c.name) for c in installed() if c.name in ("s5cmd cp", "aws s3 sync")]
    entrants = ["service", "service_fixed", *tools]
    for entrant in entrants:
        assert results[f"upload_slowdown_seconds_{entrant}"]["value"] > 0
        assert "every object checked" in results[f"upload_slowdown_503s_{entrant}"]["detail"]
    for other in entrants[1:]:
        assert results[f"upload_slowdown_ratio_vs_{other}"]["unit"] == "x"
    # The smoke's rate (20 a second, a burst of 4) is below what 21 files at once ask: someone met 503s.
    assert sum(results[f"upload_slowdown_503s_{entrant}"]["value"] for entrant in entrants) > 0
    assert "503 SlowDown above 20 requests a second" in results["upload_slowdown_seconds_service"]["section"]


def test_the_big_file_is_timed_against_each_installed_tool(results: dict[str, Any]) -> None:
    assert results["video_upload_seconds"]["value"] > 0 and results["video_upload_mibps_service"]["value"] > 0
    for contender in installed(FILE_CONTENDERS):
        assert results[f"video_upload_mibps_{_slug(contender.name)}"]["unit"] == "MiB/s"
