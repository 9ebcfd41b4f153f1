"""Queue pollers as OS processes (`LOCAL_WORKER_PROCESSES=1`), watched and restarted like Lambda containers.

Each poller runs `python -m chalicelib.local.worker` (chalicelib/local/worker.py) in a process of its
own, so it can be killed for real. A watcher thread replaces a process that exits while the runtime
runs (a SIGKILL, a crash), as Lambda starts a fresh container, and logs each restart with the exit
code; the job it held is taken over through the lease rules when SQS delivers its message again.

The processes share nothing with the runtime but the environment: MongoDB through `MONGODB_URI`
(the embedded store lives in one process, so it refuses to start without one), S3 and SQS through
moto's endpoint, and WebSocket events through the local gateway's management API, reached with the
production `ApiGatewaySender` (`WEBSOCKET_API_DOMAIN` set to its http:// URL, an empty stage).

    pool = WorkerPool([WorkerSpec("upload_hls_worker", url, 0)], environment=env, timeout_seconds=900)
    pool.start()
    pool.processes[0].kill()  # SIGKILL; the watcher starts a new one
    pool.stop()
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from chalicelib.config import Settings
from chalicelib.errors import ConfigurationError
from chalicelib.logs import logger

ROOT = Path(__file__).resolve().parents[2]  # where `app.py` is: the worker imports it
CHECK_SECONDS = 0.2  # how soon a dead process is noticed
MIN_LIFETIME_SECONDS = 1.0  # a process that keeps dying at start is restarted at most this often
STOP_GRACE_SECONDS = 5.0  # a worker's invocation in flight gets this long to end before SIGKILL


def require_shared_store(settings: Settings) -> None:
    """Worker processes need a MongoDB server they all reach: the embedded store lives in one process."""
    if not settings.mongodb_uri:
        raise ConfigurationError(
            "LOCAL_WORKER_PROCESSES=1 needs MONGODB_URI (a MongoDB server every worker process reaches): "
            "the embedded store cannot be shared between processes"
        )


def signal_name(exit_code: int) -> str:
    """`-9 (SIGKILL)` for a process a signal ended, else the code itself."""
    if exit_code < 0:
        try:
            return f"{exit_code} ({signal.Signals(-exit_code).name})"
        except ValueError:
            pass
    return str(exit_code)


@dataclass(frozen=True)
class WorkerSpec:
    """One poller: the app's SQS handler by name, its queue, its index among the queue's pollers."""

    handler: str
    queue_url: str
    index: int

    @property
    def name(self) -> str:
        return f"{self.handler}-{self.index}"

    @property
    def queue(self) -> str:
        return self.queue_url.rstrip("/").rsplit("/", 1)[-1]


class WorkerProcess:
    """One poller's process. `pid` and `restarts` follow the replacements the pool makes."""

    def __init__(self, spec: WorkerSpec, command: list[str], environment: Mapping[str, str]) -> None:
        self.spec = spec
        self._command = command
        self._environment = dict(environment)
        self._process: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0
        self._lock = threading.Lock()
        self.restarts = 0
        self.exit_codes: list[int] = []  # of every process that died and was replaced, in order

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def queue(self) -> str:
        return self.spec.queue

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None else None

    def alive(self) -> bool:
        process = self._process
        return process is not None and process.poll() is None

    def kill(self) -> int | None:
        """SIGKILL the current process (the chaos run's fault); returns its pid, None when none runs."""
        with self._lock:
            process = self._process
            if process is None or process.poll() is not None:
                return None
            process.kill()
            return process.pid

    def start(self) -> None:
        with self._lock:
            self._spawn()

    def replace_if_dead(self) -> bool:
        """Start a new process when the current one has exited; True when it did."""
        with self._lock:
            process = self._process
            if process is None or process.poll() is None:
                return False
            if time.monotonic() - self._started_at < MIN_LIFETIME_SECONDS:
                return False  # noticed again on a later check: no busy loop of a worker that cannot start
            exit_code = process.returncode
            self.exit_codes.append(exit_code)
            self.restarts += 1
            logger.warning(
                "worker process %s (pid %d) exited with code %s; starting a new one (restart %d)",
                self.name,
                process.pid,
                signal_name(exit_code),
                self.restarts,
            )
            self._spawn()
            return True

    def terminate(self) -> None:
        """Ask the process to stop (SIGTERM): it ends after the invocation it is in."""
        with self._lock:
            process = self._process
            if process is not None and process.poll() is None:
                process.terminate()

    def wait(self, deadline: float) -> None:
        """Wait until `deadline` (monotonic) for the process to end, then SIGKILL it."""
        with self._lock:
            process, self._process = self._process, None
        if process is None:
            return
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("worker process %s (pid %d) did not stop in time; killing it", self.name, process.pid)
            process.kill()
            process.wait()

    def _spawn(self) -> None:
        self._process = subprocess.Popen(
            self._command,
            cwd=ROOT,
            env=self._environment,
            start_new_session=True,  # Ctrl-C and a group's SIGTERM reach the runtime, which stops us in order
        )
        self._started_at = time.monotonic()


class WorkerPool:
    """The worker processes of one runtime and the thread that restarts the ones that die."""

    def __init__(self, specs: list[WorkerSpec], *, environment: Mapping[str, str], timeout_seconds: int) -> None:
        self.processes = [WorkerProcess(spec, worker_command(spec, timeout_seconds), environment) for spec in specs]
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def restarts(self) -> int:
        return sum(process.restarts for process in self.processes)

    def start(self) -> None:
        for process in self.processes:
            process.start()
        self._watcher = threading.Thread(target=self._watch, name="worker-watcher", daemon=True)
        self._watcher.start()

    def stop(self, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
        """Stop restarting, SIGTERM every process, SIGKILL those still running after the grace period."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
            self._watcher = None
        for process in self.processes:
            process.terminate()
        deadline = time.monotonic() + grace_seconds
        for process in self.processes:
            process.wait(deadline)

    def _watch(self) -> None:
        while not self._stopping.wait(CHECK_SECONDS):
            for process in self.processes:
                try:
                    process.replace_if_dead()
                except Exception:  # e.g. no more processes allowed: try again on the next check
                    logger.exception("could not restart worker process %s", process.name)


def worker_command(spec: WorkerSpec, timeout_seconds: int) -> list[str]:
    """The command line of one worker process: `worker` in it, so `ps` shows which processes are workers."""
    return [
        sys.executable,
        "-m",
        "chalicelib.local.worker",
        "--handler",
        spec.handler,
        "--queue-url",
        spec.queue_url,
        "--name",
        spec.name,
        "--timeout",
        str(timeout_seconds),
    ]


def worker_environment(base: Mapping[str, str], management_url: str) -> dict[str, str]:
    """The runtime's environment, with WebSocket events sent through the gateway's management API."""
    environment = dict(base)
    environment.update(WEBSOCKET_API_DOMAIN=management_url, WEBSOCKET_API_STAGE="")
    environment.setdefault("PYTHONUNBUFFERED", "1")  # log lines arrive as they happen
    return environment
