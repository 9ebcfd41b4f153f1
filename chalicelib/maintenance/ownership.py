"""Which of a job's objects another job relies on, so that no cleanup ever takes them (SPEC 4).

A job relies on a key when it is waiting, active or completed and either lists the key in its
`writtenKeys` or its destination covers it (`bucket.owns_key`): a job that found identical bytes
already there skipped the key and recorded nothing, so its destination is what speaks for it.
Failed and cancelled jobs rely on nothing: their objects are what cleanup is for, and a retry
uploads again whatever is missing.

When the record of a completed job is deleted, the objects it published stay in the bucket for
good: they leave every other job's `writtenKeys`, so that no later cleanup can take them either.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from chalicelib.errors import UploadError
from chalicelib.jobs import layout
from chalicelib.jobs.model import JobStatus, JobType, UploadJob
from chalicelib.jobs.store import JobStore
from chalicelib.maintenance.bucket import owns_key, single_keys

RELYING = (JobStatus.WAITING, JobStatus.ACTIVE, JobStatus.COMPLETED)
QUERY_BATCH = 500  # keys per query: bounds each query's size, whatever the job wrote


def folders_above(keys: Iterable[str]) -> list[str]:
    """Every folder (ending in `/`) that holds one of `keys`, at any depth."""
    folders: set[str] = set()
    for key in keys:
        parts = key.split("/")[:-1]
        folders.update("/".join(parts[:depth]) + "/" for depth in range(1, len(parts) + 1))
    return sorted(folders)


def _batches(keys: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(keys), QUERY_BATCH):
        yield keys[start : start + QUERY_BATCH]


def relied_on(store: JobStore, job: UploadJob, keys: Iterable[str]) -> set[str]:
    """Those of `keys` another job relies on: two indexed queries per batch of keys (writtenKeys,
    then destinationPrefix among the folders above the keys), the coverage judged here."""
    relied: set[str] = set()
    for batch in _batches(sorted(set(keys))):
        relied |= store.keys_listed_by_others(job.job_id, batch, RELYING)
        for other in store.jobs_writing_into(job.job_id, folders_above(batch), RELYING):
            relied.update(key for key in batch if owns_key(other, key))
    return relied


def hand_over_published(store: JobStore, job: UploadJob) -> None:
    """Before a completed job's record goes: what it published leaves every other job's keys."""
    keys = list(job.written_keys)
    folder = None
    try:
        if job.job_type == JobType.HLS:
            folder = layout.hls_folder(job) + "/"
        else:
            keys.extend(single_keys(job))
    except UploadError:  # a layout the worker refused: it published nothing beyond its keys
        pass
    if folder:
        store.forget_written_keys(job.job_id, [], under=folder)
    for batch in _batches(keys):
        store.forget_written_keys(job.job_id, batch)
