"""`make chaos`: jobs through the whole system with every fault on at once, then the invariants.

    python -m chaos.run [--jobs 500] [--seed N] [--results chaos/results.json]

(`make chaos JOBS=30`, or CHAOS_JOBS / CHAOS_SEED in the environment.) What runs, each in a process
of its own: moto's server behind the S3 fault proxy (chaos/s3proxy.py), the MongoDB wire server
behind the dropping proxy (chaos/tcpproxy.py), and the local runtime with worker processes
(chaos/system.py). This process submits the jobs over HTTP, kills worker processes, sends
duplicate messages, cancels a few jobs mid-upload and watches one WebSocket client subscribed to
all. Once every job is submitted and final (or the fault phase's time is up) the faults stop, and
it waits up to the fix-stuck period for every job to be final. Then it checks the invariants
(chaos/invariants.py), prints each figure, writes the results file, and exits 1 if one failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import sys
import threading
import time
import urllib.error
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.jobs.store import JOBS_COLLECTION
from chalicelib.local.api_client import ApiClient
from chalicelib.local.aws import free_port
from chalicelib.worker.supervisor import VISIBILITY_MARGIN_SECONDS
from chaos import invariants
from chaos.faults import Duplicator, ProxyProcess, WorkerKiller, count_drops
from chaos.s3proxy import load_records
from chaos.system import SystemProcess, start_mongo_server
from chaos.workload import CANCELLED_KINDS, ChaosJob, Mix, Workload

logger = logging.getLogger("chaos")

FAILURE_KEYS = (
    "lost",
    "duplicated",
    "corrupted",
    "not_final",
    "open_multipart",
    "published_early",
    "missed_final_event",
)
FAULT_KEYS = ("worker_kills", "duplicate_deliveries", "s3_faults", "mongo_drops")
QUEUES = ("upload-hls-to-s3", "upload-master-playlist")
FINISHED = ("completed", "failed", "cancelled")
RESULTS = Path("chaos/results.json")
SMALL_BELOW = 100  # fewer jobs: the smoke version's settings (faults more often, shorter phases)


@dataclass
class ChaosConfig:
    jobs: int = 500
    seed: int = 0
    workdir: Path = Path(".local/chaos")
    results: Path | None = RESULTS
    s3_fault_rate: float = 0.02  # each of the five S3 faults
    mongo_drop_every: float = 4.0  # mean seconds between two dropped MongoDB connections
    kill_every: float = 6.0  # mean seconds between two worker SIGKILLs
    duplicate_share: float = 0.3  # jobs whose message is sent a second time
    duplicate_within: float = 20.0  # seconds after the first send
    in_flight: int = 40  # unfinished jobs at most: the queue stays short, faults hit running jobs
    workers: int = 4  # worker processes per upload queue
    chaos_seconds: float = 600.0  # the fault phase's limit, once every job is submitted
    settle_limit_seconds: float = 600.0  # the calm phase's limit
    video_mib: tuple[int, int] = (40, 80)
    settings: dict[str, str] = field(
        default_factory=lambda: {
            "LEASE_SECONDS": "20",
            "STUCK_AFTER_SECONDS": "30",
            "LOCAL_SCHEDULE_SECONDS": "10",  # fix-stuck every 10 s
            "MAX_ATTEMPTS": "10",
            "MASTER_RECHECK_SECONDS": "3",
            "PROGRESS_INTERVAL_MS": "1000",
        }
    )
    visibility_seconds: int = 15  # short: a message held by a killed worker comes back soon

    @classmethod
    def small(cls, jobs: int = 30, **overrides: Any) -> ChaosConfig:
        """The smoke version: every fault, more often, about a minute."""
        base: dict[str, Any] = {
            "jobs": jobs,
            "mongo_drop_every": 1.5,
            "kill_every": 2.5,
            "duplicate_share": 0.5,
            "duplicate_within": 8.0,
            "in_flight": 30,
            "workers": 3,
            "chaos_seconds": 45.0,
            "video_mib": (40, 44),
        }
        base.update(overrides)
        return cls(**base)

    @property
    def settle_seconds(self) -> float:
        """The fix-stuck period: a lease to expire, a stuck job to be noticed, two schedule ticks,
        and the backoff of a retry (at most 2 s x 2^attempts, here well under a minute)."""
        s = self.settings
        return int(s["LEASE_SECONDS"]) + int(s["STUCK_AFTER_SECONDS"]) + 2 * int(s["LOCAL_SCHEDULE_SECONDS"]) + 60


class Board:
    """What the all-subscribed WebSocket client saw, and the jobs to cancel when they start."""

    def __init__(self, cancel: Any) -> None:
        self.seen: dict[str, set[str]] = defaultdict(set)
        self.events = 0
        self.reconnects = 0
        self.malformed: list[str] = []
        self.lock = threading.Lock()
        self._cancel = cancel
        self.to_cancel: set[str] = set()

    def apply(self, event: dict[str, Any]) -> None:
        job_id = event.get("jobId")
        if not job_id:
            return
        name = str(event.get("event"))
        with self.lock:
            self.events += 1
            self.seen[job_id].add(name)
            start_cancel = name == "uploadProgress" and job_id in self.to_cancel
            if start_cancel:
                self.to_cancel.discard(job_id)
        if start_cancel:
            threading.Thread(target=self._cancel, args=(job_id,), daemon=True).start()


def listen(ws_url: str, token: str, board: Board, stop: threading.Event, ready: threading.Event) -> None:
    from websockets.sync.client import connect

    while not stop.is_set():
        try:
            with connect(f"{ws_url}/?token={token}") as socket_:
                socket_.send(json.dumps({"action": "subscribe", "all": True}))
                while not stop.is_set():
                    try:
                        raw = socket_.recv(timeout=0.2)
                    except TimeoutError:
                        continue
                    try:
                        message = json.loads(raw)
                    except ValueError:  # not an event: counted, and the connection kept
                        board.malformed.append(str(raw)[:200])
                        continue
                    if message.get("event") == "subscribed":
                        ready.set()
                    board.apply(message)
        except Exception:  # a lost connection is counted: events sent meanwhile are missed
            if stop.is_set():
                return
            logger.exception("the WebSocket client lost its connection; reconnecting")
            board.reconnects += 1
            time.sleep(0.5)


def call(api: ApiClient, method: str, path: str, body: dict[str, Any] | None = None, tries: int = 20) -> Any:
    """An API call, tried again while the system answers 5xx (a MongoDB drop) or not at all."""
    for attempt in range(tries):
        try:
            return api.call(method, path, body)
        except RuntimeError as exc:
            if " answered 5" not in str(exc) or attempt == tries - 1:
                raise
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if attempt == tries - 1:
                raise
        time.sleep(0.5)
    raise AssertionError("unreachable")


class Chaos:
    def __init__(self, config: ChaosConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.run_id = f"{config.seed % 1_000_000:06d}{int(time.time()) % 10_000:04d}"
        self.workdir = config.workdir.resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.records_path = self.workdir / f"s3-requests-{self.run_id}.jsonl"
        self.drops_path = self.workdir / f"mongo-drops-{self.run_id}.log"
        self.log = (self.workdir / f"system-{self.run_id}.log").open("ab")
        self.started = time.monotonic()
        self.final: dict[str, dict[str, Any]] = {}
        self.cancel_answers: dict[str, str] = {}
        self._stoppers: list[Any] = []

    # Setting up ---------------------------------------------------------------------------------

    def start(self) -> None:
        config = self.config
        mongo_port, aws_port = free_port(), free_port()
        mongo = start_mongo_server(mongo_port, self.workdir / f"mongo-{self.run_id}.log")
        self._stoppers.append(mongo.stop)
        self.mongo_proxy = ProxyProcess(
            "chaos.tcpproxy",
            ["--upstream-port", str(mongo_port), "--seed", str(config.seed + 1), "--mean-seconds",
             str(config.mongo_drop_every), "--calm"],
            stderr=self.drops_path,
        )  # fmt: skip
        self._stoppers.append(self.mongo_proxy.stop)
        self.s3_proxy = ProxyProcess(
            "chaos.s3proxy",
            ["--upstream-port", str(aws_port), "--record", str(self.records_path), "--seed", str(config.seed + 2),
             "--rate", str(config.s3_fault_rate), "--calm"],
        )  # fmt: skip
        self._stoppers.append(self.s3_proxy.stop)
        self.source_root = self.workdir / "sources"
        self.database_name = f"chaos_{self.run_id}"
        environment = {
            **os.environ,
            **config.settings,
            "MONGODB_URI": f"mongodb://127.0.0.1:{self.mongo_proxy.port}/?serverSelectionTimeoutMS=5000",
            "MONGODB_DB": self.database_name,
            "LOCAL_WORKERS": str(config.workers),
            "LOCAL_WORKER_PROCESSES": "1",
        }
        self.system = SystemProcess(
            ["--source-root", str(self.source_root), "--aws-port", str(aws_port),
             "--spaces-endpoint", f"http://127.0.0.1:{self.s3_proxy.port}"],
            environment,
            self.log,
        )  # fmt: skip
        self._stoppers.append(self.system.stop)
        ready = self.system.answer()
        self.api = ApiClient(ready["api"], ready["token"])
        self.bucket = ready["bucket"]
        self._clients(ready["aws"], mongo_port)
        self._shorten_visibility()
        self.board = Board(self.cancel)
        self._listen(ready["ws"], ready["token"])

    def _clients(self, aws: str, mongo_port: int) -> None:
        """Clients that see the truth: moto and the MongoDB server directly, not through a proxy."""
        import boto3
        from pymongo import MongoClient

        session = boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
        )
        self.s3 = session.client("s3", endpoint_url=aws)
        self.sqs = session.client("sqs", endpoint_url=aws)
        self.queue_urls = {name: self.sqs.get_queue_url(QueueName=name)["QueueUrl"] for name in QUEUES}
        self.mongo: Any = MongoClient(f"mongodb://127.0.0.1:{mongo_port}", tz_aware=False)
        self.jobs_collection = self.mongo[self.database_name][JOBS_COLLECTION]

    def _shorten_visibility(self) -> None:
        for url in self.queue_urls.values():
            self.sqs.set_queue_attributes(
                QueueUrl=url, Attributes={"VisibilityTimeout": str(self.config.visibility_seconds)}
            )

    def _listen(self, ws_url: str, token: str) -> None:
        self.listening = threading.Event()
        ready = threading.Event()
        thread = threading.Thread(target=listen, args=(ws_url, token, self.board, self.listening, ready), daemon=True)
        thread.start()
        self._stoppers.append(self.listening.set)
        if not ready.wait(30):
            raise RuntimeError("the WebSocket client was not subscribed within 30 s")

    def stop(self) -> None:
        for stop in reversed(self._stoppers):
            try:
                stop()
            except Exception:
                logger.exception("could not stop a part of the run")
        self._stoppers.clear()
        self.log.close()

    # The run ------------------------------------------------------------------------------------

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def refresh_final(self) -> None:
        for document in self.jobs_collection.find(
            {"status": {"$in": list(FINISHED)}}, {"_id": 0, "jobId": 1, "status": 1, "errorCode": 1}
        ):
            self.final[document["jobId"]] = document

    def cancel(self, job_id: str) -> None:
        """Cancel a job that has started uploading (its first uploadProgress came)."""
        try:
            job = call(self.api, "POST", f"/upload-jobs/{job_id}/cancel")
        except RuntimeError as exc:  # 409: it finished first
            self.cancel_answers[job_id] = "too late" if " answered 409" in str(exc) else "error"
            return
        self.cancel_answers[job_id] = "while active" if job["status"] == "active" else str(job["status"])

    def run(self, jobs: list[ChaosJob]) -> float:
        """Submit every job with the faults on; returns the seconds from calm to all final."""
        config = self.config
        self.killer = WorkerKiller(self.system, random.Random(config.seed + 3), config.kill_every)
        self.duplicator = Duplicator(self.sqs, self.queue_urls, random.Random(config.seed + 4), config.duplicate_within)
        for proxy in (self.s3_proxy, self.mongo_proxy):
            proxy.faults(True)
        self.killer.periodic.start()
        self.submit(jobs)
        logger.info("%d jobs submitted at %.0f s", len(jobs), self.elapsed())
        chaos_ends = time.monotonic() + config.chaos_seconds
        while len(self.final) < len(jobs) and time.monotonic() < chaos_ends:
            time.sleep(1)
            self.refresh_final()
        self.killer.periodic.stop()
        self.duplicator.stop()
        for proxy in (self.s3_proxy, self.mongo_proxy):
            proxy.faults(False)
        calm = time.monotonic()
        logger.info("faults stopped at %.0f s; %d of %d jobs final", self.elapsed(), len(self.final), len(jobs))
        self.settle(len(jobs))
        settled = time.monotonic() - calm
        # A worker killed before its final event went out: its message comes back within a lease
        # and the visibility margin, and the worker it reaches announces the job again.
        self._wait_for_final_events(jobs, int(config.settings["LEASE_SECONDS"]) + VISIBILITY_MARGIN_SECONDS + 10)
        return settled

    def submit(self, jobs: list[ChaosJob]) -> None:
        """Create every job over HTTP, keeping at most `in_flight` unfinished (the queue stays
        short, so the faults hit running jobs rather than a backlog); schedule the duplicates."""
        config = self.config
        duplicate_rng = random.Random(config.seed + 5)
        last_final, finals = time.monotonic(), 0
        for submitted, job in enumerate(jobs):
            # Nothing finished for the fix-stuck period: the unfinished ones are stuck; go on.
            while (
                submitted - len(self.final) >= config.in_flight
                and time.monotonic() - last_final < config.settle_seconds
            ):
                time.sleep(0.5)
                self.refresh_final()
                if len(self.final) != finals:
                    last_final, finals = time.monotonic(), len(self.final)
            if job.kind in CANCELLED_KINDS:
                with self.board.lock:
                    self.board.to_cancel.add(job.job_id)
            call(self.api, "POST", "/upload-jobs", job.body)
            if duplicate_rng.random() < config.duplicate_share:
                self.duplicator.schedule(job.job_id, job.queue)

    def settle(self, count: int) -> None:
        """Wait until every job is final, or no job became final for the fix-stuck period (the
        ones left are stuck: nothing will move them), or the settle phase's limit is reached."""
        config = self.config
        limit = time.monotonic() + config.settle_limit_seconds
        last_change, finals = time.monotonic(), len(self.final)
        while len(self.final) < count and time.monotonic() < limit:
            if time.monotonic() - last_change > config.settle_seconds:
                return
            time.sleep(1)
            self.refresh_final()
            if len(self.final) != finals:
                last_change, finals = time.monotonic(), len(self.final)

    def _wait_for_final_events(self, jobs: list[ChaosJob], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.board.lock:
                missing = invariants.missed_final_event(jobs, self.final, self.board.seen)
            if not missing:
                return
            time.sleep(0.5)

    # The verdict --------------------------------------------------------------------------------

    def bucket_objects(self) -> dict[str, str]:
        objects: dict[str, str] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            objects.update({item["Key"]: item["ETag"].strip('"') for item in page.get("Contents", [])})
        return objects

    def open_uploads(self) -> list[tuple[str, str]]:
        uploads = []
        for page in self.s3.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket):
            uploads += [(item["Key"], item["UploadId"]) for item in page.get("Uploads", [])]
        return uploads

    def md5_of_object(self, key: str) -> str:
        import hashlib

        digest = hashlib.md5(usedforsecurity=False)
        for chunk in self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].iter_chunks(1024 * 1024):
            digest.update(chunk)
        return digest.hexdigest()

    def verdict(self, jobs: list[ChaosJob], settled: float) -> dict[str, Any]:
        self.refresh_final()
        final = {
            doc["jobId"]: doc
            for doc in self.jobs_collection.find({}, {"_id": 0, "jobId": 1, "status": 1, "errorCode": 1})
        }
        records = load_records(str(self.records_path))
        bucket = self.bucket_objects()
        findings = invariants.Findings()
        findings.add("not_final", invariants.not_final(jobs, final))
        findings.add("lost", invariants.lost(jobs, final, bucket))
        findings.add("corrupted", invariants.corrupted(jobs, final, bucket, self.md5_of_object))
        duplicated, resent = invariants.duplicates(records)
        findings.add("duplicated", duplicated)
        findings.add("open_multipart", invariants.open_multipart(jobs, final, self.open_uploads()))
        findings.add("published_early", invariants.published_early(jobs, records))
        with self.board.lock:
            findings.add("missed_final_event", invariants.missed_final_event(jobs, final, self.board.seen))
        fault_kinds = Counter(str(r["fault"]) for r in records if r["fault"])
        workers = self.system.workers()
        return {
            "jobs": len(jobs),
            **{key: findings.counts[key] for key in FAILURE_KEYS},
            "worker_kills": len(self.killer.kills),
            "duplicate_deliveries": len(self.duplicator.sent),
            "s3_faults": sum(fault_kinds.values()),
            "mongo_drops": count_drops(self.drops_path),
            "seed": self.config.seed,
            "seconds": round(self.elapsed(), 1),
            "resent_in_flight": resent,
            "s3_requests": len(records),
            "s3_fault_kinds": dict(sorted(fault_kinds.items())),
            "worker_restarts": sum(int(worker["restarts"]) for worker in workers),
            "websocket_events": self.board.events,
            "websocket_reconnects": self.board.reconnects,
            "websocket_malformed": len(self.board.malformed),
            "settle_seconds": round(settled, 1),
            "cancels": dict(sorted(Counter(self.cancel_answers.values()).items())),
            "final_states": dict(sorted(Counter(str(doc.get("status")) for doc in final.values()).items())),
            "kinds": dict(sorted(Counter(str(job.kind) for job in jobs).items())),
            "examples": {key: value for key, value in findings.examples.items() if value},
        }


