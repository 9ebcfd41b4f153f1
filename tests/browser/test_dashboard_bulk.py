"""Bulk actions: rows selected one by one or all at once, a confirmation that states the count,
the answer's summary, and "select all matching the filter" reaching rows not loaded yet."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed").expect

JOBS = "/v1/studio/upload-jobs"
LONG_RENDITION_SEGMENTS = 1500  # one request at a time (UPLOAD_CONCURRENCY=1): active for many seconds
MORE_THAN_A_PAGE = 53  # the page loads 50 rows


def confirm(dashboard: Any, button: str) -> Any:
    dialog = dashboard.page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name=button).click()
    expect(dialog).to_be_hidden()


def wait_for_jobs(stack: Any, query: str, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    """The jobs the list route answers for `query`, once there are `count` of them."""
    deadline = time.monotonic() + timeout
    while True:
        status, page = stack.request("GET", f"{JOBS}?{query}&limit=500")
        assert status == 200, page
        if len(page["items"]) == count:
            return list(page["items"])
        assert time.monotonic() < deadline, f"{len(page['items'])} jobs for {query}, not {count}"
        time.sleep(0.2)


def test_selected_rows_are_retried_after_a_confirmation_stating_their_count(
    dashboard: Any, stack: Any, resource_name: str
) -> None:
    dashboard.open()
    dashboard.wait_live()
    dashboard.search(resource_name)
    # Sources that do not exist: each job fails at once, and fails again after its retry.
    jobs = {
        label: stack.create(stack.hls_body(resource_name, f"bulk/{resource_name}/{label}", label))
        for label in ("480p", "720p", "1080p")
    }
    for job in jobs.values():
        dashboard.expect_status(job["jobId"], "failed")
    bar = dashboard.page.get_by_role("group", name="Bulk actions")
    expect(bar.get_by_role("button", name="Retry selected")).to_be_disabled()

    dashboard.page.get_by_label(f"Select {resource_name} 480p").check()
    dashboard.page.get_by_label(f"Select {resource_name} 720p").check()
    expect(dashboard.page.locator("#bulk-count")).to_have_text("2 jobs selected.")
    bar.get_by_role("button", name="Retry selected").click()
    expect(dashboard.page.get_by_role("dialog")).to_contain_text("Retry 2 selected jobs?")
    confirm(dashboard, "Retry 2 jobs")

    expect(dashboard.page.locator("#notice")).to_have_text("Retry: 2 of 2 jobs done.")
    assert {label: stack.job(job["jobId"])["retryCount"] for label, job in jobs.items()} == {
        "480p": 1,
        "720p": 1,
        "1080p": 0,
    }
    expect(dashboard.page.locator("#bulk-count")).to_have_text("No job selected.")


def test_a_bulk_cancel_of_active_uploads_asks_first_and_stops_them(
    dashboard: Any, stack: Any, resource_name: str
) -> None:
    job_ids = []
    for label in ("720p", "1080p"):
        hls_dir = f"bulk/{resource_name}/{label}"
        stack.write_rendition(hls_dir, segments=LONG_RENDITION_SEGMENTS, segment_bytes=2048)
        job_ids.append(stack.create(stack.hls_body(resource_name, hls_dir, label))["jobId"])
    dashboard.open()
    dashboard.wait_live()
    dashboard.search(resource_name)
    for job_id in job_ids:
        expect(dashboard.row(job_id)).to_have_count(1)

    dashboard.page.get_by_label("Select all shown").check()
    expect(dashboard.page.locator("#bulk-count")).to_have_text("2 jobs selected.")
    dashboard.page.get_by_role("button", name="Cancel selected").click()
    expect(dashboard.page.get_by_role("dialog")).to_contain_text("Cancel 2 selected jobs?")
    confirm(dashboard, "Keep it")
    assert {stack.job(job_id)["status"] for job_id in job_ids} <= {"waiting", "active"}

    dashboard.page.get_by_role("button", name="Cancel selected").click()
    confirm(dashboard, "Cancel 2 jobs")
    expect(dashboard.page.locator("#notice")).to_have_text("Cancel: 2 of 2 jobs done.")
    for job_id in job_ids:
        dashboard.expect_status(job_id, "cancelled")


def test_select_all_matching_the_filter_reaches_rows_not_loaded(dashboard: Any, stack: Any, resource_name: str) -> None:
    for index in range(MORE_THAN_A_PAGE):
        stack.create(stack.hls_body(resource_name, f"bulk/{resource_name}/missing", f"r{index}"))
    outside = stack.create(stack.hls_body(f"Elsewhere {uuid.uuid4().hex[:10]}", "bulk/elsewhere/missing", "720p"))
    wait_for_jobs(stack, f"q={resource_name.replace(' ', '+')}&status=failed", MORE_THAN_A_PAGE)
    dashboard.open()
    dashboard.search(resource_name)
    expect(dashboard.rows()).to_have_count(50)  # one page; the others are below "Load more"

    dashboard.page.get_by_role("button", name="Select all matching the filter").click()
    expect(dashboard.page.locator("#bulk-count")).to_have_text(
        f"All {MORE_THAN_A_PAGE} jobs matching the filter are selected."
    )
    dashboard.page.get_by_role("button", name="Delete selected").click()
    expect(dashboard.page.get_by_role("dialog")).to_contain_text(
        f"Delete all {MORE_THAN_A_PAGE} jobs matching the filter?"
    )
    confirm(dashboard, f"Delete {MORE_THAN_A_PAGE} jobs")

    expect(dashboard.page.locator("#notice")).to_have_text(
        f"Delete: {MORE_THAN_A_PAGE} of {MORE_THAN_A_PAGE} jobs done."
    )
    expect(dashboard.rows()).to_have_count(0)
    wait_for_jobs(stack, f"q={resource_name.replace(' ', '+')}", 0)
    assert stack.request("GET", f"{JOBS}/{outside['jobId']}")[0] == 200  # outside the filter: untouched
