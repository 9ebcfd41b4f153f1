"""The actions, each offered only where the job's state allows it, the destructive ones confirmed:
cancel a long upload, sync, clean up (with its source), delete, clear by status, fix stuck."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed").expect

JOBS = "/v1/studio/upload-jobs"
# One request at a time (UPLOAD_CONCURRENCY=1): this many files keep a job active for many seconds.
LONG_RENDITION_SEGMENTS = 1500


def confirm(dashboard: Any, button: str) -> None:
    dialog = dashboard.page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name=button).click()
    expect(dialog).to_be_hidden()


def test_a_long_upload_is_cancelled_cleaned_up_and_deleted(dashboard: Any, stack: Any, resource_name: str) -> None:
    hls_dir = f"actions/{resource_name}/2160p"
    source = stack.write_rendition(hls_dir, segments=LONG_RENDITION_SEGMENTS, segment_bytes=2048)
    dashboard.open()
    dashboard.wait_live()
    dashboard.search(resource_name)
    job_id = stack.create(stack.hls_body(resource_name, hls_dir, "2160p"))["jobId"]
    row = dashboard.row(job_id)
    dashboard.expect_status(job_id, "active")
    expect(row.get_by_role("progressbar")).not_to_have_attribute("aria-valuenow", "0")
    expect(row.get_by_role("button", name="Retry")).to_have_count(0)
    expect(row.get_by_role("button", name="Delete")).to_have_count(0)

    row.get_by_role("button", name="Sync").click()
    expect(dashboard.page.locator("#notice")).to_contain_text("Sync of")

    row.get_by_role("button", name="Cancel").click()
    confirm(dashboard, "Keep it")
    assert stack.job(job_id)["status"] == "active"
    expect(row.get_by_role("button", name="Cancel")).to_be_focused()  # the keyboard is back where it was

    row.get_by_role("button", name="Cancel").click()
    confirm(dashboard, "Cancel the upload")
    dashboard.expect_status(job_id, "cancelled")
    uploaded_files = stack.job(job_id)["uploadedFiles"]
    assert 0 < uploaded_files < LONG_RENDITION_SEGMENTS + 1

    row.get_by_role("button", name="Clean up").click()
    dashboard.page.get_by_label("Also delete the job's source files").check()
    confirm(dashboard, "Clean up")
    expect(dashboard.page.locator("#notice")).to_contain_text("objects deleted")
    expect(row.get_by_role("button", name="Retry")).to_have_count(0)  # no source: it can never run again
    expect(row.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "0")
    assert not source.exists()

    row.get_by_role("button", name="Delete").click()
    confirm(dashboard, "Delete the job")
    expect(row).to_have_count(0)
    assert stack.request("GET", f"{JOBS}/{job_id}")[0] == 404


def test_clearing_failed_jobs_needs_a_confirmation(dashboard: Any, stack: Any, resource_name: str) -> None:
    dashboard.open()
    dashboard.wait_live()
    dashboard.search(resource_name)
    job_id = stack.create(stack.hls_body(resource_name, f"actions/{resource_name}/missing", "720p"))["jobId"]
    dashboard.expect_status(job_id, "failed")

    dashboard.page.get_by_label("Clear").select_option("failed")
    dashboard.page.get_by_role("button", name="Clear…").click()
    expect(dashboard.page.get_by_role("dialog")).to_contain_text("Delete every failed job?")
    confirm(dashboard, "Keep it")
    expect(dashboard.row(job_id)).to_have_count(1)

    dashboard.page.get_by_role("button", name="Clear…").click()
    confirm(dashboard, "Delete the jobs")
    expect(dashboard.page.locator("#notice")).to_contain_text("failed job")
    expect(dashboard.row(job_id)).to_have_count(0)
    assert stack.request("GET", f"{JOBS}/{job_id}")[0] == 404


def test_fix_stuck_reports_what_it_did(dashboard: Any) -> None:
    dashboard.open()
    dashboard.page.get_by_role("button", name="Fix stuck jobs").click()
    expect(dashboard.page.locator("#notice")).to_contain_text("jobs examined")
