"""Where a job's objects go in the bucket, and the headers they carry (SPEC 2). Pure: no I/O.

Default layout, under `{resourceType}s/{resourceId}/`:

    hls/{label}/{relative path}      one rendition (segments, init segment, media playlist)
    hls/master.m3u8                  the master playlist
    subtitles/{language}.vtt         a subtitle, shared by all renditions (+ `{language}.m3u8`)
    video/{filename}                 a whole video file

`uploadPath`, when a job gives it, replaces everything before the file's own name or relative
path: an HLS job with `uploadPath=a/b` writes `a/b/{relative path}`, a master job `a/b/master.m3u8`.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from chalicelib.config import Settings
from chalicelib.errors import ErrorCode, PermanentUploadError
from chalicelib.jobs.model import CreateJobRequest, JobType

MASTER_NAME = "master.m3u8"
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
DEFAULT_TYPE = "application/octet-stream"

# Segments, init segments, subtitles and videos never change under a given name once published,
# so CDNs and players may keep them; playlists are what a re-publish replaces, so they stay short.
IMMUTABLE = "public, max-age=31536000, immutable"
PLAYLIST_CACHE = "public, max-age=10"
MASTER_CACHE = "public, max-age=60"

CONTENT_TYPES: dict[str, str] = {
    # HLS
    "m3u8": PLAYLIST_TYPE,
    "m3u": PLAYLIST_TYPE,
    "ts": "video/mp2t",
    "m4s": "video/mp4",
    "cmfv": "video/mp4",
    "cmfa": "audio/mp4",
    "mp4": "video/mp4",
    "m4v": "video/mp4",
    "m4a": "audio/mp4",
    "aac": "audio/aac",
    "mp3": "audio/mpeg",
    "ac3": "audio/ac3",
    "ec3": "audio/eac3",
    "key": DEFAULT_TYPE,
    # subtitles
    "vtt": "text/vtt",
    "webvtt": "text/vtt",
    "srt": "application/x-subrip",
    "ttml": "application/ttml+xml",
    # whole videos
    "mov": "video/quicktime",
    "mkv": "video/x-matroska",
    "webm": "video/webm",
    # side files (thumbnails, manifests)
    "mpd": "application/dash+xml",
    "json": "application/json",
    "xml": "application/xml",
    "txt": "text/plain",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
}

_PLAYLIST_EXTENSIONS = frozenset({"m3u8", "m3u"})


@dataclass(frozen=True)
class ObjectHeaders:
    """What every PUT of one object carries besides its bytes and ACL."""

    content_type: str
    cache_control: str


def _invalid(reason: str) -> PermanentUploadError:
    return PermanentUploadError(ErrorCode.VALIDATION, reason)


def clean_relative(path: str, what: str) -> str:
    """A relative key fragment: no leading `/`, no `..` or `.` or empty parts, no backslash."""
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
        raise _invalid(f"The {what} {path!r} is not a clean relative path.")
    return path


def resource_prefix(job: CreateJobRequest) -> str:
    """`films/<id>`, `episodes/<id>` or `seasons/<id>`."""
    return f"{job.resource_type}s/{job.resource_id}"


def _folder(job: CreateJobRequest, default: str) -> str:
    if job.upload_path:
        return clean_relative(job.upload_path, "uploadPath")
    return f"{resource_prefix(job)}/{default}"


def hls_folder(job: CreateJobRequest) -> str:
    if not job.label:
        raise _invalid("An HLS job needs a label.")
    return _folder(job, f"hls/{job.label}")


def hls_key(job: CreateJobRequest, relative_path: str) -> str:
    """A rendition file: `{resourceType}s/{resourceId}/hls/{label}/{relative path}`."""
    return f"{hls_folder(job)}/{clean_relative(relative_path, 'file path')}"


def master_key(job: CreateJobRequest) -> str:
    """`{resourceType}s/{resourceId}/hls/master.m3u8`."""
    return f"{_folder(job, 'hls')}/{MASTER_NAME}"


def subtitle_key(job: CreateJobRequest, language: str) -> str:
    """`{resourceType}s/{resourceId}/subtitles/{language}.vtt`."""
    return f"{_folder(job, 'subtitles')}/{clean_relative(language, 'language')}.vtt"


def subtitle_playlist_key(job: CreateJobRequest, language: str) -> str:
    """`{resourceType}s/{resourceId}/subtitles/{language}.m3u8`."""
    return f"{_folder(job, 'subtitles')}/{clean_relative(language, 'language')}.m3u8"


def video_filename(job: CreateJobRequest) -> str:
    """The job's `filename`, else the base name of its source (a local path or an s3:// key)."""
    name = job.filename or posixpath.basename((job.source_path or "").rstrip("/"))
    if not name or "/" in name:
        raise _invalid("A video job needs a filename or a source path that ends in a file name.")
    return clean_relative(name, "filename")


