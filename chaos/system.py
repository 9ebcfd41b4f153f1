"""The system under chaos, and the one place that knows how the runtime's parts are started.

    python -m chaos.system --source-root DIR --aws-port N --spaces-endpoint URL

In a process of its own (its log, and its worker processes' logs, go where its stderr goes): the
local runtime exactly as `make run` starts it with `LOCAL_WORKER_PROCESSES=1`, its MongoDB at
`MONGODB_URI` (the dropping proxy, set by the caller), its workers' S3 at `--spaces-endpoint`
(the fault proxy). When ready it prints `chaos: ` and a JSON object ({"api", "ws", "aws",
"token", "bucket"}), then answers one command per line of standard input on a `chaos: ` line:

    workers          ->  [{"name", "pid", "restarts"}, ...]
    kill NAME        ->  {"pid": pid or null}   SIGKILL that worker process (the runtime restarts it)

and stops everything it started when standard input closes.

The rest of this module is the caller's side: `start_mongo_server` (the wire-protocol server) and
`SystemProcess` (this process, driven over its pipes).
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from chalicelib.local.mongo_wire import WireServer, start_wire_server

ANSWER = "chaos: "


def start_mongo_server(port: int, log: Path) -> WireServer:
    """The runtime's MongoDB wire-protocol server (LOCAL_MONGO=wire) on 127.0.0.1:`port`."""
    return start_wire_server("127.0.0.1", port, log=log)


class SystemProcess:
    """`python -m chaos.system` as a child: its answers read on a thread, its log in a file."""

    def __init__(self, args: list[str], environment: dict[str, str], log: IO[bytes]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chaos.system", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=environment,
            text=True,
        )
        self._answers: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        threading.Thread(target=self._read, name="system-answers", daemon=True).start()

    def _read(self) -> None:
        # Every line is read, so a worker process printing on the inherited stdout never blocks.
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(ANSWER):
                self._answers.put(json.loads(line[len(ANSWER) :]))
        self._answers.put(None)

    def answer(self, timeout: float = 120) -> Any:
        value = self._answers.get(timeout=timeout)
        if value is None:
            raise RuntimeError(f"the system process ended (exit code {self.process.poll()}); see its log")
        return value

    def ask(self, command: str) -> Any:
        with self._lock:
            assert self.process.stdin is not None
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
            return self.answer(timeout=30)

    def workers(self) -> list[dict[str, Any]]:
        return list(self.ask("workers"))

    def kill(self, name: str) -> int | None:
        pid = self.ask(f"kill {name}")["pid"]
        return int(pid) if pid is not None else None

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the system process itself ------------------------------------------------------------------


def answer(message: Any, out: IO[str]) -> None:
    print(ANSWER + json.dumps(message), file=out, flush=True)


def serve_commands(runtime: Any, out: IO[str]) -> None:
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        processes = {process.name: process for process in runtime.worker_processes()}
        if command == "workers":
            answer(
                [{"name": p.name, "pid": p.pid, "restarts": p.restarts} for p in processes.values()],
                out,
            )
        elif command == "kill" and argument in processes:
            answer({"pid": processes[argument].kill()}, out)
        else:
            answer({"error": f"unknown command {line.strip()!r}"}, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source-root", type=Path, required=True)
    parser.add_argument("--aws-port", type=int, required=True)
    parser.add_argument("--spaces-endpoint", required=True, help="the workers' S3 endpoint (the fault proxy)")
    args = parser.parse_args()
    out, sys.stdout = sys.stdout, sys.stderr  # Chalice's server prints; only answers go to stdout
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s system %(levelname)s %(name)s: %(message)s")

    from chalicelib.auth import TokenPolicy
    from chalicelib.local.aws import free_port
    from chalicelib.local.runtime import LocalRuntime, RuntimeOptions

    options = RuntimeOptions.from_environment()
    options.api_port, options.ws_port, options.aws_port = free_port(), free_port(), args.aws_port
    options.source_root = args.source_root
    options.spaces_endpoint = args.spaces_endpoint
    options.worker_processes = True
    options.log_requests = False
    runtime = LocalRuntime(options)
    try:
        runtime.start()
        settings = runtime.services.settings
        ready = {
            "api": runtime.api_url,
            "ws": runtime.ws_url,
            "aws": options.aws_endpoint,
            "bucket": settings.spaces_bucket,
            "token": TokenPolicy.from_settings(settings).issue(subject="chaos"),
        }
        answer(ready, out)
        serve_commands(runtime, out)
    finally:
        runtime.stop()


if __name__ == "__main__":
    main()
