"""Destination keys, headers, ACL and public URLs (SPEC 2)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.config import Settings
from chalicelib.errors import ErrorCode, PermanentUploadError
from chalicelib.jobs import layout
from chalicelib.jobs.model import CreateJobRequest

FILM = "0123456789abcdef01234567"


def job(job_type: str, **fields: Any) -> CreateJobRequest:
    sources = {
        "upload-hls-to-s3": {"hls_dir": "films/x/720p", "label": "720p"},
        "upload-master-playlist": {"master_playlist_path": "films/x/master.m3u8"},
        "upload-subtitle-to-s3": {"subtitle_path": "films/x/en.vtt"},
        "upload-video-to-s3": {"source_path": "films/x/movie.mp4"},
    }
    return CreateJobRequest(
        job_type=job_type, resource_type="film", resource_id=FILM, **{**sources[job_type], **fields}
    )


def test_default_keys_follow_the_spec_layout() -> None:
    assert layout.hls_key(job("upload-hls-to-s3"), "seg_001.ts") == f"films/{FILM}/hls/720p/seg_001.ts"
    assert layout.hls_key(job("upload-hls-to-s3"), "audio/init.mp4") == f"films/{FILM}/hls/720p/audio/init.mp4"
    assert layout.master_key(job("upload-master-playlist")) == f"films/{FILM}/hls/master.m3u8"
    assert layout.subtitle_key(job("upload-subtitle-to-s3"), "fr") == f"films/{FILM}/subtitles/fr.vtt"
    assert layout.subtitle_playlist_key(job("upload-subtitle-to-s3"), "fr") == f"films/{FILM}/subtitles/fr.m3u8"
    assert layout.video_key(job("upload-video-to-s3")) == f"films/{FILM}/video/movie.mp4"


def test_resource_type_is_pluralised() -> None:
    episode = CreateJobRequest(
        job_type="upload-video-to-s3", resource_type="episode", resource_id=FILM, source_path="a/b.mp4"
    )
    assert layout.video_key(episode) == f"episodes/{FILM}/video/b.mp4"


def test_video_filename_defaults_to_the_source_base_name_also_for_s3_sources() -> None:
    assert layout.video_key(job("upload-video-to-s3", filename="final.mp4")).endswith("/video/final.mp4")
    s3_job = job("upload-video-to-s3", source_path="s3://staging/renders/cut-2.mov")
    assert layout.video_key(s3_job) == f"films/{FILM}/video/cut-2.mov"


def test_upload_path_replaces_everything_before_the_file_name() -> None:
    assert layout.hls_key(job("upload-hls-to-s3", upload_path="custom/a"), "x/seg.ts") == "custom/a/x/seg.ts"
    assert layout.master_key(job("upload-master-playlist", upload_path="custom/a")) == "custom/a/master.m3u8"
    assert layout.subtitle_key(job("upload-subtitle-to-s3", upload_path="subs"), "de") == "subs/de.vtt"
    assert layout.video_key(job("upload-video-to-s3", upload_path="v")) == "v/movie.mp4"


@pytest.mark.parametrize(
    ("job_type", "expected"),
    [
        ("upload-hls-to-s3", f"films/{FILM}/hls/720p/"),
        ("upload-master-playlist", f"films/{FILM}/hls/"),
        ("upload-subtitle-to-s3", f"films/{FILM}/subtitles/"),
        ("upload-video-to-s3", f"films/{FILM}/video/"),
    ],
)
def test_destination_prefix_is_the_folder_the_job_writes_into(job_type: str, expected: str) -> None:
    assert layout.destination_prefix(job(job_type)) == expected


@pytest.mark.parametrize("bad", ["../x.ts", "/abs.ts", "a//b.ts", "a/./b.ts", "a\\b.ts", ""])
def test_relative_paths_that_could_escape_are_refused(bad: str) -> None:
    with pytest.raises(PermanentUploadError) as caught:
        layout.hls_key(job("upload-hls-to-s3"), bad)
    assert caught.value.code == ErrorCode.VALIDATION


def test_a_language_cannot_smuggle_a_path() -> None:
    with pytest.raises(PermanentUploadError):
        layout.subtitle_key(job("upload-subtitle-to-s3"), "../../etc")


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("index.m3u8", "application/vnd.apple.mpegurl"),
        ("seg_001.TS", "video/mp2t"),
        ("chunk.m4s", "video/mp4"),
        ("init.mp4", "video/mp4"),
        ("audio.m4a", "audio/mp4"),
        ("audio.aac", "audio/aac"),
        ("en.vtt", "text/vtt"),
        ("en.webvtt", "text/vtt"),
        ("enc.key", "application/octet-stream"),
        ("meta.json", "application/json"),
        ("thumb.jpg", "image/jpeg"),
        ("no-extension", "application/octet-stream"),
        ("weird.xyz", "application/octet-stream"),
    ],
)
def test_content_type_by_extension(name: str, content_type: str) -> None:
    assert layout.content_type_for(name) == content_type


def test_cache_control_playlists_short_everything_else_immutable() -> None:
    assert layout.cache_control_for("a/index.m3u8") == "public, max-age=10"
    assert layout.cache_control_for("a/master.m3u8", master=True) == "public, max-age=60"
    for name in ("seg.ts", "init.mp4", "en.vtt", "movie.mp4", "x.m4s"):
        assert layout.cache_control_for(name) == "public, max-age=31536000, immutable"


def test_acl_follows_public_read() -> None:
    assert layout.acl_for(True) == "public-read"
    assert layout.acl_for(False) == "private"


def settings(**values: Any) -> Settings:
    return Settings(spaces_bucket="media", **values)


def test_public_url_prefers_the_cdn() -> None:
    url = layout.public_url("films/a b/index.m3u8", settings(cdn_base_url="https://cdn.example.com/"))
    assert url == "https://cdn.example.com/films/a%20b/index.m3u8"


def test_public_url_on_spaces_is_virtual_host_style() -> None:
    on_spaces = settings(spaces_endpoint="https://nyc3.digitaloceanspaces.com")
    assert layout.public_url("k/x.ts", on_spaces) == "https://media.nyc3.digitaloceanspaces.com/k/x.ts"
    assert layout.public_url("k/x.ts", on_spaces, bucket="other") == "https://other.nyc3.digitaloceanspaces.com/k/x.ts"


def test_public_url_elsewhere_is_path_style_or_aws() -> None:
    assert layout.public_url("k/x.ts", settings(spaces_endpoint="http://127.0.0.1:5000/")) == (
        "http://127.0.0.1:5000/media/k/x.ts"
    )
    assert layout.public_url("k/x.ts", settings(spaces_region="eu-west-1")) == (
        "https://media.s3.eu-west-1.amazonaws.com/k/x.ts"
    )
