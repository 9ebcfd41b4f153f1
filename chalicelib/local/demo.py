"""`make demo`: the whole system on this machine uploading a real HLS ladder, watched live.

Starts the local runtime, makes the ladder (ffmpeg when installed), enqueues the rendition,
subtitle and master jobs over HTTP in dependency order, plus one job of another title whose folder
is missing, draws one progress bar per job from the WebSocket's events, prints the final table,
verifies every uploaded object against its source, and waits for the broken job's JobFailed
notification at the runtime's local webhook receiver (signature verified). Exits 0 only if every
ladder job completed, every object is byte-identical, and the failure notification arrived.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.auth import TokenPolicy
from chalicelib.local.api_client import ApiClient
from chalicelib.local.aws import free_port
from chalicelib.local.ladder import SUBTITLE_LABEL, SUBTITLE_LANGUAGE, Ladder, make_ladder
from chalicelib.local.runtime import LocalRuntime, RuntimeOptions

TERMINAL_EVENTS = {"JobCompleted": "completed", "JobFailed": "failed", "JobCancelled": "cancelled"}
DEMO_TIMEOUT_SECONDS = 90
NOTIFICATION_WAIT_SECONDS = 20
# Faster than production so a short demo shows moving bars and the master's wait; the local webhook
# receiver shows the failure notification arriving.
DEMO_SETTINGS = {
    "PROGRESS_INTERVAL_MS": "200",
    "MASTER_RECHECK_SECONDS": "2",
    "LOCAL_WORKERS": "4",
    "LOCAL_WEBHOOK_RECEIVER": "1",
    # The demo shows every job in its own display; the service's JSON log lines are `make run`'s
    # (LOG_LEVEL=INFO make demo shows them here too).
    "LOG_LEVEL": "WARNING",
}


@dataclass
class LiveBoard:
    """What the WebSocket tells us about each job; read by the progress bars."""

    progress: dict[str, dict[str, Any]] = field(default_factory=dict)
    finished: dict[str, str] = field(default_factory=dict)
    events: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def apply(self, event: dict[str, Any]) -> None:
        job_id = event.get("jobId")
        if not job_id:
            return
        with self.lock:
            self.events += 1
            if event["event"] == "uploadProgress" or event["event"] in TERMINAL_EVENTS:
                self.progress[job_id] = event
            if event["event"] in TERMINAL_EVENTS:
                self.finished[job_id] = TERMINAL_EVENTS[event["event"]]


def listen(ws_url: str, token: str, board: LiveBoard, stop: threading.Event, ready: threading.Event) -> None:
    from websockets.sync.client import connect

    with connect(f"{ws_url}/?token={token}") as socket_:
        socket_.send(json.dumps({"action": "subscribe", "all": True}))
        while not stop.is_set():
            try:
                message = json.loads(socket_.recv(timeout=0.2))
            except TimeoutError:
                continue
            if message.get("event") == "subscribed":
                ready.set()
            board.apply(message)


def job_bodies(ladder: Ladder, source_root: Path, resource_id: str) -> list[dict[str, Any]]:
    """The rendition and subtitle jobs first, the master (which waits for them) last."""
    relative = ladder.root.relative_to(source_root)
    common = {"resourceType": "film", "resourceId": resource_id, "resourceName": "Studio demo film"}
    bodies: list[dict[str, Any]] = [
        {
            **common,
            "jobId": f"demo-{resource_id[-6:]}-{r.label}",
            "jobType": "upload-hls-to-s3",
            "hlsDir": str(relative / r.label),
            "label": r.label,
        }
        for r in ladder.renditions
    ]
    bodies.append(
        {
            **common,
            "jobId": f"demo-{resource_id[-6:]}-subtitle-{SUBTITLE_LANGUAGE}",
            "jobType": "upload-subtitle-to-s3",
            "subtitlePath": str(ladder.subtitle.relative_to(source_root)),
            "subtitlePlaylistPath": str(ladder.subtitle_playlist.relative_to(source_root)),
            "subtitleMetadata": {"language": SUBTITLE_LANGUAGE, "label": SUBTITLE_LABEL},
        }
    )
    bodies.append(
        {
            **common,
            "jobId": f"demo-{resource_id[-6:]}-master",
            "jobType": "upload-master-playlist",
            "masterPlaylistPath": str(ladder.master.relative_to(source_root)),
            "subtitleLanguages": [SUBTITLE_LANGUAGE],
        }
    )
    return bodies


def broken_job_body(ladder: Ladder, source_root: Path, resource_id: str) -> dict[str, Any]:
    """A rendition of another title whose folder does not exist: it fails at once, SOURCE_NOT_FOUND."""
    return {
        "resourceType": "film",
        "resourceId": uuid.uuid4().hex[:24],
        "resourceName": "Demo: a rendition whose folder is missing",
        "jobId": f"demo-{resource_id[-6:]}-broken",
        "jobType": "upload-hls-to-s3",
        "hlsDir": str(ladder.root.relative_to(source_root) / "no-such-rendition"),
        "label": "missing",
    }


def failure_notification(runtime: LocalRuntime, job_id: str) -> dict[str, Any] | None:
    """The JobFailed notification of `job_id`, as the local receiver got it (signature verified)."""
    receiver = runtime.webhook_receiver
    if receiver is None:
        return None
    return receiver.wait_for(
        lambda payload: payload.get("jobId") == job_id and payload.get("event") == "JobFailed",
        timeout=NOTIFICATION_WAIT_SECONDS,
    )


def expected_objects(ladder: Ladder, resource_id: str) -> dict[str, Path]:
    """Every key the jobs must write, with the source file it must equal."""
    prefix = f"films/{resource_id}"
    expected = {f"{prefix}/hls/master.m3u8": ladder.master}
    for rendition in ladder.renditions:
        for path in sorted((ladder.root / rendition.label).iterdir()):
            expected[f"{prefix}/hls/{rendition.label}/{path.name}"] = path
    expected[f"{prefix}/subtitles/{SUBTITLE_LANGUAGE}.vtt"] = ladder.subtitle
    expected[f"{prefix}/subtitles/{SUBTITLE_LANGUAGE}.m3u8"] = ladder.subtitle_playlist
    return expected


def verify(s3: Any, bucket: str, resource_id: str, expected: dict[str, Path]) -> list[str]:
    """Problems found: missing, different or unexpected objects. Empty when all is well."""
    listed: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"films/{resource_id}/"):
        listed.update(item["Key"] for item in page.get("Contents", []))
    problems = [f"missing {key}" for key in sorted(set(expected) - listed)]
    problems += [f"unexpected {key}" for key in sorted(listed - set(expected))]
    for key in sorted(set(expected) & listed):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        if hashlib.md5(body).digest() != hashlib.md5(expected[key].read_bytes()).digest():
            problems.append(f"different bytes in {key}")
    return problems


def watch(board: LiveBoard, jobs: list[dict[str, Any]], deadline: float) -> None:
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description:<28}"),
        BarColumn(bar_width=36),
        TextColumn("{task.percentage:>5.1f}%"),
        DownloadColumn(),
        TextColumn("{task.fields[files]}"),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, refresh_per_second=10) as bars:
        tasks = {job["jobId"]: bars.add_task(job["jobId"], total=None, files="", status="waiting") for job in jobs}
        while time.monotonic() < deadline:
            with board.lock:
                snapshot = dict(board.progress)
                done = len(board.finished) == len(jobs)
            for job_id, event in snapshot.items():
                total = event.get("totalBytes") or None
                files = f"{event.get('uploadedFiles', 0)}/{event.get('totalFiles', 0)} files"
                bars.update(
                    tasks[job_id], total=total, completed=event.get("uploadedBytes", 0), files=files,
                    status=event.get("status", ""),
                )  # fmt: skip
            if done:
                return
            time.sleep(0.1)


def print_table(api: ApiClient, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Upload jobs")
    for column in ("job", "status", "files", "bytes", "seconds", "URL"):
        table.add_column(column)
    final = [api.call("GET", f"/upload-jobs/{job['jobId']}") for job in jobs]
    for job in final:
        seconds = job.get("durationSeconds")
        table.add_row(
            job["jobId"],
            job["status"]
            + (f" ({job.get('errorCode')}: {job.get('failedReason')})" if job["status"] == "failed" else ""),
            f"{job['uploadedFiles']}/{job['totalFiles']}",
            f"{job['uploadedBytes']:,}",
            f"{seconds:.2f}" if seconds is not None else "-",
            job.get("publicUrl") or "",
        )
    # A log (CI, a pipe) gets the full table rather than rich's 80 columns.
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    return final


def main() -> int:
    os.environ.update({k: os.environ.get(k, v) for k, v in DEMO_SETTINGS.items()})
    options = RuntimeOptions.from_environment()
    ports = (("api_port", "API_PORT"), ("ws_port", "WS_PORT"), ("aws_port", "AWS_PORT"), ("mongo_port", "MONGO_PORT"))
    for attribute, variable in ports:
        if variable not in os.environ:  # free ports, so the demo runs beside a `make run`
            setattr(options, attribute, free_port())
    options.source_root = Path(os.environ.get("DEMO_SOURCE_ROOT", "./.local/demo-sources"))
    options.log_requests = False
    runtime = LocalRuntime(options)
    stop = threading.Event()
    started = time.monotonic()
    try:
        runtime.start()
        settings = runtime.services.settings
        print(f"Local runtime up: API {runtime.api_url}, WebSocket {runtime.ws_url}, S3/SQS {options.aws_endpoint}")
        resource_id = uuid.uuid4().hex[:24]
        ladder = make_ladder(settings.source_root / "demo" / resource_id)
        kind = "real H.264 HLS made by ffmpeg" if ladder.real_video else "synthetic HLS (ffmpeg not installed)"
        print(f"Made a ladder of {len(ladder.renditions)} renditions + a WebVTT subtitle: {kind}")
        token = TokenPolicy.from_settings(settings).issue(subject="demo")
        api = ApiClient(runtime.api_url, token)
        board = LiveBoard()
        ready = threading.Event()
        listener = threading.Thread(target=listen, args=(runtime.ws_url, token, board, stop, ready), daemon=True)
        listener.start()
        if not ready.wait(10):
            print("The WebSocket did not confirm the subscription", file=sys.stderr)
            return 1
        ladder_jobs = job_bodies(ladder, settings.source_root, resource_id)
        broken = broken_job_body(ladder, settings.source_root, resource_id)
        jobs = [*ladder_jobs, broken]
        for body in jobs:
            api.call("POST", "/upload-jobs", body)
        watch(board, jobs, started + DEMO_TIMEOUT_SECONDS)
        final = print_table(api, jobs)
        problems = verify(
            runtime.services.s3, settings.spaces_bucket, resource_id, expected_objects(ladder, resource_id)
        )
        failed = [job["jobId"] for job in final if job["status"] != "completed" and job["jobId"] != broken["jobId"]]
        notification = failure_notification(runtime, broken["jobId"])
        if notification is None:
            problems.append(f"no JobFailed notification of {broken['jobId']} reached the local webhook receiver")
        else:
            print(f"Webhook notification received, signature verified: {notification['text']}")
        print(f"WebSocket events received: {board.events}; elapsed {time.monotonic() - started:.1f} s")
        if failed or problems:
            for line in [f"job {job_id} did not complete" for job_id in failed] + problems:
                print(f"FAIL {line}", file=sys.stderr)
            return 1
        count = len(expected_objects(ladder, resource_id))
        print(f"Verified {count} objects in s3://{settings.spaces_bucket}/films/{resource_id}/: byte-identical.")
        return 0
    finally:
        stop.set()
        runtime.stop()


if __name__ == "__main__":
    sys.exit(main())
