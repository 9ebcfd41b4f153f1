"""The job store against SPEC 3's rules, driven by Hypothesis through random sequences of state changes.

Several workers (lease owners), the API and the clock act on a few jobs: create, claim, heartbeat,
progress, complete, fail (permanent and retryable), continue later, cancel request, the worker's
cancel, retry, lease expiry with takeover, and delete. Every action goes through the code the service
runs (JobStore, worker.lease, worker.outcomes.Finisher) over the embedded store, or MongoDB when
MONGODB_URI is set. A model built on chalicelib.jobs.states says what each action must do; after every
step the store must agree with it:

- a finished job is never overwritten: its document stays byte for byte until retry or delete;
- `canCancel` is true exactly for waiting and active jobs;
- the history holds the last 50 changes, in order, each one allowed and chained to the one before;
- attempts, retryCount, cancelRequested and the lease are what the rules say;
- progress never goes back, is at most 99 until completion, and exactly 100 once completed.
"""

from __future__ import annotations

import itertools
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule

from chalicelib.config import Settings
from chalicelib.embedded_mongo import embedded_database
from chalicelib.errors import Conflict, ErrorCode, NotFound, PermanentUploadError, RetryableUploadError
from chalicelib.jobs import states
from chalicelib.jobs.model import HISTORY_LIMIT, CreateJobRequest, JobStatus, UploadJob, new_job_document, utcnow
from chalicelib.jobs.store import JobStore
from chalicelib.realtime.events import LogNotifier
from chalicelib.worker import lease
from chalicelib.worker.outcomes import Finisher, cancel_waiting
from chalicelib.worker.progress import RUNNING_PROGRESS_CAP, ProgressRecorder, percent

WAITING, ACTIVE, COMPLETED, FAILED, CANCELLED = (
    states.WAITING,
    states.ACTIVE,
    states.COMPLETED,
    states.FAILED,
    states.CANCELLED,
)
LEASE_SECONDS = 60
TOTAL_BYTES, TOTAL_FILES = 1000, 4
MAX_JOBS = 4  # few jobs, so that actions often meet the same one
LONG_JOB_TURNS = (HISTORY_LIMIT - 2) // 2  # 1 + 2 * 24 = 49 entries: the next two changes pass the cap
WORKERS = ("worker-a", "worker-b", "worker-c")
# Who acts on a job: half the time the worker holding its lease (None), else any worker, maybe a stale one.
actors = st.one_of(st.none(), st.sampled_from(WORKERS))
ENDINGS = ("complete", "fail_permanently", "fail_retryably", "continue_later", "worker_cancels")
SETTINGS = Settings(stage="test", lease_seconds=LEASE_SECONDS)
SPEC = CreateJobRequest.model_validate(
    {
        "jobType": "upload-hls-to-s3",
        "resourceType": "film",
        "resourceId": "64b7f0c2a1b2c3d4e5f60718",
        "hlsDir": "films/x/720p",
        "label": "720p",
    }
)


class Clock:
    """The store's clock: a step moves it a millisecond; lease expiry moves it past the lease."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class SentMessages:
    """The queue as the Finisher sees it: re-sends are recorded, nothing is delivered."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    def send(self, *args: Any, **kwargs: Any) -> None:
        self.sent.append((*args, kwargs))


@dataclass
class Run:
    """One worker's turn on one job: the lease owner of its claim, the job as claimed, its recorder."""

    owner: str
    claimed: UploadJob
    recorder: ProgressRecorder
    uploaded: int = 0


@dataclass
class Expected:
    """What the rules say a job must look like."""

    max_attempts: int
    status: JobStatus = WAITING
    attempts: int = 0
    retry_count: int = 0
    cancel_requested: bool = False
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    progress: int = 0
    history: list[tuple[str | None, str]] = field(default_factory=lambda: [(None, WAITING.value)])
    finished_document: dict[str, Any] | None = None

    def enter(self, target: JobStatus) -> None:
        assert states.allowed(self.status, target), f"the model itself broke SPEC 3: {self.status} -> {target}"
        event(f"{self.status} -> {target}")  # --hypothesis-show-statistics: what the runs covered
        self.history.append((self.status.value, target.value))
        self.status = target
        if target != ACTIVE:
            self.lease_owner = self.lease_expires_at = None


