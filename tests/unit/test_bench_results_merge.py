"""`bench.run --only uploads` re-measures the upload figures into results.json without losing the others."""

from __future__ import annotations

import json
from pathlib import Path

from bench.report import Figure, markdown, merge_json

ABOUT = {
    "cpus": 2,
    "python": "3.11.7",
    "load_average_1m_at_start": 0.5,
    "load_average_1m_at_end": 0.7,
    "seconds": 900.0,
    "versions": {"boto3": "1.43.11"},
}


def _figure(key: str, value: float) -> Figure:
    return Figure(key, "Upload, plain endpoint", key, value, "s")


def test_the_new_figures_replace_theirs_and_every_other_figure_and_the_machine_stay(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    merge_json(
        out, [_figure("upload_plain_seconds_service", 2.5), _figure("import_app_ms", 180)], {"only": "full", **ABOUT}
    )
    uploads_run = {"only": "uploads", **ABOUT, "load_average_1m_at_start": 6.0, "seconds": 400.0}
    merge_json(
        out, [_figure("upload_plain_seconds_service", 1.9), _figure("upload_slowdown_503s_service", 12)], uploads_run
    )
    document = json.loads(out.read_text())
    assert document["upload_plain_seconds_service"]["value"] == 1.9
    assert document["upload_slowdown_503s_service"]["value"] == 12
    assert document["import_app_ms"]["value"] == 180
    assert document["machine"]["seconds"] == 900.0  # the run that wrote the other figures
    assert document["machine"]["partial_runs"]["uploads"]["load_average_1m_at_start"] == 6.0


def test_the_readme_tables_say_which_run_the_upload_figures_come_from(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    merge_json(out, [_figure("import_app_ms", 180)], {"only": "full", **ABOUT})
    merge_json(out, [_figure("upload_plain_seconds_service", 1.9)], {"only": "uploads", **ABOUT, "seconds": 400.0})
    table = markdown(json.loads(out.read_text()))
    assert "Machine: 2 CPUs" in table and "900 s in all" in table
    assert "The uploads figures: `python -m bench.run --only uploads`, 2 CPUs" in table and "400 s in all" in table


def test_a_new_figure_lands_after_the_figure_measured_before_it(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    merge_json(
        out, [_figure("upload_proxy_seconds_service", 3.0), _figure("import_app_ms", 180)], {"only": "full", **ABOUT}
    )
    merge_json(out, [_figure("upload_proxy_seconds_service", 2.0), _figure("upload_slowdown_seconds_service", 4.0)])
    keys = list(json.loads(out.read_text()))
    assert keys == ["machine", "upload_proxy_seconds_service", "upload_slowdown_seconds_service", "import_app_ms"]
