"""The measurements: one upload by the system, one by a contender (each checked), memory, MongoDB writes, import time."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.contenders import Contender, Target
from bench.data import MIB, Dataset
from bench.harness import ROOT, Bucket, EventListener, Proxy, SystemProcess
from chalicelib.local.api_client import ApiClient

JOB_TIMEOUT_SECONDS = 600
CONTENDER_TIMEOUT_SECONDS = 600


@dataclass
class Session:
    """A running system and the benchmark's clients of it."""

    system: SystemProcess
    api: ApiClient
    listener: EventListener
    bucket: Bucket


@dataclass(frozen=True)
class JobRun:
    job_id: str
    seconds: float  # from just before POST /upload-jobs to the arrival of JobCompleted on the WebSocket
    server_cpu: float  # CPU seconds moto's server spent meanwhile
    job: dict[str, Any]

    @property
    def seconds_to_claim(self) -> float:
        """From the job's creation to a worker's claim: HTTP API, SQS, the poller, the claim."""
        return _timestamp(self.job["startedAt"]) - _timestamp(self.job["createdAt"])


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def run_job(session: Session, body: dict[str, Any]) -> JobRun:
    """Create one job over HTTP and wait for its end on the WebSocket; raise unless it completed."""
    job_id = f"bench-{secrets.token_hex(8)}"
    cpu_before = session.system.server_cpu()
    started = time.perf_counter()
    session.api.call("POST", "/upload-jobs", {**body, "jobId": job_id})
    status, finished = session.listener.wait_finished(job_id, JOB_TIMEOUT_SECONDS)
    server_cpu = session.system.server_cpu() - cpu_before
    job = session.api.call("GET", f"/upload-jobs/{job_id}")
    if status != "completed" or job["status"] != "completed":
        raise RuntimeError(f"job {job_id} ended {job['status']}: {job.get('errorCode')} {job.get('failedReason')}")
    return JobRun(job_id, finished - started, server_cpu, job)


def rendition_body(dataset: Dataset, folder: Path) -> dict[str, Any]:
    return {
        "jobType": "upload-hls-to-s3",
        "resourceType": "film",
        "resourceId": secrets.token_hex(12),
        "hlsDir": dataset.relative(folder),
        "label": "720p",
    }


@dataclass(frozen=True)
class Sample:
    seconds: float
    server_cpu: float  # CPU seconds of moto's server during those seconds
    to_claim: float | None = None  # the system only: creation -> claim
    requests: int | None = None  # through a proxy: the requests it saw, and of them
    slowdowns: int | None = None  # those it answered 503 SlowDown
    attempts: int | None = None  # the system only: the job's attempts (a throttled attempt is retried)


def our_upload(session: Session, dataset: Dataset, folder: Path) -> Sample:
    """One rendition through the whole system; checks every file is in the bucket, then removes them."""
    run = run_job(session, rendition_body(dataset, folder))
    _check_and_clear(session.bucket, run.job["destinationPrefix"], folder, "the system")
    return Sample(run.seconds, run.server_cpu, run.seconds_to_claim, attempts=int(run.job["attempts"]))


def their_upload(session: Session, contender: Contender, endpoint: str, source: Path) -> Sample:
    """One copy of a folder (or of one file) by a tool; checks it like ours, then removes it."""
    slug = re.sub(r"[^a-z0-9]+", "-", contender.name.lower()).strip("-")
    prefix = f"bench/{slug}/{secrets.token_hex(6)}/"
    cpu_before = session.system.server_cpu()
    seconds = contender.run(Target(endpoint, session.bucket.name, prefix, source), CONTENDER_TIMEOUT_SECONDS)
    server_cpu = session.system.server_cpu() - cpu_before
    _check_and_clear(session.bucket, prefix, source, contender.name)
    return Sample(seconds, server_cpu)


