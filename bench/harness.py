"""What the benchmark drives: the system process, the S3 proxy (delay, SlowDown), the HTTP API, a WebSocket client, the bucket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
ANSWER = "bench: "  # bench/system.py's answers start with it
START_TIMEOUT_SECONDS = 60
TERMINAL_EVENTS = {"JobCompleted": "completed", "JobFailed": "failed", "JobCancelled": "cancelled"}


def _read_line(stream: IO[str], timeout: float, what: str, marker: str = "") -> str:
    """The next line of a child's stdout that starts with `marker` (without it), or an error naming
    `what` if none comes in time."""
    lines: list[str] = []

    def read() -> None:
        while line := stream.readline():
            if line.startswith(marker):
                lines.append(line[len(marker) :])
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if not lines:
        raise RuntimeError(f"{what} did not answer within {timeout:.0f} s")
    return lines[0]


def _end(process: subprocess.Popen[str]) -> None:
    """Close its standard input (its signal to stop), then wait; kill it if it does not stop."""
    if process.stdin is not None:
        process.stdin.close()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@dataclass
class SystemProcess:
    """The running system (bench/system.py): its endpoints, pid, token and settings."""

    process: subprocess.Popen[str]
    ready: dict[str, Any]

    @property
    def pid(self) -> int:
        return int(self.ready["pid"])

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.ready["settings"])

    def server_cpu(self) -> float:
        """CPU seconds moto's server (the system's child process) has used so far."""
        return sum(cpu_seconds(child) for child in children(self.pid))

    def calls(self, job_id: str) -> dict[str, int]:
        """MongoDB writes and reads on the jobs collection that named `job_id`, so far."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"writes {job_id}\n")
        self.process.stdin.flush()
        return dict(json.loads(_read_line(self.process.stdout, 30, "the system process", ANSWER)))


@contextmanager
def system_process(
    source_root: Path, *, aws_port: int = 0, spaces_endpoint: str | None = None, env: dict[str, str] | None = None
) -> Iterator[SystemProcess]:
    """`env`: settings for it on top of this environment (the service reads its settings from there)."""
    command = [sys.executable, "-m", "bench.system", "--source-root", str(source_root), "--aws-port", str(aws_port)]
    if spaces_endpoint:
        command += ["--spaces-endpoint", spaces_endpoint]
    with tempfile.TemporaryFile("w+") as log:  # its request log and warnings: shown only if something fails
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, **(env or {})},
        )
        try:
            assert process.stdout is not None
            ready = json.loads(_read_line(process.stdout, START_TIMEOUT_SECONDS, "the system process", ANSWER))
            yield SystemProcess(process, ready)
        except BaseException:
            log.seek(0)
            print(f"--- the system process's log, last lines ---\n{log.read()[-6000:]}", file=sys.stderr)
            raise
        finally:
            _end(process)


@dataclass(frozen=True)
class ProxyCounts:
    requests: int
    slowdowns: int  # of them answered 503 SlowDown by the proxy


@dataclass
class Proxy:
    """bench/proxy.py running: its endpoint, and what it has counted."""

    endpoint: str
    process: subprocess.Popen[str]

    def counts(self) -> ProxyCounts:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("counts\n")
        self.process.stdin.flush()
        return ProxyCounts(**json.loads(_read_line(self.process.stdout, 30, "the proxy")))


@contextmanager
def s3_proxy(upstream_port: int, delay_ms: float, slowdown_rate: float | None = None) -> Iterator[Proxy]:
    """bench/proxy.py in front of 127.0.0.1:upstream_port: every request `delay_ms` late and, with
    `slowdown_rate`, those above that many a second answered 503 SlowDown."""
    command = [sys.executable, "-m", "bench.proxy", "--upstream-port", str(upstream_port), "--delay-ms", str(delay_ms)]
    if slowdown_rate is not None:
        command += ["--slowdown-rate", str(slowdown_rate)]
    process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port = int(_read_line(process.stdout, START_TIMEOUT_SECONDS, "the proxy"))
        yield Proxy(f"http://127.0.0.1:{port}", process)
    finally:
        _end(process)


@dataclass
class EventListener:
    """A real WebSocket client, subscribed to every job: keeps each job's messages, wakes waiters."""

    url: str
    token: str
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    arrived: dict[str, float] = field(default_factory=dict)  # job id -> when its terminal event came
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _stop: threading.Event = field(default_factory=threading.Event)
    _subscribed: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> EventListener:
        self._thread = threading.Thread(target=self._listen, name="bench-ws", daemon=True)
        self._thread.start()
        if not self._subscribed.wait(30):
            raise RuntimeError("the WebSocket did not confirm the subscription")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _listen(self) -> None:
        from websockets.sync.client import connect

        with connect(f"{self.url}/?token={self.token}", open_timeout=30, max_size=None) as socket:
            socket.send(json.dumps({"action": "subscribe", "all": True}))
            while not self._stop.is_set():
                try:
                    message = json.loads(socket.recv(timeout=0.2))
                except TimeoutError:
                    continue
                now = time.perf_counter()
                if message.get("event") == "subscribed":
                    self._subscribed.set()
                job_id = message.get("jobId")
                if not job_id:
                    continue
                with self._changed:
                    self.messages[job_id].append(message)
                    if message["event"] in TERMINAL_EVENTS:
                        self.arrived[job_id] = now
                        self._changed.notify_all()

    def wait_finished(self, job_id: str, timeout: float) -> tuple[str, float]:
        """(final status, perf_counter time its event arrived); raises after `timeout`."""
        with self._changed:
            if not self._changed.wait_for(lambda: job_id in self.arrived, timeout):
                raise TimeoutError(f"job {job_id} did not finish within {timeout:.0f} s")
            last = self.messages[job_id][-1]
            final = next(m for m in reversed(self.messages[job_id]) if m["event"] in TERMINAL_EVENTS)
            assert last is final or last["event"] not in TERMINAL_EVENTS
            return TERMINAL_EVENTS[final["event"]], self.arrived[job_id]

    def count(self, job_id: str) -> int:
        with self._changed:
            return len(self.messages[job_id])


class Bucket:
    """The benchmark's view of the bucket, straight on moto (never through the proxy)."""

    def __init__(self, endpoint: str, name: str) -> None:
        import boto3
        from botocore.config import Config

        self.name = name
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            config=Config(request_checksum_calculation="when_required", response_checksum_validation="when_required"),
        )

    def objects(self, prefix: str) -> dict[str, tuple[int, str]]:
        """Key -> (size, ETag without its quotes)."""
        found: dict[str, tuple[int, str]] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix):
            found.update(
                {item["Key"]: (int(item["Size"]), item["ETag"].strip('"')) for item in page.get("Contents", [])}
            )
        return found

    def keys(self, prefix: str) -> dict[str, int]:
        return {key: size for key, (size, _) in self.objects(prefix).items()}

    def delete(self, prefix: str) -> None:
        """Remove what a run wrote (untimed), so moto's memory and listings stay flat."""
        keys = list(self.keys(prefix))
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            self.client.delete_objects(Bucket=self.name, Delete={"Objects": batch, "Quiet": True})
