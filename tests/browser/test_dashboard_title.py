"""The title view: reached from a job row's title link, it shows the title's parts, what is missing,
the published master URL once the master completed, and retries every failed job after a confirmation."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed").expect

MASTER = """#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=1280000,RESOLUTION=1280x720
720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2560000,RESOLUTION=1920x1080
1080p/index.m3u8
"""


def test_the_title_view_shows_the_parts_retries_the_failed_and_publishes(
    dashboard: Any, stack: Any, resource_name: str
) -> None:
    resource_id = uuid.uuid4().hex[:24]  # a title of this test only
    base = f"title/{resource_name}"
    stack.write_rendition(f"{base}/720p")
    dashboard.open()
    dashboard.wait_live()
    dashboard.search(resource_name)
    done = stack.create(stack.hls_body(resource_name, f"{base}/720p", "720p", resourceId=resource_id))["jobId"]
    broken = stack.create(stack.hls_body(resource_name, f"{base}/1080p", "1080p", resourceId=resource_id))["jobId"]
    dashboard.expect_status(done, "completed")
    dashboard.expect_status(broken, "failed")

    link = dashboard.row(done).get_by_role("button", name=f"Title view of {resource_name}")
    link.click()
    view = dashboard.page.locator("#title-view")
    expect(view.get_by_role("heading", name=f"Title: {resource_name}")).to_be_focused()
    expect(view.locator("[data-title-status]")).to_have_attribute("data-title-status", "failed")
    expect(view.locator('tr[data-part="rendition:720p"]')).to_have_attribute("data-status", "completed")
    expect(view.locator('tr[data-part="rendition:1080p"]')).to_contain_text("SOURCE_NOT_FOUND")
    expect(view).to_contain_text("Not published")
    expect(view.locator(".title-missing")).to_contain_text("no master playlist job")

    retry = view.get_by_role("button", name="Retry all failed (1)")
    retry.click()
    dialog = dashboard.page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Retry 1 failed job of {resource_name}?")
    dialog.get_by_role("button", name="Keep it").click()
    expect(retry).to_be_focused()
    assert stack.job(broken)["status"] == "failed"

    stack.write_rendition(f"{base}/1080p")  # the source fixed
    retry.click()
    dialog.get_by_role("button", name="Retry 1 job").click()
    expect(dashboard.page.locator("#notice")).to_contain_text(f"Retried 1 of 1 failed job of {resource_name}.")
    expect(view.locator('tr[data-part="rendition:1080p"]')).to_have_attribute("data-status", "completed")
    expect(retry).to_be_hidden()
    assert stack.job(broken)["clientId"]  # the page's own socket hears the retried job
    dashboard.expect_status(broken, "completed")  # the job table caught up too

    master_path = stack.source_root / base / "master.m3u8"
    master_path.write_text(MASTER)
    master_job = {
        "jobType": "upload-master-playlist",
        "resourceType": "film",
        "resourceId": resource_id,
        "resourceName": resource_name,
        "masterPlaylistPath": f"{base}/master.m3u8",
    }
    master_id = stack.create(master_job)["jobId"]
    public_url = stack.wait_for_status(master_id, "completed")["publicUrl"]
    expect(view.locator("[data-title-status]")).to_have_attribute("data-title-status", "live")
    expect(view.locator(".title-published").get_by_role("link", name=public_url)).to_be_visible()
    expect(view.locator(".title-missing")).to_have_count(0)

    view.get_by_role("button", name="Back to the jobs").click()
    expect(view).to_be_hidden()
    expect(link).to_be_focused()


def test_on_a_narrow_screen_the_title_view_fits_the_window(dashboard: Any, stack: Any, resource_name: str) -> None:
    resource_id = uuid.uuid4().hex[:24]
    hls_dir = f"title/{resource_name}/2160p-with-a-long-name"
    job_id = stack.create(stack.hls_body(resource_name, hls_dir, "2160p-with-a-long-name", resourceId=resource_id))[
        "jobId"
    ]
    stack.wait_for_status(job_id, "failed")
    dashboard.page.set_viewport_size({"width": 390, "height": 844})
    dashboard.open()
    dashboard.search(resource_name)
    dashboard.row(job_id).get_by_role("button", name=f"Title view of {resource_name}").click()

    view = dashboard.page.locator("#title-view")
    expect(view.locator('tr[data-part="rendition:2160p-with-a-long-name"]')).to_contain_text("SOURCE_NOT_FOUND")
    expect(view.get_by_role("button", name="Retry all failed (1)")).to_be_visible()
    assert not dashboard.page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
