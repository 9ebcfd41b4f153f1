"""The scheduled run (every 5 minutes, SPEC 7): fix-stuck, pending sends, retention, then the age of the
oldest waiting job as a CloudWatch metric (the alarm on jobs nobody takes, chalicelib/metrics/cloudwatch.py)."""

from __future__ import annotations

from typing import Any

from chalicelib.jobs import outbox
from chalicelib.jobs.analytics import oldest_waiting
from chalicelib.jobs.model import ClearStatus
from chalicelib.logs import logger
from chalicelib.maintenance.context import MaintenanceServices
from chalicelib.maintenance.removal import clear_finished
from chalicelib.maintenance.stuck import fix_stuck
from chalicelib.metrics import cloudwatch


def remove_expired_jobs(services: MaintenanceServices, retention_days: int) -> int:
    """Delete finished jobs whose `finishedAt` is older than `retention_days` (0 keeps every job),
    found on the (status, finishedAt) index, each as DELETE does: a failed or cancelled job is
    cleaned up first (maintenance/removal.py).

    A TTL index would do this on MongoDB, but mongomock never expires documents and changing
    JOB_RETENTION_DAYS would then need a `collMod`; the scheduled delete works on both.
    """
    if retention_days <= 0:
        return 0
    return clear_finished(services, ClearStatus.ALL, older_than_days=retention_days)


def run_scheduled_maintenance(services: MaintenanceServices) -> dict[str, Any]:
    """What the schedule runs. Answers `{"fixStuck": {...}, "pendingSends": {"sent": n},
    "retention": {"deleted": n}}`; the oldest waiting job's age goes out as a metric only."""
    fixed = fix_stuck(services)
    grace = outbox.send_grace_seconds(services.settings.lease_seconds)
    sent = outbox.send_pending(services.store, services.queue, grace_seconds=grace)
    deleted = remove_expired_jobs(services, services.settings.job_retention_days)
    if deleted:
        logger.info(
            "retention removed %d finished jobs older than %d days", deleted, services.settings.job_retention_days
        )
    oldest = oldest_waiting(services.store, {})
    cloudwatch.publish_oldest_waiting(oldest[1] if oldest else 0.0, services.settings.stage)
    return {"fixStuck": fixed, "pendingSends": {"sent": sent}, "retention": {"deleted": deleted}}
