"""The engine's listener: progress and checkpoint in memory, handed to the supervisor to write.

The engine calls the listener on the job thread; the supervisor thread takes pending updates, so
every method holds one lock. Nothing here does I/O: 2,000 files make 2,000 calls into memory and
at most one MongoDB write per PROGRESS_INTERVAL_MS (plus the totals and the final write).

Counters are per run and include what the bucket already held (skipped files, resumed parts), so
the first write of a continuation or retry says how far the bucket really is. They are written
with `$max`: a new run that has not yet re-counted the skipped files never makes the bar go back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from chalicelib.logs import logger
from chalicelib.upload.engine import MultipartCheckpoint

# The last percent belongs to completion: a job shows 100 only once it is completed.
RUNNING_PROGRESS_CAP = 99


def percent(uploaded_bytes: int, total_bytes: int, uploaded_files: int, total_files: int) -> int:
    """Bytes-weighted progress, 0..99 while running (by files when there are no bytes to count)."""
    if total_bytes > 0:
        value = uploaded_bytes * 100 // total_bytes
    elif total_files > 0:
        value = uploaded_files * 100 // total_files
    else:
        value = 0
    return max(0, min(RUNNING_PROGRESS_CAP, value))


class ProgressRecorder:
    """Implements the engine's TransferListener; `take_update()` gives the MongoDB update to write."""

    def __init__(self, checkpoints: Iterable[dict[str, Any]] = ()) -> None:
        self._lock = threading.Lock()
        self._uploaded_bytes = 0
        self._uploaded_files = 0
        self._total_bytes = 0
        self._total_files = 0
        self._fields: dict[str, Any] = {}  # $set fields waiting to be written (totals, metadata)
        self._new_keys: list[str] = []  # keys this job PUT itself since the last write
        self._uploads = {doc["key"]: MultipartCheckpoint.from_document(doc) for doc in checkpoints}
        self._uploads_changed = False
        self._counters_changed = False
        self._persist: Callable[[], object] | None = None

    def persist_with(self, write: Callable[[], object]) -> None:
        """How to write pending updates at once (the supervisor's write): before any PUT, and when a
        multipart upload starts."""
        self._persist = write

    # What the worker knows ---------------------------------------------------------------------

    def set_totals(self, total_bytes: int, total_files: int, **fields: Any) -> None:
        """Totals and other job fields known once the job is planned (destinationPrefix, publicUrl...)."""
        with self._lock:
            self._total_bytes, self._total_files = total_bytes, total_files
            self._fields.update(totalBytes=total_bytes, totalFiles=total_files, **fields)

    def checkpoints(self) -> list[MultipartCheckpoint]:
        """Open multipart uploads as far as this run knows (what the next run resumes)."""
        with self._lock:
            return [replace(c, parts=dict(c.parts)) for c in self._uploads.values()]

    def has_pending(self) -> bool:
        with self._lock:
            return bool(self._fields or self._new_keys or self._uploads_changed or self._counters_changed)

    def take_update(self, *, force: bool = False) -> dict[str, Any] | None:
        """The MongoDB update for everything since the last call (None if nothing, unless forced)."""
        with self._lock:
            if not force and not (self._fields or self._new_keys or self._uploads_changed or self._counters_changed):
                return None
            update: dict[str, Any] = {
                "$max": {
                    "uploadedBytes": self._uploaded_bytes,
                    "uploadedFiles": self._uploaded_files,
                    "progress": percent(
                        self._uploaded_bytes, self._total_bytes, self._uploaded_files, self._total_files
                    ),
                }
            }
            fields = dict(self._fields)
            if self._uploads_changed:
                fields["multipartUploads"] = [c.to_document() for c in self._uploads.values()]
            if fields:
                update["$set"] = fields
            if self._new_keys:
                update["$addToSet"] = {"writtenKeys": {"$each": list(dict.fromkeys(self._new_keys))}}
            self._fields, self._new_keys = {}, []
            self._uploads_changed = self._counters_changed = False
            return update

    def requeue(self, update: Mapping[str, Any]) -> None:
        """`update` (from take_update) was not written: what it carried is pending again, under
        anything newer (the checkpoints are rewritten whole from the current ones)."""
        with self._lock:
            fields = dict(update.get("$set", {}))
            if fields.pop("multipartUploads", None) is not None:
                self._uploads_changed = True
            self._fields = {**fields, **self._fields}
            written = update.get("$addToSet", {}).get("writtenKeys", {}).get("$each", [])
            self._new_keys = [*written, *self._new_keys]
            self._counters_changed = True

    # TransferListener --------------------------------------------------------------------------

    def will_write(self, keys: Sequence[str]) -> None:
        """Record the keys as this job's before they are written: a crash right after a PUT and
        before the next progress write must not leave an object that cleanup does not know of
        (the retry would then skip it as identical bytes already there)."""
        with self._lock:
            self._new_keys.extend(keys)
        if self._persist is not None:
            self._persist()

    def bytes_done(self, key: str, count: int) -> None:
        with self._lock:
            self._uploaded_bytes += count
            self._counters_changed = True

    def file_done(self, key: str, size: int, skipped: bool) -> None:
        with self._lock:
            self._uploaded_files += 1
            self._counters_changed = True
            if not skipped:
                self._new_keys.append(key)

    def multipart_started(self, checkpoint: MultipartCheckpoint) -> None:
        """A new UploadId is written at once, before its first part: a crash must not orphan it."""
        with self._lock:
            known = self._uploads.get(checkpoint.key)
            self._uploads[checkpoint.key] = replace(checkpoint, parts=dict(checkpoint.parts))
            self._uploads_changed = True
        if known is None or known.upload_id != checkpoint.upload_id:
            self._write_now_or_next_tick()

    def _write_now_or_next_tick(self) -> None:
        """Write what is pending now; a failed write leaves it pending for the supervisor's retry."""
        if self._persist is None:
            return
        try:
            self._persist()
        except Exception as exc:  # the supervisor retries, and stops the job if the lease cannot be proven
            logger.warning("could not write a new multipart upload's checkpoint yet: %s", exc)

    def part_done(self, key: str, upload_id: str, part_number: int, etag: str) -> None:
        with self._lock:
            upload = self._uploads.get(key)
            if upload is not None and upload.upload_id == upload_id:
                upload.parts[part_number] = etag
                self._uploads_changed = True

    def multipart_completed(self, key: str, upload_id: str) -> None:
        self._forget(key, upload_id)

    def multipart_aborted(self, key: str, upload_id: str) -> None:
        self._forget(key, upload_id)

    def _forget(self, key: str, upload_id: str) -> None:
        with self._lock:
            upload = self._uploads.get(key)
            if upload is not None and upload.upload_id == upload_id:
                del self._uploads[key]
                self._uploads_changed = True
