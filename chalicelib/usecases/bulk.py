"""`POST /upload-jobs/bulk`: one action over many jobs. Each job goes through its single-job route's
own function (the same guarded transition, the same cleanup claim), so a bulk action racing a
worker is exactly as safe as one click, and a job changed meanwhile is skipped, never overwritten.

- The jobs are named (`jobIds`, at most BULK_LIMIT, a repeated id counted once) or selected by the
  list route's filters (`filter`). A filter that matches more than BULK_LIMIT jobs is refused whole
  (409 ConflictError, the count in the message): nothing is done, never a silent part.
- Each job ends in exactly one of `done`, `skipped` (by reason: it does not exist, or its state
  does not allow the action) and `failed` (anything else, with the Code and Message its own route
  would answer), so `matched == done + sum(skipped) + len(failed)`.
- The call stops trying jobs once it has run TIME_BUDGET_SECONDS (API Gateway ends a request at
  29 s): the jobs not tried are counted as skipped `not-reached` and listed in `notReached`, to be
  sent again. Nothing is left half done: each job is tried whole or not at all.
- `dryRun` with a filter only counts the matching jobs (exactly, also beyond the limit): the
  dashboard states that count in its confirmation before it asks for the action.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from chalicelib.errors import Conflict, ConflictReason, NotFound, StudioError
from chalicelib.jobs.model import CleanupRequest, JobFilters, RetryRequest
from chalicelib.logs import logger
from chalicelib.maintenance import MaintenanceServices, cleanup_job
from chalicelib.usecases import jobs as service

# Jobs one call may change. A job is a few guarded writes, plus an SQS send (retry) or bucket calls
# (cleanup, delete): tens of milliseconds each, so a thousand may outlast the time budget below.
BULK_LIMIT = 1000
# API Gateway answers 504 at 29 s: stop trying jobs well before, and say which were not reached.
TIME_BUDGET_SECONDS = 20.0
MAX_JOB_ID_LENGTH = 128


class BulkAction(StrEnum):
    RETRY = "retry"
    CANCEL = "cancel"
    DELETE = "delete"
    CLEANUP = "cleanup"


class SkipReason(StrEnum):
    """The keys of the answer's `skipped`."""

    NOT_FOUND = "not-found"
    NOT_RETRYABLE = "not-retryable"
    NOT_CANCELLABLE = "not-cancellable"
    NOT_DELETABLE = "not-deletable"
    NOT_CLEANABLE = "not-cleanable"
    SOURCE_REMOVED = "source-removed"
    CLEANUP_RUNNING = "cleanup-running"
    NOT_REACHED = "not-reached"


# A job whose status does not allow the action, in the words of that action.
WRONG_STATE = {
    BulkAction.RETRY: SkipReason.NOT_RETRYABLE,
    BulkAction.CANCEL: SkipReason.NOT_CANCELLABLE,
    BulkAction.DELETE: SkipReason.NOT_DELETABLE,
    BulkAction.CLEANUP: SkipReason.NOT_CLEANABLE,
}
OTHER_REASONS = {
    ConflictReason.SOURCE_REMOVED: SkipReason.SOURCE_REMOVED,
    ConflictReason.CLEANUP_RUNNING: SkipReason.CLEANUP_RUNNING,
}


