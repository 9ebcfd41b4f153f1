"""Local sources under SOURCE_ROOT: reading ranges, listing folders, the safety rules, removal."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.errors import ErrorCode, PermanentUploadError, RetryableUploadError, UploadError
from chalicelib.upload.sources import LocalFile, Sources, source_read_error


@pytest.fixture
def sources(source_root: Path) -> Sources:
    return Sources(source_root, ["staging"])


def code_of(error: pytest.ExceptionInfo[UploadError]) -> ErrorCode:
    return error.value.code


def test_a_file_reads_whole_or_by_range(source_root: Path, sources: Sources) -> None:
    (source_root / "films").mkdir()
    (source_root / "films" / "movie.mp4").write_bytes(bytes(range(256)) * 4)
    for ref in ("films/movie.mp4", str(source_root / "films" / "movie.mp4")):
        source = sources.file(ref)
        assert source.size == 1024
        assert source.read() == bytes(range(256)) * 4
        assert source.read(250, 10) == bytes([250, 251, 252, 253, 254, 255, 0, 1, 2, 3])


def test_a_folder_lists_every_file_recursively_in_name_order(source_root: Path, sources: Sources) -> None:
    rendition = source_root / "films" / "720p"
    (rendition / "audio").mkdir(parents=True)
    for name, data in {"index.m3u8": b"#EXTM3U\n", "seg_1.ts": b"x" * 10, "audio/a.aac": b"y" * 3}.items():
        (rendition / name).write_bytes(data)
    entries = sources.directory("films/720p")
    assert [(e.relative_path, e.size) for e in entries] == [("audio/a.aac", 3), ("index.m3u8", 8), ("seg_1.ts", 10)]
    assert entries[2].file.read() == b"x" * 10


@pytest.mark.parametrize("ref", ["films/missing.mp4", "nowhere/"])
def test_missing_sources_are_not_found(sources: Sources, ref: str) -> None:
    with pytest.raises(PermanentUploadError) as caught:
        sources.file(ref)
    assert code_of(caught) == ErrorCode.SOURCE_NOT_FOUND


def test_a_missing_or_empty_folder_is_not_found(source_root: Path, sources: Sources) -> None:
    (source_root / "empty").mkdir()
    for ref in ("empty", "missing"):
        with pytest.raises(PermanentUploadError) as caught:
            sources.directory(ref)
        assert code_of(caught) == ErrorCode.SOURCE_NOT_FOUND


def test_a_folder_is_not_a_file(source_root: Path, sources: Sources) -> None:
    (source_root / "dir").mkdir()
    with pytest.raises(PermanentUploadError) as caught:
        sources.file("dir")
    assert code_of(caught) == ErrorCode.SOURCE_NOT_FOUND


@pytest.mark.parametrize(
    "ref", ["../outside.mp4", "films/../../outside.mp4", "/etc/passwd", "http://x/y", "s3://other/k"]
)
def test_sources_outside_the_root_are_forbidden(sources: Sources, ref: str) -> None:
    with pytest.raises(PermanentUploadError) as caught:
        sources.file(ref)
    assert code_of(caught) == ErrorCode.SOURCE_FORBIDDEN


def test_a_symlink_leaving_the_root_is_forbidden(tmp_path: Path, source_root: Path, sources: Sources) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("no")
    (source_root / "link.mp4").symlink_to(secret)
    with pytest.raises(PermanentUploadError) as caught:
        sources.file("link.mp4")
    assert code_of(caught) == ErrorCode.SOURCE_FORBIDDEN


def test_a_symlink_inside_a_folder_leaving_the_root_forbids_the_listing(
    tmp_path: Path, source_root: Path, sources: Sources
) -> None:
    (tmp_path / "secret.ts").write_bytes(b"no")
    rendition = source_root / "r"
    rendition.mkdir()
    (rendition / "seg_0.ts").write_bytes(b"ok")
    (rendition / "seg_1.ts").symlink_to(tmp_path / "secret.ts")
    with pytest.raises(PermanentUploadError) as caught:
        sources.directory("r")
    assert code_of(caught) == ErrorCode.SOURCE_FORBIDDEN
    assert "seg_1.ts" in caught.value.reason


def test_a_file_deleted_after_listing_is_not_found(source_root: Path, sources: Sources) -> None:
    path = source_root / "gone.ts"
    path.write_bytes(b"abc")
    source = sources.file("gone.ts")
    path.unlink()
    with pytest.raises(PermanentUploadError) as caught:
        source.read()
    assert code_of(caught) == ErrorCode.SOURCE_NOT_FOUND


def test_a_file_that_shrank_is_retryable(source_root: Path) -> None:
    path = source_root / "shrinks.ts"
    path.write_bytes(b"abc")
    with pytest.raises(RetryableUploadError):
        LocalFile(path, 10, "shrinks.ts").read()


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        (PermissionError(13, "Permission denied"), PermanentUploadError, ErrorCode.ACCESS_DENIED),
        (FileNotFoundError(2, "No such file"), PermanentUploadError, ErrorCode.SOURCE_NOT_FOUND),
        (IsADirectoryError(21, "Is a directory"), PermanentUploadError, ErrorCode.SOURCE_NOT_FOUND),
        (OSError(5, "Input/output error"), RetryableUploadError, ErrorCode.UPLOAD_FAILED),
    ],
)
def test_what_a_failed_read_means(error: OSError, kind: type[UploadError], code: ErrorCode) -> None:
    """Tests run as root, who reads a chmod 000 file, so the mapping is checked on the errors themselves."""
    meaning = source_read_error("films/locked.ts", error)
    assert isinstance(meaning, kind)
    assert meaning.code == code
    assert "films/locked.ts" in meaning.reason


def test_permission_denied_is_said_in_words() -> None:
    meaning = source_read_error("films/locked.ts", PermissionError(13, "Permission denied"))
    assert "permission denied" in meaning.reason
    assert "Permission denied" in meaning.detail


def test_remove_deletes_files_and_folders_and_is_idempotent(
    tmp_path: Path, source_root: Path, sources: Sources
) -> None:
    rendition = source_root / "films" / "720p"
    (rendition / "sub").mkdir(parents=True)
    (rendition / "a.ts").write_bytes(b"a")
    (rendition / "sub" / "b.ts").write_bytes(b"b")
    outside = tmp_path / "keep.ts"
    outside.write_bytes(b"keep")
    (rendition / "sub" / "link").symlink_to(tmp_path)  # a link to remove, not a tree to empty
    (source_root / "movie.mp4").write_bytes(b"m")
    assert sources.remove("films/720p") == 2
    assert not rendition.exists() and (source_root / "films").exists()
    assert outside.read_bytes() == b"keep"
    assert sources.remove("movie.mp4") == 1
    assert sources.remove("movie.mp4") == 0
    assert sources.remove("films/720p") == 0


def test_remove_never_removes_the_root(sources: Sources, source_root: Path) -> None:
    with pytest.raises(PermanentUploadError) as caught:
        sources.remove(str(source_root))
    assert code_of(caught) == ErrorCode.SOURCE_FORBIDDEN
    assert source_root.is_dir()
