"""The analytics panel: charts of GET /upload-jobs/analytics that show the API's numbers, under the
list's filters, drawn by the vendored uPlot without any breach of the page's CSP.

The README's picture comes from the last test: run it alone, with the path to write,
    CHARTS_SCREENSHOT=docs/charts.png .venv/bin/pytest tests/browser/test_dashboard_charts.py -k week
(otherwise it writes the picture to a temporary folder).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed").expect

ANALYTICS = "/v1/studio/upload-jobs/analytics"
SCREENSHOT_LIMIT_BYTES = 300_000
# Every CSP violation the page meets, recorded before any of its scripts runs.
RECORD_CSP_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.cspViolations.push(`${event.violatedDirective}: ${event.blockedURI}`);
});
"""
# The mouse over bucket `index` of `count` in a chart (the x axis has half a bucket of room each side).
BUCKET_X = """(over, [index, count]) => {
  const box = over.getBoundingClientRect();
  return [box.x + (box.width * (index + 0.5)) / count, box.y + box.height / 2];
}"""


@pytest.fixture
def watched(dashboard: Any) -> Iterator[Any]:
    """The dashboard, with every CSP violation it meets, as an event and as Chromium's console line
    ("Refused to ... Content Security Policy"); the test fails on any."""
    refusals: list[str] = []
    dashboard.page.add_init_script(RECORD_CSP_VIOLATIONS)
    dashboard.page.on(
        "console",
        lambda message: "Content Security Policy" in message.text and refusals.append(message.text),
    )
    yield dashboard
    assert dashboard.page.evaluate("window.cspViolations") == []
    assert refusals == []


def open_analytics(dashboard: Any) -> dict[str, Any]:
    """Opens the panel; the analytics answer the page drew."""
    with dashboard.page.expect_response(lambda response: ANALYTICS in response.url) as answered:
        dashboard.page.get_by_role("heading", name="Analytics").click()
    response = answered.value
    assert response.status == 200
    expect(dashboard.page.locator(".charts")).to_have_attribute("aria-busy", "false")
    return dict(response.json())


def legend_value(dashboard: Any, chart: str, label: str, bucket: int, buckets: int) -> Any:
    """The legend's value of series `label` in `chart`, with the mouse over bucket `bucket`."""
    over = dashboard.page.locator(f"#{chart} .u-over")
    x, y = over.evaluate(BUCKET_X, [bucket, buckets])
    dashboard.page.mouse.move(x, y)
    return dashboard.page.locator(f"#{chart} .u-legend .u-series").filter(has_text=label).locator(".u-value")


@pytest.fixture
def outcomes(stack: Any, resource_name: str) -> dict[str, list[str]]:
    """Jobs of one resource run through the runtime: three renditions and a subtitle complete, two
    renditions without a source and one invalid subtitle fail."""
    jobs: dict[str, list[str]] = {"completed": [], "failed": []}
    for label, segments in (("1080p", 8), ("720p", 6), ("480p", 4)):
        hls_dir = f"charts/{resource_name}/{label}"
        stack.write_rendition(hls_dir, segments=segments, segment_bytes=65_536)
        jobs["completed"].append(stack.create(stack.hls_body(resource_name, hls_dir, label))["jobId"])
    for label in ("360p", "240p"):
        missing = f"charts/{resource_name}/missing-{label}"
        jobs["failed"].append(stack.create(stack.hls_body(resource_name, missing, label))["jobId"])
    for name, text in (("fr", "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nBonjour.\n"), ("de", "1\nnot a cue\n")):
        path = stack.source_root / f"charts/{resource_name}/{name}.vtt"
        path.write_text(text)
        body = {
            "jobType": "upload-subtitle-to-s3",
            "resourceType": "film",
            "resourceId": "64b7f0c2a1b2c3d4e5f60718",
            "resourceName": resource_name,
            "subtitlePath": f"charts/{resource_name}/{name}.vtt",
        }
        jobs["completed" if name == "fr" else "failed"].append(stack.create(body)["jobId"])
    for status, ids in jobs.items():
        for job_id in ids:
            stack.wait_for_status(job_id, status)
    return jobs


