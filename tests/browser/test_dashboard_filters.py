"""The job table's filters (every one of the list API's) narrow it; paging brings older jobs, newest first."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed").expect

EPISODE_ID = "64b7f0c2a1b2c3d4e5f60799"


@pytest.fixture
def three_jobs(stack: Any, resource_name: str) -> dict[str, str]:
    """A completed HLS rendition (film), a failed subtitle (episode), a completed video file (film)."""
    stack.write_rendition(f"filters/{resource_name}/720p")
    subtitle = stack.source_root / f"filters/{resource_name}/en.vtt"
    subtitle.write_text("not a subtitle\n")
    video = stack.source_root / f"filters/{resource_name}/movie.mp4"
    video.write_bytes(b"\0" * 50_000)
    jobs = {
        "hls": stack.create(stack.hls_body(resource_name, f"filters/{resource_name}/720p", "720p"))["jobId"],
        "subtitle": stack.create(
            {
                "jobType": "upload-subtitle-to-s3",
                "resourceType": "episode",
                "resourceId": EPISODE_ID,
                "resourceName": resource_name,
                "subtitlePath": f"filters/{resource_name}/en.vtt",
            }
        )["jobId"],
        "video": stack.create(
            {
                "jobType": "upload-video-to-s3",
                "resourceType": "film",
                "resourceId": EPISODE_ID,
                "resourceName": resource_name,
                "sourcePath": f"filters/{resource_name}/movie.mp4",
            }
        )["jobId"],
    }
    for name, job_id in jobs.items():
        stack.wait_for_status(job_id, "failed" if name == "subtitle" else "completed")
    return jobs


def shown(dashboard: Any) -> set[str]:
    expect(dashboard.page.locator("#jobs")).not_to_have_attribute("aria-busy", "true")
    return set(dashboard.rows().evaluate_all("rows => rows.map(row => row.dataset.jobId)"))


def choose(dashboard: Any, label: str, value: str) -> set[str]:
    """Pick a filter value (the table reloads at once), read the rows, and put the filter back to any."""
    dashboard.page.get_by_label(label, exact=True).select_option(value)
    rows = shown(dashboard)
    dashboard.page.get_by_label(label, exact=True).select_option("")
    return rows


def test_each_filter_narrows_the_table(dashboard: Any, three_jobs: dict[str, str], resource_name: str) -> None:
    hls, subtitle, video = three_jobs["hls"], three_jobs["subtitle"], three_jobs["video"]
    dashboard.open()
    dashboard.search(resource_name)
    expect(dashboard.rows()).to_have_count(3)

    assert choose(dashboard, "Status", "failed") == {subtitle}
    assert choose(dashboard, "Status", "completed") == {hls, video}
    assert choose(dashboard, "Resource", "episode") == {subtitle}
    assert choose(dashboard, "Job type", "upload-video-to-s3") == {video}
    assert choose(dashboard, "Upload type", "hls") == {hls}
    assert choose(dashboard, "Content", "subtitle") == {subtitle}

    dashboard.search(f"{resource_name} but not this one")
    expect(dashboard.page.locator("#empty")).to_be_visible()
    dashboard.search(resource_name)
    expect(dashboard.rows()).to_have_count(3)

    dashboard.page.get_by_label("Created from").fill("2999-01-01T00:00")
    expect(dashboard.page.locator("#empty")).to_be_visible()
    dashboard.page.get_by_label("Created from").fill("2000-01-01T00:00")
    expect(dashboard.rows()).to_have_count(3)
    dashboard.page.get_by_label("Created to").fill("2000-01-02T00:00")
    expect(dashboard.page.locator("#empty")).to_be_visible()

    dashboard.page.get_by_role("button", name="Reset").click()
    expect(dashboard.page.get_by_label("Search")).to_have_value("")
    expect(dashboard.row(hls)).to_be_visible()


def test_load_more_brings_older_jobs_newest_first(dashboard: Any, stack: Any, resource_name: str) -> None:
    from chalicelib.jobs.model import CreateJobRequest, new_job_document

    store = stack.services.store
    start = store.now() - timedelta(hours=1)
    created = []
    for index in range(55):  # more than a page of 50; written straight to the store, never run
        request = CreateJobRequest.model_validate(
            stack.hls_body(resource_name, f"paging/{resource_name}/{index}", f"r{index}")
        )
        document = new_job_document(
            request, bucket="studio-media", max_attempts=5, now=start + timedelta(seconds=index)
        )
        created.append(store.insert(document)[0].job_id)
    newest_first = list(reversed(created))
    try:
        dashboard.open()
        dashboard.search(resource_name)
        expect(dashboard.rows()).to_have_count(50)
        expect(dashboard.page.locator("#list-summary")).to_contain_text("more below")
        dashboard.page.get_by_role("button", name="Load more").click()
        expect(dashboard.rows()).to_have_count(55)
        expect(dashboard.page.get_by_role("button", name="Load more")).to_be_hidden()
        order = dashboard.rows().evaluate_all("rows => rows.map(row => row.dataset.jobId)")
        assert order == newest_first
    finally:
        for job_id in created:  # cancelled and gone, so no later test or poll meets them
            stack.request("POST", f"/v1/studio/upload-jobs/{job_id}/cancel")
            stack.request("DELETE", f"/v1/studio/upload-jobs/{job_id}")
