"""The local MongoDB wire server is a real MongoDB for the store: worker processes racing to claim
the same jobs through it win each job exactly once (the embedded store cannot even be shared)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient

from chalicelib.jobs.store import JobStore
from chalicelib.local.mongo_wire import WireServer
from tests.factories import hls_document

ROOT = Path(__file__).resolve().parents[2]
JOBS = 200
PROCESSES = 4

# One worker process: connect, say ready, wait for the go, try to claim every job, print its wins.
# Each process starts at its own offset and wraps around, so every job is tried by every process
# and each process meets the others on jobs they are claiming: a process that got the go first
# cannot simply run ahead over the same order and win everything.
CLAIMER = """
import json, sys
from pymongo import MongoClient
from chalicelib.jobs.store import JobStore
from chalicelib.worker.lease import claim
uri, database, owner, count, start = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
store = JobStore(MongoClient(uri, tz_aware=False)[database])
store.find("warm-up")
print("ready", flush=True)
sys.stdin.readline()
order = [(start + n) % count for n in range(count)]
print(json.dumps([f"race-{n}" for n in order if claim(store, f"race-{n}", owner, 120) is not None]))
"""


@pytest.fixture
def wire_store(wire_server: WireServer) -> Iterator[JobStore]:
    """A JobStore on a fresh database of the wire server, dropped afterwards."""
    name = f"race_{uuid.uuid4().hex[:8]}"
    client: MongoClient[dict[str, object]] = MongoClient(wire_server.uri(), tz_aware=False)
    store = JobStore(client[name])
    store.ensure_indexes()
    yield store
    client.drop_database(name)
    client.close()


def insert_waiting_job(store: JobStore, job_id: str) -> None:
    store.insert(hls_document(job_id, now=store.now()))


def test_worker_processes_racing_for_the_same_jobs_each_claim_a_job_once(
    wire_server: WireServer, wire_store: JobStore
) -> None:
    for n in range(JOBS):
        insert_waiting_job(wire_store, f"race-{n}")
    database = wire_store.collection.database.name
    claimers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                CLAIMER,
                wire_server.uri(),
                database,
                f"worker-{k}",
                str(JOBS),
                str(k * JOBS // PROCESSES),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for k in range(PROCESSES)
    ]
    assert [claimer.stdout.readline() for claimer in claimers if claimer.stdout] == ["ready\n"] * PROCESSES
    for claimer in claimers:  # all connected: go at once
        if claimer.stdin:
            claimer.stdin.write("go\n")
            claimer.stdin.flush()
    wins = [json.loads(claimer.communicate(timeout=120)[0]) for claimer in claimers]

    assert all(claimer.returncode == 0 for claimer in claimers)
    assert sum(len(won) for won in wins) == JOBS, [len(won) for won in wins]
    assert {job for won in wins for job in won} == {f"race-{n}" for n in range(JOBS)}
    assert sum(1 for won in wins if won) > 1, "one process won everything: the processes did not race"
    documents = list(wire_store.collection.find({}, {"attempts": 1, "history": 1}))
    assert len(documents) == JOBS
    assert {d["attempts"] for d in documents} == {1}
    assert all(sum(1 for h in d["history"] if h["to"] == "active") == 1 for d in documents)


def test_the_servers_fast_paths_keep_mongodbs_answers(wire_store: JobStore) -> None:
    """local_mongo/server.py skips mongoeco's full scans on insert and on `$pullAll` of strings:
    a repeated `_id` or `jobId` is still refused, and `$pullAll` still removes exactly its values."""
    from pymongo.errors import DuplicateKeyError

    jobs = wire_store.collection
    jobs.insert_one({"_id": "same", "jobId": "a", "keys": ["k1", "k2", "k1", 1, 2.0, {"k1": 1}]})
    for repeated in ({"_id": "same", "jobId": "b"}, {"jobId": "a"}):
        with pytest.raises(DuplicateKeyError):
            jobs.insert_one(repeated)

    jobs.update_one({"jobId": "a"}, {"$pullAll": {"keys": ["k1", "absent"]}})
    assert jobs.find_one({"jobId": "a"})["keys"] == ["k2", 1, 2.0, {"k1": 1}]
    jobs.update_one({"jobId": "a"}, {"$pullAll": {"keys": [2, {"k1": 1}]}})  # not all strings: mongoeco's own path
    assert jobs.find_one({"jobId": "a"})["keys"] == ["k2", 1]
