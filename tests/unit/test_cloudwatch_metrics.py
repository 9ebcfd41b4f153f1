"""The workers' CloudWatch metrics: one embedded-metric-format line on stdout per finished job, with the names,
units, values and dimension sets the alarms of infra/resources.json read; nothing for a turn that did not
finish its job, and never an exception into the worker."""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import pytest

from chalicelib.jobs.model import JobStatus, UploadJob
from chalicelib.metrics import cloudwatch
from chalicelib.worker.metrics import publish_result
from chalicelib.worker.results import Action, WorkerResult
from tests.factories import hls_job


def job(**fields: Any) -> UploadJob:
    return hls_job(**fields)


def emf_lines(captured: str) -> list[dict[str, Any]]:
    """The EMF objects printed (each value a list, as Powertools writes them)."""
    lines = [json.loads(line) for line in captured.splitlines() if line.startswith("{")]
    return [line for line in lines if "_aws" in line]


def definitions(line: dict[str, Any]) -> tuple[str, list[list[str]], dict[str, str]]:
    directive = line["_aws"]["CloudWatchMetrics"][0]
    return directive["Namespace"], directive["Dimensions"], {m["Name"]: m["Unit"] for m in directive["Metrics"]}


@pytest.fixture(autouse=True)
def metrics_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)


def test_a_completed_job_publishes_its_completion_duration_and_bytes(capsys: pytest.CaptureFixture[str]) -> None:
    done = job(status="completed", durationSeconds=12.5, uploadedBytes=3_000_000)

    publish_result(WorkerResult(Action.COMPLETED, done.job_id, JobStatus.COMPLETED, job=done), "prod")

    [line] = emf_lines(capsys.readouterr().out)
    namespace, dimensions, units = definitions(line)
    assert namespace == "StudioUploads"
    assert dimensions == [["stage"]]
    assert units == {"JobsCompleted": "Count", "BytesUploaded": "Bytes", "JobDurationSeconds": "Seconds"}
    assert (line["stage"], line["JobsCompleted"], line["BytesUploaded"], line["JobDurationSeconds"]) == (
        "prod",
        [1.0],
        [3_000_000.0],
        [12.5],
    )


def test_a_failed_job_counts_once_per_stage_and_once_per_error_code(capsys: pytest.CaptureFixture[str]) -> None:
    failed = job(status="failed", errorCode="SOURCE_NOT_FOUND")

    publish_result(WorkerResult(Action.FAILED, failed.job_id, JobStatus.FAILED, job=failed), "dev")

    [line] = emf_lines(capsys.readouterr().out)
    _, dimensions, units = definitions(line)
    assert units == {"JobsFailed": "Count"}
    assert dimensions == [["stage"], ["stage", "errorCode"]]
    assert (line["stage"], line["errorCode"], line["JobsFailed"]) == ("dev", "SOURCE_NOT_FOUND", [1.0])


@pytest.mark.parametrize("action", [Action.RETRY_SCHEDULED, Action.CONTINUED, Action.IGNORED, Action.MALFORMED])
def test_a_turn_that_did_not_finish_its_job_publishes_nothing(
    action: Action, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_result(WorkerResult(action, "job-1"), "dev")

    assert emf_lines(capsys.readouterr().out) == []


def test_the_oldest_waiting_job_age_is_published_in_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    cloudwatch.publish_oldest_waiting(421.5, "dev")

    [line] = emf_lines(capsys.readouterr().out)
    assert definitions(line)[1:] == ([["stage"]], {"OldestWaitingJobAgeSeconds": "Seconds"})
    assert line["OldestWaitingJobAgeSeconds"] == [421.5]


def test_powertools_switch_turns_the_metrics_off(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")

    cloudwatch.publish_oldest_waiting(1.0, "dev")

    assert emf_lines(capsys.readouterr().out) == []


def test_metrics_that_cannot_be_written_never_fail_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    gone = io.StringIO()
    gone.close()
    monkeypatch.setattr(sys, "stdout", gone)  # stdout closed under us: the EMF line cannot be printed
    done = job(status="completed", durationSeconds=1.0, uploadedBytes=10)

    publish_result(WorkerResult(Action.COMPLETED, done.job_id, JobStatus.COMPLETED, job=done), "dev")
