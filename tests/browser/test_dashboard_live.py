"""Live updates: jobs created through the API appear, their bars fill and their rows turn completed
without a reload; a dropped WebSocket is shown, reconnected, and what was missed is caught up."""

from __future__ import annotations

import time
from typing import Any

import pytest

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed").expect

# Every value each progress bar shows, and the bar's box each time: the page records them itself.
RECORD_BARS = """
window.barLog = {};
new MutationObserver((changes) => {
  for (const change of changes) {
    const bar = change.target;
    if (!bar.matches || !bar.matches('[role=progressbar]')) continue;
    const id = bar.closest('tr.job').dataset.jobId;
    const box = bar.getBoundingClientRect();
    (window.barLog[id] ??= []).push({value: Number(bar.getAttribute('aria-valuenow')), x: box.x, width: box.width});
  }
}).observe(document.getElementById('job-rows'), {subtree: true, attributes: true, attributeFilter: ['aria-valuenow']});
window.loadedOnce = true;
"""


def completed_count(dashboard: Any) -> int:
    return int(dashboard.stat("completed").inner_text().replace(",", ""))


def test_new_jobs_fill_their_bars_and_complete_without_a_reload(dashboard: Any, stack: Any, resource_name: str) -> None:
    dashboard.open()
    dashboard.wait_live()
    dashboard.search(resource_name)
    expect(dashboard.page.locator("#empty")).to_be_visible()
    completed_before = completed_count(dashboard)
    dashboard.page.evaluate(RECORD_BARS)

    renditions = {"1080p": 60, "720p": 6, "480p": 4}  # segments: the first one takes a while
    jobs = {}
    for label, segments in renditions.items():
        hls_dir = f"live/{resource_name}/{label}"
        stack.write_rendition(hls_dir, segments=segments, segment_bytes=32_768)
        jobs[label] = stack.create(stack.hls_body(resource_name, hls_dir, label))["jobId"]

    for label, job_id in jobs.items():
        dashboard.expect_status(job_id, "completed")
        row = dashboard.row(job_id)
        expect(row.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
        files = renditions[label] + 1  # the segments and the playlist
        expect(row.locator(".transferred")).to_contain_text(f"{files} / {files} files")
        expect(row.get_by_role("button", name="Delete")).to_be_visible()
        expect(row.get_by_role("button", name="Cancel")).to_have_count(0)
    assert dashboard.page.evaluate("window.loadedOnce") is True, "the page was reloaded"
    # Newest first: the last job created is the top row.
    assert dashboard.rows().first.get_attribute("data-job-id") == jobs["480p"]

    long_bar = dashboard.page.evaluate("window.barLog")[jobs["1080p"]]
    values = [entry["value"] for entry in long_bar]
    assert any(0 < value < 100 for value in values), f"the bar jumped straight to the end: {values}"
    assert values == sorted(values), f"the bar went backwards: {values}"
    assert len({(entry["x"], entry["width"]) for entry in long_bar}) == 1, "the bar moved or resized"

    expect(dashboard.page.locator("#announcer")).to_contain_text("completed")
    deadline = time.monotonic() + 15
    while completed_count(dashboard) < completed_before + len(jobs):
        assert time.monotonic() < deadline, "the Completed card did not count the new jobs"
        dashboard.page.wait_for_timeout(100)


def test_a_dropped_socket_is_shown_then_reconnected_and_caught_up(
    dashboard: Any, stack: Any, resource_name: str
) -> None:
    dashboard.open()
    dashboard.wait_live()
    dashboard.search(resource_name)
    dashboard.page.evaluate("window.loadedOnce = true")

    stack.socket_proxy.cut()
    try:
        expect(dashboard.page.locator("#connection")).to_contain_text("reconnecting")
        hls_dir = f"live/{resource_name}/360p"
        stack.write_rendition(hls_dir)
        job_id = stack.create(stack.hls_body(resource_name, hls_dir, "360p"))["jobId"]
        stack.wait_for_status(job_id, "completed")
        assert dashboard.row(job_id).count() == 0, "an event reached the page through a cut socket"
    finally:
        stack.socket_proxy.restore()

    dashboard.wait_live()
    dashboard.expect_status(job_id, "completed")
    assert dashboard.page.evaluate("window.loadedOnce") is True, "the page was reloaded"


# Every URL the page opens a WebSocket to, recorded before the page's own scripts run.
RECORD_SOCKET_URLS = """
window.socketUrls = [];
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(url, ...rest) {
    window.socketUrls.push(String(url));
    super(url, ...rest);
  }
};
"""


def url_token(url: str) -> str:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(url).query)["token"][0]


def test_each_connect_uses_a_fresh_short_websocket_token_never_the_admin_token(dashboard: Any, stack: Any) -> None:
    import jwt

    from chalicelib.auth import WEBSOCKET_TOKEN_TTL_SECONDS

    dashboard.page.add_init_script(RECORD_SOCKET_URLS)
    dashboard.open()
    dashboard.wait_live()
    stack.socket_proxy.cut()
    try:
        expect(dashboard.page.locator("#connection")).to_contain_text("reconnecting")
    finally:
        stack.socket_proxy.restore()
    dashboard.wait_live()

    tokens = [url_token(url) for url in dashboard.page.evaluate("window.socketUrls")]
    assert len(tokens) >= 2
    assert stack.token not in tokens, "the admin token went into a WebSocket URL"
    assert len(set(tokens)) == len(tokens), "a reconnect reused an old token"
    for token in tokens:
        claims = jwt.decode(token, stack.services.settings.auth_jwt_secret, algorithms=["HS256"])
        assert claims["use"] == "websocket"
        assert claims["exp"] - claims["iat"] <= WEBSOCKET_TOKEN_TTL_SECONDS
