"""The dashboard in a real browser: Debian's chromium driven by Playwright, against the local runtime.

One runtime (`make run`'s code: HTTP API, WebSocket gateway, moto's S3 and SQS, workers) serves every
browser test of the session, on free ports, over a temporary SOURCE_ROOT. Uploads run one request at
a time (UPLOAD_CONCURRENCY=1, UPLOAD_CONCURRENCY_MAX=1) so that a job with many files stays active long enough to be cancelled;
small jobs still take well under a second. Each test works on its own resource name, so tests never
see each other's jobs once the page's search filter holds that name.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--no-first-run",
]
JOBS = "/v1/studio/upload-jobs"
# Playwright's default wait is 30 s; a page that has not caught up in 15 s is broken.
EXPECT_TIMEOUT_MS = 15_000
RESOURCE_ID = "64b7f0c2a1b2c3d4e5f60718"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SocketProxy:
    """A TCP relay in front of the WebSocket gateway that a test can cut, as a network drop would.

    While cut, open connections are closed and new ones are closed at once (the browser's handshake
    fails), until `restore()`."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._cut = False
        self._stopped = False
        threading.Thread(target=self._accept, name="ws-proxy", daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self._lock:
                self._open.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            self._close(source, target)

    def _close(self, *sockets: socket.socket) -> None:
        with self._lock:
            for sock in sockets:
                self._open.discard(sock)
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def cut(self) -> None:
        self._cut = True
        with self._lock:
            current = list(self._open)
        self._close(*current)

    def restore(self) -> None:
        self._cut = False

    def stop(self) -> None:
        self._stopped = True
        self.cut()
        self._listener.close()


@dataclass
class Stack:
    """The running local runtime, seen from a test: its URLs, an admin token, and a way to call the API."""

    api_url: str
    source_root: Path
    token: str
    services: Any
    socket_proxy: SocketProxy

    def request(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {token or self.token}", "Content-Type": "application/json"}
        request = urllib.request.Request(self.api_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        status, job = self.request("POST", JOBS, body)
        assert status == 201, job
        return dict(job)

    def job(self, job_id: str) -> dict[str, Any]:
        status, job = self.request("GET", f"{JOBS}/{job_id}")
        assert status == 200, job
        return dict(job)

    def wait_for_status(self, job_id: str, status: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (job := self.job(job_id))["status"] != status:
            assert time.monotonic() < deadline, f"{job_id} is still {job['status']}, not {status}"
            time.sleep(0.1)
        return job

    def write_rendition(self, relative: str, segments: int = 4, segment_bytes: int = 16_384) -> Path:
        """An HLS rendition under SOURCE_ROOT: `segments` .ts files and an index.m3u8 that lists them."""
        folder = self.source_root / relative
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:4", "#EXT-X-MEDIA-SEQUENCE:0"]
        for index in range(segments):
            name = f"segment{index:04d}.ts"
            (folder / name).write_bytes(os.urandom(segment_bytes))
            lines += ["#EXTINF:4.000,", name]
        lines.append("#EXT-X-ENDLIST")
        (folder / "index.m3u8").write_text("\n".join(lines) + "\n")
        return folder

    @staticmethod
    def hls_body(resource_name: str, hls_dir: str, label: str, **extra: Any) -> dict[str, Any]:
        body = {
            "jobType": "upload-hls-to-s3",
            "resourceType": "film",
            "resourceId": RESOURCE_ID,
            "resourceName": resource_name,
            "hlsDir": hls_dir,
            "label": label,
        }
        body.update(extra)
        return body


# The session fixtures below end with this folder's last test, not with the session: the runtime
# changes os.environ and installs the app's services, which the tests after these must not inherit.
FOLDER = Path(__file__).resolve().parent
folder_resources = contextlib.ExitStack()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    yield  # the test's own fixtures (its browser tab) close first
    if nextitem is None or FOLDER not in Path(nextitem.path).resolve().parents:
        folder_resources.close()


@contextlib.contextmanager
def running_stack(source_root: Path) -> Iterator[Stack]:
    """The local runtime on free ports, its WebSocket behind a proxy; the environment restored after."""
    from chalicelib.auth import issue_token
    from chalicelib.config import get_settings
    from chalicelib.local.runtime import LocalRuntime, RuntimeOptions
    from chalicelib.services import set_services

    saved_environment = dict(os.environ)
    ws_port = free_port()
    proxy = SocketProxy(ws_port)
    options = RuntimeOptions(
        api_port=free_port(),
        ws_port=ws_port,
        aws_port=free_port(),
        source_root=source_root,
        workers_per_queue=3,
        dashboard_websocket_url=f"ws://127.0.0.1:{proxy.port}",  # the page connects through the proxy
    )
    os.environ.update(
        {
            "STAGE": "local",
            "UPLOAD_CONCURRENCY": "1",
            "UPLOAD_CONCURRENCY_MAX": "1",  # fixed: no adaptive growth
            "PROGRESS_INTERVAL_MS": "100",
        }
    )
    runtime = LocalRuntime(options)
    try:
        runtime.start()
        token = issue_token(runtime.services.settings.auth_jwt_secret)
        yield Stack(runtime.api_url, source_root, token, runtime.services, proxy)
    finally:
        proxy.stop()
        runtime.stop()
        os.environ.clear()
        os.environ.update(saved_environment)
        get_settings.cache_clear()
        set_services(None)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield folder_resources.enter_context(running_stack(tmp_path_factory.mktemp("dashboard-sources")))
    folder_resources.close()


def playwright_api() -> Any:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    return pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (requirements-dev.txt)")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    playwright = folder_resources.enter_context(playwright_api().sync_playwright())
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    folder_resources.callback(chromium.close)
    yield chromium
    folder_resources.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab (empty sessionStorage) at 1280 px; a script error in the page fails the test."""
    api = playwright_api()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    api.expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, f"the page raised: {errors}"


@pytest.fixture
def resource_name() -> str:
    """A resource name of this test only: with it in the search box, the table shows this test's jobs."""
    return f"Film {uuid.uuid4().hex[:10]}"


@dataclass
class Dashboard:
    """The page, with the few steps every test takes."""

    page: Any
    stack: Stack

    def open(self, token: str | None = None) -> None:
        self.page.goto(self.stack.api_url + "/dashboard")
        self.sign_in(token or self.stack.token)

    def sign_in(self, token: str) -> None:
        self.page.get_by_label("Admin token (JWT)").fill(token)
        self.page.get_by_role("button", name="Sign in").click()

    def wait_live(self) -> None:
        playwright_api().expect(self.page.locator("#connection")).to_have_text("Live")

    def search(self, text: str) -> None:
        self.page.get_by_label("Search").fill(text)
        self.page.get_by_role("button", name="Apply").click()
        # Apply marks the list busy at once; until the answer is in, rows of the previous list
        # may still be on the page and be replaced under the test.
        playwright_api().expect(self.page.locator("#jobs")).not_to_have_attribute("aria-busy", "true")

    def row(self, job_id: str) -> Any:
        return self.page.locator(f'tr.job[data-job-id="{job_id}"]')

    def rows(self) -> Any:
        return self.page.locator("tr.job")

    def expect_status(self, job_id: str, status: str) -> None:
        playwright_api().expect(self.row(job_id)).to_have_attribute("data-status", status)

    def stat(self, name: str) -> Any:
        return self.page.locator(f'[data-stat="{name}"]')


@pytest.fixture
def dashboard(page: Any, stack: Stack) -> Dashboard:
    return Dashboard(page, stack)
