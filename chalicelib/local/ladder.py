"""A real HLS ladder for the demo: three renditions, a WebVTT subtitle and a master playlist.

With ffmpeg on the PATH the renditions are real H.264 HLS (2-second segments at 25 fps); without
it, synthetic files of the same shape (same names, playlists and sizes of the same order).
"""

from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

SEGMENT_SECONDS = 2
FPS = 25


@dataclass(frozen=True)
class Rendition:
    label: str
    width: int
    height: int
    bitrate_kbps: int


RENDITIONS = (
    Rendition("360p", 640, 360, 800),
    Rendition("540p", 960, 540, 1600),
    Rendition("720p", 1280, 720, 2800),
)
SUBTITLE_LANGUAGE = "en"
SUBTITLE_LABEL = "English"


@dataclass(frozen=True)
class Ladder:
    root: Path
    renditions: tuple[Rendition, ...]
    subtitle: Path
    subtitle_playlist: Path
    master: Path
    real_video: bool


def make_ladder(root: Path, *, seconds: int = 20, use_ffmpeg: bool | None = None) -> Ladder:
    """Write the ladder under `root` (replacing what was there) and describe it."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    real = shutil.which("ffmpeg") is not None if use_ffmpeg is None else use_ffmpeg
    make = _ffmpeg_rendition if real else _synthetic_rendition
    with ThreadPoolExecutor(max_workers=len(RENDITIONS)) as pool:
        list(pool.map(lambda r: make(root / r.label, r, seconds), RENDITIONS))
    subtitle, subtitle_playlist = write_subtitles(root / "subtitles", seconds)
    master = root / "master.m3u8"
    master.write_text(master_playlist())
    return Ladder(root, RENDITIONS, subtitle, subtitle_playlist, master, real)


def _ffmpeg_rendition(folder: Path, rendition: Rendition, seconds: int) -> None:
    folder.mkdir(parents=True)
    gop = SEGMENT_SECONDS * FPS
    command = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={rendition.width}x{rendition.height}:rate={FPS}:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-b:v", f"{rendition.bitrate_kbps}k",
        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "96k",
        "-f", "hls", "-hls_time", str(SEGMENT_SECONDS), "-hls_playlist_type", "vod",
        "-hls_segment_filename", str(folder / "segment_%03d.ts"),
        str(folder / "index.m3u8"),
    ]  # fmt: skip
    subprocess.run(command, check=True, timeout=300)


def _synthetic_rendition(folder: Path, rendition: Rendition, seconds: int) -> None:
    """Files of the same shape as ffmpeg's: MPEG-TS-sized segments and a VOD media playlist."""
    folder.mkdir(parents=True)
    count = max(1, seconds // SEGMENT_SECONDS)
    segment_bytes = rendition.bitrate_kbps * 1000 // 8 * SEGMENT_SECONDS
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{SEGMENT_SECONDS}", "#EXT-X-PLAYLIST-TYPE:VOD"]
    for index in range(count):
        name = f"segment_{index:03d}.ts"
        packet = bytes([0x47]) + f"{rendition.label}:{index}:".encode()
        (folder / name).write_bytes((packet * (segment_bytes // len(packet) + 1))[:segment_bytes])
        lines += [f"#EXTINF:{SEGMENT_SECONDS:.6f},", name]
    lines.append("#EXT-X-ENDLIST")
    (folder / "index.m3u8").write_text("\n".join(lines) + "\n")


def write_subtitles(folder: Path, seconds: int) -> tuple[Path, Path]:
    folder.mkdir(parents=True)
    cues = ["WEBVTT", ""]
    for index, start in enumerate(range(0, seconds, 4)):
        end = min(start + 3, seconds)
        cues += [str(index + 1), f"00:00:{start:02d}.000 --> 00:00:{end:02d}.000", f"Line {index + 1} of the demo", ""]
    subtitle = folder / f"{SUBTITLE_LANGUAGE}.vtt"
    subtitle.write_text("\n".join(cues))
    playlist = folder / f"{SUBTITLE_LANGUAGE}.m3u8"
    playlist.write_text(
        "\n".join(
            [
                "#EXTM3U",
                f"#EXT-X-TARGETDURATION:{seconds}",
                "#EXT-X-PLAYLIST-TYPE:VOD",
                f"#EXTINF:{seconds:.3f},",
                f"{SUBTITLE_LANGUAGE}.vtt",
                "#EXT-X-ENDLIST",
                "",
            ]
        )
    )
    return subtitle, playlist


def master_playlist() -> str:
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="{SUBTITLE_LABEL}",LANGUAGE="{SUBTITLE_LANGUAGE}",'
        f'DEFAULT=YES,AUTOSELECT=YES,URI="../subtitles/{SUBTITLE_LANGUAGE}.m3u8"',
    ]
    for rendition in RENDITIONS:
        bandwidth = (rendition.bitrate_kbps + 96) * 1000
        lines.append(
            f'#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},RESOLUTION={rendition.width}x{rendition.height},SUBTITLES="subs"'
        )
        lines.append(f"{rendition.label}/index.m3u8")
    return "\n".join(lines) + "\n"
