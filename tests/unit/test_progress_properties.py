"""Property: a job's progress never goes back and reaches 99 once every byte is in, whatever the files,
the order in which bytes arrive, when the supervisor writes, and how many runs (continuations, retries)
the job takes.

Each run has a recorder of its own whose counters start with what the bucket already holds (skipped files);
its updates are applied as MongoDB applies them (`$max`). While running, progress stays at most 99: the
last percent belongs to completion, which writes 100.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.worker.progress import RUNNING_PROGRESS_CAP, ProgressRecorder, percent


def apply_max(document: dict[str, Any], update: dict[str, Any] | None) -> None:
    """MongoDB's `$max` and `$set`, as the supervisor's write applies them."""
    if update is None:
        return
    for field, value in update.get("$max", {}).items():
        document[field] = max(document.get(field, value), value)
    document.update(update.get("$set", {}))


@st.composite
def job_runs(draw: st.DrawFn) -> tuple[list[int], list[list[tuple[int, int, bool]]]]:
    """File sizes, and runs: each a list of (file index, bytes chunk, write after it) for files it uploads."""
    sizes = draw(st.lists(st.integers(0, 10_000), min_size=1, max_size=12))
    order = draw(st.permutations(range(len(sizes))))
    cuts = sorted(draw(st.lists(st.integers(0, len(sizes)), max_size=3)))
    runs = []
    for start, end in zip([0, *cuts], [*cuts, len(sizes)], strict=True):
        steps = []
        for index in order[start:end]:
            left = sizes[index]
            chunks = draw(st.lists(st.integers(1, max(1, left)), max_size=4)) if left else []
            for chunk in chunks:
                chunk = min(chunk, left)
                if chunk:
                    steps.append((index, chunk, draw(st.booleans())))
                    left -= chunk
            steps.append((index, left, draw(st.booleans())))  # the rest, then the file is done
        runs.append(steps)
    return sizes, runs


@settings(max_examples=200, deadline=None)
@given(job=job_runs())
def test_progress_never_goes_back_and_waits_at_99_for_completion(
    job: tuple[list[int], list[list[tuple[int, int, bool]]]],
) -> None:
    sizes, runs = job
    stored: dict[str, Any] = {"progress": 0}
    seen = [0]
    in_bucket: set[int] = set()
    for steps in runs:
        recorder = ProgressRecorder()
        recorder.set_totals(sum(sizes), len(sizes))
        for index in sorted(in_bucket):  # a new run counts what the bucket already holds
            recorder.bytes_done(f"k{index}", sizes[index])
            recorder.file_done(f"k{index}", sizes[index], skipped=True)
        sent: dict[int, int] = {}
        for index, chunk, write in steps:
            recorder.bytes_done(f"k{index}", chunk)
            sent[index] = sent.get(index, 0) + chunk
            if sent[index] == sizes[index] and index not in in_bucket:
                recorder.file_done(f"k{index}", sizes[index], skipped=False)
                in_bucket.add(index)
            if write:
                apply_max(stored, recorder.take_update())
                seen.append(stored["progress"])
        apply_max(stored, recorder.take_update(force=True))  # the run's final write
        seen.append(stored["progress"])

    assert seen == sorted(seen), f"progress went back: {seen}"
    assert max(seen) <= RUNNING_PROGRESS_CAP  # 100 only once completed
    # Every byte is in: only completion is left, and it writes exactly 100 (tests/integration/
    # test_store_state_machine.py checks that on the store, through the worker's own completion).
    assert stored["progress"] == RUNNING_PROGRESS_CAP


@settings(max_examples=300, deadline=None)
@given(
    total_bytes=st.integers(0, 10**13),
    total_files=st.integers(0, 10**5),
    data=st.data(),
)
def test_percent_grows_with_what_is_uploaded_and_stays_in_0_to_99(
    total_bytes: int, total_files: int, data: Any
) -> None:
    low_bytes = data.draw(st.integers(0, total_bytes))
    high_bytes = data.draw(st.integers(low_bytes, total_bytes))
    low_files = data.draw(st.integers(0, total_files))
    high_files = data.draw(st.integers(low_files, total_files))

    low = percent(low_bytes, total_bytes, low_files, total_files)
    high = percent(high_bytes, total_bytes, high_files, total_files)

    assert 0 <= low <= high <= RUNNING_PROGRESS_CAP
    if total_bytes or total_files:
        assert percent(total_bytes, total_bytes, total_files, total_files) == RUNNING_PROGRESS_CAP
