"""Readable at 1280 px and on a phone, usable with the keyboard alone.

The README's picture comes from the first test: run it alone, with the path to write,
    DASHBOARD_SCREENSHOT=docs/dashboard.png .venv/bin/pytest tests/browser/test_dashboard_layout.py -k 1280
(otherwise it writes the picture to a temporary folder).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed").expect

JOBS = "/v1/studio/upload-jobs"
SHOWCASE = "Northern Lights"  # no other test names a resource like this: the search shows only these jobs
SCREENSHOT_LIMIT_BYTES = 300_000
PICTURED_PROGRESS = 20

# Cells whose content is wider than the cell: text cut off or spilling into the next column.
OVERFLOWING_CELLS = """rows => rows.flatMap(row => [...row.cells]
  .filter(cell => cell.scrollWidth > cell.clientWidth + 1)
  .map(cell => `${row.dataset.jobId}: ${cell.dataset.label || 'actions'} ${cell.scrollWidth}>${cell.clientWidth}`))"""
PAGE_IS_WIDER_THAN_THE_WINDOW = "document.documentElement.scrollWidth > window.innerWidth"


@pytest.fixture
def showcase(stack: Any) -> Iterator[dict[str, str]]:
    """Jobs in every look: three completed renditions, two failures (each with its reason), one active."""
    film, episode = f"{SHOWCASE}", f"{SHOWCASE}: The Harbour (S01E02)"
    for label, segments in (("1080p", 12), ("720p", 10), ("480p", 8)):
        stack.write_rendition(f"showcase/film/{label}", segments=segments, segment_bytes=96_000)
    stack.write_rendition("showcase/film/2160p", segments=1500, segment_bytes=2048)
    subtitle = stack.source_root / "showcase/film/subtitles/fr.vtt"
    subtitle.parent.mkdir(parents=True, exist_ok=True)
    subtitle.write_text("1\n00:00:00.000 --> 00:00:02.000\nBonjour.\n")
    jobs = {}
    for label in ("1080p", "720p", "480p"):
        jobs[label] = stack.create(stack.hls_body(film, f"showcase/film/{label}", label))["jobId"]
    for label in ("1080p", "720p", "480p"):
        stack.wait_for_status(jobs[label], "completed")
    subtitle_job = {
        "jobType": "upload-subtitle-to-s3",
        "resourceType": "film",
        "resourceId": "64b7f0c2a1b2c3d4e5f60718",
        "resourceName": film,
        "subtitlePath": "showcase/film/subtitles/fr.vtt",
        "subtitleMetadata": {"language": "fr", "label": "Français"},
    }
    jobs["subtitle"] = stack.create(subtitle_job)["jobId"]
    episode_job = stack.hls_body(episode, "showcase/episode/720p", "720p", resourceType="episode")
    jobs["episode"] = stack.create(episode_job)["jobId"]
    for name in ("subtitle", "episode"):
        stack.wait_for_status(jobs[name], "failed")
    jobs["active"] = stack.create(stack.hls_body(film, "showcase/film/2160p", "2160p"))["jobId"]
    yield jobs
    stack.request("POST", f"{JOBS}/{jobs['active']}/cancel")  # the runtime goes quiet for later tests
    stack.wait_for_status(jobs["active"], "cancelled")


def test_the_page_at_1280_px_shows_every_state_without_overflow(
    dashboard: Any, showcase: dict[str, str], tmp_path: Path
) -> None:
    dashboard.open()
    dashboard.wait_live()
    dashboard.search(SHOWCASE)
    expect(dashboard.rows()).to_have_count(6)
    active = dashboard.row(showcase["active"])
    dashboard.expect_status(showcase["active"], "active")
    bar = active.get_by_role("progressbar")
    deadline = time.monotonic() + 15
    while int(bar.get_attribute("aria-valuenow") or 0) < PICTURED_PROGRESS:  # a bar well on its way
        assert time.monotonic() < deadline, "the long upload does not move"
        dashboard.page.wait_for_timeout(100)
    expect(dashboard.row(showcase["episode"]).locator(".job-error")).to_contain_text("SOURCE_NOT_FOUND")

    assert dashboard.rows().evaluate_all(OVERFLOWING_CELLS) == []
    assert not dashboard.page.evaluate(PAGE_IS_WIDER_THAN_THE_WINDOW)
    expect(dashboard.page.locator("#jobs thead")).to_be_visible()

    target = Path(os.environ.get("DASHBOARD_SCREENSHOT") or tmp_path / "dashboard.png")
    dashboard.page.mouse.move(0, 0)  # no hover highlight in the picture
    dashboard.page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size < SCREENSHOT_LIMIT_BYTES


def test_on_a_narrow_screen_each_job_is_a_card(dashboard: Any, stack: Any, resource_name: str) -> None:
    stack.write_rendition(f"layout/{resource_name}/720p")
    job_id = stack.create(stack.hls_body(resource_name, f"layout/{resource_name}/720p", "720p"))["jobId"]
    stack.wait_for_status(job_id, "completed")
    dashboard.page.set_viewport_size({"width": 390, "height": 844})
    dashboard.open()
    dashboard.search(resource_name)
    row = dashboard.row(job_id)
    expect(row).to_be_visible()

    expect(dashboard.page.locator("#jobs thead")).to_be_hidden()
    expect(row).to_have_css("display", "block")
    assert not dashboard.page.evaluate(PAGE_IS_WIDER_THAN_THE_WINDOW)
    expect(row.get_by_role("button", name="Delete")).to_be_visible()
    # Measured in the page once the button is laid out: a live refresh may re-render the row
    # between two Playwright calls.
    right_edge = dashboard.page.wait_for_function(
        """(jobId) => {
            const button = document.querySelector(`tr.job[data-job-id="${jobId}"] button[data-action="delete"]`);
            const box = button && button.getBoundingClientRect();
            return box && box.width > 0 ? box.right : null;
        }""",
        arg=job_id,
    ).json_value()
    assert right_edge <= 390


def test_a_row_opens_and_closes_from_the_keyboard(dashboard: Any, stack: Any, resource_name: str) -> None:
    hls_dir = f"layout/{resource_name}/1080p"
    stack.write_rendition(hls_dir)
    job_id = stack.create(stack.hls_body(resource_name, hls_dir, "1080p"))["jobId"]
    job = stack.wait_for_status(job_id, "completed")
    dashboard.open()
    dashboard.search(resource_name)
    expect(dashboard.row(job_id)).to_be_visible()

    # From the search box, Tab reaches the row's own button (past the form's buttons).
    dashboard.page.get_by_label("Search").focus()
    opener = dashboard.row(job_id).locator("button.open")
    for _ in range(10):
        dashboard.page.keyboard.press("Tab")
        if opener.evaluate("button => button === document.activeElement"):
            break
    expect(opener).to_be_focused()
    expect(opener).to_have_css("outline-style", "solid")  # a visible focus ring

    dashboard.page.keyboard.press("Enter")
    expect(opener).to_have_attribute("aria-expanded", "true")
    details = dashboard.page.locator(f"#{opener.get_attribute('aria-controls')}")
    expect(details).to_be_visible()
    expect(details).to_contain_text(hls_dir)
    expect(details).to_contain_text(job["destinationPrefix"])
    expect(details.get_by_role("link")).to_have_attribute("href", job["publicUrl"])
    expect(details.locator("table.history")).to_contain_text("active → completed")

    dashboard.page.keyboard.press("Space")
    expect(details).to_be_hidden()
    expect(opener).to_have_attribute("aria-expanded", "false")
