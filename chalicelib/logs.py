"""The service's one logger: Powertools for AWS Lambda's Logger, one JSON object per line on stdout.

Every module logs through `logger` (`from chalicelib.logs import logger`), in Lambda and in `make run`
alike. Each line carries `level`, `location`, `message`, `timestamp`, `service`, `stage` (once the
settings are read, `configure`), `requestId` (the invocation's, `invocation`) and, while a job is handled,
`jobId` and `attempt` (`job_context`); a call may add keys of its own (`logger.info("...", jobId=...)`).

The per-invocation keys live in a context variable (Powertools' thread_safe_* keys), not in the formatter:
the local runtime runs several invocations at once in one process, one per thread, and one thread's job
must not label another's lines. A thread started for a job (the supervisor) runs in a copy of its
starter's context (`in_context`), so its lines carry the job too.

Never log a token, a secret, a header or a whole event: messages name jobs, keys and error codes.
tests/integration/test_logs_hold_no_secrets.py checks a full flow's logs for them.

Imported with the app (about 15 ms of a 500 ms `import app`): every invocation sets its keys through it,
so deferring it would only move that cost into each container's first invocation.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger

SERVICE = "studio-uploads"
DEFAULT_LEVEL = "INFO"  # until the settings are read; then LOG_LEVEL (chalicelib/config.py)


class StdoutHandler(logging.StreamHandler):
    """Writes to sys.stdout as it is when a line is written, not as it was at import: a process that
    points it elsewhere (bench/system.py keeps stdout for its answers) gets the lines there."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


# An explicit level: Powertools would otherwise read LOG_LEVEL itself at import, before it is validated.
logger = Logger(
    service=SERVICE,
    level=DEFAULT_LEVEL,
    logger_handler=StdoutHandler(),
    utc=True,
    use_rfc3339=True,
    location="%(module)s.%(funcName)s:%(lineno)d",  # Powertools' default names no module
)
# Its handler writes every line; a root handler set up later (a CLI's basicConfig) must not repeat them.
logging.getLogger(SERVICE).propagate = False


def configure(*, level: str, stage: str) -> None:
    """Apply the container's settings: the level (LOG_LEVEL) and the stage every line names.
    Plain values, not the Settings: chalicelib/config.py calls this, and this module imports no config."""
    logger.setLevel(level)
    logger.append_keys(stage=stage)


@contextmanager
def invocation(request_id: str) -> Iterator[None]:
    """One invocation's lines carry its request id, and nothing left by the one before in this thread."""
    logger.thread_safe_clear_keys()
    logger.thread_safe_append_keys(requestId=request_id)
    try:
        yield
    finally:
        logger.thread_safe_clear_keys()


def job_context(job_id: str, attempt: int) -> None:
    """From here to the invocation's end, this thread's lines name the job and its attempt.
    (Plain values: every package logs through this module, so it imports none of theirs.)"""
    logger.thread_safe_append_keys(jobId=job_id, attempt=attempt)


def in_context(target: Callable[[], Any]) -> Callable[[], Any]:
    """`target`, to run in another thread with this thread's log keys (a new thread starts with none)."""
    context = contextvars.copy_context()
    return lambda: context.run(target)
