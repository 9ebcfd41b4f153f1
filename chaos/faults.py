"""The faults the run injects from outside the product: proxies, worker kills, duplicate messages.

Each is seeded from the run's seed, so a failing run can be played again with `--seed`.
"""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from chaos.system import SystemProcess

logger = logging.getLogger(__name__)


class ProxyProcess:
    """`python -m chaos.s3proxy` or `chaos.tcpproxy` as a child; `faults(False)` calms it."""

    def __init__(self, module: str, args: list[str], stderr: Path | None = None) -> None:
        self._stderr: IO[bytes] | None = stderr.open("wb") if stderr else None
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr or subprocess.DEVNULL,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.process.kill()
            raise RuntimeError(f"{module} did not start (it printed {line!r})")
        self.port = int(line)

    def faults(self, on: bool) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"faults on\n" if on else b"faults off\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self._stderr is not None:
            self._stderr.close()


def count_drops(stderr_path: Path) -> int:
    """The dropping proxy writes one `drop N` line per connection it reset."""
    if not stderr_path.exists():
        return 0
    return sum(1 for line in stderr_path.read_text().splitlines() if line.startswith("drop "))


class Periodic:
    """A daemon thread doing `act()` at random moments (exponential gaps of mean `mean_seconds`)
    until stopped."""

    def __init__(self, name: str, rng: random.Random, mean_seconds: float, act: Callable[[], None]) -> None:
        self._rng = rng
        self._mean = mean_seconds
        self._act = act
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._rng.expovariate(1 / self._mean)):
            try:
                self._act()
            except Exception:  # a fault that could not be injected is not a product failure
                logger.exception("%s could not act", self._thread.name)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


class WorkerKiller:
    """SIGKILLs a random worker process now and then; the runtime restarts it."""

    def __init__(self, system: SystemProcess, rng: random.Random, mean_seconds: float) -> None:
        self.kills: list[dict[str, Any]] = []
        self._system = system
        self._rng = rng
        self.periodic = Periodic("worker-killer", rng, mean_seconds, self.kill_one)

    def kill_one(self) -> None:
        workers = [worker for worker in self._system.workers() if worker["pid"]]
        if not workers:
            return
        victim = self._rng.choice(workers)
        pid = self._system.kill(victim["name"])
        if pid is not None:
            self.kills.append({"name": victim["name"], "pid": pid, "at": time.time()})


class Duplicator:
    """Sends a job's message a second time, at a random moment after its first send (SPEC 5's
    body, exactly what the producer sent): a duplicate SQS delivery."""

    def __init__(self, sqs: Any, queue_urls: dict[str, str], rng: random.Random, within_seconds: float) -> None:
        self.sent: list[str] = []
        self._sqs = sqs
        self._urls = queue_urls
        self._rng = rng
        self._within = within_seconds
        self._lock = threading.Lock()
        self._timers: list[threading.Timer] = []

    def schedule(self, job_id: str, queue: str) -> None:
        timer = threading.Timer(self._rng.uniform(0, self._within), self._send, (job_id, queue))
        timer.daemon = True
        with self._lock:
            self._timers.append(timer)
        timer.start()

    def _send(self, job_id: str, queue: str) -> None:
        try:
            self._sqs.send_message(QueueUrl=self._urls[queue], MessageBody=json.dumps({"v": 1, "jobId": job_id}))
        except Exception:
            logger.exception("could not send the duplicate of %s", job_id)
            return
        with self._lock:
            self.sent.append(job_id)

    def stop(self) -> None:
        with self._lock:
            timers = list(self._timers)
        for timer in timers:
            timer.cancel()
