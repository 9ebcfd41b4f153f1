"""Property: whatever a job's fields and file names are, its destination keys stay inside its prefix (SPEC 2).

A key is either refused (at creation or by the layout) or it starts with the job's `destinationPrefix` and
is a clean relative key: no leading `/`, no empty, `.` or `..` part, no backslash, nothing `normpath` would
fold. A CDN or a player resolving `..` in a URL would otherwise fetch another object than the one written.
"""

from __future__ import annotations

import posixpath
from typing import Any

from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from chalicelib.errors import PermanentUploadError
from chalicelib.jobs import layout
from chalicelib.jobs.model import SAFE_NAME, CreateJobRequest

FILM = "0123456789abcdef01234567"
# Characters that make paths interesting: separators, dots, encodings, look-alikes, NUL, spaces.
# (fullwidth . and /, division slash, one and two dot leaders, right-to-left override)
TRICKY = "/\\.%2eE:\x00 ~a-_\uff0e\uff0f\u2215\u2024\u2025\u202e"
path_text = st.one_of(st.text(alphabet=TRICKY, max_size=16), st.text(max_size=16))
# Mostly-valid names and paths too, so that most examples get past validation and make a key.
safe_name = st.from_regex(SAFE_NAME, fullmatch=True)
name_text = st.one_of(safe_name, safe_name, path_text)
good_segment = st.text(alphabet="abcXYZ019_-.", min_size=1, max_size=8)
segment = st.one_of(good_segment, good_segment, good_segment, st.sampled_from(["..", ".", ""]))
clean_relative = st.lists(segment, min_size=1, max_size=4).map("/".join)
relative_text = st.one_of(clean_relative, clean_relative, path_text)
optional_path = st.one_of(
    st.lists(segment, min_size=1, max_size=3).map("/".join),
    st.none(),
    path_text,
    st.sampled_from(["..", "../x", "a/../../b", "/etc", "a\\..\\..", "a/b"]),
)


def request(**fields: Any) -> CreateJobRequest | None:
    """The job as creation validates it; None when creation refuses it (a 400)."""
    body = {"resourceType": "film", "resourceId": FILM, **{k: v for k, v in fields.items() if v is not None}}
    try:
        return CreateJobRequest.model_validate(body)
    except ValidationError:
        return None


def assert_inside(key: str, prefix: str) -> None:
    event("a key was made")  # --hypothesis-show-statistics: how often the property is really exercised
    assert key.startswith(prefix), (key, prefix)
    assert prefix.endswith("/") and not key.startswith("/")
    assert "\\" not in key
    assert all(part not in ("", ".", "..") for part in key.split("/")), key
    assert posixpath.normpath(key) == key


def assert_prefix(job: CreateJobRequest, prefix: str) -> None:
    if job.upload_path is None:
        assert prefix.startswith(f"films/{FILM}/")
    else:
        assert prefix == job.upload_path + "/"


def key_or_refused(make_key: Any) -> str | None:
    try:
        return str(make_key())
    except PermanentUploadError:
        return None


@settings(max_examples=300, deadline=None)
@given(label=name_text, upload_path=optional_path, relative=relative_text)
@example(label="720p", upload_path=None, relative="seg_001.ts")
@example(label="720p", upload_path="custom/folder", relative="sub/seg_001.ts")
def test_hls_keys_stay_inside_the_rendition_prefix(label: str, upload_path: str | None, relative: str) -> None:
    job = request(jobType="upload-hls-to-s3", hlsDir="films/x/720p", label=label, uploadPath=upload_path)
    if job is None:
        return
    prefix = key_or_refused(lambda: layout.destination_prefix(job))
    key = key_or_refused(lambda: layout.hls_key(job, relative))
    if prefix is None or key is None:
        assert key is None  # a key is never made under a prefix the layout refuses
        return
    assert_prefix(job, prefix)
    assert_inside(key, prefix)


@settings(max_examples=200, deadline=None)
@given(upload_path=optional_path, language=relative_text)
@example(upload_path=None, language="fr")
def test_subtitle_keys_stay_inside_the_subtitles_prefix(upload_path: str | None, language: str) -> None:
    job = request(jobType="upload-subtitle-to-s3", subtitlePath="films/x/en.vtt", uploadPath=upload_path)
    if job is None:
        return
    prefix = key_or_refused(lambda: layout.destination_prefix(job))
    for make in (layout.subtitle_key, layout.subtitle_playlist_key):
        key = key_or_refused(lambda make=make: make(job, language))  # type: ignore[misc]
        if prefix is None or key is None:
            continue
        assert_prefix(job, prefix)
        assert_inside(key, prefix)


@settings(max_examples=200, deadline=None)
@given(upload_path=optional_path, filename=st.one_of(st.none(), name_text), source=relative_text)
@example(upload_path=None, filename="movie.mp4", source="films/x/movie.mp4")
@example(upload_path=None, filename=None, source="films/x/..")
def test_video_and_master_keys_stay_inside_their_prefix(
    upload_path: str | None, filename: str | None, source: str
) -> None:
    video = request(jobType="upload-video-to-s3", sourcePath=source or None, filename=filename, uploadPath=upload_path)
    master = request(jobType="upload-master-playlist", masterPlaylistPath="films/x/m.m3u8", uploadPath=upload_path)
    for job, make in ((video, layout.video_key), (master, layout.master_key)):
        if job is None:
            continue
        prefix = key_or_refused(lambda job=job: layout.destination_prefix(job))  # type: ignore[misc]
        key = key_or_refused(lambda job=job, make=make: make(job))  # type: ignore[misc]
        if prefix is None or key is None:
            continue
        assert_prefix(job, prefix)
        assert_inside(key, prefix)
