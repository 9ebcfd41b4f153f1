"""The local runtime (what `make run` and `make demo` start) creates the notification queue, polls it
around the app's own handler, and with LOCAL_WEBHOOK_RECEIVER its receiver logs what arrives."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.auth import TokenPolicy
from chalicelib.local.api_client import ApiClient
from chalicelib.local.runtime import LocalRuntime
from tests.runtimes import local_runtime

ENVIRONMENT = {"STAGE": "local", "NOTIFY_WEBHOOK_URLS": "http://127.0.0.1:9/elsewhere"}


@pytest.fixture
def runtime(source_root: Path) -> Iterator[LocalRuntime]:
    unset = ("MONGODB_URI", "NOTIFY_WEBHOOK_SECRET")
    with local_runtime(source_root, ENVIRONMENT, unset=unset, webhook_receiver=True) as started:
        yield started


def test_a_failed_job_s_notification_reaches_the_local_receiver(
    runtime: LocalRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    settings = runtime.services.settings
    assert settings.notify_queue_url.endswith("/upload-notifications")
    assert settings.notify_webhook_urls == ["http://127.0.0.1:9/elsewhere", runtime.webhook_receiver.url]
    assert settings.notify_webhook_secret  # one of its own, as none was set
    api = ApiClient(runtime.api_url, TokenPolicy.from_settings(settings).issue(subject="test"))
    body = {
        "jobType": "upload-hls-to-s3",
        "resourceType": "film",
        "resourceId": "64b7f0c2a1b2c3d4e5f60718",
        "hlsDir": "films/missing/720p",
        "label": "720p",
    }

    with caplog.at_level(logging.INFO, logger="chalicelib.local.webhook_receiver"):
        job = api.call("POST", "/upload-jobs", body)
        received = runtime.webhook_receiver.wait_for(lambda payload: payload["jobId"] == job["jobId"], timeout=30)

    assert received is not None, "no notification reached the local receiver"
    assert (received["event"], received["errorCode"]) == ("JobFailed", "SOURCE_NOT_FOUND")
    assert f"webhook received JobFailed: {received['text']}" in caplog.text


def test_stopping_the_runtime_gives_the_environment_back(runtime: LocalRuntime) -> None:
    runtime.stop()
    assert os.environ["NOTIFY_WEBHOOK_URLS"] == ENVIRONMENT["NOTIFY_WEBHOOK_URLS"]
    assert "NOTIFY_WEBHOOK_SECRET" not in os.environ
