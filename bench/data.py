"""The benchmark's data under one root (bench/data/ by default, git-ignored): made once, reused.

- `hls-large/`: an HLS rendition of N segments of 128 KiB and its media playlist (the speed contest);
- `hls-small/`: a rendition of many small segments, 4 to 16 KiB (the write and message counts);
- `video/feature.mp4`: one big file (the memory bound), written as a random 1 MiB block repeated,
  each copy stamped with its index so no two parts are equal: seconds to write, not minutes.

A `manifest.json` records what was made; a root whose manifest differs is made again.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

KIB = 1024
MIB = 1024 * KIB
SEGMENT_SECONDS = 4
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class DataSpec:
    large_segments: int = 600
    large_segment_kib: int = 128
    small_segments: int = 2000
    small_min_kib: int = 4
    small_max_kib: int = 16
    video_mib: int = 1024


@dataclass(frozen=True)
class Dataset:
    """Paths of the data, and each one relative to the root (what a job's source field takes)."""

    root: Path
    spec: DataSpec

    @property
    def large(self) -> Path:
        return self.root / "hls-large"

    @property
    def small(self) -> Path:
        return self.root / "hls-small"

    @property
    def video(self) -> Path:
        return self.root / "video" / "feature.mp4"

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def files(self, folder: Path) -> int:
        return sum(1 for _ in folder.iterdir())

    def size(self, folder: Path) -> int:
        return sum(path.stat().st_size for path in folder.iterdir())


def prepare(root: Path, spec: DataSpec) -> Dataset:
    """The data of `spec` under `root`, made unless a previous run made exactly this."""
    dataset = Dataset(root.resolve(), spec)
    manifest = dataset.root / MANIFEST
    if manifest.exists() and json.loads(manifest.read_text()) == asdict(spec):
        return dataset
    if dataset.root.exists():
        shutil.rmtree(dataset.root)
    dataset.root.mkdir(parents=True)
    rng = random.Random(20261126)  # the same sizes on every machine
    write_rendition(dataset.large, [spec.large_segment_kib * KIB] * spec.large_segments)
    small_sizes = [rng.randint(spec.small_min_kib * KIB, spec.small_max_kib * KIB) for _ in range(spec.small_segments)]
    write_rendition(dataset.small, small_sizes)
    write_big_file(dataset.video, spec.video_mib)
    manifest.write_text(json.dumps(asdict(spec)))
    return dataset


def write_rendition(folder: Path, sizes: list[int]) -> None:
    """Segments of random bytes (nothing for a server to compress or deduplicate) and a VOD playlist."""
    folder.mkdir(parents=True)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{SEGMENT_SECONDS}", "#EXT-X-PLAYLIST-TYPE:VOD"]
    for index, size in enumerate(sizes):
        name = f"segment_{index:05d}.ts"
        (folder / name).write_bytes(os.urandom(size))
        lines += [f"#EXTINF:{SEGMENT_SECONDS:.6f},", name]
    lines.append("#EXT-X-ENDLIST")
    (folder / "index.m3u8").write_text("\n".join(lines) + "\n")


def write_big_file(path: Path, mib: int) -> None:
    path.parent.mkdir(parents=True)
    block = bytearray(os.urandom(MIB))
    with path.open("wb") as out:
        for index in range(mib):
            block[:8] = index.to_bytes(8, "big")
            out.write(block)
