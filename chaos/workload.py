"""The chaos run's jobs and their sources: what each job must end as and must leave in the bucket.

Per film: three HLS renditions (20 to 60 small segments each), a WebVTT subtitle with its
playlist, and the master playlist, which waits for all four. Besides: a few 40-80 MiB videos
(multipart), some of them cancelled mid-upload; a few renditions cancelled mid-upload; a few jobs
designed to fail for good: a missing source (SOURCE_NOT_FOUND) and a broken media playlist
(INVALID_PLAYLIST).
"""

from __future__ import annotations

import hashlib
import random
import shutil
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from bench.data import write_big_file, write_rendition
from chalicelib.local.ladder import RENDITIONS, SUBTITLE_LABEL, SUBTITLE_LANGUAGE, master_playlist, write_subtitles

KIB = 1024
JOBS_PER_FILM = len(RENDITIONS) + 2  # renditions, subtitle, master


class Kind(StrEnum):
    HLS = "hls"
    SUBTITLE = "subtitle"
    MASTER = "master"
    VIDEO = "video"
    CANCEL_VIDEO = "cancel-video"
    CANCEL_HLS = "cancel-hls"
    MISSING_SOURCE = "missing-source"
    INVALID_PLAYLIST = "invalid-playlist"


CANCELLED_KINDS = frozenset({Kind.CANCEL_VIDEO, Kind.CANCEL_HLS})


@dataclass(frozen=True)
class Expected:
    """A final state the job may legitimately end in: status and, for a failure, its code."""

    status: str
    error_code: str | None = None


@dataclass
class ChaosJob:
    job_id: str
    kind: Kind
    body: dict[str, Any]
    expected: tuple[Expected, ...]
    objects: dict[str, str] = field(default_factory=dict)  # key -> MD5 of its source (completed jobs)
    # key -> keys that must be in the bucket before it (playlists after what they reference)
    after: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def queue(self) -> str:
        return "upload-master-playlist" if self.kind == Kind.MASTER else "upload-hls-to-s3"


@dataclass(frozen=True)
class Mix:
    """How many jobs of each kind a run of `jobs` jobs has."""

    films: int
    videos: int
    cancelled_videos: int
    cancelled_renditions: int
    missing: int
    invalid: int
    extra_renditions: int

    @classmethod
    def for_jobs(cls, jobs: int) -> Mix:
        few = max(1, jobs // 100)  # 500 jobs: 5 of each special kind; 30 jobs: 1
        specials = {"videos": few, "cancelled_videos": few, "cancelled_renditions": few, "missing": few, "invalid": few}
        rest = jobs - sum(specials.values())
        if rest < JOBS_PER_FILM:
            raise ValueError(f"a chaos run needs at least {sum(specials.values()) + JOBS_PER_FILM} jobs")
        films, extra = divmod(rest, JOBS_PER_FILM)
        return cls(films=films, extra_renditions=extra, **specials)


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as source:
        while chunk := source.read(1024 * KIB):
            digest.update(chunk)
    return digest.hexdigest()


def resource_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(96):024x}"