def test_the_charts_show_the_analytics_of_the_filtered_jobs(
    watched: Any, stack: Any, resource_name: str, outcomes: dict[str, list[str]]
) -> None:
    dashboard = watched
    dashboard.open()
    dashboard.search(resource_name)
    answer = open_analytics(dashboard)
    assert answer["bucket"] == "hour"
    assert sum(bucket["completed"] for bucket in answer["buckets"]) == 4
    assert sum(bucket["failed"] for bucket in answer["buckets"]) == 3

    panel = dashboard.page.locator("#analytics")
    expect(panel.locator("#analytics-scope")).to_contain_text(resource_name)
    expect(panel.locator('[data-total="completed"]')).to_have_text("4")
    expect(panel.locator('[data-total="failed"]')).to_have_text("3")
    expect(panel.locator('[data-total="created"]')).to_have_text("7")
    for chart in ("chart-throughput", "chart-outcomes", "chart-durations"):
        expect(panel.locator(f"#{chart} canvas")).to_have_count(1)
    expect(panel.locator("#chart-throughput .u-legend")).to_contain_text("Throughput")
    expect(panel.locator("#chart-outcomes .u-legend")).to_contain_text("Completed")
    expect(panel.locator("#chart-outcomes .u-legend")).to_contain_text("Failed")
    for name in ("p50", "p95", "p99"):
        expect(panel.locator("#chart-durations .u-legend")).to_contain_text(name)

    # The bars hold the API's counts: the legend reads them under the mouse.
    busiest = max(range(len(answer["buckets"])), key=lambda i: answer["buckets"][i]["completed"])
    bucket = answer["buckets"][busiest]
    count = len(answer["buckets"])
    expect(legend_value(dashboard, "chart-outcomes", "Completed", busiest, count)).to_have_text(
        str(bucket["completed"])
    )
    expect(legend_value(dashboard, "chart-outcomes", "Failed", busiest, count)).to_have_text(str(bucket["failed"]))
    throughput = legend_value(dashboard, "chart-throughput", "Throughput", busiest, count)
    expect(throughput).to_contain_text("MiB/s")  # the legend has caught up with the mouse
    assert float(throughput.inner_text().removesuffix(" MiB/s")) == pytest.approx(bucket["throughputMiBps"], rel=0.01)

    # Durations: one row per job type that completed, with the API's percentiles.
    assert set(answer["durations"]) == {"upload-hls-to-s3", "upload-subtitle-to-s3"}
    for job_type, percentiles in answer["durations"].items():
        row = panel.locator(f'#duration-table tr[data-job-type="{job_type}"]')
        for name, seconds in percentiles.items():
            assert float(row.locator(f'[data-percentile="{name}"]').get_attribute("data-seconds")) == seconds

    # Failure reasons, most frequent first, each with its newest failure's words.
    reasons = panel.locator("#failure-reasons li")
    expect(reasons).to_have_count(2)
    expect(reasons.nth(0)).to_have_attribute("data-error-code", "SOURCE_NOT_FOUND")
    expect(reasons.nth(0).locator(".reason-count")).to_have_text("2")
    expect(reasons.nth(1)).to_have_attribute("data-error-code", "INVALID_SUBTITLE")
    for index, reason in enumerate(answer["failureReasons"]):
        expect(reasons.nth(index).locator(".reason-example")).to_have_text(reason["example"]["failedReason"])


def test_a_longer_range_is_counted_by_day_a_status_filter_narrows_the_charts_and_a_failure_shows_live(
    watched: Any, stack: Any, resource_name: str, outcomes: dict[str, list[str]]
) -> None:
    dashboard = watched
    dashboard.open()
    dashboard.search(resource_name)
    open_analytics(dashboard)

    with dashboard.page.expect_response(lambda response: ANALYTICS in response.url) as answered:
        dashboard.page.get_by_label("Range", exact=True).select_option("720")  # 30 days: too many hours for the API
    answer = answered.value.json()
    assert answer["bucket"] == "day"
    assert len(answer["buckets"]) in (30, 31)
    expect(dashboard.page.get_by_label("Per", exact=True)).to_have_value("day")
    expect(dashboard.page.locator('#a-bucket option[value="hour"]')).to_be_disabled()
    expect(dashboard.page.locator('[data-total="completed"]')).to_have_text("4")

    with dashboard.page.expect_response(lambda response: ANALYTICS in response.url) as answered:
        dashboard.page.locator("#f-status").select_option("failed")
    assert "status=failed" in answered.value.url
    expect(dashboard.page.locator("#analytics-scope")).to_contain_text("status “failed”")
    expect(dashboard.page.locator('[data-total="completed"]')).to_have_text("0")
    expect(dashboard.page.locator('[data-total="failed"]')).to_have_text("3")
    expect(dashboard.page.locator("#chart-durations")).to_contain_text("No job completed in this range.")

    # A job that fails while the panel is open shows in it without a click.
    dashboard.wait_live()
    stack.create(stack.hls_body(resource_name, f"charts/{resource_name}/missing-144p", "144p"))
    expect(dashboard.page.locator('[data-total="failed"]')).to_have_text("4")
    missing = dashboard.page.locator('#failure-reasons li[data-error-code="SOURCE_NOT_FOUND"]')
    expect(missing.locator(".reason-count")).to_have_text("3")


