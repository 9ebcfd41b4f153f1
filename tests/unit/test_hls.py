"""Rendition plans, playlist checks, master references, WebVTT and language rules (pure)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from chalicelib.errors import ErrorCode, PermanentUploadError
from chalicelib.jobs.model import SubtitleMetadata
from chalicelib.upload import hls

MEDIA = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
# a comment, legal HLS
#EXT-X-KEY:METHOD=AES-128,URI="keys/k0.key"
#EXT-X-MAP:URI="init.mp4"
#EXTINF:4.0,
seg_000.m4s
#EXTINF:4.0,
seg_001.m4s?token=abc
#EXTINF:4.0,
https://elsewhere.example.com/ad.m4s
#EXT-X-ENDLIST
"""

MASTER = """#EXTM3U
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",URI="../subtitles/en.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="Main",URI="audio/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=1280x720,SUBTITLES="subs",AUDIO="aud"
720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,SUBTITLES="subs",AUDIO="aud"
360p/index.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=100000,URI="720p/iframes.m3u8"
"""

RENDITION = ["seg_000.m4s", "seg_001.m4s", "init.mp4", "keys/k0.key", "index.m3u8"]


def reader(texts: dict[str, str]) -> Callable[[str], bytes]:
    return lambda path: texts[path].encode()


def invalid_playlist(error: pytest.ExceptionInfo[PermanentUploadError]) -> str:
    assert error.value.code == ErrorCode.INVALID_PLAYLIST
    return error.value.reason


def test_plan_puts_media_first_and_the_media_playlist_last() -> None:
    plan = hls.plan_rendition(
        [*RENDITION, "iframes.m3u8", ".DS_Store"], reader({"index.m3u8": MEDIA, "iframes.m3u8": MEDIA})
    )
    assert plan.media_files == ("init.mp4", "keys/k0.key", "seg_000.m4s", "seg_001.m4s")
    assert plan.playlists == ("iframes.m3u8", "index.m3u8")
    assert plan.media_playlist == "index.m3u8"
    assert plan.files == plan.media_files + plan.playlists


def test_media_playlist_is_index_else_first_top_level_by_name() -> None:
    assert hls.choose_media_playlist(["b.m3u8", "index.m3u8", "a.m3u8"]) == "index.m3u8"
    assert hls.choose_media_playlist(["sub/index.m3u8", "b.m3u8", "a.m3u8"]) == "a.m3u8"
    with pytest.raises(PermanentUploadError) as caught:
        hls.choose_media_playlist(["seg.ts", "sub/index.m3u8"])
    assert "no playlist" in invalid_playlist(caught)


@pytest.mark.parametrize("missing", ["seg_001.m4s", "init.mp4", "keys/k0.key"])
def test_a_missing_referenced_file_is_named(missing: str) -> None:
    paths = [p for p in RENDITION if p != missing]
    with pytest.raises(PermanentUploadError) as caught:
        hls.plan_rendition(paths, reader({"index.m3u8": MEDIA}))
    assert repr(missing) in invalid_playlist(caught)


def test_references_resolve_relative_to_the_playlist_that_names_them() -> None:
    texts = {
        "index.m3u8": "#EXTM3U\n#EXTINF:4,\nv/a.ts\n",
        "v/alt.m3u8": "#EXTM3U\n#EXTINF:4,\na.ts\n#EXTINF:4,\n../b.ts\n",
    }
    plan = hls.plan_rendition(["v/a.ts", "b.ts", "index.m3u8", "v/alt.m3u8"], reader(texts))
    assert plan.playlists == ("v/alt.m3u8", "index.m3u8")
    with pytest.raises(PermanentUploadError) as caught:
        hls.plan_rendition(["v/a.ts", "index.m3u8", "v/alt.m3u8"], reader(texts))
    assert "'b.ts'" in invalid_playlist(caught)


def test_a_reference_climbing_out_of_the_folder_is_refused() -> None:
    with pytest.raises(PermanentUploadError) as caught:
        hls.plan_rendition(["index.m3u8"], reader({"index.m3u8": "#EXTM3U\n#EXTINF:4,\n../../x.ts\n"}))
    assert "outside" in invalid_playlist(caught)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("seg.ts\n", "#EXTM3U"),
        ("#EXTM3U\n#EXTINF:abc,\nseg.ts\n", "cannot be parsed"),
        ("#EXTM3U\n#EXT-X-ENDLIST\n", "no segments"),
    ],
)
def test_a_broken_media_playlist_is_invalid(text: str, why: str) -> None:
    with pytest.raises(PermanentUploadError) as caught:
        hls.plan_rendition(["seg.ts", "index.m3u8"], reader({"index.m3u8": text}))
    assert why in invalid_playlist(caught)


