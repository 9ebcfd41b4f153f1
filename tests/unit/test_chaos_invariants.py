"""The chaos run's verdicts, from hand-made observations: each invariant catches what it names."""

from __future__ import annotations

from typing import Any

from chaos import invariants
from chaos.workload import ChaosJob, Expected, Kind


def job(job_id: str = "j1", **fields: Any) -> ChaosJob:
    defaults: dict[str, Any] = {
        "kind": Kind.HLS,
        "body": {},
        "expected": (Expected("completed"),),
        "objects": {"a/seg0.ts": "aa00", "a/seg1.ts": "bb11", "a/index.m3u8": "cc22"},
        "after": {"a/index.m3u8": ("a/seg0.ts", "a/seg1.ts")},
    }
    defaults.update(fields)
    return ChaosJob(job_id, **defaults)


def put(
    seq: int, key: str, *, arrival: int, op: str = "PutObject", part: int | None = None, **fields: Any
) -> dict[str, Any]:
    """A request as the fault proxy records it; by default stored and acknowledged in order."""
    record = {
        "seq": seq, "op": op, "key": key, "partNumber": part, "fault": None, "forwarded": True,
        "upstreamStatus": 200, "status": 200, "delivered": True,
        "arrival": arrival, "start": arrival + 1, "end": arrival + 2, "done": arrival + 3,
    }  # fmt: skip
    record.update(fields)
    return record


def test_a_job_in_another_final_state_or_another_error_code_is_not_final() -> None:
    jobs = [
        job("ok"),
        job("active"),
        job("wrong-code", expected=(Expected("failed", "SOURCE_NOT_FOUND"),)),
        job("cancel", expected=(Expected("cancelled"), Expected("completed"))),
    ]
    final = {
        "ok": {"status": "completed"},
        "active": {"status": "active"},
        "wrong-code": {"status": "failed", "errorCode": "STALLED"},
        "cancel": {"status": "completed"},
    }
    problems = invariants.not_final(jobs, final)
    assert [p.split(":")[0] for p in problems] == ["active", "wrong-code"]


def test_lost_and_corrupted_look_only_at_completed_jobs_and_read_multipart_objects_whole() -> None:
    jobs = [job("done"), job("failed", objects={"b/x.ts": "dd33"})]
    final = {"done": {"status": "completed"}, "failed": {"status": "failed"}}
    bucket = {"a/seg0.ts": "aa00", "a/seg1.ts": "0123-2", "a/index.m3u8": "other"}
    read: list[str] = []

    def md5_of_object(key: str) -> str:
        read.append(key)
        return "bb11"

    assert invariants.lost(jobs, final, {"a/seg0.ts": "aa00"}) == ["done: a/seg1.ts", "done: a/index.m3u8"]
    corrupted = invariants.corrupted(jobs, final, bucket, md5_of_object)
    assert read == ["a/seg1.ts"]
    assert corrupted == ["done: a/index.m3u8 has MD5 other, its source cc22"]


def test_a_put_after_an_acknowledged_put_of_the_same_file_or_part_is_a_duplicate() -> None:
    records = [
        put(1, "a/seg0.ts", arrival=1),
        put(2, "a/seg0.ts", arrival=10),  # after seg0 was acknowledged: duplicated
        put(3, "v/big", arrival=20, op="UploadPart", part=1),
        put(4, "v/big", arrival=30, op="UploadPart", part=2),  # another part: fine
        put(5, "v/big", arrival=40, op="UploadPart", part=1),  # part 1 again: duplicated
    ]
    duplicated, resent = invariants.duplicates(records)
    assert len(duplicated) == 2 and "a/seg0.ts" in duplicated[0] and "part 1 of v/big" in duplicated[1]
    assert resent == 0


def test_a_put_whose_answer_never_reached_the_client_may_go_again_and_is_counted_apart() -> None:
    records = [
        put(1, "a/seg0.ts", arrival=1, fault="reset-response", status=0, delivered=False, done=0),
        put(2, "a/seg0.ts", arrival=10),  # stored at moto, but the worker could not know
        put(3, "a/seg1.ts", arrival=20, fault="slowdown", forwarded=False, upstreamStatus=0, status=503),
        put(4, "a/seg1.ts", arrival=30),  # the first never reached moto: a plain retry
        put(5, "a/seg2.ts", arrival=40, done=60),
        put(6, "a/seg2.ts", arrival=50),  # overlapping the first, before its answer: not after it
    ]
    duplicated, resent = invariants.duplicates(records)
    assert duplicated == []
    assert resent == 1


def test_a_playlist_stored_before_one_of_its_segments_was_is_published_early() -> None:
    early = [put(1, "a/seg0.ts", arrival=1), put(2, "a/index.m3u8", arrival=10), put(3, "a/seg1.ts", arrival=20)]
    in_order = [put(1, "a/seg0.ts", arrival=1), put(2, "a/seg1.ts", arrival=10), put(3, "a/index.m3u8", arrival=20)]
    refused_then_ok = [
        put(1, "a/index.m3u8", arrival=0, forwarded=False, upstreamStatus=0, status=500),
        *in_order,
    ]
    assert invariants.published_early([job()], early) == [
        "j1: a/index.m3u8 stored before 1 of its references (a/seg1.ts)"
    ]
    assert invariants.published_early([job()], in_order) == []
    assert invariants.published_early([job()], refused_then_ok) == []


def test_open_uploads_of_finished_jobs_and_missing_final_events_are_reported() -> None:
    jobs = [job("done", objects={"v/big": "m"}), job("running", objects={"v/other": "m"})]
    final = {"done": {"status": "cancelled"}, "running": {"status": "active"}}
    assert invariants.open_multipart(jobs, final, [("v/big", "u1"), ("v/other", "u2")]) == [
        "done (cancelled): v/big upload u1 still open"
    ]
    seen = {"done": {"uploadProgress"}, "running": set()}
    assert invariants.missed_final_event(jobs, final, seen) == ["done: cancelled, no JobCancelled event"]
    assert invariants.missed_final_event(jobs, final, {"done": {"JobCancelled"}}) == []