class JobStoreMachine(RuleBasedStateMachine):
    jobs = Bundle("jobs")

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.database, self._drop = fresh_database()
        self.store = JobStore(self.database, clock=self.clock)
        self.store.ensure_indexes()
        self.queue = SentMessages()
        self.expected: dict[str, Expected] = {}
        self.runs: dict[tuple[str, str], Run] = {}
        self.created = 0
        self.steps = 0
        self.long_job = False

    def teardown(self) -> None:
        event(f"steps: {self.steps // 10 * 10}+")
        self._drop()

    # Helpers -----------------------------------------------------------------------------------

    def finisher(self, run: Run) -> Finisher:
        return Finisher(
            store=self.store,
            queue=self.queue,  # type: ignore[arg-type]
            notifier=LogNotifier(),
            settings=SETTINGS,
            engine=None,  # type: ignore[arg-type]  # no multipart upload is ever open here
            job=run.claimed,
            owner=run.owner,
            recorder=run.recorder,
        )

    def run_of(self, job_id: str, worker: str | None) -> Run | None:
        """The turn of `worker` on the job (maybe one that lost its lease), or with None, the lease holder's."""
        if worker is not None:
            return self.runs.get((worker, job_id))
        expected = self.expected.get(job_id)
        holder = expected.lease_owner if expected is not None else None
        return next((run for run in self.runs.values() if holder is not None and run.owner == holder), None)

    def job_in(self, status: JobStatus, job_id: str) -> str:
        """The drawn job if it is in `status`, else the first that is: actions that need one find one."""
        if job_id in self.expected and self.expected[job_id].status == status:
            return job_id
        return next((other for other, job in sorted(self.expected.items()) if job.status == status), job_id)

    def holds_lease(self, job_id: str, run: Run) -> bool:
        expected = self.expected.get(job_id)
        return expected is not None and expected.status == ACTIVE and expected.lease_owner == run.owner

    def finished(self, job_id: str) -> None:
        """Remember the finished document: nothing may change it but retry and delete."""
        self.expected[job_id].finished_document = self.store.collection.find_one({"jobId": job_id})

    def step(self) -> None:
        self.steps += 1
        self.clock.advance(0.001)

    # Rules -------------------------------------------------------------------------------------

    @initialize(target=jobs)
    def first_job(self) -> str:
        return self.create(max_attempts=2)

    @precondition(lambda self: len(self.expected) < MAX_JOBS)
    @rule(target=jobs, max_attempts=st.integers(1, 3), earlier_turns=st.sampled_from((0, 0, LONG_JOB_TURNS)))
    def create(self, max_attempts: int, earlier_turns: int = 0) -> str:
        """A new job; with `earlier_turns`, one that has already been claimed and continued that many times,
        so that its history is one or two changes away from the cap."""
        self.step()
        document = new_job_document(SPEC, bucket="studio-media", max_attempts=max_attempts, now=self.clock.now)
        self.created += 1
        document["jobId"] = job_id = f"job-{self.created}"
        expected = Expected(max_attempts=max_attempts)
        for _ in range(earlier_turns):
            for source, target in ((WAITING, ACTIVE), (ACTIVE, WAITING)):
                self.step()
                document["history"].append({"at": self.clock.now, "from": source.value, "to": target.value})
                expected.history.append((source.value, target.value))
        _, created = self.store.insert(document)
        assert created
        self.expected[job_id] = expected
        return job_id

    @rule(job_id=jobs, worker=st.sampled_from(WORKERS))
    def claim_one(self, job_id: str, worker: str) -> None:
        """A worker takes a message for the drawn job, whatever its state, and is then still at work."""
        self.claim(job_id, worker)

    @rule(
        job_id=jobs,
        worker=st.sampled_from(WORKERS),
        reports=st.lists(st.integers(0, TOTAL_BYTES // 2), max_size=3),
        ending=st.sampled_from((*ENDINGS, None)),
    )
    def worker_turn(self, job_id: str, worker: str, reports: list[int], ending: str | None) -> None:
        """A worker takes a waiting job, reports progress, and ends its turn (None: it is still at work)."""
        job_id = self.job_in(WAITING, job_id)
        self.claim(job_id, worker)
        run = self.runs.get((worker, job_id))
        if run is None or not self.holds_lease(job_id, run):
            return
        for sent in reports:
            self.report(job_id, worker, sent)
        if ending is not None:
            getattr(self, ending)(job_id, worker)

    def claim(self, job_id: str, worker: str) -> None:
        self.step()
        owner = lease.new_owner(worker)
        claimed = lease.claim(self.store, job_id, owner, LEASE_SECONDS)
        expected = self.expected.get(job_id)
        may = expected is not None and expected.status == WAITING and not expected.cancel_requested
        assert (claimed is not None) == may, f"claim of {expected} answered {claimed}"
        if claimed is None or expected is None:
            return
        expected.enter(ACTIVE)
        expected.attempts += 1
        expected.lease_owner, expected.lease_expires_at = owner, self.clock.now + timedelta(seconds=LEASE_SECONDS)
        recorder = ProgressRecorder()
        recorder.set_totals(TOTAL_BYTES, TOTAL_FILES)
        self.runs[(worker, job_id)] = Run(owner, claimed, recorder)

    def heartbeat(self, job_id: str, worker: str | None) -> None:
        run = self.run_of(job_id, worker)
        if run is None:
            return
        self.step()
        holds = self.holds_lease(job_id, run)
        renewed = lease.renew(self.store, job_id, run.owner, LEASE_SECONDS)
        assert (renewed is not None) == holds
        if renewed is not None:
            self.expected[job_id].lease_expires_at = self.clock.now + timedelta(seconds=LEASE_SECONDS)

    def progress(self, job_id: str, worker: str | None, sent: int) -> None:
        """What the supervisor writes: the run's counters with `$max`, renewing the lease in the same write."""
        run = self.run_of(job_id, worker)
        if run is None:
            return
        self.step()
        sent = min(sent, TOTAL_BYTES - run.uploaded)
        run.recorder.bytes_done("k", sent)
        run.uploaded += sent
        holds = self.holds_lease(job_id, run)
        written = lease.renew(self.store, job_id, run.owner, LEASE_SECONDS, run.recorder.take_update(force=True))
        assert (written is not None) == holds
        if written is not None:
            expected = self.expected[job_id]
            expected.lease_expires_at = self.clock.now + timedelta(seconds=LEASE_SECONDS)
            expected.progress = max(expected.progress, percent(run.uploaded, TOTAL_BYTES, 0, TOTAL_FILES))

    def complete(self, job_id: str, worker: str | None) -> None:
        run = self.run_of(job_id, worker)
        if run is None:
            return
        self.step()
        holds = self.holds_lease(job_id, run)
        result = self.finisher(run).complete(
            public_url="https://cdn/x", total_bytes=TOTAL_BYTES, total_files=TOTAL_FILES
        )
        assert (result.status == COMPLETED) == holds, result
        if holds:
            expected = self.expected[job_id]
            expected.enter(COMPLETED)
            expected.progress = 100
            self.finished(job_id)

    def fail_permanently(self, job_id: str, worker: str | None) -> None:
        run = self.run_of(job_id, worker)
        if run is None:
            return
        self.step()
        holds = self.holds_lease(job_id, run)
        error = PermanentUploadError(ErrorCode.SOURCE_NOT_FOUND, "The source folder is gone.")
        result = self.finisher(run).fail(error)
        assert (result.status == FAILED) == holds, result
        if holds:
            self.expected[job_id].enter(FAILED)
            self.finished(job_id)

    def fail_retryably(self, job_id: str, worker: str | None) -> None:
        """Attempts left: back to waiting (a requested cancel wins); none left: failed."""
        run = self.run_of(job_id, worker)
        if run is None:
            return
        self.step()
        holds = self.holds_lease(job_id, run)
        result = self.finisher(run).retry_or_fail(RetryableUploadError(ErrorCode.NETWORK, "The network failed."))
        if not holds:
            assert result.status is None, result
            return
        expected = self.expected[job_id]
        if expected.attempts >= expected.max_attempts:
            target = FAILED
        else:
            target = CANCELLED if expected.cancel_requested else WAITING
        assert result.status == target, (result, expected)
        expected.enter(target)
        if target != WAITING:
            self.finished(job_id)

    def continue_later(self, job_id: str, worker: str | None) -> None:
        """Lambda time runs short: back to waiting without spending the attempt (a requested cancel wins)."""
        run = self.run_of(job_id, worker)
        if run is None:
            return
        self.step()
        holds = self.holds_lease(job_id, run)
        result = self.finisher(run).continue_later()
        if not holds:
            assert result.status is None, result
            return
        expected = self.expected[job_id]
        target = CANCELLED if expected.cancel_requested else WAITING
        assert result.status == target, (result, expected)
        expected.enter(target)
        if target == WAITING:
            expected.attempts -= 1
        else:
            self.finished(job_id)

    @rule(job_id=jobs, worker=actors, sent=st.integers(0, TOTAL_BYTES // 2))
    def report(self, job_id: str, worker: str | None, sent: int) -> None:
        """A heartbeat (nothing new to say) or a progress write; both renew the lease."""
        if worker is None:
            job_id = self.job_in(ACTIVE, job_id)
        if sent:
            self.progress(job_id, worker, sent)
        else:
            self.heartbeat(job_id, worker)

    @rule(job_id=jobs, worker=actors, ending=st.sampled_from(ENDINGS))
    def end_turn(self, job_id: str, worker: str | None, ending: str) -> None:
        """The worker's turn ends: completed, failed, retried, continued or cancelled."""
        if worker is None:
            job_id = self.job_in(ACTIVE, job_id)
        getattr(self, ending)(job_id, worker)

    # 25 turns make 51 history entries: one example of many_turns is enough to pass the cap.
    @precondition(lambda self: not self.long_job)
    @rule(job_id=jobs, worker=st.sampled_from(WORKERS), turns=st.integers(1, 26))
    def many_turns(self, job_id: str, worker: str, turns: int) -> None:
        """A long job: claimed and continued again and again (what fills the history past its cap).
        Once per run: it is the slowest rule."""
        self.long_job = True
        for _ in range(turns):
            self.claim(job_id, worker)
            if (worker, job_id) not in self.runs or not self.holds_lease(job_id, self.runs[(worker, job_id)]):
                return
            self.continue_later(job_id, worker)

    @rule(job_id=jobs)
    def request_cancel(self, job_id: str) -> None:
        """The API's cancel: waiting → cancelled at once, active → cancelRequested, else 404 or 409."""
        self.step()
        expected = self.expected.get(job_id)
        if expected is None:
            with pytest.raises(NotFound):
                self.store.cancel(job_id)
            return
        if not states.can_cancel(expected.status):
            with pytest.raises(Conflict):
                self.store.cancel(job_id)
            return
        job = self.store.cancel(job_id)
        if expected.status == WAITING:
            expected.enter(CANCELLED)
            self.finished(job_id)
        else:
            expected.cancel_requested = True
        assert job.status == expected.status

    def worker_cancels(self, job_id: str, worker: str | None) -> None:
        """The worker holding the job stops and finishes the cancel."""
        run = self.run_of(job_id, worker)
        if run is None:
            return
        self.step()
        holds = self.holds_lease(job_id, run)
        result = self.finisher(run).cancel()
        assert (result.status == CANCELLED) == holds, result
        if holds:
            self.expected[job_id].enter(CANCELLED)
            self.finished(job_id)

    @rule(job_id=jobs, worker=st.sampled_from(WORKERS))
    def worker_cancels_waiting(self, job_id: str, worker: str) -> None:
        """A message for a waiting job whose cancel was requested while active: the worker finishes it."""
        job = self.store.find(job_id)
        if job is None:
            return
        self.step()
        expected = self.expected[job_id]
        result = cancel_waiting(self.store, LogNotifier(), None, job, lease.new_owner(worker))  # type: ignore[arg-type]
        may = expected.status == WAITING and expected.cancel_requested
        assert (result.status == CANCELLED) == may, (result, expected)
        if may:
            expected.enter(CANCELLED)
            self.finished(job_id)

    @rule(job_id=jobs)
    def retry(self, job_id: str) -> None:
        """The API's retry: failed or cancelled → waiting, retryCount + 1, attempts back to 0."""
        self.step()
        expected = self.expected.get(job_id)
        if expected is None:
            with pytest.raises(NotFound):
                self.store.retry(job_id, client_id=None)
            return
        if expected.status not in states.RETRYABLE:
            with pytest.raises(Conflict):
                self.store.retry(job_id, client_id=None)
            return
        job = self.store.retry(job_id, client_id=None)
        assert job.status == WAITING
        expected.enter(WAITING)
        expected.attempts, expected.cancel_requested, expected.finished_document = 0, False, None
        expected.retry_count += 1

    @rule()
    def leases_expire(self) -> None:
        """Time passes beyond every lease taken so far (workers died or stalled)."""
        self.clock.advance(LEASE_SECONDS + 1)

    @rule(job_id=jobs, worker=st.sampled_from(WORKERS), died=st.booleans())
    def take_over(self, job_id: str, worker: str, died: bool) -> None:
        """A redelivered message finds the job active with an expired lease (its worker `died` a lease ago,
        or leases expired earlier): waiting if attempts are left (or a cancel is requested), else failed STALLED."""
        job_id = self.job_in(ACTIVE, job_id)
        if died:
            self.leases_expire()
        job = self.store.find(job_id)
        if job is None or not lease.lease_expired(job, self.store):
            return
        self.step()
        expected = self.expected[job_id]
        assert expected.status == ACTIVE and expected.lease_expires_at is not None
        assert expected.lease_expires_at < self.clock.now
        event("an expired lease taken over")
        released = lease.release_expired(self.store, job, lease.new_owner(worker))
        assert released is not None
        target = WAITING if expected.attempts < expected.max_attempts or expected.cancel_requested else FAILED
        assert released.status == target
        expected.enter(target)
        if target == FAILED:
            assert released.error_code == ErrorCode.STALLED
            self.finished(job_id)

    @rule(job_id=jobs)
    def delete(self, job_id: str) -> None:
        """Only finished jobs are deleted (the store's guarded delete); the others stay as they are."""
        self.step()
        expected = self.expected.get(job_id)
        deleted = self.store.delete(job_id, states.FINISHED)
        if expected is None or not states.is_finished(expected.status):
            assert deleted is None
            return
        assert deleted is not None and deleted.status == expected.status
        del self.expected[job_id]

    # Invariants --------------------------------------------------------------------------------

    @invariant()
    def the_store_agrees_with_the_rules(self) -> None:
        documents = {d["jobId"]: d for d in self.store.collection.find({})}
        assert sorted(documents) == sorted(self.expected), "a job was lost, or one the rules deleted is still there"
        for job_id, expected in self.expected.items():
            document = documents[job_id]
            assert document["status"] == expected.status.value, job_id
            assert document["canCancel"] is states.can_cancel(expected.status)
            assert document["canCancel"] is (expected.status in (WAITING, ACTIVE))
            assert document.get("attempts", 0) == expected.attempts, job_id
            assert document.get("retryCount", 0) == expected.retry_count, job_id
            assert bool(document.get("cancelRequested")) == expected.cancel_requested, job_id
            assert document.get("leaseOwner") == expected.lease_owner, job_id
            assert_history(document["history"], expected)
            assert_progress(document, expected)
            if expected.finished_document is not None:
                assert document == expected.finished_document, f"finished job {job_id} was overwritten"


def assert_history(history: list[dict[str, Any]], expected: Expected) -> None:
    assert len(history) <= HISTORY_LIMIT
    if len(expected.history) > HISTORY_LIMIT:
        event("a history past its cap")
    assert [(entry.get("from"), entry["to"]) for entry in history] == expected.history[-HISTORY_LIMIT:]
    times = [entry["at"] for entry in history]
    assert times == sorted(times), "the history is out of order"
    for before, after in itertools.pairwise(history):
        assert after["from"] == before["to"], "a state change is missing from the history"
        assert states.allowed(after["from"], after["to"])
    assert history[-1]["to"] == expected.status.value


def assert_progress(document: dict[str, Any], expected: Expected) -> None:
    assert document.get("progress", 0) == expected.progress
    if expected.status == COMPLETED:
        assert document["progress"] == 100
    else:
        assert document.get("progress", 0) <= RUNNING_PROGRESS_CAP


def fresh_database() -> tuple[Any, Any]:
    """A database of its own for one run of the machine, and how to drop it."""
    name = f"test_sm_{uuid.uuid4().hex[:12]}"
    uri = os.environ.get("MONGODB_URI")
    if not uri:
        return embedded_database(name), lambda: None
    from pymongo import MongoClient

    client: Any = MongoClient(uri, tz_aware=False)

    def drop() -> None:
        client.drop_database(name)
        client.close()

    return client[name], drop


# Bounded so the machine runs in seconds: 80 runs of up to 30 steps, over at most four jobs at a time.
JobStoreMachine.TestCase.settings = settings(
    max_examples=80,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_the_job_store_follows_the_state_rules = JobStoreMachine.TestCase
