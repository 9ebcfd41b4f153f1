"""moto's server in a process of its own, and the bucket and queues the service expects (SPEC 10)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

from chalicelib.jobs.model import QueueName
from chalicelib.notify.messages import NOTIFICATION_QUEUE
from chalicelib.queue import DEAD_LETTER_SUFFIX

LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}
# Long enough that a slow local worker keeps its message; the worker renews it while it works.
LOCAL_VISIBILITY_TIMEOUT = 120
LOCAL_MAX_RECEIVE_COUNT = 5


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout:.0f} s")


def start_moto_server(host: str, port: int) -> subprocess.Popen[bytes]:
    """moto's server in its own process: in-process it shares the GIL with the workers (half speed)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches us first; we stop it ourselves
    )
    try:
        wait_for_port(host, port)
    except RuntimeError:
        process.kill()
        raise
    return process


def create_bucket(s3: Any, bucket: str) -> None:
    """Create the bucket unless it is there already."""
    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=bucket)


def create_queues(sqs: Any, prefix: str = "") -> dict[QueueName, str]:
    """Both upload queues and their dead-letter queues (redrive after a few receives); idempotent.
    Returns the upload queues' URLs."""
    return {queue: _create_with_dead_letters(sqs, f"{prefix}{queue.value}") for queue in QueueName}


def create_notification_queue(sqs: Any, prefix: str = "") -> str:
    """The notification queue and its dead-letter queue (docs/notifications.md); idempotent. Returns its URL."""
    return _create_with_dead_letters(sqs, f"{prefix}{NOTIFICATION_QUEUE}")


def _create_with_dead_letters(sqs: Any, name: str) -> str:
    dead_url = sqs.create_queue(QueueName=name + DEAD_LETTER_SUFFIX)["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": str(LOCAL_MAX_RECEIVE_COUNT)})
    attributes = {"VisibilityTimeout": str(LOCAL_VISIBILITY_TIMEOUT), "RedrivePolicy": redrive}
    return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])


def local_environment(endpoint: str) -> dict[str, str]:
    """Environment for boto3 to reach moto's server: credentials (any work) and endpoints."""
    env = {key: os.environ.get(key, value) for key, value in LOCAL_CREDENTIALS.items()}
    env["AWS_ENDPOINT_URL_SQS"] = endpoint
    env["AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"] = endpoint
    env["SPACES_ENDPOINT"] = endpoint
    return env
