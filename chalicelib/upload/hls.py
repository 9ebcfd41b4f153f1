"""HLS and WebVTT rules (SPEC 2, 6): what a rendition uploads and in which order, what a master
playlist references, whether a subtitle is valid and which language it is. Pure: the caller
reads the files and hands over their bytes.

Playlists are parsed by the `m3u8` library in its lenient mode: its strict mode also refuses
comments and unknown tags, which players accept. The checks that matter are ours: the
`#EXTM3U` header, a media playlist with segments, and every file it references being there.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import m3u8
import webvtt
from webvtt.errors import MalformedCaptionError, MalformedFileError

from chalicelib.errors import ErrorCode, PermanentUploadError
from chalicelib.jobs.layout import is_playlist
from chalicelib.jobs.model import SubtitleMetadata

MEDIA_PLAYLIST_NAME = "index.m3u8"

# BCP 47-ish: a 2-3 letter language, optional subtags (`pt-BR`, `zh-Hant`). It ends up in a key.
LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")

LANGUAGE_LABELS: dict[str, str] = {
    "ar": "Arabic",
    "bg": "Bulgarian",
    "bn": "Bengali",
    "ca": "Catalan",
    "cs": "Czech",
    "da": "Danish",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "et": "Estonian",
    "fa": "Persian",
    "fi": "Finnish",
    "fil": "Filipino",
    "fr": "French",
    "he": "Hebrew",
    "hi": "Hindi",
    "hr": "Croatian",
    "hu": "Hungarian",
    "id": "Indonesian",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "lt": "Lithuanian",
    "lv": "Latvian",
    "ms": "Malay",
    "nl": "Dutch",
    "no": "Norwegian",
    "pl": "Polish",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "sk": "Slovak",
    "sl": "Slovenian",
    "sr": "Serbian",
    "sv": "Swedish",
    "sw": "Swahili",
    "ta": "Tamil",
    "th": "Thai",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "ur": "Urdu",
    "vi": "Vietnamese",
    "zh": "Chinese",
}


def _invalid_playlist(reason: str, detail: str = "") -> PermanentUploadError:
    return PermanentUploadError(ErrorCode.INVALID_PLAYLIST, reason, detail)


def _invalid_subtitle(reason: str, detail: str = "") -> PermanentUploadError:
    return PermanentUploadError(ErrorCode.INVALID_SUBTITLE, reason, detail)


# --- playlists ----------------------------------------------------------------------------------


def parse_playlist(data: bytes, name: str) -> m3u8.M3U8:
    """Parse a playlist; INVALID_PLAYLIST when it is not UTF-8, lacks `#EXTM3U` or does not parse."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _invalid_playlist(f"The playlist {name!r} is not UTF-8 text.", str(error)) from error
    if not text.lstrip().startswith("#EXTM3U"):
        raise _invalid_playlist(f"The playlist {name!r} does not start with #EXTM3U.")
    try:
        return m3u8.loads(text)
    except (ValueError, m3u8.ParseError) as error:  # a malformed tag value: `#EXTINF:abc,`
        raise _invalid_playlist(f"The playlist {name!r} cannot be parsed.", str(error)) from error


def _local_path(uri: str | None) -> str | None:
    """The path part of a relative URI; None for absolute URLs and absolute paths (not ours)."""
    if not uri:
        return None
    parts = urlsplit(uri)
    if parts.scheme or parts.netloc or parts.path.startswith("/"):
        return None
    return unquote(parts.path) or None


def _references(playlist: m3u8.M3U8) -> Iterator[str]:
    """Every relative URI a playlist points at: segments, init sections, keys, variants, media."""
    for segment in playlist.segments:
        yield segment.uri
        if segment.init_section is not None:
            yield segment.init_section.uri
    for section in playlist.segment_map:
        yield section.uri
    for key in [*playlist.keys, *playlist.session_keys]:
        if key is not None:
            yield key.uri
    for variant in [*playlist.playlists, *playlist.iframe_playlists]:
        yield variant.uri
    for media in playlist.media:
        yield media.uri


def relative_references(playlist: m3u8.M3U8) -> list[str]:
    """The relative paths a playlist references, in order of first appearance, without repeats."""
    paths = (_local_path(uri) for uri in _references(playlist))
    return list(dict.fromkeys(path for path in paths if path))


def _resolve(base_file: str, reference: str, playlist_name: str) -> str:
    """`reference` relative to the folder of `base_file`; refused if it climbs above the top."""
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(base_file), reference))
    if resolved == ".." or resolved.startswith(("../", "/")):
        raise _invalid_playlist(f"The playlist {playlist_name!r} points outside its folder: {reference!r}.")
    return resolved


@dataclass(frozen=True)
class RenditionPlan:
    """What one HLS job uploads, in two phases: media files first, then the playlists.

    A published playlist must never point at a missing segment, so the worker uploads
    `media_files` (segments, init segments, keys, anything not a playlist), and only when
    they are all in the bucket `playlists`, whose last entry is `media_playlist`.
    """

    media_files: tuple[str, ...]
    playlists: tuple[str, ...]
    media_playlist: str

    @property
    def files(self) -> tuple[str, ...]:
        return self.media_files + self.playlists


def _is_hidden(path: str) -> bool:
    """`.DS_Store`, editor droppings: never part of a rendition."""
    return any(part.startswith(".") for part in path.split("/"))


def choose_media_playlist(paths: Iterable[str]) -> str:
    """`index.m3u8` when present at the top of the folder, else the first top-level `.m3u8` by name."""
    top = sorted(p for p in paths if "/" not in p and is_playlist(p) and not _is_hidden(p))
    if not top:
        raise _invalid_playlist("The HLS folder has no playlist (.m3u8) at its top level.")
    return MEDIA_PLAYLIST_NAME if MEDIA_PLAYLIST_NAME in top else top[0]


