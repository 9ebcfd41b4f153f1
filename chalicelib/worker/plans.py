"""What each job type uploads (SPEC 2, 6), decided before any byte moves.

A plan is a list of phases run one after the other: a phase starts only when every file of the
one before is in the bucket. That is how an HLS rendition publishes its playlists only after its
segments (a failure in phase 1 means no playlist is ever uploaded), and a subtitle its playlist
only after its WebVTT file. A master playlist names the keys that must already be in the bucket.
Planning reads sources (listing, playlists, the subtitle) and raises PermanentUploadError for a
source that is missing, forbidden or invalid.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.config import Settings
from chalicelib.jobs import layout
from chalicelib.jobs.model import JobType, UploadJob
from chalicelib.upload import hls
from chalicelib.upload.engine import UploadItem, upload_item
from chalicelib.upload.sources import Sources


@dataclass(frozen=True)
class JobPlan:
    phases: tuple[tuple[UploadItem, ...], ...]
    public_key: str  # the object players are pointed at (publicUrl)
    fields: dict[str, Any] = field(default_factory=dict)  # job fields the plan decides (subtitleMetadata)
    required_keys: tuple[str, ...] = ()  # must be in the bucket before anything is uploaded (master)

    @property
    def items(self) -> tuple[UploadItem, ...]:
        return tuple(item for phase in self.phases for item in phase)

    @property
    def total_bytes(self) -> int:
        return sum(item.size for item in self.items)


def plan_hls(job: UploadJob, sources: Sources) -> JobPlan:
    assert job.hls_dir is not None  # required by the job type
    entries = {entry.relative_path: entry.file for entry in sources.directory(job.hls_dir)}
    rendition = hls.plan_rendition(entries, lambda path: entries[path].read())

    def items(paths: tuple[str, ...]) -> tuple[UploadItem, ...]:
        return tuple(upload_item(layout.hls_key(job, path), entries[path]) for path in paths)

    return JobPlan(
        phases=(items(rendition.media_files), items(rendition.playlists)),
        public_key=layout.hls_key(job, rendition.media_playlist),
    )


def plan_subtitle(job: UploadJob, sources: Sources) -> JobPlan:
    assert job.subtitle_path is not None
    subtitle = sources.file(job.subtitle_path)
    name = posixpath.basename(job.subtitle_path.rstrip("/"))
    hls.check_webvtt(subtitle.read(), name)
    metadata = hls.subtitle_metadata(name, job.subtitle_metadata)
    assert metadata.language is not None  # subtitle_metadata always names one
    vtt = upload_item(layout.subtitle_key(job, metadata.language), subtitle)
    phases: tuple[tuple[UploadItem, ...], ...] = ((vtt,),)
    public_key = vtt.key
    if job.subtitle_playlist_path:
        playlist_source = sources.file(job.subtitle_playlist_path)
        hls.parse_playlist(playlist_source.read(), posixpath.basename(job.subtitle_playlist_path))
        playlist = upload_item(layout.subtitle_playlist_key(job, metadata.language), playlist_source)
        phases, public_key = ((vtt,), (playlist,)), playlist.key
    return JobPlan(
        phases=phases, public_key=public_key, fields={"subtitleMetadata": metadata.model_dump(exclude_none=True)}
    )


def plan_video(job: UploadJob, sources: Sources) -> JobPlan:
    assert job.source_path is not None
    item = upload_item(layout.video_key(job), sources.file(job.source_path))
    return JobPlan(phases=((item,),), public_key=item.key)


def plan_master(job: UploadJob, sources: Sources) -> JobPlan:
    assert job.master_playlist_path is not None
    source = sources.file(job.master_playlist_path)
    key = layout.master_key(job)
    references = hls.master_reference_keys(key, source.read())
    subtitles = [layout.subtitle_key(job, language) for language in job.subtitle_languages]
    item = upload_item(key, source, master=True)
    return JobPlan(phases=((item,),), public_key=key, required_keys=tuple(dict.fromkeys(references + subtitles)))


PLANNERS: dict[JobType, Callable[[UploadJob, Sources], JobPlan]] = {
    JobType.HLS: plan_hls,
    JobType.SUBTITLE: plan_subtitle,
    JobType.VIDEO: plan_video,
    JobType.MASTER: plan_master,
}


def plan_job(job: UploadJob, sources: Sources) -> JobPlan:
    return PLANNERS[JobType(job.job_type)](job, sources)


def public_url(job: UploadJob, plan: JobPlan, settings: Settings) -> str:
    return layout.public_url(plan.public_key, settings, job.bucket_name)
