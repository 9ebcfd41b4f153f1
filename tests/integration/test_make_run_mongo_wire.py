"""`LOCAL_MONGO=wire make run`: MongoDB as a server process of its own, its URI printed, the jobs
visible to any other MongoDB client while it runs; without the server's Python, one line says why."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from chalicelib.local.aws import free_port

ROOT = Path(__file__).resolve().parents[2]
JOB = {
    "jobType": "upload-hls-to-s3",
    "resourceType": "film",
    "resourceId": "64b7f0c2a1b2c3d4e5f60718",
    "hlsDir": "film/480p",
    "label": "480p",
}
# Another process, another client: what it reads is what the server holds, not what `make run` caches.
READER = """
import json, sys
from pymongo import MongoClient
job = MongoClient(sys.argv[1], tz_aware=False).get_default_database().upload_jobs.find_one({"jobId": sys.argv[2]})
print(json.dumps({"status": job["status"], "uploadedFiles": job["uploadedFiles"]}))
"""


def post(url: str, token: str, body: Any) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.loads(response.read())


def write_rendition(sources: Path) -> None:
    rendition = sources / "film" / "480p"
    rendition.mkdir(parents=True)
    for index in range(3):
        (rendition / f"seg{index}.ts").write_bytes(bytes([index]) * 20_000)
    (rendition / "index.m3u8").write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n"
        + "".join(f"#EXTINF:2.0,\nseg{i}.ts\n" for i in range(3))
        + "#EXT-X-ENDLIST\n"
    )


def read_job_status(uri: str, job_id: str) -> str:
    reader = "import sys; from pymongo import MongoClient; c = MongoClient(sys.argv[1]); print(c.get_default_database().upload_jobs.find_one({'jobId': sys.argv[2]})['status'])"
    result = subprocess.run([sys.executable, "-c", reader, uri, job_id], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def read_job(uri: str, job_id: str) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-c", READER, uri, job_id], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


@pytest.mark.slow
def test_make_run_with_the_wire_server_prints_its_uri_and_other_clients_see_the_jobs(
    tmp_path: Path, wire_server: Any
) -> None:
    # `wire_server`: this test needs the server's Python too, and fails with the reason without it.
    ports = {"API_PORT": free_port(), "WS_PORT": free_port(), "AWS_PORT": free_port(), "MONGO_PORT": free_port()}
    write_rendition(tmp_path / "sources")
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "SOURCE_ROOT": str(tmp_path / "sources")}
    env.update(LOCAL_MONGO="wire")
    env.pop("MONGODB_URI", None)
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
        token, mongo = "", ""
        deadline = time.monotonic() + 90
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            output.append(line)
            if line.startswith("MongoDB "):
                mongo = line
            if line.startswith("Admin token:"):
                token = process.stdout.readline().strip()
            if line.startswith("Ready.") or not line:
                break
        uri = f"mongodb://127.0.0.1:{ports['MONGO_PORT']}/studio_uploads"
        assert mongo.split()[1] == uri, "".join(output)
        server_pid = int(mongo.split("pid ")[1].split(";")[0])

        job = post(f"http://127.0.0.1:{ports['API_PORT']}/v1/studio/upload-jobs", token, JOB)
        seen = read_job(uri, job["jobId"])
        assert seen["status"] in ("waiting", "active", "completed")
        for _ in range(300):
            if seen["status"] == "completed":
                break
            time.sleep(0.2)
            seen = read_job(uri, job["jobId"])
        assert seen == {"status": "completed", "uploadedFiles": 4}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and subprocess.run(["kill", "-0", str(server_pid)]).returncode == 0:
        time.sleep(0.2)
    assert subprocess.run(["kill", "-0", str(server_pid)], capture_output=True).returncode != 0, (
        "wire server left running"
    )


def test_without_the_server_python_make_run_says_so_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "LOCAL_MONGO": "wire", "MONGO_PORT": str(free_port())}
    env.update(MONGO_WIRE_PYTHON=str(tmp_path / "no-python-here"), AWS_PORT=str(free_port()))
    env.pop("MONGODB_URI", None)

    result = subprocess.run(
        [sys.executable, "-m", "chalicelib.local.run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "make run: the MongoDB wire server needs Python >= 3.13 in .venv-mongo: run `make mongo-venv` "
        "(no Python 3.13 on this machine? install one first, e.g. `pyenv install 3.13`)"
    ]


def test_without_python_3_13_building_the_server_venv_says_what_to_install(tmp_path: Path) -> None:
    venv = tmp_path / "venv-mongo"
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "mongo-venv",
            f"MONGO_VENV={venv}",
            f"MONGO_PYTHONS={tmp_path / 'python3.13'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "none was found: install one (e.g. pyenv install 3.13)" in result.stdout
    assert not venv.exists()


def test_an_explicit_mongodb_uri_wins_over_local_mongo_wire(tmp_path: Path, wire_server: Any) -> None:
    from chalicelib.config import get_settings
    from chalicelib.local.runtime import LocalRuntime, RuntimeOptions
    from chalicelib.services import set_services

    saved_environment = dict(os.environ)
    given, database = wire_server.uri(), f"explicit_{uuid.uuid4().hex[:8]}"
    os.environ.update(MONGODB_URI=given, MONGODB_DB=database)
    mongo_port = free_port()
    options = RuntimeOptions(
        api_port=free_port(), ws_port=free_port(), aws_port=free_port(), source_root=tmp_path, mongo="wire"
    )
    options.mongo_port = mongo_port
    runtime = LocalRuntime(options)
    try:
        runtime.start()
        runtime.services.store.collection.insert_one({"jobId": "through-the-given-uri", "status": "waiting"})

        assert (runtime.wire_server, runtime.mongodb_uri) == (None, given)
        assert read_job_status(wire_server.uri(database), "through-the-given-uri") == "waiting"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", mongo_port), timeout=1).close()
    finally:
        runtime.stop()
        os.environ.clear()
        os.environ.update(saved_environment)
        get_settings.cache_clear()
        set_services(None)


def test_with_mongo_port_taken_make_run_refuses_instead_of_using_that_server() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "LOCAL_MONGO": "wire", "MONGO_PORT": str(port), "AWS_PORT": str(free_port())}
        env.pop("MONGODB_URI", None)

        result = subprocess.run(
            [sys.executable, "-m", "chalicelib.local.run"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"make run: 127.0.0.1:{port} is taken (another MongoDB?): choose another MONGO_PORT"
    ]
