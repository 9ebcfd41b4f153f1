"""Progress accounting: what a run reports, to whom, and the two listeners the engine ships."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.upload.items import MultipartCheckpoint


class TransferListener(Protocol):
    """What a run reports. Every method is called on the thread that called `upload()`, one at a
    time, never from the pool, so an implementation needs no locking for the engine's sake. Keep
    them quick: the scheduler waits for them (throttle database writes in the implementation).
    An exception raised here stops the run like an upload error would."""

    def will_write(self, keys: Sequence[str]) -> None:
        """The run is about to write these keys, which the bucket does not hold yet. Called once,
        before the first request: a caller that must never lose track of what it wrote (a crash
        right after a PUT) records them here."""

    def bytes_done(self, key: str, count: int) -> None:
        """`count` more bytes of `key` are in the bucket: sent now, or found already there
        (a skipped file, parts of a resumed upload), so progress reflects what the bucket holds."""

    def file_done(self, key: str, size: int, skipped: bool) -> None:
        """`key` is complete in the bucket; `skipped` when identical bytes were already there."""

    def multipart_started(self, checkpoint: MultipartCheckpoint) -> None:
        """A multipart upload was created, or resumed (`checkpoint.parts` = parts already there).
        Called before its first part is sent: a caller that must not lose the UploadId (a crash
        would orphan the upload) records it here."""

    def part_done(self, key: str, upload_id: str, part_number: int, etag: str) -> None:
        """One part was uploaded."""

    def multipart_completed(self, key: str, upload_id: str) -> None:
        """CompleteMultipartUpload succeeded: forget the checkpoint."""

    def multipart_aborted(self, key: str, upload_id: str) -> None:
        """The upload is no longer open (aborted by us, or found gone): forget the checkpoint."""


class NullListener:
    """Listens to nothing."""

    def will_write(self, keys: Sequence[str]) -> None:
        pass

    def bytes_done(self, key: str, count: int) -> None:
        pass

    def file_done(self, key: str, size: int, skipped: bool) -> None:
        pass

    def multipart_started(self, checkpoint: MultipartCheckpoint) -> None:
        pass

    def part_done(self, key: str, upload_id: str, part_number: int, etag: str) -> None:
        pass

    def multipart_completed(self, key: str, upload_id: str) -> None:
        pass

    def multipart_aborted(self, key: str, upload_id: str) -> None:
        pass


@dataclass
class RecordingListener:
    """Records every call, for tests and for callers that want a summary."""

    events: list[tuple[Any, ...]] = field(default_factory=list)
    total_bytes: int = 0

    def will_write(self, keys: Sequence[str]) -> None:
        self.events.append(("will_write", tuple(keys)))

    def bytes_done(self, key: str, count: int) -> None:
        self.total_bytes += count

    def file_done(self, key: str, size: int, skipped: bool) -> None:
        self.events.append(("file_done", key, size, skipped))

    def multipart_started(self, checkpoint: MultipartCheckpoint) -> None:
        self.events.append(("multipart_started", checkpoint))

    def part_done(self, key: str, upload_id: str, part_number: int, etag: str) -> None:
        self.events.append(("part_done", key, upload_id, part_number, etag))

    def multipart_completed(self, key: str, upload_id: str) -> None:
        self.events.append(("multipart_completed", key, upload_id))

    def multipart_aborted(self, key: str, upload_id: str) -> None:
        self.events.append(("multipart_aborted", key, upload_id))

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [event for event in self.events if event[0] == name]
