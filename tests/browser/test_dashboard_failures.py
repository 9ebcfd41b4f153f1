"""Failed jobs: the page tells why in words, Retry (once the source is fixed) completes them, and an
API refusal is shown to the person rather than swallowed."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed").expect

JOBS = "/v1/studio/upload-jobs"
VALID_SUBTITLE = "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nBonjour.\n"


def subtitle_body(resource_name: str, path: str) -> dict[str, Any]:
    return {
        "jobType": "upload-subtitle-to-s3",
        "resourceType": "film",
        "resourceId": "64b7f0c2a1b2c3d4e5f60718",
        "resourceName": resource_name,
        "subtitlePath": path,
    }


def test_an_invalid_subtitle_says_why_and_completes_after_a_fix_and_retry(
    dashboard: Any, stack: Any, resource_name: str
) -> None:
    path = f"failures/{resource_name}/fr.vtt"
    (stack.source_root / path).parent.mkdir(parents=True)
    (stack.source_root / path).write_text("1\n00:00:00.000 --> 00:00:02.000\nBonjour.\n")
    dashboard.open()
    dashboard.wait_live()
    dashboard.search(resource_name)
    job_id = stack.create(subtitle_body(resource_name, path))["jobId"]

    dashboard.expect_status(job_id, "failed")
    row = dashboard.row(job_id)
    expect(row.locator(".job-error")).to_contain_text("INVALID_SUBTITLE")
    expect(row.locator(".job-error")).to_contain_text("WEBVTT")
    expect(row.get_by_role("button", name="Cancel")).to_have_count(0)

    (stack.source_root / path).write_text(VALID_SUBTITLE)
    row.get_by_role("button", name="Retry").click()
    dashboard.expect_status(job_id, "completed")
    expect(row.locator(".job-error")).to_be_hidden()
    # The retry named this page's own WebSocket connection as the job's client.
    assert stack.job(job_id)["clientId"]


def test_a_missing_source_folder_says_why_and_completes_after_a_fix_and_retry(
    dashboard: Any, stack: Any, resource_name: str
) -> None:
    hls_dir = f"failures/{resource_name}/720p"
    dashboard.open()
    dashboard.wait_live()
    dashboard.search(resource_name)
    job_id = stack.create(stack.hls_body(resource_name, hls_dir, "720p"))["jobId"]

    dashboard.expect_status(job_id, "failed")
    expect(dashboard.row(job_id).locator(".job-error")).to_contain_text("SOURCE_NOT_FOUND")

    stack.write_rendition(hls_dir)
    dashboard.row(job_id).get_by_role("button", name="Retry").click()
    dashboard.expect_status(job_id, "completed")
    expect(dashboard.row(job_id).get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")


COUNT_FETCHES_IN_FLIGHT = """
    window.fetchesInFlight = 0;
    const originalFetch = window.fetch;
    window.fetch = (...args) => {
        window.fetchesInFlight += 1;
        return originalFetch(...args).finally(() => { window.fetchesInFlight -= 1; });
    };
"""


def test_an_action_the_api_refuses_is_told_in_words(dashboard: Any, stack: Any, resource_name: str) -> None:
    hls_dir = f"failures/{resource_name}/480p"
    dashboard.page.add_init_script(COUNT_FETCHES_IN_FLIGHT)
    dashboard.open()
    dashboard.wait_live()
    dashboard.search(resource_name)
    job_id = stack.create(stack.hls_body(resource_name, hls_dir, "480p"))["jobId"]
    dashboard.expect_status(job_id, "failed")
    expect(dashboard.row(job_id).get_by_role("button", name="Retry")).to_be_visible()
    # The page re-reads a job when its JobFailed arrives: let that read end before the job is deleted.
    dashboard.page.wait_for_function("window.fetchesInFlight === 0")

    # Another admin deletes the job while this page hears nothing: its Retry button is now stale.
    stack.socket_proxy.cut()
    try:
        status, _ = stack.request("DELETE", f"{JOBS}/{job_id}")
        assert status == 200
        dashboard.row(job_id).get_by_role("button", name="Retry").click()
        alert = dashboard.page.get_by_role("alert").filter(has_text="Retry")
        expect(alert).to_contain_text("HTTP 404")
        expect(alert).to_contain_text(job_id)
    finally:
        stack.socket_proxy.restore()
    # The page learns the job is gone, and the person can dismiss the message with the keyboard.
    expect(dashboard.row(job_id)).to_have_count(0)
    dashboard.page.get_by_role("button", name="Dismiss the message").press("Enter")
    expect(dashboard.page.locator("#alert")).to_be_hidden()
