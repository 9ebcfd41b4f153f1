"""The local MongoDB wire-protocol server as a process of its own, reached through a plain URI.

The server (local_mongo/server.py, mongoeco) needs Python >= 3.13 and runs from the separate
virtualenv `.venv-mongo` (`make mongo-venv`, requirements-mongo.txt), never from the service's own.
`start_wire_server` starts it on a port and returns once it answers MongoDB's `hello` command
(it has no `buildinfo`, so pymongo's `server_info()` fails on it); `WireServer.stop` ends it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]
SERVER_SCRIPT = ROOT / "local_mongo" / "server.py"
MONGO_VENV = ROOT / ".venv-mongo"
DEFAULT_PORT = 27017
UNAVAILABLE = (
    "the MongoDB wire server needs Python >= 3.13 in .venv-mongo: run `make mongo-venv` "
    "(no Python 3.13 on this machine? install one first, e.g. `pyenv install 3.13`)"
)


class WireServerUnavailable(ConfigurationError):
    """The wire server cannot start here: no .venv-mongo, or it died before answering."""


def server_python() -> Path:
    """The wire server's interpreter (`.venv-mongo`, or `$MONGO_WIRE_PYTHON`)."""
    python = Path(os.environ.get("MONGO_WIRE_PYTHON") or MONGO_VENV / "bin" / "python")
    if not os.access(python, os.X_OK):
        raise WireServerUnavailable(UNAVAILABLE)
    return python


@dataclass
class WireServer:
    """A running wire server: its address, its process, the URI any MongoDB client can use."""

    host: str
    port: int
    process: subprocess.Popen[bytes]

    def uri(self, database: str = "") -> str:
        return f"mongodb://{self.host}:{self.port}/{database}"

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s. Safe to call twice."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start_wire_server(
    host: str = "127.0.0.1", port: int = DEFAULT_PORT, *, log: Path | None = None, timeout: float = 30.0
) -> WireServer:
    """Start the server in its own session (Ctrl-C reaches the runtime first; it stops the server)
    and wait until `hello` answers. Its output goes to `log` (default: discarded). A port someone
    already listens on is refused: `hello` would be answered by that server (a real MongoDB?)."""
    if listening(host, port):
        raise WireServerUnavailable(f"{host}:{port} is taken (another MongoDB?): choose another MONGO_PORT")
    output: Any = log.open("ab") if log else subprocess.DEVNULL
    try:
        process = subprocess.Popen(
            [str(server_python()), str(SERVER_SCRIPT), "--host", host, "--port", str(port)],
            stdout=output,
            stderr=output,
            start_new_session=True,
        )
    finally:
        if log:
            output.close()
    server = WireServer(host, port, process)
    try:
        wait_until_hello(server, timeout, log)
    except BaseException:
        server.stop()
        raise
    return server


def listening(host: str, port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) == 0


def wait_until_hello(server: WireServer, timeout: float, log: Path | None) -> None:
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    deadline = time.monotonic() + timeout
    client: MongoClient[Any] = MongoClient(server.uri(), serverSelectionTimeoutMS=500, connectTimeoutMS=500)
    try:
        while True:
            if server.process.poll() is not None:
                raise WireServerUnavailable(
                    f"the MongoDB wire server exited with {server.process.returncode} before answering "
                    f"on {server.host}:{server.port} (port taken?{f' see {log}' if log else ''})"
                )
            try:
                client.admin.command("hello")
                if server.process.poll() is None:  # the answer is ours, not from one that took the port
                    return
            except PyMongoError:
                if time.monotonic() > deadline:
                    raise WireServerUnavailable(
                        f"the MongoDB wire server did not answer on {server.host}:{server.port} within {timeout:.0f} s"
                    ) from None
                time.sleep(0.1)
    finally:
        client.close()
