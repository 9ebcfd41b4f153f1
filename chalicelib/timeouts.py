"""How long one MongoDB or SQS call may take: derived from the lease, so no hung call outlasts it.

A worker proves its lease with MongoDB writes (and keeps its message invisible with SQS calls)
every LEASE_SECONDS/3. One call may take at most a *call budget* of LEASE_SECONDS/6 (20 s for the
default 120 s), retries included: between the first renewal that comes due and the moment the
supervisor gives the lease up (LEASE_SECONDS after its last proof, less one budget) there is room
for at least three attempts, and a call that hangs ends, as an error, long before the lease does.

- MongoDB: `timeoutMS` (the driver's whole-operation timeout, retries included) and
  `socketTimeoutMS` are the budget; connecting and server selection get at most 10 s / 5 s of it.
- SQS: botocore's `standard` retry mode (3 attempts, exponential backoff with jitter; the legacy
  mode's 5 attempts of 60 s timeouts could hang for 5 minutes), each attempt's connect and read
  timeouts a sixth of the budget, so three attempts and their backoff stay near one budget.
"""

from __future__ import annotations

from typing import Any

CALL_BUDGET_SHARE_OF_LEASE = 1 / 6
SQS_ATTEMPTS = 3
MIN_SQS_TIMEOUT_SECONDS = 1.0
MONGO_CONNECT_TIMEOUT_MS = 10_000
MONGO_SERVER_SELECTION_TIMEOUT_MS = 5_000


def call_budget_seconds(lease_seconds: float) -> float:
    """The longest one client call (with its retries) may take."""
    return lease_seconds * CALL_BUDGET_SHARE_OF_LEASE


def mongo_client_options(lease_seconds: float) -> dict[str, Any]:
    """MongoClient keyword options: every operation ends within the call budget."""
    budget_ms = int(call_budget_seconds(lease_seconds) * 1000)
    return {
        "timeoutMS": budget_ms,
        "socketTimeoutMS": budget_ms,
        "connectTimeoutMS": min(budget_ms, MONGO_CONNECT_TIMEOUT_MS),
        "serverSelectionTimeoutMS": min(budget_ms, MONGO_SERVER_SELECTION_TIMEOUT_MS),
    }


def sqs_client_config(lease_seconds: float) -> Any:
    """botocore settings for SQS: standard retries, timeouts within the call budget."""
    from botocore.config import Config

    per_attempt = max(MIN_SQS_TIMEOUT_SECONDS, call_budget_seconds(lease_seconds) / (2 * SQS_ATTEMPTS))
    return Config(
        connect_timeout=per_attempt,
        read_timeout=per_attempt,
        retries={"mode": "standard", "max_attempts": SQS_ATTEMPTS},
    )


NOTIFY_CALL_TIMEOUT_SECONDS = 2.0
NOTIFY_ATTEMPTS = 2


def notify_client_config() -> Any:
    """botocore settings for the notification queue and SES: the worker that ended a job waits for
    the enqueue (after the job's final write), so an SQS that hangs costs it about 2 x (2 + 2) s at
    most, never the lease's budget."""
    from botocore.config import Config

    return Config(
        connect_timeout=NOTIFY_CALL_TIMEOUT_SECONDS,
        read_timeout=NOTIFY_CALL_TIMEOUT_SECONDS,
        retries={"mode": "standard", "max_attempts": NOTIFY_ATTEMPTS},
    )