def run_chaos(config: ChaosConfig) -> dict[str, Any]:
    """One whole run; the results (also written to `config.results` when set)."""
    chaos = Chaos(config)
    workload = Workload(chaos.workdir / "sources", random.Random(config.seed), chaos.run_id)
    try:
        jobs = workload.build(Mix.for_jobs(config.jobs), video_mib=config.video_mib)
        chaos.start()
        settled = chaos.run(jobs)
        results = chaos.verdict(jobs, settled)
    finally:
        chaos.stop()
        shutil.rmtree(workload.root, ignore_errors=True)  # hundreds of MiB; made again from the seed
    if config.results is not None:
        config.results.parent.mkdir(parents=True, exist_ok=True)
        config.results.write_text(json.dumps(results, indent=2) + "\n")
    return results


def failed_invariants(results: dict[str, Any]) -> list[str]:
    return [key for key in FAILURE_KEYS if results[key]]


def print_results(results: dict[str, Any]) -> None:
    print(f"\nChaos run: seed {results['seed']}, {results['jobs']} jobs, {results['seconds']} s")
    print("Faults injected:")
    for key in FAULT_KEYS:
        print(f"  {key:<22} {results[key]:>7}")
    print(f"  {'(s3 kinds)':<22} {results['s3_fault_kinds']}")
    print(f"  {'resent_in_flight':<22} {results['resent_in_flight']:>7}  (PUTs stored but unheard, sent again)")
    print("Invariants (each must be 0):")
    for key in FAILURE_KEYS:
        mark = "ok" if not results[key] else "FAIL"
        print(f"  {key:<22} {results[key]:>7}  {mark}")
    print(f"Final states: {results['final_states']}; all final {results['settle_seconds']} s after the faults stopped")
    for key, examples in results["examples"].items():
        for example in examples:
            print(f"  {key}: {example}")