def check_playlist_references(name: str, playlist: m3u8.M3U8, available: Iterable[str]) -> None:
    """INVALID_PLAYLIST naming the first file `name` references that is not in `available`."""
    present = set(available)
    for reference in relative_references(playlist):
        path = _resolve(name, reference, name)
        if path not in present:
            raise _invalid_playlist(f"The playlist {name!r} references {path!r}, which is not in the HLS folder.")


def plan_rendition(paths: Iterable[str], read: Callable[[str], bytes]) -> RenditionPlan:
    """Check a rendition folder and say what to upload in which order.

    `paths` are the folder's files relative to it (`/`-separated); `read(path)` gives a file's
    bytes (only playlists are read). Every playlist must parse and every segment, init section
    and key it names must be in the folder; the media playlist must have segments.
    """
    files = sorted(p for p in paths if not _is_hidden(p))
    media_playlist = choose_media_playlist(files)
    playlists = [p for p in files if is_playlist(p)]
    for name in playlists:
        playlist = parse_playlist(read(name), name)
        if name == media_playlist and not playlist.is_variant and not playlist.segments:
            raise _invalid_playlist(f"The playlist {name!r} lists no segments.")
        check_playlist_references(name, playlist, files)
    ordered = [p for p in playlists if p != media_playlist] + [media_playlist]
    return RenditionPlan(
        media_files=tuple(p for p in files if not is_playlist(p)),
        playlists=tuple(ordered),
        media_playlist=media_playlist,
    )


def master_references(data: bytes, name: str = "master.m3u8") -> list[str]:
    """The relative URIs a master playlist references: variant streams, I-frame playlists and
    EXT-X-MEDIA renditions (audio, subtitles). INVALID_PLAYLIST if it is not a master playlist."""
    playlist = parse_playlist(data, name)
    if not playlist.is_variant:
        raise _invalid_playlist(f"The playlist {name!r} is not a master playlist (no #EXT-X-STREAM-INF).")
    return relative_references(playlist)


def master_reference_keys(master_key: str, data: bytes) -> list[str]:
    """The bucket keys a master playlist at `master_key` needs before it may be published:
    `films/<id>/hls/master.m3u8` + `720p/index.m3u8` -> `films/<id>/hls/720p/index.m3u8`."""
    name = posixpath.basename(master_key)
    return [_resolve(master_key, uri, name) for uri in master_references(data, name)]


# --- subtitles ----------------------------------------------------------------------------------


def check_webvtt(data: bytes, name: str) -> None:
    """INVALID_SUBTITLE unless `data` is UTF-8 WebVTT: a `WEBVTT` header line (a BOM allowed)
    and cues that webvtt-py can read, none dropped for a malformed timing line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _invalid_subtitle(f"The subtitle {name!r} is not UTF-8 text.", str(error)) from error
    header = text.split("\n", 1)[0].rstrip("\r")
    if not (header == "WEBVTT" or header.startswith(("WEBVTT ", "WEBVTT\t"))):
        raise _invalid_subtitle(f"The subtitle {name!r} does not start with WEBVTT.")
    try:
        captions = webvtt.from_string(text).captions
    except (MalformedFileError, MalformedCaptionError) as error:
        raise _invalid_subtitle(f"The subtitle {name!r} is not valid WebVTT.", str(error)) from error
    # webvtt-py skips a cue whose timing line it cannot read; a count mismatch reveals one.
    timings = [number for number, line in enumerate(text.splitlines(), 1) if "-->" in line]
    if len(timings) != len(captions):
        raise _invalid_subtitle(
            f"The subtitle {name!r} has a malformed cue timing line.",
            f"{len(timings)} timing lines, {len(captions)} cues read; timing lines at {timings[:10]}",
        )


def language_label(code: str) -> str:
    """`fr` -> `French`, `pt-BR` -> `Portuguese`; an unknown code is its own label."""
    return LANGUAGE_LABELS.get(code.lower()) or LANGUAGE_LABELS.get(code.split("-")[0].lower()) or code


def _normalized_language(code: str) -> str:
    """The primary subtag lower-case (`EN-us` -> `en-us`), the form used in keys."""
    primary, _, rest = code.partition("-")
    return f"{primary.lower()}-{rest}" if rest else primary.lower()


def language_from_filename(filename: str) -> str | None:
    """`en.vtt` -> `en`, `movie.fr.vtt` -> `fr`, `movie.pt-BR.vtt` -> `pt-BR`; None if no code."""
    stem = posixpath.basename(filename).rsplit(".", 1)[0]
    candidate = stem.rsplit(".", 1)[-1]
    return _normalized_language(candidate) if LANGUAGE.match(candidate) else None


def subtitle_metadata(filename: str, given: SubtitleMetadata | None = None) -> SubtitleMetadata:
    """The job's `subtitleMetadata` with `language` and `label` filled in.

    The language comes from the metadata, else the file name; VALIDATION if neither gives one
    (it becomes part of the key). Other metadata fields are kept.
    """
    extra = given.model_dump(exclude={"language", "label"}) if given else {}
    language = given.language if given and given.language else language_from_filename(filename)
    if not language or not LANGUAGE.match(language):
        raise PermanentUploadError(
            ErrorCode.VALIDATION,
            f"The subtitle language of {filename!r} is unknown: name the file like 'en.vtt' "
            "or give subtitleMetadata.language (a code like 'en' or 'pt-BR').",
        )
    language = _normalized_language(language)
    label = given.label if given and given.label else language_label(language)
    return SubtitleMetadata(language=language, label=label, **extra)
