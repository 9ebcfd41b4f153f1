"""The worker's progress recorder: bytes-weighted progress, and one MongoDB update that carries
everything since the last one (counters, new keys, multipart checkpoints)."""

from __future__ import annotations

from chalicelib.upload.engine import MultipartCheckpoint
from chalicelib.worker.progress import ProgressRecorder, percent

MIB = 1024 * 1024


def test_progress_is_weighted_by_bytes_and_stops_at_99_until_completion() -> None:
    assert percent(uploaded_bytes=50, total_bytes=200, uploaded_files=9, total_files=10) == 25
    assert percent(uploaded_bytes=200, total_bytes=200, uploaded_files=10, total_files=10) == 99
    assert percent(uploaded_bytes=0, total_bytes=0, uploaded_files=1, total_files=2) == 50
    assert percent(uploaded_bytes=0, total_bytes=0, uploaded_files=0, total_files=0) == 0


def test_two_thousand_files_make_one_update_with_every_written_key() -> None:
    recorder = ProgressRecorder()
    recorder.set_totals(4000, 2000, destinationPrefix="films/x/hls/720p/")
    for n in range(2000):
        recorder.bytes_done(f"k{n}", 2)
        recorder.file_done(f"k{n}", 2, skipped=n % 2 == 0)

    update = recorder.take_update()

    assert update is not None
    assert update["$max"] == {"uploadedBytes": 4000, "uploadedFiles": 2000, "progress": 99}
    assert update["$set"] == {"totalBytes": 4000, "totalFiles": 2000, "destinationPrefix": "films/x/hls/720p/"}
    assert update["$addToSet"]["writtenKeys"]["$each"] == [f"k{n}" for n in range(1, 2000, 2)]
    assert recorder.take_update() is None


def test_a_forced_update_renews_counters_even_without_news() -> None:
    recorder = ProgressRecorder()
    recorder.set_totals(10, 1)
    recorder.take_update()

    assert recorder.take_update(force=True) == {"$max": {"uploadedBytes": 0, "uploadedFiles": 0, "progress": 0}}


def test_multipart_checkpoints_follow_the_engine_and_start_from_the_job() -> None:
    left_open = MultipartCheckpoint("old", "u0", 5 * MIB, 11 * MIB, {1: '"e1"'}).to_document()
    recorder = ProgressRecorder([left_open])
    recorder.multipart_started(MultipartCheckpoint("video", "u1", 5 * MIB, 12 * MIB))
    recorder.part_done("video", "u1", 2, '"e2"')
    recorder.part_done("video", "another-upload", 3, '"e3"')

    update = recorder.take_update()

    assert update is not None
    assert update["$set"]["multipartUploads"] == [
        left_open,
        {
            "key": "video",
            "uploadId": "u1",
            "partSize": 5 * MIB,
            "size": 12 * MIB,
            "parts": [{"partNumber": 2, "etag": '"e2"'}],
        },
    ]
    recorder.multipart_completed("video", "u1")
    recorder.multipart_aborted("old", "u0")
    after = recorder.take_update()
    assert after is not None and after["$set"]["multipartUploads"] == []
    assert recorder.checkpoints() == []


def test_checkpoints_handed_to_the_engine_are_copies() -> None:
    recorder = ProgressRecorder()
    recorder.multipart_started(MultipartCheckpoint("video", "u1", 5 * MIB, 12 * MIB))
    handed = recorder.checkpoints()

    recorder.part_done("video", "u1", 1, '"e1"')

    assert handed[0].parts == {} and recorder.checkpoints()[0].parts == {1: '"e1"'}
