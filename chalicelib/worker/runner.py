"""Runs a plan through the transfer engine: the keys it requires, its phases in order, the final check."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.errors import ErrorCode, RetryableUploadError, UploadError
from chalicelib.upload.engine import RunStatus, StopMode, TransferEngine, TransferListener, UploadItem, classify_error
from chalicelib.worker.plans import JobPlan
from chalicelib.worker.progress import ProgressRecorder

NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


@dataclass(frozen=True)
class Uploaded:
    """Every file of the plan is in the bucket, and the final objects match their sources."""

    plan: JobPlan


@dataclass(frozen=True)
class Stopped:
    """`should_stop` asked the run to stop; what happens next depends on why."""

    mode: StopMode


@dataclass(frozen=True)
class MissingReferences:
    """A master playlist's references are not all in the bucket yet: nothing was uploaded."""

    keys: tuple[str, ...]


@dataclass(frozen=True)
class Failed:
    error: UploadError


RunOutcome = Uploaded | Stopped | MissingReferences | Failed


def missing_keys(client: Any, bucket: str, keys: Iterable[str]) -> list[str]:
    """The keys not in the bucket (one HEAD each: a master references a handful)."""
    missing = []
    for key in keys:
        try:
            client.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) not in NOT_FOUND_CODES:
                raise classify_error(error, bucket=bucket, key=key, operation="HeadObject") from error
            missing.append(key)
    return missing


def verify(client: Any, bucket: str, items: Sequence[UploadItem], single_put_limit: int) -> None:
    """The final objects (what players open first) have their source's size, and its MD5 when
    they went up in one PUT: RetryableUploadError otherwise (the retry uploads them again)."""
    for item in items:
        try:
            head = client.head_object(Bucket=bucket, Key=item.key)
        except ClientError as error:
            raise classify_error(error, bucket=bucket, key=item.key, operation="HeadObject") from error
        etag = str(head.get("ETag", "")).strip('"')
        size = int(head["ContentLength"])
        matches = size == item.size
        if matches and item.size < single_put_limit and "-" not in etag:
            matches = hashlib.md5(item.source.read(), usedforsecurity=False).hexdigest() == etag
        if not matches:
            raise RetryableUploadError(
                ErrorCode.UPLOAD_FAILED,
                f"The uploaded {item.key!r} does not match its source; it will be uploaded again.",
                f"bucket has {size} bytes, ETag {etag}; source has {item.size} bytes",
            )


def run_plan(
    plan: JobPlan,
    *,
    engine: TransferEngine,
    bucket: str,
    recorder: ProgressRecorder,
    stop_mode: Callable[[], StopMode | None],
) -> Uploaded | Stopped:
    """Upload the plan's phases in order (Uploaded or Stopped); raises the engine's UploadErrors."""
    listener: TransferListener = recorder
    for phase in plan.phases:
        result = engine.upload(
            bucket, phase, listener=listener, should_stop=stop_mode, checkpoints=recorder.checkpoints()
        )
        if result.status == RunStatus.STOPPED:
            return Stopped(result.stop_mode or StopMode.SUSPEND)
    if plan.phases:
        verify(engine.client, bucket, plan.phases[-1], engine.config.multipart_threshold)
    return Uploaded(plan)