class Workload:
    """Writes the sources under `root` (relative to SOURCE_ROOT `source_root`) and lists the jobs."""

    def __init__(self, source_root: Path, rng: random.Random, run_id: str) -> None:
        self.source_root = source_root
        self.root = source_root / "chaos" / run_id
        self.rng = rng
        self.run_id = run_id
        self.jobs: list[ChaosJob] = []

    def rel(self, path: Path) -> str:
        return path.relative_to(self.source_root).as_posix()

    def build(self, mix: Mix, *, video_mib: tuple[int, int] = (40, 80)) -> list[ChaosJob]:
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        for _ in range(mix.films):
            self.film()
        for index in range(mix.extra_renditions):
            self.rendition(resource_id(self.rng), f"extra{index}", Kind.HLS)
        for _ in range(mix.videos):
            self.video(Kind.VIDEO, video_mib)
        for _ in range(mix.cancelled_videos):
            self.video(Kind.CANCEL_VIDEO, video_mib)
        for index in range(mix.cancelled_renditions):
            self.rendition(resource_id(self.rng), f"cancel{index}", Kind.CANCEL_HLS, segments=(150, 200))
        for _ in range(mix.missing):
            self.missing_source()
        for index in range(mix.invalid):
            self.invalid_playlist(index)
        self.jobs = self.in_submission_order(self.jobs)
        return self.jobs

    def in_submission_order(self, jobs: list[ChaosJob]) -> list[ChaosJob]:
        """Shuffled, but each master right after the last job of its film: a master submitted
        before its renditions would wait for jobs the pacing (a bounded number of unfinished
        jobs) never lets in."""
        others = [job for job in jobs if job.kind != Kind.MASTER]
        self.rng.shuffle(others)
        masters = {job.body["resourceId"]: job for job in jobs if job.kind == Kind.MASTER}
        last_of_film = {job.body["resourceId"]: index for index, job in enumerate(others)}
        ordered: list[ChaosJob] = []
        for index, job in enumerate(others):
            ordered.append(job)
            film = job.body["resourceId"]
            if film in masters and last_of_film[film] == index:
                ordered.append(masters.pop(film))
        return ordered

    def _common(self, kind: Kind, rid: str, suffix: str) -> tuple[str, dict[str, Any]]:
        job_id = f"chaos-{self.run_id}-{rid[-8:]}-{suffix}"
        body = {"jobId": job_id, "resourceType": "film", "resourceId": rid, "resourceName": f"Chaos {kind}"}
        return job_id, body

    def rendition(
        self, rid: str, label: str, kind: Kind, *, segments: tuple[int, int] = (20, 60)
    ) -> tuple[str, ChaosJob]:
        folder = self.root / rid / label
        sizes = [self.rng.randint(2 * KIB, 12 * KIB) for _ in range(self.rng.randint(*segments))]
        write_rendition(folder, sizes)
        job_id, body = self._common(kind, rid, label)
        body.update(jobType="upload-hls-to-s3", hlsDir=self.rel(folder), label=label)
        prefix = f"films/{rid}/hls/{label}"
        objects = {f"{prefix}/{path.name}": md5_of(path) for path in sorted(folder.iterdir())}
        playlist = f"{prefix}/index.m3u8"
        segments_keys = tuple(key for key in objects if key != playlist)
        expected = (
            (Expected("cancelled"), Expected("completed")) if kind == Kind.CANCEL_HLS else (Expected("completed"),)
        )
        job = ChaosJob(job_id, kind, body, expected, objects, {playlist: segments_keys})
        self.jobs.append(job)
        return playlist, job

    def film(self) -> None:
        rid = resource_id(self.rng)
        playlists = [self.rendition(rid, rendition.label, Kind.HLS)[0] for rendition in RENDITIONS]
        vtt, vtt_playlist = write_subtitles(self.root / rid / "subtitles", seconds=self.rng.randint(10, 40))
        job_id, body = self._common(Kind.SUBTITLE, rid, "subtitle")
        body.update(
            jobType="upload-subtitle-to-s3",
            subtitlePath=self.rel(vtt),
            subtitlePlaylistPath=self.rel(vtt_playlist),
            subtitleMetadata={"language": SUBTITLE_LANGUAGE, "label": SUBTITLE_LABEL},
        )
        vtt_key = f"films/{rid}/subtitles/{SUBTITLE_LANGUAGE}.vtt"
        vtt_playlist_key = f"films/{rid}/subtitles/{SUBTITLE_LANGUAGE}.m3u8"
        objects = {vtt_key: md5_of(vtt), vtt_playlist_key: md5_of(vtt_playlist)}
        self.jobs.append(
            ChaosJob(job_id, Kind.SUBTITLE, body, (Expected("completed"),), objects, {vtt_playlist_key: (vtt_key,)})
        )
        master = self.root / rid / "master.m3u8"
        master.write_text(master_playlist())
        job_id, body = self._common(Kind.MASTER, rid, "master")
        body.update(
            jobType="upload-master-playlist",
            masterPlaylistPath=self.rel(master),
            subtitleLanguages=[SUBTITLE_LANGUAGE],
        )
        master_key = f"films/{rid}/hls/master.m3u8"
        references = (*playlists, vtt_key, vtt_playlist_key)
        self.jobs.append(
            ChaosJob(
                job_id,
                Kind.MASTER,
                body,
                (Expected("completed"),),
                {master_key: md5_of(master)},
                {master_key: references},
            )
        )

    def video(self, kind: Kind, mib: tuple[int, int]) -> None:
        rid = resource_id(self.rng)
        path = self.root / rid / "video" / "feature.mp4"
        write_big_file(path, self.rng.randint(*mib))
        job_id, body = self._common(kind, rid, "video")
        body.update(jobType="upload-video-to-s3", sourcePath=self.rel(path), filename="feature.mp4")
        objects = {f"films/{rid}/video/feature.mp4": md5_of(path)}
        expected = (
            (Expected("cancelled"), Expected("completed")) if kind == Kind.CANCEL_VIDEO else (Expected("completed"),)
        )
        self.jobs.append(ChaosJob(job_id, kind, body, expected, objects))

    def missing_source(self) -> None:
        rid = resource_id(self.rng)
        job_id, body = self._common(Kind.MISSING_SOURCE, rid, "missing")
        body.update(jobType="upload-hls-to-s3", hlsDir=self.rel(self.root / rid / "never-made"), label="720p")
        self.jobs.append(ChaosJob(job_id, Kind.MISSING_SOURCE, body, (Expected("failed", "SOURCE_NOT_FOUND"),)))

    def invalid_playlist(self, index: int) -> None:
        rid = resource_id(self.rng)
        folder = self.root / rid / "broken"
        write_rendition(folder, [4 * KIB] * 3)
        (folder / "index.m3u8").write_text("this is not a playlist\n")
        job_id, body = self._common(Kind.INVALID_PLAYLIST, rid, f"invalid{index}")
        body.update(jobType="upload-hls-to-s3", hlsDir=self.rel(folder), label="broken")
        self.jobs.append(ChaosJob(job_id, Kind.INVALID_PLAYLIST, body, (Expected("failed", "INVALID_PLAYLIST"),)))