def our_video_upload(session: Session, dataset: Dataset) -> Sample:
    """The big file as a video job; checked and removed like a rendition."""
    body = {"jobType": "upload-video-to-s3", "resourceType": "film", "filename": dataset.video.name}
    run = run_job(session, {**body, "resourceId": secrets.token_hex(12), "sourcePath": dataset.relative(dataset.video)})
    _check_and_clear(session.bucket, run.job["destinationPrefix"], dataset.video, "the system")
    return Sample(run.seconds, run.server_cpu, run.seconds_to_claim, attempts=int(run.job["attempts"]))


def through(proxy: Proxy, run: Callable[[], Sample]) -> Callable[[], Sample]:
    """`run`, with the requests and 503 SlowDowns the proxy counted meanwhile (entrants run one at a time)."""

    def counted() -> Sample:
        before = proxy.counts()
        sample = run()
        after = proxy.counts()
        return replace(sample, requests=after.requests - before.requests, slowdowns=after.slowdowns - before.slowdowns)

    return counted


@functools.cache
def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as source:
        while block := source.read(MIB):
            digest.update(block)
    return digest.hexdigest()


def _check_and_clear(bucket: Bucket, prefix: str, source: Path, who: str) -> None:
    """Every file of `source` (a folder, or one file) under `prefix`, nothing else, then removed.

    Same sizes, and the same bytes where S3's ETag is the MD5 of the object (one PUT; a multipart
    upload's ETag depends on its part size, so the big file is checked by size)."""
    found = bucket.objects(prefix)
    files = sorted(source.iterdir()) if source.is_dir() else [source]
    got = {key[len(prefix) :]: size for key, (size, _) in found.items()}
    expected = {path.name: path.stat().st_size for path in files}
    if got != expected:
        raise RuntimeError(f"{who} left {len(got)} objects under {prefix}, expected {len(expected)} of the same sizes")
    for path in files:
        etag = found[prefix + path.name][1]
        if "-" not in etag and etag != _md5(path):
            raise RuntimeError(f"{who} stored {prefix}{path.name} with ETag {etag}, not the file's MD5 {_md5(path)}")
    bucket.delete(prefix)


Entrant = tuple[str, Callable[[], Sample]]


def contest(entrants: list[Entrant], rounds: int, log: Callable[[str], None], title: str) -> dict[str, list[Sample]]:
    """Every entrant `rounds` times, alternating, the starting one rotating each round."""
    samples: dict[str, list[Sample]] = {name: [] for name, _ in entrants}
    for round_number in range(rounds):
        shift = round_number % len(entrants)
        for name, run in entrants[shift:] + entrants[:shift]:
            sample = run()
            samples[name].append(sample)
            log(
                f"{title} round {round_number + 1}/{rounds}: {name} {sample.seconds:.2f} s, moto CPU {sample.server_cpu:.2f} s"
            )
    return samples


# --- memory ---------------------------------------------------------------------------------------


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {field}")


def _reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs); False where not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class MemoryRun:
    growth_mib: float  # peak RSS during the upload minus RSS just before it
    baseline_mib: float
    seconds: float
    method: str


