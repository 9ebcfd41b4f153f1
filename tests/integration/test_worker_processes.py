"""`LOCAL_WORKER_PROCESSES=1`: the local runtime's queue pollers as OS processes, killed for real (issue 11).

The runtime runs as `make run` does (moto's server, the HTTP API, the WebSocket gateway, schedules),
its store a MongoDB wire server in another process (`wire_mongodb_uri`), each poller a
`python -m chalicelib.local.worker` process. Jobs go in over HTTP and are followed over a WebSocket.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from websockets.sync.client import connect

from chalicelib.auth import issue_token
from chalicelib.errors import ConfigurationError
from chalicelib.local.api_client import ApiClient
from chalicelib.local.runtime import RECEIVE_WAIT_SECONDS, LocalRuntime
from chalicelib.worker.supervisor import VISIBILITY_MARGIN_SECONDS
from tests.runtimes import local_runtime

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
WAIT = 120.0  # a deadline against hanging: a redelivery after a kill waits out a visibility timeout
FILM = "films/64b7f0c2a1b2c3d4e5f60718"
# Short leases so that a killed worker's job is taken over within seconds; sequential, small parts so
# that a whole video takes long enough to be killed in the middle of it.
SETTINGS = {
    "LEASE_SECONDS": "10",
    "PROGRESS_INTERVAL_MS": "100",
    "PART_SIZE_MB": "5",
    "MULTIPART_THRESHOLD_MB": "5",
    "UPLOAD_CONCURRENCY": "1",
    "UPLOAD_CONCURRENCY_MAX": "1",  # fixed: no adaptive growth
    "PART_CONCURRENCY": "1",
}


@contextlib.contextmanager
def running(source_root: Path, mongodb_uri: str | None) -> Iterator[LocalRuntime]:
    """The runtime with worker processes on free ports, one poller per queue; the environment restored after."""
    database = f"procs_{uuid.uuid4().hex[:12]}"
    environment = {"STAGE": "local", "MONGODB_DB": database, **SETTINGS}
    if mongodb_uri:
        environment["MONGODB_URI"] = mongodb_uri
    unset = () if mongodb_uri else ("MONGODB_URI",)
    try:
        with local_runtime(source_root, environment, unset=unset, worker_processes=True) as runtime:
            yield runtime
    finally:
        if mongodb_uri:
            from pymongo import MongoClient

            with MongoClient(mongodb_uri) as client:
                client.drop_database(database)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory, wire_mongodb_uri: str) -> Iterator[LocalRuntime]:
    with running(tmp_path_factory.mktemp("sources"), wire_mongodb_uri) as started:
        yield started


def api_of(runtime: LocalRuntime) -> ApiClient:
    return ApiClient(runtime.api_url, issue_token(runtime.services.settings.auth_jwt_secret))


def s3_of(runtime: LocalRuntime) -> Any:
    return boto3.session.Session().client("s3", endpoint_url=runtime.options.aws_endpoint)


def wait_until(condition: Callable[[], Any], what: str, timeout: float = WAIT, state: Callable[[], Any] = str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}: {state()}")


def command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def pid_of(owner: str) -> int:
    """The process of a worker lease owner: `worker-{pid}-{turn}`."""
    return int(owner.split("-")[1])


def claimed_by(job: dict[str, Any]) -> list[int]:
    """The processes that claimed the job (moved it to active), in order, from its history."""
    return [pid_of(entry["actor"]) for entry in job["history"] if entry["to"] == "active"]


def stored_objects(runtime: LocalRuntime, job_id: str) -> dict[str, bytes]:
    s3 = s3_of(runtime)
    bucket = runtime.services.settings.spaces_bucket
    keys = runtime.services.store.get(job_id).written_keys
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def test_a_job_runs_in_a_worker_process_and_its_events_reach_a_websocket_client(runtime: LocalRuntime) -> None:
    workers = runtime.worker_processes()
    assert {worker.queue for worker in workers} >= {"upload-hls-to-s3", "upload-master-playlist"}
    # Seen once in CI: a worker had exited within its first second (a zombie, empty command line) and
    # was about to be replaced. A replaced worker is the runtime doing its job; what `ps` must show is
    # each live worker's command line, so wait for the pool to have every one alive.
    wait_until(
        lambda: all(worker.alive() for worker in workers),
        "every worker process to be alive",
        state=lambda: {worker.name: worker.exit_codes for worker in workers},
    )
    for worker in workers:
        assert worker.pid is not None and "chalicelib.local.worker" in command_line(worker.pid)
    rendition = runtime.options.source_root / "film" / "480p"
    rendition.mkdir(parents=True)
    segments = {f"seg{n}.ts": os.urandom(300_000) for n in range(3)}
    for name, data in segments.items():
        (rendition / name).write_bytes(data)
    playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n" + "".join(f"#EXTINF:4.0,\n{n}\n" for n in segments)
    (rendition / "index.m3u8").write_text(playlist + "#EXT-X-ENDLIST\n")
    api = api_of(runtime)
    body = {
        "jobType": "upload-hls-to-s3",
        "resourceType": "film",
        "resourceId": "64b7f0c2a1b2c3d4e5f60718",
        "hlsDir": "film/480p",
        "label": "480p",
    }

    with connect(f"{runtime.ws_url}/?token={api.token}", open_timeout=10) as client:
        client.send(json.dumps({"action": "subscribe", "all": True}))
        assert json.loads(client.recv(timeout=10))["event"] == "subscribed"
        job_id = api.call("POST", "/upload-jobs", body)["jobId"]
        events: list[dict[str, Any]] = []
        while not events or events[-1]["event"] not in ("JobCompleted", "JobFailed"):
            events.append(json.loads(client.recv(timeout=WAIT)))

    assert {event["jobId"] for event in events} == {job_id}
    names = [event["event"] for event in events]
    assert names[0] == "JobQueued" and "uploadProgress" in names and names[-1] == "JobCompleted"
    job = api.call("GET", f"/upload-jobs/{job_id}")
    assert set(claimed_by(job)) <= {worker.pid for worker in workers}  # a worker process ran it, not the runtime
    expected = {f"{FILM}/hls/480p/{name}": data for name, data in segments.items()}
    expected[f"{FILM}/hls/480p/index.m3u8"] = (rendition / "index.m3u8").read_bytes()
    assert stored_objects(runtime, job_id) == expected


def test_a_worker_killed_mid_upload_is_restarted_and_the_job_completes_intact(runtime: LocalRuntime) -> None:
    data = os.urandom(60 * MIB)
    (runtime.options.source_root / "movie.mp4").write_bytes(data)
    sqs = boto3.session.Session().client("sqs")
    # The message comes back soon after its worker dies, once the lease has expired (the worker
    # extends it past the lease from its first tick); a shorter queue default keeps the wait short.
    visibility = int(SETTINGS["LEASE_SECONDS"]) + VISIBILITY_MARGIN_SECONDS
    sqs.set_queue_attributes(
        QueueUrl=runtime.services.settings.hls_queue_url, Attributes={"VisibilityTimeout": str(visibility)}
    )
    time.sleep(RECEIVE_WAIT_SECONDS + 0.5)  # a long poll already waiting would still apply the old timeout
    api = api_of(runtime)
    body = {
        "jobType": "upload-video-to-s3",
        "resourceType": "film",
        "resourceId": "64b7f0c2a1b2c3d4e5f60718",
        "sourcePath": "movie.mp4",
    }
    job_id = api.call("POST", "/upload-jobs", body)["jobId"]

    def uploading() -> dict[str, Any] | None:
        job = api.call("GET", f"/upload-jobs/{job_id}")
        midway = job["status"] == "active" and 0 < job["uploadedBytes"] < job["totalBytes"]
        return job if midway else None

    job = wait_until(uploading, "the video to be part-way up")
    victim = next(worker for worker in runtime.worker_processes() if worker.pid == pid_of(job["leaseOwner"]))
    killed = victim.kill()
    assert killed is not None

    wait_until(lambda: victim.restarts == 1 and victim.alive(), "the killed worker to be replaced")
    assert victim.exit_codes == [-signal.SIGKILL] and victim.pid != killed
    done = wait_until(
        lambda: (found := api.call("GET", f"/upload-jobs/{job_id}"))["status"] in ("completed", "failed") and found,
        "the job to finish",
        state=lambda: api.call("GET", f"/upload-jobs/{job_id}"),
    )

    assert done["status"] == "completed", done
    assert claimed_by(done)[0] == killed and claimed_by(done)[-1] != killed  # another worker took it over
    stored = stored_objects(runtime, job_id)
    assert list(stored) == [f"{FILM}/video/movie.mp4"]
    assert hashlib.md5(stored[f"{FILM}/video/movie.mp4"]).hexdigest() == hashlib.md5(data).hexdigest()
    bucket = runtime.services.settings.spaces_bucket
    assert s3_of(runtime).list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_stopping_the_runtime_stops_every_worker_process_even_restarted_ones(
    tmp_path: Path, wire_mongodb_uri: str
) -> None:
    with running(tmp_path, wire_mongodb_uri) as started:
        workers = started.worker_processes()
        first = workers[0]
        killed = first.kill()
        wait_until(lambda: first.restarts == 1 and first.alive(), "the killed worker to be replaced")
        pids = [worker.pid for worker in workers]
        assert all(pid is not None and alive(pid) for pid in pids)

    assert killed not in pids
    assert [pid for pid in pids if pid is not None and alive(pid)] == []
    assert all(worker.pid is None for worker in workers)


def test_worker_processes_refuse_to_start_on_the_embedded_store(tmp_path: Path) -> None:
    refused = pytest.raises(ConfigurationError, match="LOCAL_WORKER_PROCESSES=1 needs MONGODB_URI")
    with refused, running(tmp_path, None):
        pass
