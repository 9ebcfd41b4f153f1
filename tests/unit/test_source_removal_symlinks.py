"""Removing a local source (cleanup's `removeSource`) never deletes anything outside SOURCE_ROOT
and never follows a symlink, whatever the link and whenever it appears: real links on disk,
including a folder swapped for a link between the check and the removal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chalicelib.errors import ErrorCode, PermanentUploadError
from chalicelib.upload.sources import SourceLocation, Sources


def fill(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(name.encode())
    return folder


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """Files that are not the service's: beside SOURCE_ROOT, never inside it."""
    return fill(tmp_path / "elsewhere", "precious.ts", "index.m3u8")


def intact(folder: Path) -> set[str]:
    return {path.name for path in folder.iterdir()}


class SwappedAfterCheck(Sources):
    """A removal whose path is replaced by a symlink to `target` right after `locate` checked it:
    the moment another process on the file system could do it."""

    def __init__(self, root: Path, swapped: Path, target: Path) -> None:
        super().__init__(root, [])
        self.swapped, self.target = swapped, target

    def locate(self, ref: str) -> SourceLocation:
        location = super().locate(ref)
        self.swapped.rename(self.swapped.with_name(self.swapped.name + ".moved"))
        self.swapped.symlink_to(self.target, target_is_directory=True)
        return location


def test_a_source_that_is_a_symlink_is_removed_as_a_link_never_its_target(source_root: Path) -> None:
    shared = fill(source_root / "shared" / "720p", "seg000.ts", "index.m3u8")
    (source_root / "films").mkdir()
    (source_root / "films" / "720p").symlink_to(shared, target_is_directory=True)

    Sources(source_root, []).remove("films/720p")

    assert not os.path.lexists(source_root / "films" / "720p")
    assert intact(shared) == {"seg000.ts", "index.m3u8"}


def test_links_inside_a_removed_folder_go_themselves_and_their_outside_targets_stay(
    source_root: Path, outside: Path
) -> None:
    rendition = fill(source_root / "films" / "720p", "seg000.ts")
    (rendition / "to-a-file.ts").symlink_to(outside / "precious.ts")
    (rendition / "to-a-folder").symlink_to(outside, target_is_directory=True)

    assert Sources(source_root, []).remove("films/720p") == 2

    assert not rendition.exists()
    assert intact(outside) == {"precious.ts", "index.m3u8"}


def test_a_source_whose_link_leads_out_of_the_root_is_refused_and_nothing_goes(
    source_root: Path, outside: Path
) -> None:
    (source_root / "films").mkdir()
    (source_root / "films" / "720p").symlink_to(outside, target_is_directory=True)

    with pytest.raises(PermanentUploadError) as refused:
        Sources(source_root, []).remove("films/720p")

    assert refused.value.code == ErrorCode.SOURCE_FORBIDDEN
    assert intact(outside) == {"precious.ts", "index.m3u8"}


def test_the_source_folder_swapped_for_a_link_after_the_check_loses_only_the_link(
    source_root: Path, outside: Path
) -> None:
    rendition = fill(source_root / "films" / "720p", "seg000.ts")

    SwappedAfterCheck(source_root, rendition, outside).remove("films/720p")

    assert intact(outside) == {"precious.ts", "index.m3u8"}
    assert not os.path.lexists(rendition)


def test_a_folder_on_the_way_swapped_for_a_link_after_the_check_refuses_the_removal(
    source_root: Path, outside: Path
) -> None:
    fill(source_root / "films" / "x" / "720p", "seg000.ts")
    fill(outside / "720p", "also-precious.ts")

    with pytest.raises(PermanentUploadError) as refused:
        SwappedAfterCheck(source_root, source_root / "films" / "x", outside).remove("films/x/720p")

    assert refused.value.code == ErrorCode.SOURCE_FORBIDDEN
    assert intact(outside) == {"precious.ts", "index.m3u8", "720p"}
    assert intact(outside / "720p") == {"also-precious.ts"}


def test_an_absolute_source_is_removed_by_its_path_under_the_root(source_root: Path) -> None:
    rendition = fill(source_root / "films" / "720p", "seg000.ts", "index.m3u8")

    assert Sources(source_root, []).remove(str(rendition)) == 2

    assert not rendition.exists() and (source_root / "films").is_dir()
