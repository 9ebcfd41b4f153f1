"""`make run` starts the whole local system, answers over HTTP, and stops every process on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from chalicelib.local.aws import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def http(method: str, url: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def children_of(pid: int) -> list[int]:
    result = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(line) for line in result.stdout.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    return bool(status) and not status.startswith("Z")


def command_line(pid: int) -> str:
    return subprocess.run(["ps", "-o", "args=", "-p", str(pid)], capture_output=True, text=True).stdout


@pytest.mark.parametrize("pollers", ["threads", "worker processes"])
def test_make_run_serves_the_api_and_uploads_then_stops_cleanly(
    tmp_path: Path, pollers: str, request: pytest.FixtureRequest
) -> None:
    ports = {"API_PORT": free_port(), "WS_PORT": free_port(), "AWS_PORT": free_port()}
    sources = tmp_path / "sources"
    rendition = sources / "film" / "480p"
    rendition.mkdir(parents=True)
    for index in range(3):
        (rendition / f"seg{index}.ts").write_bytes(bytes([index]) * 50_000)
    (rendition / "index.m3u8").write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n"
        + "".join(f"#EXTINF:2.0,\nseg{i}.ts\n" for i in range(3))
        + "#EXT-X-ENDLIST\n"
    )
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "SOURCE_ROOT": str(sources)}
    env.pop("MONGODB_URI", None)
    if pollers == "worker processes":  # they need a MongoDB server every process reaches
        env.update(
            LOCAL_WORKER_PROCESSES="1",
            LOCAL_WORKERS="2",
            MONGODB_URI=request.getfixturevalue("wire_mongodb_uri"),
            MONGODB_DB=f"make_run_{uuid.uuid4().hex[:12]}",
        )
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    try:
        token = ""
        deadline = time.monotonic() + 90
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            output.append(line)
            if line.startswith("Admin token:"):
                token = process.stdout.readline().strip()
            if line.startswith("Ready."):
                break
        assert token, "".join(output)
        api = f"http://127.0.0.1:{ports['API_PORT']}"
        assert http("GET", f"{api}/v1/health") == (200, {"status": "ok"})
        assert http("GET", f"{api}/v1/studio/upload-jobs")[0] == 401
        body = {
            "jobType": "upload-hls-to-s3",
            "resourceType": "film",
            "resourceId": "64b7f0c2a1b2c3d4e5f60718",
            "hlsDir": "film/480p",
            "label": "480p",
        }
        status, job = http("POST", f"{api}/v1/studio/upload-jobs", token, body)
        assert status == 201
        for _ in range(200):
            status, job = http("GET", f"{api}/v1/studio/upload-jobs/{job['jobId']}", token)
            if job["status"] in ("completed", "failed"):
                break
            time.sleep(0.1)
        assert job["status"] == "completed", job
        assert job["uploadedFiles"] == 4
        wait_for_port("127.0.0.1", ports["WS_PORT"])
        children = children_of(process.pid)
        workers = [
            pid for child in children for pid in children_of(child) if "chalicelib.local.worker" in command_line(pid)
        ]
        # 2 per upload queue and the notification queue, 1 per dead-letter queue
        assert len(workers) == (0 if pollers == "threads" else 8)
    finally:
        # As a terminal's job control or a supervisor does: the signal goes to the whole group.
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    descendants = [pid for child in children for pid in [child, *children_of(child)]]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(alive(pid) for pid in descendants):
        time.sleep(0.2)
    assert not [pid for pid in descendants if alive(pid)], "processes left running after SIGTERM"
    printed = "".join(output) + (process.stdout.read() if process.stdout else "")
    stopping = [json.loads(line) for line in printed.splitlines() if "received SIGTERM, stopping" in line]
    assert [(line["service"], line["stage"], line["level"]) for line in stopping] == [
        ("studio-uploads", "local", "INFO")
    ], printed  # a JSON log line (chalicelib/logs.py), as in Lambda