def test_a_playlist_that_is_not_utf8_is_invalid() -> None:
    with pytest.raises(PermanentUploadError) as caught:
        hls.plan_rendition(["index.m3u8"], lambda _path: b"#EXTM3U\n\xff\xfe")
    assert "UTF-8" in invalid_playlist(caught)


def test_master_references_list_variants_iframes_and_media() -> None:
    assert hls.master_references(MASTER.encode()) == [
        "720p/index.m3u8",
        "360p/index.m3u8",
        "720p/iframes.m3u8",
        "../subtitles/en.m3u8",
        "audio/index.m3u8",
    ]


def test_master_references_resolve_against_the_master_key() -> None:
    keys = hls.master_reference_keys("films/abc/hls/master.m3u8", MASTER.encode())
    assert keys == [
        "films/abc/hls/720p/index.m3u8",
        "films/abc/hls/360p/index.m3u8",
        "films/abc/hls/720p/iframes.m3u8",
        "films/abc/subtitles/en.m3u8",
        "films/abc/hls/audio/index.m3u8",
    ]


def test_a_media_playlist_is_not_a_master() -> None:
    with pytest.raises(PermanentUploadError) as caught:
        hls.master_references(MEDIA.encode())
    assert "not a master" in invalid_playlist(caught)


def test_a_master_reference_leaving_the_bucket_is_refused() -> None:
    text = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n../../../../x.m3u8\n"
    with pytest.raises(PermanentUploadError):
        hls.master_reference_keys("films/abc/hls/master.m3u8", text.encode())


# --- WebVTT -------------------------------------------------------------------------------------

CUES = "00:00:00.000 --> 00:00:02.000\nHello\n\n00:00:02.500 --> 00:00:04.000 align:start\nWorld\n"


@pytest.mark.parametrize(
    "text",
    [f"WEBVTT\n\n{CUES}", f"\ufeffWEBVTT\n\n{CUES}", f"WEBVTT - Movie\r\n\r\n{CUES}", "WEBVTT\n"],
)
def test_valid_webvtt_passes(text: str) -> None:
    hls.check_webvtt(text.encode(), "en.vtt")


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (f"1\n{CUES}".encode(), "does not start with WEBVTT"),
        (f"WEBVTTX\n\n{CUES}".encode(), "does not start with WEBVTT"),
        (b"WEBVTT\n\n\xff\xfe", "not UTF-8"),
        (b"WEBVTT\n\n00:00:00.000 --> garbage\nHello\n", "malformed cue timing"),
    ],
)
def test_invalid_webvtt_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(PermanentUploadError) as caught:
        hls.check_webvtt(data, "en.vtt")
    assert caught.value.code == ErrorCode.INVALID_SUBTITLE
    assert why in caught.value.reason


@pytest.mark.parametrize(
    ("filename", "language"),
    [
        ("en.vtt", "en"),
        ("movie.fr.vtt", "fr"),
        ("dir/Movie.Final.pt-BR.vtt", "pt-BR"),
        ("EN.vtt", "en"),
        ("movie.vtt", None),
        ("subtitles.vtt", None),
    ],
)
def test_language_from_filename(filename: str, language: str | None) -> None:
    assert hls.language_from_filename(filename) == language


def test_language_labels() -> None:
    assert hls.language_label("en") == "English"
    assert hls.language_label("fr") == "French"
    assert hls.language_label("pt-BR") == "Portuguese"
    assert hls.language_label("xx") == "xx"


def test_subtitle_metadata_from_the_file_name() -> None:
    metadata = hls.subtitle_metadata("movie.fr.vtt")
    assert (metadata.language, metadata.label) == ("fr", "French")


def test_subtitle_metadata_given_wins_and_extra_fields_stay() -> None:
    given = SubtitleMetadata.model_validate({"language": "es", "label": "Español (LatAm)", "forced": True})
    metadata = hls.subtitle_metadata("en.vtt", given)
    assert (metadata.language, metadata.label) == ("es", "Español (LatAm)")
    assert metadata.model_dump()["forced"] is True
    assert hls.subtitle_metadata("x.vtt", SubtitleMetadata(language="de")).label == "German"


@pytest.mark.parametrize("metadata", [None, SubtitleMetadata(language="../etc")])
def test_subtitle_without_a_usable_language_is_a_validation_error(metadata: SubtitleMetadata | None) -> None:
    with pytest.raises(PermanentUploadError) as caught:
        hls.subtitle_metadata("movie.vtt", metadata)
    assert caught.value.code == ErrorCode.VALIDATION
