"""Shared fixtures: moto's server in its own process (S3 and SQS over real HTTP), the embedded store."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from chalicelib.jobs.store import JobStore
from chalicelib.local.embedded_mongo import embedded_database

# Credentials for moto; set before any boto3 session exists.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


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
        wait_for_port(port)
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
def database() -> Any:
    """A fresh database: real MongoDB when MONGODB_URI is set, else the embedded store."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    uri = os.environ.get("MONGODB_URI")
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

    resources = create_queues(sqs, prefix=f"t{uuid.uuid4().hex[:8]}-")
    return {str(name.value): url for name, url in resources.queue_urls.items()}


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

    with Client(app_module.app) as client:
        client.admin_headers = {"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"}
        yield client