class BulkRequest(BaseModel):
    """The body of `POST /upload-jobs/bulk`: an action and exactly one of `jobIds` and `filter`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    action: BulkAction
    job_ids: list[Annotated[str, Field(min_length=1, max_length=MAX_JOB_ID_LENGTH)]] | None = Field(
        default=None, alias="jobIds", min_length=1, max_length=BULK_LIMIT, description="The jobs, by id"
    )
    filter: JobFilters | None = Field(
        default=None, description=f"The jobs the list route's filters match, at most {BULK_LIMIT}"
    )
    dry_run: StrictBool = Field(
        default=False, alias="dryRun", description="With filter: only count the matching jobs, change nothing"
    )
    client_id: str | None = Field(
        default=None, alias="clientId", max_length=128, description="retry: as the single-job retry's clientId"
    )

    @model_validator(mode="after")
    def _one_selection(self) -> BulkRequest:
        if (self.job_ids is None) == (self.filter is None):
            raise ValueError("give exactly one of jobIds and filter")
        if self.dry_run and self.filter is None:
            raise ValueError("dryRun counts the jobs a filter matches: it needs filter")
        return self


# The API's `Code` for an error (chalicelib/http.py's error_code): the edge passes it in, so this
# layer never imports the HTTP module.
ErrorCodeOf = Callable[[Exception], str]


def _retry(job_id: str, request: BulkRequest, services: MaintenanceServices) -> None:
    # Without a clientId the job's events go to the subscribers of every job, as a retry without one does.
    retry = RetryRequest(client_id=request.client_id)
    service.retry_job(job_id, retry, store=services.store, queue=services.queue, notifier=services.notifier)


def _cancel(job_id: str, request: BulkRequest, services: MaintenanceServices) -> None:
    service.cancel_job(job_id, store=services.store, notifier=services.notifier)


def _delete(job_id: str, request: BulkRequest, services: MaintenanceServices) -> None:
    service.delete_job(job_id, services=services)


def _cleanup(job_id: str, request: BulkRequest, services: MaintenanceServices) -> None:
    # As `POST .../cleanup` with its default body: the sources stay, so the job can still be retried.
    cleanup_job(job_id, CleanupRequest(), services)


SINGLE_JOB: dict[BulkAction, Callable[[str, BulkRequest, MaintenanceServices], None]] = {
    BulkAction.RETRY: _retry,
    BulkAction.CANCEL: _cancel,
    BulkAction.DELETE: _delete,
    BulkAction.CLEANUP: _cleanup,
}


def run_bulk(
    request: BulkRequest,
    services: MaintenanceServices,
    error_code: ErrorCodeOf,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Apply the action to each selected job; `{"matched", "done", "skipped", "failed", "notReached"}`."""
    if request.filter is not None and request.dry_run:
        matched = services.store.count_matching(request.filter)
        return {"matched": matched, "done": 0, "skipped": {}, "failed": [], "notReached": []}
    deadline = clock() + TIME_BUDGET_SECONDS
    job_ids = _selected(request, services)
    done = 0
    skipped: Counter[str] = Counter()
    failed: list[dict[str, str]] = []
    not_reached: list[str] = []
    for index, job_id in enumerate(job_ids):
        if clock() >= deadline:
            not_reached = job_ids[index:]
            skipped[SkipReason.NOT_REACHED.value] = len(not_reached)
            break
        outcome = _apply(request, job_id, services, error_code)
        if outcome is None:
            done += 1
        elif isinstance(outcome, SkipReason):
            skipped[outcome.value] += 1
        else:
            failed.append(outcome)
    return {
        "matched": len(job_ids),
        "done": done,
        "skipped": dict(skipped),
        "failed": failed,
        "notReached": not_reached,
    }


def _selected(request: BulkRequest, services: MaintenanceServices) -> list[str]:
    if request.job_ids is not None:
        return list(dict.fromkeys(request.job_ids))
    assert request.filter is not None  # the model requires one of the two
    # One more than the limit tells "too many" without counting everything first.
    job_ids = list(services.store.matching_ids(request.filter, BULK_LIMIT + 1))
    if len(job_ids) > BULK_LIMIT:
        count = max(services.store.count_matching(request.filter), len(job_ids))
        raise Conflict(
            f"the filter matches {count} jobs, more than the {BULK_LIMIT} one bulk call may change: nothing was "
            "done; narrow the filter (e.g. from and to) or name the jobs with jobIds"
        )
    return job_ids


def _apply(
    request: BulkRequest, job_id: str, services: MaintenanceServices, error_code: ErrorCodeOf
) -> SkipReason | dict[str, str] | None:
    """None when done, the skip reason, or the failure entry."""
    action = request.action
    from pymongo.errors import PyMongoError  # mongomock raises pymongo's classes too

    try:
        SINGLE_JOB[action](job_id, request, services)
    except NotFound:
        return SkipReason.NOT_FOUND
    except Conflict as error:
        if error.reason == ConflictReason.WRONG_STATE:
            return WRONG_STATE[action]
        if error.reason in OTHER_REASONS:
            return OTHER_REASONS[error.reason]
        return _failure(job_id, error, error_code)  # the state allowed it, something else refused (the bucket)
    except StudioError as error:
        return _failure(job_id, error, error_code)
    except PyMongoError:
        # The store is gone for every job alike: the whole call fails (500) rather than wait out a
        # timeout per job. Each job already done stayed consistent; the answer says nothing of them.
        raise
    except Exception:  # the bucket failing for one job never stops the others (as clear does)
        logger.exception("bulk %s of %s failed", action, job_id)
        return {"jobId": job_id, "Code": "InternalServerError", "Message": f"could not {action} the job"}
    return None


def _failure(job_id: str, error: StudioError, error_code: ErrorCodeOf) -> dict[str, str]:
    code = error_code(error)
    return {"jobId": job_id, "Code": code, "Message": str(error)}
