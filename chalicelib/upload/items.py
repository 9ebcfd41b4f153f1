"""The engine's vocabulary: what a run is given (items, checkpoints, settings) and what it gives back."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from chalicelib.config import Settings
from chalicelib.jobs.layout import acl_for, headers_for
from chalicelib.upload.cancellation import StopMode
from chalicelib.upload.concurrency import ConcurrencySummary
from chalicelib.upload.parts import MIB
from chalicelib.upload.sources import SourceFile


@dataclass(frozen=True)
class UploadItem:
    """One file to put at `key`. Build it with `upload_item` for the layout's headers."""

    key: str
    source: SourceFile
    content_type: str
    cache_control: str

    @property
    def size(self) -> int:
        return self.source.size


def upload_item(key: str, source: SourceFile, *, master: bool = False) -> UploadItem:
    """An item with the Content-Type and Cache-Control the layout gives `key`."""
    headers = headers_for(key, master=master)
    return UploadItem(key, source, headers.content_type, headers.cache_control)


@dataclass(frozen=True)
class MultipartCheckpoint:
    """An open multipart upload, as a job checkpoints it to resume later.

    `parts` (part number -> ETag) is informational: on resume ListParts is the truth, and a part
    listed here but not there is sent again.
    """

    key: str
    upload_id: str
    part_size: int
    size: int
    parts: dict[int, str] = field(default_factory=dict)

    def to_document(self) -> dict[str, Any]:
        """camelCase, string-keyed: storable in the job's `multipartUploads`."""
        return {
            "key": self.key,
            "uploadId": self.upload_id,
            "partSize": self.part_size,
            "size": self.size,
            "parts": [{"partNumber": n, "etag": e} for n, e in sorted(self.parts.items())],
        }

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> MultipartCheckpoint:
        return cls(
            key=document["key"],
            upload_id=document["uploadId"],
            part_size=int(document["partSize"]),
            size=int(document["size"]),
            parts={int(p["partNumber"]): p["etag"] for p in document.get("parts", [])},
        )


class RunStatus(StrEnum):
    COMPLETED = "completed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class UploadResult:
    """How a run ended.

    `open_uploads`: multipart uploads still open when the run ended: on SUSPEND those it was
    working on, and always the checkpoints it was given for keys outside the batch (on CANCEL,
    only those whose abort failed). The caller keeps them in its checkpoint.
    `concurrency`: how the run's limit on requests in flight moved (upload/concurrency.py).
    """

    status: RunStatus
    written: tuple[str, ...]
    skipped: tuple[str, ...]
    open_uploads: tuple[MultipartCheckpoint, ...] = ()
    stop_mode: StopMode | None = None
    concurrency: ConcurrencySummary | None = None

    @property
    def done(self) -> tuple[str, ...]:
        """Keys that are in the bucket with the source's bytes (written now or already there)."""
        return self.written + self.skipped


@dataclass(frozen=True)
class EngineConfig:
    """`concurrency` requests in flight per run to start with; the adaptive rule
    (upload/concurrency.py) may raise it up to `concurrency_max`. A `concurrency_max` at or below
    `concurrency` (the default here) keeps it fixed."""

    concurrency: int = 32
    concurrency_max: int = 0
    part_concurrency: int = 8
    part_size: int = 8 * MIB
    multipart_threshold: int = 8 * MIB
    acl: str = "public-read"

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineConfig:
        return cls(
            concurrency=settings.upload_concurrency,
            concurrency_max=settings.upload_concurrency_max,
            part_concurrency=settings.part_concurrency,
            part_size=settings.part_size,
            multipart_threshold=settings.multipart_threshold,
            acl=acl_for(settings.public_read),
        )

    @property
    def ceiling(self) -> int:
        """The most requests one run may keep in flight."""
        return max(self.concurrency, self.concurrency_max)

    @property
    def max_open_multipart(self) -> int:
        """Enough open uploads to keep `concurrency` parts in flight, no more (bounds checkpoints
        too). From the starting level, not the adaptive one: parts are bandwidth bound, not latency
        bound, and this keeps their memory at part size x concurrency however high the limit goes."""
        return max(1, math.ceil(self.concurrency / self.part_concurrency))

    @property
    def memory_budget(self) -> int:
        """Bytes of bodies a run may hold once more than `concurrency` requests are in flight."""
        return self.concurrency * self.part_size
