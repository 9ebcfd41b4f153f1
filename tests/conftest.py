"""Shared fixtures: moto's server in its own process (S3 and SQS over real HTTP), the store.

The store is the embedded one (mongomock), a real MongoDB when MONGODB_URI is set, or with
STORE_BACKEND=wire the local wire server (chalicelib/local/mongo_wire.py): one server process for
the session, a fresh database per test, and only the tests that touch the store are collected."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from chalicelib.embedded_mongo import embedded_database
from chalicelib.jobs.store import JobStore
from chalicelib.local.aws import free_port, wait_for_port
from chalicelib.local.mongo_wire import WireServer, WireServerUnavailable, start_wire_server

# Credentials for moto; set before any boto3 session exists.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
STORE_BACKEND = os.environ.get("STORE_BACKEND", "embedded")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """STORE_BACKEND=wire runs the store suite: every test that uses the `database` fixture."""
    if STORE_BACKEND != "wire":
        return
    deselected = [item for item in items if "database" not in getattr(item, "fixturenames", ())]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]


@pytest.fixture(scope="session")
def wire_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireServer]:
    """The MongoDB wire server in its own process for the session. A test that needs it fails
    (never skips) with the one-line reason when it cannot start, e.g. no Python 3.13."""
    server: WireServer | None = None
    try:
        server = start_wire_server(port=free_port(), log=tmp_path_factory.mktemp("mongo-wire") / "server.log")
    except WireServerUnavailable as error:
        reason = str(error)
    if server is None:
        pytest.fail(reason, pytrace=False)  # outside the except: the one line, not a chained traceback
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server in a process of its own, for the whole session."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port("127.0.0.1", port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def aws_client(service: str, endpoint: str, **config: Any) -> Any:
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            **config,
        ),
    )


@pytest.fixture
def s3(moto_endpoint: str) -> Any:
    return aws_client("s3", moto_endpoint, max_pool_connections=64)


@pytest.fixture
def sqs(moto_endpoint: str) -> Any:
    return aws_client("sqs", moto_endpoint)


@pytest.fixture
def bucket(s3: Any) -> str:
    """A fresh, empty bucket for each test."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def database(request: pytest.FixtureRequest) -> Any:
    """A fresh database, dropped afterwards: real MongoDB when MONGODB_URI is set, the wire server
    with STORE_BACKEND=wire, else the embedded store."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    uri = os.environ.get("MONGODB_URI")
    if not uri and STORE_BACKEND == "wire":
        uri = request.getfixturevalue("wire_server").uri()
    if not uri:
        yield embedded_database(name)
        return
    from pymongo import MongoClient

    client: MongoClient[Any] = MongoClient(uri, tz_aware=False)
    try:
        yield client[name]
    finally:
        client.drop_database(name)
        client.close()


@pytest.fixture
def store(database: Any) -> JobStore:
    job_store = JobStore(database)
    job_store.ensure_indexes()
    return job_store


@pytest.fixture
def source_root(tmp_path: Path) -> Path:
    root = tmp_path / "sources"
    root.mkdir()
    return root


@pytest.fixture
def queues(sqs: Any) -> dict[str, str]:
    """Fresh upload queues (with their dead-letter queues) on moto's server, by logical name."""
    from chalicelib.local.aws import create_queues

    urls = create_queues(sqs, prefix=f"t{uuid.uuid4().hex[:8]}-")
    return {str(name.value): url for name, url in urls.items()}


@pytest.fixture
def settings(moto_endpoint: str, bucket: str, source_root: Path, queues: dict[str, str]) -> Any:
    from chalicelib.config import Settings

    return Settings(
        stage="test",
        spaces_endpoint=moto_endpoint,
        spaces_bucket=bucket,
        source_root=source_root,
        hls_queue_url=queues["upload-hls-to-s3"],
        master_queue_url=queues["upload-master-playlist"],
        cdn_base_url=f"{moto_endpoint}/{bucket}",
    )


