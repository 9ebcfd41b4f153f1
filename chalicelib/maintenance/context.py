"""What maintenance needs from the container: `chalicelib.services.Services` provides all of it."""

from __future__ import annotations

from typing import Any, Protocol

from chalicelib.config import Settings
from chalicelib.jobs.store import JobStore
from chalicelib.queue import JobQueue
from chalicelib.realtime.events import Notifier

ACTOR = "maintenance"


class MaintenanceServices(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> JobStore: ...

    @property
    def queue(self) -> JobQueue: ...

    @property
    def notifier(self) -> Notifier: ...

    @property
    def s3(self) -> Any:
        """The boto3 S3 client of the Spaces bucket (also used for s3:// staging sources)."""
        ...
