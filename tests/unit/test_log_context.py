"""Log lines are JSON objects that say which invocation and which job they belong to: the request id for the
invocation, the job and its attempt while a job is handled, in the threads started for the job too, never
another thread's; the stage once the settings are read; the level from LOG_LEVEL."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib import logs
from chalicelib.config import Settings
from chalicelib.jobs.model import UploadJob
from chalicelib.logs import SERVICE, logger
from tests.factories import hls_job


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def job(attempts: int) -> UploadJob:
    return hls_job(attempts=attempts)


@pytest.fixture
def configured() -> Iterator[None]:
    """`logs.configure` changes the process's logger: its stage key goes again after the test."""
    yield
    logger.remove_keys(["stage"])


def test_an_invocation_names_its_request_and_leaves_nothing_behind(service_logs: io.StringIO) -> None:
    with logs.invocation("req-1"):
        logger.info("inside")
    logger.info("after")

    inside, after = lines(service_logs)
    assert (inside["message"], inside["requestId"], inside["service"], inside["level"]) == (
        "inside",
        "req-1",
        "studio-uploads",
        "INFO",
    )
    assert "requestId" not in after


def test_a_handled_job_is_named_in_its_thread_and_in_the_threads_started_for_it(service_logs: io.StringIO) -> None:
    handled = job(attempts=2)
    with logs.invocation("req-2"):
        logs.job_context(handled.job_id, handled.attempts)
        supervisor = threading.Thread(target=logs.in_context(lambda: logger.warning("from the supervisor")))
        supervisor.start()
        supervisor.join()
        plain = threading.Thread(target=lambda: logger.warning("from a thread without the context"))
        plain.start()
        plain.join()

    by_message = {line["message"]: line for line in lines(service_logs)}
    named = by_message["from the supervisor"]
    assert (named["jobId"], named["attempt"], named["requestId"]) == (handled.job_id, 2, "req-2")
    assert "jobId" not in by_message["from a thread without the context"]


def test_concurrent_invocations_keep_their_own_keys(service_logs: io.StringIO) -> None:
    both_inside = threading.Barrier(2)

    def invocation(request_id: str) -> None:
        with logs.invocation(request_id):
            logs.job_context(job(attempts=1).job_id, 1)
            both_inside.wait()  # each has set its keys before either logs
            logger.info(request_id)

    threads = [threading.Thread(target=invocation, args=(name,)) for name in ("req-a", "req-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    logged = lines(service_logs)
    assert sorted((line["message"], line["requestId"]) for line in logged) == [("req-a", "req-a"), ("req-b", "req-b")]
    assert logged[0]["jobId"] != logged[1]["jobId"]


def test_the_settings_give_the_stage_and_the_level(service_logs: io.StringIO, configured: None) -> None:
    settings = Settings(stage="test", log_level="warning")
    logs.configure(level=settings.log_level, stage=settings.stage)
    logger.info("dropped below WARNING")
    logger.warning("kept")

    [kept] = lines(service_logs)
    assert (kept["message"], kept["stage"]) == ("kept", "test")


def test_an_unknown_log_level_fails_at_start() -> None:
    with pytest.raises(ValidationError, match="log_level"):
        Settings(log_level="verbose")


def test_the_chalice_app_leaves_the_service_logger_one_json_handler_and_its_level() -> None:
    """Chalice's logger is named after the app, as the service's is: it must add no text handler (each line
    would be printed twice) and no level of its own (ERROR, which would drop every INFO line)."""
    import app

    assert app.app.log is logging.getLogger(SERVICE)
    ours = [type(handler) for handler in app.app.log.handlers if not type(handler).__module__.startswith("_pytest")]
    assert ours == [logs.StdoutHandler]
    assert app.app.log.level == logging.INFO
