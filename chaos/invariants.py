"""The chaos run's invariants (issue 11), computed from what was observed, with no I/O here.

Inputs: the jobs and what they must end as (`ChaosJob`), each job's final document, the bucket's
objects and open multipart uploads (read from moto directly, not through the fault proxy), the
fault proxy's record of every S3 request, and the final events one WebSocket client saw.

The proxy's records carry one order counter shared by every request: `arrival` (its head was
read), `start` (forwarding to moto began), `end` (moto's answer was in), `done` (the client had
the whole answer). So "after" below is exact, not a guess from clocks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chaos.workload import ChaosJob

FINAL_EVENTS = {"completed": "JobCompleted", "failed": "JobFailed", "cancelled": "JobCancelled"}
FINISHED = frozenset(FINAL_EVENTS)
WRITES = frozenset({"PutObject", "UploadPart"})
PUBLISHING = frozenset({"PutObject", "CompleteMultipartUpload"})


@dataclass
class Findings:
    """Each invariant's count, and the first few examples of what broke it."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, problems: list[str]) -> None:
        self.counts[name] = len(problems)
        self.examples[name] = problems[:10]


def ok_2xx(status: int) -> bool:
    return 200 <= status < 300


def not_final(jobs: Iterable[ChaosJob], final: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Jobs not in one of their expected final states (a wrong final state counts too)."""
    problems = []
    for job in jobs:
        document = final.get(job.job_id) or {}
        status, code = document.get("status"), document.get("errorCode")
        if not any(e.status == status and (e.error_code is None or e.error_code == code) for e in job.expected):
            wanted = " or ".join(f"{e.status}{f' {e.error_code}' if e.error_code else ''}" for e in job.expected)
            problems.append(f"{job.job_id}: {status} {code or ''} (expected {wanted})".replace("  ", " "))
    return problems


def lost(jobs: Iterable[ChaosJob], final: Mapping[str, Mapping[str, Any]], bucket: Mapping[str, str]) -> list[str]:
    """Objects of completed jobs missing from the bucket."""
    return [
        f"{job.job_id}: {key}"
        for job in jobs
        if (final.get(job.job_id) or {}).get("status") == "completed"
        for key in job.objects
        if key not in bucket
    ]


def corrupted(
    jobs: Iterable[ChaosJob],
    final: Mapping[str, Mapping[str, Any]],
    bucket: Mapping[str, str],
    md5_of_object: Callable[[str], str],
) -> list[str]:
    """Objects of completed jobs whose MD5 differs from their source's. moto's ETag of a single
    PUT is the MD5 of the bytes it stored; a multipart object (ETag `...-N`) is read whole."""
    problems = []
    for job in jobs:
        if (final.get(job.job_id) or {}).get("status") != "completed":
            continue
        for key, source_md5 in job.objects.items():
            etag = bucket.get(key)
            if etag is None:
                continue  # counted as lost
            stored = md5_of_object(key) if "-" in etag else etag
            if stored != source_md5:
                problems.append(f"{job.job_id}: {key} has MD5 {stored}, its source {source_md5}")
    return problems


def write_target(record: Mapping[str, Any]) -> tuple[str, int] | None:
    """What a PUT writes: a whole object (part 0) or one part of the object's multipart upload."""
    if record["op"] == "PutObject":
        return record["key"], 0
    if record["op"] == "UploadPart":
        return record["key"], int(record["partNumber"])
    return None


def duplicates(records: Iterable[Mapping[str, Any]]) -> tuple[list[str], int]:
    """(duplicated, re-sent in flight).

    duplicated: a PUT of a file or a part that arrived after an earlier PUT of the same file or
    part had answered the client 2xx (the worker knew it was done, and the product promises it
    never sends it again). Re-sent in flight: a PUT that reached moto after an earlier one had
    been stored there but its answer never reached the client (cut, or the worker was killed):
    the client could not know, so sending it again is legitimate; reported, not a failure.
    """
    by_target: dict[tuple[str, int], list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        target = write_target(record)
        if target is not None:
            by_target[target].append(record)
    duplicated: list[str] = []
    resent = 0
    for (key, part), writes in by_target.items():
        acknowledged = [w["done"] for w in writes if w["delivered"] and ok_2xx(w["status"])]
        stored_unheard = [
            w["end"] for w in writes if w["forwarded"] and ok_2xx(w["upstreamStatus"]) and not w["delivered"]
        ]
        for write in writes:
            if any(done < write["arrival"] for done in acknowledged):
                what = f"part {part} of {key}" if part else key
                duplicated.append(f"{what} PUT again (request {write['seq']}) after it was acknowledged")
            elif write["forwarded"] and any(end < write["start"] for end in stored_unheard):
                resent += 1
    return duplicated, resent


def published_early(jobs: Iterable[ChaosJob], records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Playlists stored before every key they reference was: a playlist is visible from the moment
    moto starts storing it (`start`); a reference counts as there once moto answered its first
    successful write (`end`)."""
    first_start: dict[str, int] = {}
    first_stored: dict[str, int] = {}
    for record in records:
        if record["op"] not in PUBLISHING or not record["forwarded"] or not ok_2xx(record["upstreamStatus"]):
            continue
        key = record["key"]
        first_start[key] = min(first_start.get(key, record["start"]), record["start"])
        first_stored[key] = min(first_stored.get(key, record["end"]), record["end"])
    problems = []
    for job in jobs:
        for key, references in job.after.items():
            if key not in first_start:
                continue
            missing = [ref for ref in references if first_stored.get(ref, first_start[key] + 1) > first_start[key]]
            if missing:
                problems.append(f"{job.job_id}: {key} stored before {len(missing)} of its references ({missing[0]})")
    return problems


def open_multipart(
    jobs: Iterable[ChaosJob], final: Mapping[str, Mapping[str, Any]], open_uploads: Iterable[tuple[str, str]]
) -> list[str]:
    """Multipart uploads (key, UploadId) still open in the bucket for a finished job."""
    job_of_key = {key: job for job in jobs for key in job.objects}
    problems = []
    for key, upload_id in open_uploads:
        job = job_of_key.get(key)
        status = (final.get(job.job_id) or {}).get("status") if job else None
        if job is None or status in FINISHED:
            problems.append(f"{job.job_id if job else '(no job)'} ({status}): {key} upload {upload_id} still open")
    return problems


def missed_final_event(
    jobs: Iterable[ChaosJob], final: Mapping[str, Mapping[str, Any]], seen: Mapping[str, set[str]]
) -> list[str]:
    """Finished jobs whose final event the all-subscribed WebSocket client never received."""
    problems = []
    for job in jobs:
        status = (final.get(job.job_id) or {}).get("status")
        if status in FINISHED and FINAL_EVENTS[status] not in seen.get(job.job_id, set()):
            problems.append(f"{job.job_id}: {status}, no {FINAL_EVENTS[status]} event")
    return problems