def peak_memory(session: Session, dataset: Dataset) -> MemoryRun:
    """The system process's peak memory above its baseline while it uploads the big file as a video job.

    A small video job first (untimed) loads the worker's modules and builds the S3 client and pool, so
    the baseline is the warm process and the growth is what the big file costs.
    """
    pid = session.system.pid
    warm_up = {"jobType": "upload-video-to-s3", "resourceType": "film", "filename": "warmup.mp4"}
    small_file = next(iter(sorted(dataset.large.iterdir())))
    run = run_job(session, {**warm_up, "resourceId": secrets.token_hex(12), "sourcePath": dataset.relative(small_file)})
    session.bucket.delete(run.job["destinationPrefix"])
    time.sleep(0.5)  # let the warm-up's progress and event threads go idle
    baseline = _status_kib(pid, "VmRSS")
    reset = _reset_peak(pid)
    sampled = [baseline]
    stop = threading.Event()

    def sample() -> None:  # the fallback where VmHWM cannot be reset
        while not stop.wait(0.02):
            sampled.append(_status_kib(pid, "VmRSS"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        body = {**warm_up, "filename": "feature.mp4", "resourceId": secrets.token_hex(12)}
        run = run_job(session, {**body, "sourcePath": dataset.relative(dataset.video)})
    finally:
        stop.set()
        sampler.join()
    peak = _status_kib(pid, "VmHWM") if reset else max(sampled)
    _check_and_clear(session.bucket, run.job["destinationPrefix"], dataset.video, "the video job")
    method = "VmHWM (reset before the upload)" if reset else "VmRSS sampled every 20 ms"
    return MemoryRun((peak - baseline) / 1024, baseline / 1024, run.seconds, method)


def memory_bound_mib(settings: dict[str, Any]) -> float:
    """The engine's bound: part size x upload concurrency, plus 64 MiB of slack."""
    return float(settings["part_size"] * settings["upload_concurrency"] / MIB + 64)


# --- MongoDB writes and WebSocket messages ----------------------------------------------------------


@dataclass(frozen=True)
class WriteRun:
    seconds: float
    writes: int
    reads: int
    messages: int
    files: int


def writes_per_job(session: Session, dataset: Dataset) -> WriteRun:
    run = run_job(session, rendition_body(dataset, dataset.small))
    time.sleep(0.5)  # anything still on its way after JobCompleted counts too
    calls = session.system.calls(run.job_id)
    messages = session.listener.count(run.job_id)
    _check_and_clear(session.bucket, run.job["destinationPrefix"], dataset.small, "the system")
    return WriteRun(run.seconds, calls["writes"], calls["reads"], messages, int(run.job["totalFiles"]))


def write_bound(seconds: float, progress_interval_ms: int) -> float | None:
    """SPEC 6: at most one progress write per interval, plus a fixed few (create, claim, totals, end)."""
    if progress_interval_ms <= 0:
        return None
    return seconds / (progress_interval_ms / 1000) + 10


# --- import time ------------------------------------------------------------------------------------

DEPENDENCY_PROBE = """
import json, sys
before = set(sys.modules)
import app
loaded = sorted(m for m in set(sys.modules) - before
                if not m.startswith("_") and m.split(".")[0] not in (*sys.stdlib_module_names, "app", "chalicelib"))
print(json.dumps(loaded))
"""
# Everything the service needs at some point (requirements.txt), imported eagerly.
RUNTIME_DEPENDENCIES = (
    "chalice",
    "pydantic",
    "pydantic_settings",
    "jwt",
    "boto3",
    "pymongo",
    "m3u8",
    "webvtt",
    "prometheus_client",
)


def _python(code: str) -> float:
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env=env, capture_output=True, timeout=120)
    return time.perf_counter() - started


def _import_all(modules: list[str]) -> str:
    """Code importing each module, skipping the few that cannot be imported on their own."""
    return f"import importlib\nfor m in {modules!r}:\n    try: importlib.import_module(m)\n    except Exception: pass"


def import_times(repeats: int) -> dict[str, Any]:
    """Median seconds above a bare interpreter: `import app`, the third-party modules that import
    loads, each runtime dependency alone, and all of them at once. Fresh interpreter every time."""
    probe = subprocess.run(
        [sys.executable, "-c", DEPENDENCY_PROBE], cwd=ROOT, check=True, capture_output=True, text=True, timeout=120
    )
    loaded: list[str] = json.loads(probe.stdout)
    programs = {
        "bare": "pass",
        "app": "import app",
        "its_dependencies": _import_all(loaded),
        "all_runtime_dependencies": "import " + ", ".join(RUNTIME_DEPENDENCIES),
        **{f"dependency:{name}": f"import {name}" for name in RUNTIME_DEPENDENCIES},
    }
    samples: dict[str, list[float]] = {name: [] for name in programs}
    for _ in range(repeats):
        for name, code in programs.items():  # interleaved, so a busy moment hits every program alike
            samples[name].append(_python(code))
    bare = statistics.median(samples.pop("bare"))
    medians = {name: max(0.0, statistics.median(values) - bare) for name, values in samples.items()}
    top_level = sorted({m.split(".")[0] for m in loaded})
    return {"bare_seconds": bare, "medians": medians, "loaded_packages": top_level}