@pytest.fixture
def services(settings: Any, database: Any, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The container's services, wired to moto's server and a fresh store, installed for app.py."""
    from chalicelib.services import Services, set_services

    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto_endpoint)
    built = Services(settings, database=database)
    set_services(built)
    yield built
    set_services(None)


@pytest.fixture
def admin_token(settings: Any) -> str:
    from chalicelib.auth import issue_token

    return issue_token(settings.auth_jwt_secret)


@pytest.fixture
def api(services: Any, admin_token: str) -> Iterator[Any]:
    """chalice.test.Client over app.py, plus the headers of an admin."""
    from chalice.test import Client

    import app as app_module

    with Client(app_module.app, stage_name="local") as client:
        client.admin_headers = {"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"}
        yield client


@pytest.fixture
def make_job(store: JobStore) -> Any:
    """Insert a job as it would stand after some history: an HLS rendition by default, any field
    overridden by its camelCase name (`status="active", leaseExpiresAt=...`). Returns the job."""
    from pydantic.alias_generators import to_camel

    from chalicelib.jobs.model import CreateJobRequest, UploadJob, new_job_document, utcnow

    def make(**fields: Any) -> UploadJob:
        spec = {
            "jobType": "upload-hls-to-s3",
            "resourceType": "film",
            "resourceId": "64b7f0c2a1b2c3d4e5f60718",
            "hlsDir": "films/x/720p",
            "label": "720p",
        }
        request_fields = {to_camel(name) for name in CreateJobRequest.model_fields}
        spec.update({name: fields.pop(name) for name in list(fields) if name in request_fields})
        request = CreateJobRequest.model_validate(spec)
        document = new_job_document(request, bucket="studio-media", max_attempts=5, now=fields.pop("now", utcnow()))
        document.update(fields)
        store.collection.insert_one(document)
        return UploadJob.from_document(document)

    return make


# --- Logs (tests/unit/test_log_context.py, tests/integration/test_logs_hold_no_secrets.py) ---------------------


@pytest.fixture
def service_logs() -> Iterator[Any]:
    """Every line the service logs from now on, at DEBUG (the most it ever says), as its JSON text; other
    libraries' warnings (what `make run` and Lambda show of them) too. The level is put back after."""
    import io
    import logging

    from chalicelib.logs import SERVICE, logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    others = logging.StreamHandler(stream)
    others.setLevel(logging.WARNING)
    level = logger.log_level
    logger.addHandler(handler)
    logger.setLevel("DEBUG")
    logging.getLogger().addHandler(others)
    yield stream
    logging.getLogger().removeHandler(others)
    logging.getLogger(SERVICE).removeHandler(handler)
    logger.setLevel(level)


# --- WebSocket (tests/*/test_websocket_*.py, tests/unit/test_notifier_*.py) -----------------------------


class WebSocketClient:
    """A real WebSocket client of the local gateway that speaks JSON (`websockets.sync.client`)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def send(self, message: dict[str, Any]) -> None:
        import json

        self.connection.send(json.dumps(message))

    def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        import json

        return dict(json.loads(self.connection.recv(timeout=timeout)))

    def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        self.send(message)
        return self.recv()

    def until(self, event: str) -> list[dict[str, Any]]:
        """Every message up to and including the first `event` one."""
        received = [self.recv()]
        while received[-1]["event"] != event:
            received.append(self.recv())
        return received

    def drain(self) -> list[dict[str, Any]]:
        """Everything delivered before now: a ping's pong comes after whatever was sent earlier."""
        self.send({"action": "ping"})
        return self.until("pong")[:-1]


@pytest.fixture
def realtime_services(database: Any) -> Iterator[Any]:
    """Services for WebSocket tests that need no S3 or SQS: a fresh store, a 100 ms progress interval."""
    from chalicelib.config import Settings
    from chalicelib.services import Services, set_services

    built = Services(Settings(stage="test", progress_interval_ms=100), database=database)
    set_services(built)
    yield built
    set_services(None)


@pytest.fixture
def ws_gateway(realtime_services: Any) -> Iterator[Any]:
    """The local WebSocket gateway serving app.py on a free port, its sender installed in `realtime_services`."""
    import app as app_module
    from chalicelib.local.ws_gateway import start_gateway
    from chalicelib.realtime.notifier import WebSocketNotifier

    gateway = start_gateway(app_module.app, "127.0.0.1", 0, services=realtime_services)
    yield gateway
    gateway.stop()
    if isinstance(realtime_services.notifier, WebSocketNotifier):
        realtime_services.notifier.close()


@pytest.fixture
def ws_connect(ws_gateway: Any, realtime_services: Any) -> Iterator[Any]:
    """Open WebSocket clients on the gateway: `ws_connect()` as an admin, `ws_connect(token)` with any token."""
    from websockets.sync.client import connect

    from chalicelib.auth import issue_token

    opened: list[WebSocketClient] = []

    def open_client(token: str | None = None) -> WebSocketClient:
        token = token or issue_token(realtime_services.settings.auth_jwt_secret)
        client = WebSocketClient(connect(f"{ws_gateway.url}/?token={token}", open_timeout=10))
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.connection.close()


# --- upload worker (tests/*/test_worker_*.py) ----------------------------------------------------


class WorkerEventLog:
    """A Notifier that keeps (event, jobId, status) of everything the worker publishes."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def publish(self, event: Any, job: Any) -> None:
        self.events.append((str(event), job.job_id, str(job.status)))

    def names(self, job_id: str) -> list[str]:
        return [name for name, event_job_id, _status in self.events if event_job_id == job_id]


@pytest.fixture
def worker_events() -> WorkerEventLog:
    return WorkerEventLog()


@pytest.fixture
def worker_services(settings: Any, database: Any, services: Any, worker_events: WorkerEventLog) -> Any:
    """`worker_services(**setting_overrides)`: Services on moto and the test's store, with the recording
    notifier `worker_events`. Uses `services` for its SQS endpoint and the app's installed services."""
    from chalicelib.services import Services

    def make(**overrides: Any) -> Any:
        return Services(settings.model_copy(update=overrides), database=database, notifier=worker_events)

    return make


@pytest.fixture
def count_s3_requests() -> Any:
    """`count_s3_requests(client)`: a Counter of the client's S3 requests by operation (PutObject...)."""
    from collections import Counter

    def count(client: Any) -> Counter[str]:
        counts: Counter[str] = Counter()
        client.meta.events.register("before-call.s3.*", lambda model, **_: counts.update([model.name]))
        return counts

    return count


@pytest.fixture
def write_rendition(source_root: Path) -> Any:
    """`write_rendition(folder, segments=3, segment_size=1000)`: an HLS rendition on disk under
    SOURCE_ROOT (`index.m3u8` + `segNNN.ts`); returns {file name: bytes}."""

    def write(folder: str = "films/x/720p", segments: int = 3, segment_size: int = 1000) -> dict[str, bytes]:
        directory = source_root / folder
        directory.mkdir(parents=True, exist_ok=True)
        files = {f"seg{n:03d}.ts": bytes([n % 251]) * segment_size + f"{folder}/{n}".encode() for n in range(segments)}
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:4"]
        for name in files:
            lines += ["#EXTINF:4.0,", name]
        files["index.m3u8"] = ("\n".join([*lines, "#EXT-X-ENDLIST"]) + "\n").encode()
        for name, data in files.items():
            (directory / name).write_bytes(data)
        return files

    return write


@pytest.fixture
def worker_job() -> Any:
    """`worker_job(services, **spec)`: insert a waiting job as the API creates it, in the services'
    bucket; the spec defaults to an HLS rendition of `films/x/720p` labelled 720p. `stored={...}`
    then overwrites fields of the stored document, as a job written under older rules would be."""
    from chalicelib.jobs.model import CreateJobRequest, UploadJob, new_job_document

    def insert(services: Any, stored: dict[str, Any] | None = None, **spec: Any) -> Any:
        fields: dict[str, Any] = {"resourceType": "film", "resourceId": "64b7f0c2a1b2c3d4e5f60718"}
        if "jobType" not in spec:
            fields.update(jobType="upload-hls-to-s3", hlsDir="films/x/720p", label="720p")
        fields.update(spec)
        request = CreateJobRequest.model_validate(fields)
        settings = services.settings
        document = new_job_document(
            request, bucket=settings.spaces_bucket, max_attempts=settings.max_attempts, now=services.store.now()
        )
        job, _created = services.store.insert(document)
        if stored:
            services.store.collection.update_one({"jobId": job.job_id}, {"$set": stored})
            return UploadJob.from_document(services.store.collection.find_one({"jobId": job.job_id}))
        return job

    return insert


# --- maintenance (tests/*/test_maintenance_*.py, test_cleanup_*, test_fix_stuck_*, test_dead_letter_*) ---


@dataclass
class MaintenanceView:
    """What maintenance uses (chalicelib.maintenance.MaintenanceServices), each part replaceable
    with dataclasses.replace: a store with another clock, a counting collection..."""

    settings: Any
    store: JobStore
    queue: Any
    s3: Any
    notifier: WorkerEventLog


@pytest.fixture
def maintenance(services: Any, worker_events: WorkerEventLog) -> MaintenanceView:
    """The real services on moto and the test's store; events recorded in `worker_events`."""
    return MaintenanceView(services.settings, services.store, services.queue, services.s3, worker_events)


@pytest.fixture
def invoke_worker(api: Any) -> Any:
    """`invoke_worker(name, event)`: a worker Lambda handler as Lambda calls it, with a 60 s budget.

    chalice.test's `lambda_.invoke` gives every function 3 s, under which the worker's time margin
    (half the budget) turns a slow moment of a loaded machine into a continuation."""
    from chalice.local import LambdaContext

    import app as app_module

    def invoke(name: str, event: dict[str, Any]) -> Any:
        context = LambdaContext(name, memory_size=1024, max_runtime_ms=60_000)
        return app_module.app.handler_map[name](event, context)

    return invoke


@pytest.fixture
def race() -> Any:
    """`race(*actions)`: run the actions at once (released together by a barrier); their results in
    order. An action that raises fails the test with its exception once every thread has ended."""
    import threading

    def run_all(*actions: Any) -> list[Any]:
        barrier = threading.Barrier(len(actions))
        results: list[Any] = [None] * len(actions)
        errors: list[BaseException] = []

        def run(index: int) -> None:
            barrier.wait()
            try:
                results[index] = actions[index]()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return results

    return run_all


# --- a MongoDB server in a process of its own (tests/integration/test_worker_processes.py, test_make_run.py) ---


@pytest.fixture(scope="session")
def wire_mongodb_uri(wire_server: WireServer) -> str:
    """The session's MongoDB wire server as a `mongodb://` URI any process reaches (worker processes,
    `make run`); each test that uses it names a database of its own."""
    return wire_server.uri()
