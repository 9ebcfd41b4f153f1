"""CloudWatch metrics in the embedded metric format (EMF), through Powertools for AWS Lambda's Metrics.

An EMF line is a JSON object on stdout; in Lambda, CloudWatch Logs turns it into metrics of the
namespace `StudioUploads`, dimension `stage`: no API call and no client, so nothing here can slow a
job down. The alarms of infra/resources.json watch them (docs/operations.md).

- `JobsCompleted` (Count), `JobDurationSeconds` (Seconds, first claim to completion) and `BytesUploaded`
  (Bytes, the job's files) for each job a worker completes;
- `JobsFailed` (Count) for each job a worker fails, with the dimension sets `[stage]` (the failure-rate
  alarm) and `[stage, errorCode]` (failures by code);
- `OldestWaitingJobAgeSeconds` (Seconds, 0 when nothing waits) from each scheduled maintenance run.

Each worker invocation publishes its job's metrics before it returns (chalicelib/blueprints/workers.py):
one EphemeralMetrics per publication, as the local runtime runs several invocations at once in one
process and Powertools' shared `Metrics` would flush one's metrics with another's. A failure to publish
is logged and never fails the job. POWERTOOLS_METRICS_DISABLED=true turns the output off.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from chalicelib.logs import logger

NAMESPACE = "StudioUploads"


def publish_completed(stage: str, duration_seconds: float | None, uploaded_bytes: int) -> None:
    """A job a worker completed (chalicelib/worker/metrics.py says which turns)."""
    _publish(stage, lambda metrics: _completed(metrics, duration_seconds, uploaded_bytes))


def publish_failed(stage: str, error_code: str) -> None:
    """A job a worker failed."""
    _publish(stage, lambda metrics: _failed(metrics, error_code))


def publish_oldest_waiting(age_seconds: float, stage: str) -> None:
    """The age of the oldest waiting job, as the scheduled maintenance found it."""
    _publish(stage, lambda metrics: metrics.add_metric("OldestWaitingJobAgeSeconds", MetricUnit.Seconds, age_seconds))


def _completed(metrics: EphemeralMetrics, duration_seconds: float | None, uploaded_bytes: int) -> None:
    metrics.add_metric("JobsCompleted", MetricUnit.Count, 1)
    metrics.add_metric("BytesUploaded", MetricUnit.Bytes, uploaded_bytes)
    if duration_seconds is not None:
        metrics.add_metric("JobDurationSeconds", MetricUnit.Seconds, duration_seconds)


def _failed(metrics: EphemeralMetrics, error_code: str) -> None:
    metrics.add_metric("JobsFailed", MetricUnit.Count, 1)
    metrics.add_dimensions(errorCode=error_code)  # a second dimension set: the same datum, by code


def _publish(stage: str, add: Callable[[EphemeralMetrics], None]) -> None:
    try:
        metrics = EphemeralMetrics(namespace=NAMESPACE)  # no service: it would be a dimension the alarms lack
        metrics.set_default_dimensions(stage=stage)
        add(metrics)
        metrics.flush_metrics()
    except Exception:  # a metric is worth less than the job: log it, go on
        logger.warning("could not publish metrics", exc_info=True)