def video_key(job: CreateJobRequest) -> str:
    """`{resourceType}s/{resourceId}/video/{filename}`."""
    return f"{_folder(job, 'video')}/{video_filename(job)}"


def destination_prefix(job: CreateJobRequest) -> str:
    """The folder a job writes into, ending in `/` (the job's `destinationPrefix`)."""
    job_type = JobType(job.job_type)
    if job_type == JobType.HLS:
        return hls_folder(job) + "/"
    defaults = {JobType.MASTER: "hls", JobType.SUBTITLE: "subtitles", JobType.VIDEO: "video"}
    return _folder(job, defaults[job_type]) + "/"


def _extension(name: str) -> str:
    return posixpath.splitext(name)[1].lstrip(".").lower()


def is_playlist(name: str) -> bool:
    return _extension(name) in _PLAYLIST_EXTENSIONS


def content_type_for(name: str) -> str:
    """The Content-Type of a file or key, by extension; `application/octet-stream` if unknown."""
    return CONTENT_TYPES.get(_extension(name), DEFAULT_TYPE)


def cache_control_for(name: str, *, master: bool = False) -> str:
    """Playlists short (the master a little longer: it changes least), everything else immutable."""
    if master:
        return MASTER_CACHE
    return PLAYLIST_CACHE if is_playlist(name) else IMMUTABLE


def headers_for(key: str, *, master: bool = False) -> ObjectHeaders:
    return ObjectHeaders(content_type=content_type_for(key), cache_control=cache_control_for(key, master=master))


def acl_for(public_read: bool) -> str:
    """The canned ACL of every object: `public-read` for CDN delivery, else `private`."""
    return "public-read" if public_read else "private"


def public_url(key: str, settings: Settings, bucket: str | None = None) -> str:
    """The URL players use for a key in `bucket` (default SPACES_BUCKET).

    - `CDN_BASE_URL` set: `{CDN_BASE_URL}/{key}`.
    - a DigitalOcean Spaces endpoint (`https://nyc3.digitaloceanspaces.com`): the virtual-host
      URL `https://{bucket}.nyc3.digitaloceanspaces.com/{key}`, the form Spaces documents.
    - any other endpoint (moto, MinIO): path style `{endpoint}/{bucket}/{key}`.
    - no endpoint (AWS itself): `https://{bucket}.s3.{region}.amazonaws.com/{key}`.
    """
    path = quote(key, safe="/")
    if settings.cdn_base_url:
        return f"{settings.cdn_base_url.rstrip('/')}/{path}"
    bucket = bucket or settings.spaces_bucket
    endpoint = settings.spaces_endpoint.rstrip("/")
    if not endpoint:
        return f"https://{bucket}.s3.{settings.spaces_region}.amazonaws.com/{path}"
    host = urlsplit(endpoint).hostname or ""
    if host.endswith("digitaloceanspaces.com"):
        if not host.startswith(f"{bucket}."):
            host = f"{bucket}.{host}"
        return f"https://{host}/{path}"
    return f"{endpoint}/{bucket}/{path}"