MEANINGS = {
    "jobs": "jobs run (renditions, subtitles, masters, multipart videos, designed failures, cancels)",
    "worker_kills": "worker processes SIGKILLed (and restarted by the runtime)",
    "duplicate_deliveries": "job messages sent to SQS a second time",
    "s3_faults": "S3 requests given a fault (503 SlowDown, 500, reset mid-body, slow)",
    "mongo_drops": "MongoDB connections reset by the proxy",
    "resent_in_flight": "PUTs stored by S3 whose answer never arrived, sent again (legitimate)",
    "lost": "objects of completed jobs missing from the bucket",
    "duplicated": "files or parts PUT again after S3 had acknowledged them",
    "corrupted": "objects whose MD5 differs from their source's",
    "not_final": "jobs not in their expected final state after the fix-stuck period",
    "open_multipart": "multipart uploads left open for a finished job",
    "published_early": "playlists stored before a file they reference",
    "missed_final_event": "final events the all-subscribed WebSocket client did not receive",
    "settle_seconds": "seconds from the end of the faults to every job final",
    "seconds": "seconds, the whole run",
}


def markdown_table(results: dict[str, Any]) -> str:
    """The README's table of one run's results."""
    lines = [f"Seed {results['seed']}.", "", "| figure | value | meaning |", "|---|---:|---|"]
    lines += [f"| `{key}` | {results[key]} | {meaning} |" for key, meaning in MEANINGS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("CHAOS_JOBS") or 500))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("CHAOS_SEED") or random.randrange(1_000_000)))
    parser.add_argument(
        "--results", type=Path, default=None, help="default chaos/results.json (.local/chaos/ below 100 jobs)"
    )
    parser.add_argument("--markdown", action="store_true", help="print the README table of chaos/results.json")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown_table(json.loads((args.results or RESULTS).read_text())))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    print(f"Chaos run: seed {args.seed} (python -m chaos.run --seed {args.seed} plays it again)", flush=True)
    config = ChaosConfig.small(args.jobs) if args.jobs < SMALL_BELOW else ChaosConfig(jobs=args.jobs)
    config.seed = args.seed
    config.results = args.results or (RESULTS if args.jobs >= SMALL_BELOW else Path(".local/chaos/results.json"))
    results = run_chaos(config)
    print_results(results)
    failed = failed_invariants(results)
    if failed:
        print(f"FAIL: {', '.join(failed)} (seed {args.seed})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
