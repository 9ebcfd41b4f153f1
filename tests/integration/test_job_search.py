"""The list's `q` on the store: words of resourceName and filename matched from their start, indexed."""

from __future__ import annotations

from typing import Any

from chalicelib.jobs.model import ListFilters
from chalicelib.jobs.search import SEARCH_FIELD
from chalicelib.jobs.store import JobStore

VIDEO = {"jobType": "upload-video-to-s3", "sourcePath": "films/x/a.mp4", "hlsDir": None, "label": None}


def found(store: JobStore, q: str) -> set[str]:
    jobs, _cursor = store.list(ListFilters(q=q))
    return {job.job_id for job in jobs}


def test_q_finds_words_from_their_start_in_resource_name_or_filename(store: JobStore, make_job: Any) -> None:
    make_job(jobId="lights", resourceName="Northern Lights")
    make_job(jobId="north-by", resourceName="North by Northwest")
    make_job(jobId="file", filename="aurora_borealis.fr.mp4", **VIDEO)
    assert found(store, "north") == {"lights", "north-by"}
    assert found(store, "NORTHERN") == {"lights"}
    assert found(store, "northern li") == {"lights"}  # every word of q must start a word of the job
    assert found(store, "northwest north") == {"north-by"}
    assert found(store, "borealis") == {"file"}
    assert found(store, "aurora_borealis.fr") == {"file"}
    assert found(store, "orthern") == set()  # inside a word: the documented change from "contains"


def test_q_combines_with_the_other_filters(store: JobStore, make_job: Any) -> None:
    make_job(jobId="done", resourceName="Night Train", status="completed")
    make_job(jobId="waiting", resourceName="Night Train")
    jobs, _cursor = store.list(ListFilters(q="night", status="completed"))
    assert [job.job_id for job in jobs] == ["done"]


def test_jobs_stored_before_the_word_search_get_their_words_from_ensure_indexes(store: JobStore) -> None:
    store.collection.insert_one({"jobId": "old", "resourceName": "Old Film", "filename": "old.mp4"})
    assert store.collection.find_one({"jobId": "old"}).get(SEARCH_FIELD) is None
    store.ensure_indexes()
    assert store.collection.find_one({"jobId": "old"})[SEARCH_FIELD] == ["old", "film", "mp4"]
    assert store.backfill_search_words() == 0  # idempotent


def test_the_search_words_are_indexed(store: JobStore) -> None:
    keys = [list(index["key"]) for index in store.collection.index_information().values()]
    assert [(SEARCH_FIELD, 1)] in keys
