"""The supervisor when MongoDB fails or hangs: a failed tick is tried again and loses nothing it had
to write; a lease it can no longer prove stops the engine before another worker may take over."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from pymongo.errors import AutoReconnect

from chalicelib.jobs.store import JobStore
from chalicelib.realtime.events import LogNotifier
from chalicelib.upload.engine import MultipartCheckpoint
from chalicelib.worker.lease import claim
from chalicelib.worker.progress import ProgressRecorder
from chalicelib.worker.supervisor import StopReason, Supervisor

MIB = 1024 * 1024
OWNER = "worker-1"


class FaultyDatabase:
    """The test's database, whose jobs collection's `find_one_and_update` (every write the
    supervisor makes) can be made to fail a number of times, fail for good, or hang."""

    def __init__(self, database: Any) -> None:
        self._database = database
        self.failures_left = 0
        self.hang = False
        self.release = threading.Event()

    def __getitem__(self, name: str) -> Any:
        return FaultyCollection(self._database[name], self)


class FaultyCollection:
    def __init__(self, collection: Any, faults: FaultyDatabase) -> None:
        self._collection = collection
        self._faults = faults

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)

    def find_one_and_update(self, *args: Any, **kwargs: Any) -> Any:
        if self._faults.hang:
            self._faults.release.wait()  # a call that never answers (until the test ends)
            raise AutoReconnect("the call never answered")
        if self._faults.failures_left:
            self._faults.failures_left -= 1
            raise AutoReconnect("MongoDB went away")
        return self._collection.find_one_and_update(*args, **kwargs)


@pytest.fixture
def faults(database: Any) -> FaultyDatabase:
    return FaultyDatabase(database)


def claimed(store: JobStore, make_job: Any, lease_seconds: int) -> Any:
    job = make_job()
    taken = claim(store, job.job_id, OWNER, lease_seconds)
    assert taken is not None
    return taken


def supervisor_of(store: JobStore, job: Any, recorder: ProgressRecorder, lease_seconds: int) -> Supervisor:
    return Supervisor(
        store=store,
        queue=None,  # type: ignore[arg-type]  # no receipt handle: the queue is never called
        notifier=LogNotifier(),
        job=job,
        owner=OWNER,
        recorder=recorder,
        lease_seconds=lease_seconds,
        progress_interval_seconds=0.05,
        cancel_poll_seconds=0.05,
        remaining_ms=lambda: 900_000,
        margin_ms=1000,
        receipt_handle=None,
    )


def wait_until(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def test_a_failed_write_is_tried_again_and_still_carries_the_upload_id_and_written_keys(
    database: Any, faults: FaultyDatabase, make_job: Any
) -> None:
    job = claimed(JobStore(database), make_job, lease_seconds=30)
    faulty_store = JobStore(faults)
    recorder = ProgressRecorder()
    faults.failures_left = 2  # the first writes fail: the supervisor's ticks must go on

    with supervisor_of(faulty_store, job, recorder, lease_seconds=30) as supervisor:
        recorder.file_done("films/x/poster.jpg", 10, skipped=False)
        recorder.multipart_started(MultipartCheckpoint("films/x/video/movie.mp4", "upload-1", 5 * MIB, 12 * MIB))
        written = wait_until(lambda: JobStore(database).get(job.job_id).multipart_uploads, seconds=10)

    after = JobStore(database).get(job.job_id)
    assert written and supervisor.reason is None
    assert [upload["uploadId"] for upload in after.multipart_uploads] == ["upload-1"]
    assert after.written_keys == ["films/x/poster.jpg"]


def test_a_new_upload_is_written_at_once_and_a_failed_write_is_carried_by_the_next_one(
    database: Any, faults: FaultyDatabase, make_job: Any
) -> None:
    job = claimed(JobStore(database), make_job, lease_seconds=30)
    recorder = ProgressRecorder()
    supervisor = supervisor_of(JobStore(faults), job, recorder, lease_seconds=30)  # not started: no ticks
    faults.failures_left = 1
    recorder.multipart_started(MultipartCheckpoint("films/x/video/movie.mp4", "upload-1", 5 * MIB, 12 * MIB))
    assert faults.failures_left == 0  # the new UploadId's write was tried at once (and failed)

    supervisor.write_progress()

    after = JobStore(database).get(job.job_id)
    assert [upload["uploadId"] for upload in after.multipart_uploads] == ["upload-1"]


def test_a_renewal_that_hangs_stops_the_engine_before_the_lease_expires(
    database: Any, faults: FaultyDatabase, make_job: Any
) -> None:
    lease_seconds = 3
    store = JobStore(database)
    job = claimed(store, make_job, lease_seconds)
    faults.hang = True  # every write from now on hangs: the renewal never comes back

    try:
        with supervisor_of(JobStore(faults), job, ProgressRecorder(), lease_seconds) as supervisor:
            stopped = wait_until(supervisor.should_stop, seconds=3 * lease_seconds)
            stopped_at = store.now()
            faults.release.set()
    finally:
        faults.release.set()

    assert stopped and supervisor.reason == StopReason.LEASE_LOST
    assert job.lease_expires_at is not None and stopped_at < job.lease_expires_at


def test_renewals_that_keep_failing_stop_the_engine_and_report_the_failure(
    database: Any, faults: FaultyDatabase, make_job: Any
) -> None:
    lease_seconds = 3
    job = claimed(JobStore(database), make_job, lease_seconds)
    faults.failures_left = 1_000_000

    with supervisor_of(JobStore(faults), job, ProgressRecorder(), lease_seconds) as supervisor:
        stopped = wait_until(supervisor.should_stop, seconds=3 * lease_seconds)

    assert stopped and supervisor.reason == StopReason.LEASE_LOST
    assert isinstance(supervisor.error, AutoReconnect)