HISTORY_FAILURES = (
    ("SOURCE_NOT_FOUND", "SOURCE_NOT_FOUND: no HLS folder at renditions/720p"),
    ("SOURCE_NOT_FOUND", "SOURCE_NOT_FOUND: no HLS folder at renditions/1080p"),
    ("INVALID_SUBTITLE", "INVALID_SUBTITLE: the file does not start with WEBVTT"),
    ("STALLED", "STALLED: no progress for 300 s, the worker was lost"),
)


def past_job(template: dict[str, Any], rng: random.Random, job_id: str, created: datetime) -> dict[str, Any]:
    """A copy of a job the runtime completed, moved back to `created`: mostly completed, now and then failed."""
    finished = created + timedelta(seconds=rng.lognormvariate(3.2, 0.7))
    document = {key: value for key, value in template.items() if key != "_id"}
    document.update(
        jobId=job_id,
        jobType=rng.choice(("upload-hls-to-s3", "upload-hls-to-s3", "upload-subtitle-to-s3")),
        createdAt=created,
        updatedAt=finished,
        waitingSince=created,
        startedAt=created,
        finishedAt=finished,
        history=[],
        writtenKeys=[],  # a copy wrote nothing: a cleanup of it must not delete the original's files
    )
    if rng.random() < 0.12:
        code, reason = rng.choice(HISTORY_FAILURES)
        for done in ("completedAt", "durationSeconds", "publicUrl"):
            document.pop(done, None)
        document.update(status="failed", errorCode=code, failedReason=reason, failedAt=finished, uploadedBytes=0)
    else:
        document.update(
            completedAt=finished,
            durationSeconds=(finished - created).total_seconds(),
            uploadedBytes=int(rng.uniform(0.2, 1.5) * 2**30),
        )
    return document


@pytest.fixture
def week_of_history(stack: Any, resource_name: str) -> Iterator[int]:
    """A week of finished jobs of one resource: copies of one the runtime completed, moved into the
    past (no worker can make a past week), busy afternoons, quiet nights, a few failures. Yields how
    many completed in that week."""
    hls_dir = f"charts/{resource_name}/template"
    stack.write_rendition(hls_dir, segments=2)
    job_id = stack.create(stack.hls_body(resource_name, hls_dir, "720p"))["jobId"]
    stack.wait_for_status(job_id, "completed")
    jobs = stack.services.store.collection
    template = jobs.find_one({"jobId": job_id})
    rng = random.Random(13)
    now = datetime.now(UTC)
    documents = []
    for hours_ago in range(7 * 24, 0, -1):
        start = now - timedelta(hours=hours_ago)
        busy = 1 + 3 * max(0.0, 1 - abs(start.hour - 14) / 8)
        for index in range(rng.randint(0, int(3 * busy))):
            created = start + timedelta(minutes=rng.uniform(0, 50))
            documents.append(past_job(template, rng, f"{job_id}-{hours_ago}-{index}", created))
    jobs.insert_many(documents)
    yield 1 + sum(document["status"] == "completed" for document in documents)
    jobs.delete_many({"jobId": {"$in": [job_id] + [d["jobId"] for d in documents]}})


def test_a_week_of_history_is_drawn_hour_by_hour(
    watched: Any, stack: Any, resource_name: str, week_of_history: int, tmp_path: Path
) -> None:
    dashboard = watched
    dashboard.open()
    dashboard.search(resource_name)
    open_analytics(dashboard)
    with dashboard.page.expect_response(lambda response: ANALYTICS in response.url) as answered:
        dashboard.page.get_by_label("Range", exact=True).select_option("168")
    answer = answered.value.json()
    assert len(answer["buckets"]) in (168, 169)
    assert sum(bucket["completed"] for bucket in answer["buckets"]) == week_of_history
    panel = dashboard.page.locator("#analytics")
    expect(panel.locator('[data-total="completed"]')).to_have_text(f"{week_of_history:,}")
    # An afternoon bucket two days back reads as the API counted it.
    index = next(i for i, b in enumerate(answer["buckets"][:-48]) if b["completed"] and b["start"][11:13] == "14")
    expect(legend_value(dashboard, "chart-outcomes", "Completed", index, len(answer["buckets"]))).to_have_text(
        str(answer["buckets"][index]["completed"])
    )

    target = Path(os.environ.get("CHARTS_SCREENSHOT") or tmp_path / "charts.png")
    dashboard.page.mouse.move(0, 0)  # no cursor line in the picture
    panel.screenshot(path=str(target))
    assert target.stat().st_size < SCREENSHOT_LIMIT_BYTES
