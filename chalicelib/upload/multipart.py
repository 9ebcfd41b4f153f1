"""A file at or above the multipart threshold: begin (skip, resume or create), parts, complete, abort.

The functions here run on pool threads and touch nothing but their arguments and the client;
`OpenUpload` is the scheduler's record of one upload, touched by the job thread only.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.upload.concurrency import is_throttle_answer
from chalicelib.upload.failures import classify_error
from chalicelib.upload.items import MultipartCheckpoint, UploadItem
from chalicelib.upload.parts import choose_part_size, content_md5, md5, part_range
from chalicelib.upload.resume import expected_etag, listed_parts


@dataclass
class OpenUpload:
    """Scheduler-side state of one multipart upload (touched by the job thread only)."""

    item: UploadItem
    checkpoint: MultipartCheckpoint | None
    part_size: int = 0
    upload_id: str | None = None  # None until the begin unit has returned
    todo: deque[int] = field(default_factory=deque)
    done: dict[int, str] = field(default_factory=dict)
    in_flight: int = 0
    completing: bool = False


@dataclass(frozen=True)
class Begun:
    """What a begin unit found: skip the file, or an open upload and the parts already there."""

    skipped: bool
    part_size: int = 0
    upload_id: str = ""
    found: dict[int, str] = field(default_factory=dict)
    gone: tuple[str, ...] = ()  # earlier upload ids that are no longer open


def begin(
    client: Any,
    bucket: str,
    item: UploadItem,
    checkpoint: MultipartCheckpoint | None,
    remote: tuple[int, str] | None,
    *,
    part_size: int,
    acl: str,
    halt: threading.Event,
) -> Begun:
    """Skip the file if the bucket has it (`remote`: its size and ETag there); else resume the
    checkpoint's upload if it is still open and fits the file; else create a new one. Comparing
    with the bucket's copy reads the whole source: it stops (UnitInterrupted) as soon as `halt` is set."""
    usable = checkpoint if checkpoint is not None and checkpoint.size == item.size else None
    chosen = usable.part_size if usable else choose_part_size(item.size, part_size)
    if remote is not None and remote[0] == item.size:
        etag = remote[1]
        if expected_etag(item.source, chosen, etag, halt.is_set) == etag:
            return Begun(skipped=True, gone=_drop(client, bucket, checkpoint))
    if usable is not None:
        found = listed_parts(client, bucket, item, usable)
        if found is not None:
            return Begun(False, chosen, usable.upload_id, found)
    response = client.create_multipart_upload(
        Bucket=bucket,
        Key=item.key,
        ContentType=item.content_type,
        CacheControl=item.cache_control,
        ACL=acl,
    )
    gone = (usable.upload_id,) if usable is not None else _drop(client, bucket, checkpoint)
    return Begun(False, chosen, response["UploadId"], gone=gone)


def _drop(client: Any, bucket: str, checkpoint: MultipartCheckpoint | None) -> tuple[str, ...]:
    """Abort a checkpointed upload we will not continue; its id, to report it gone."""
    if checkpoint is None:
        return ()
    abort(client, bucket, checkpoint.key, checkpoint.upload_id)
    return (checkpoint.upload_id,)


def upload_part(client: Any, bucket: str, item: UploadItem, upload_id: str, part_size: int, number: int) -> str:
    """Send one part; its ETag."""
    offset, length = part_range(number, item.size, part_size)
    data = item.source.read(offset, length)  # read now, not when scheduled: bounded memory
    response = client.upload_part(
        Bucket=bucket,
        Key=item.key,
        UploadId=upload_id,
        PartNumber=number,
        Body=data,
        ContentMD5=content_md5(md5(data).digest()),
    )
    etag: str = response["ETag"]
    return etag


def complete(client: Any, bucket: str, key: str, upload_id: str, parts: dict[int, str]) -> None:
    client.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in sorted(parts.items())]},
    )


# The adaptive engine has botocore leave throttling answers to it (failures.py), and an abort is no unit
# the scheduler sends again: a throttled abort is retried here, or the upload would stay open.
ABORT_ATTEMPTS = 4


def abort(client: Any, bucket: str, key: str, upload_id: str) -> bool:
    """Abort one multipart upload; False when it was already gone."""
    for attempt in range(1, ABORT_ATTEMPTS + 1):
        try:
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            return True
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code == "NoSuchUpload":
                return False
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if attempt == ABORT_ATTEMPTS or not is_throttle_answer(code, status):
                raise classify_error(error, bucket=bucket, key=key, operation="AbortMultipartUpload") from error
            time.sleep(0.1 * 2**attempt)
    return True  # not reached: the last attempt returns or raises
