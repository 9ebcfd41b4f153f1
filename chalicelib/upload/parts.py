"""Part arithmetic and ETags: how a file is cut into parts and what ETag S3 gives it."""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Sequence
from typing import Any

from chalicelib.errors import ErrorCode, PermanentUploadError

MIB = 1024 * 1024
MIN_PART_SIZE = 5 * MIB  # S3's floor for every part but the last
MAX_PART_SIZE = 5 * 1024 * MIB
MAX_PARTS = 10_000


def choose_part_size(file_size: int, configured_part_size: int = 8 * MIB) -> int:
    """The configured part size, never below 5 MiB, grown (to whole MiB) to stay within 10,000 parts."""
    part_size = max(configured_part_size, MIN_PART_SIZE)
    if file_size > part_size * MAX_PARTS:
        part_size = math.ceil(file_size / MAX_PARTS / MIB) * MIB
    if part_size > MAX_PART_SIZE:
        raise PermanentUploadError(
            ErrorCode.VALIDATION,
            "The file is too large for a multipart upload (more than 10,000 parts of 5 GiB).",
            f"{file_size} bytes",
        )
    return part_size


def part_count(file_size: int, part_size: int) -> int:
    return max(1, math.ceil(file_size / part_size))


def part_range(part_number: int, file_size: int, part_size: int) -> tuple[int, int]:
    """(offset, length) of a 1-based part."""
    offset = (part_number - 1) * part_size
    return offset, min(part_size, file_size - offset)


def md5(data: bytes) -> Any:
    return hashlib.md5(data, usedforsecurity=False)


def content_md5(digest: bytes) -> str:
    """The Content-MD5 header of a body whose md5 digest is `digest`."""
    return base64.b64encode(digest).decode("ascii")


def bare(etag: str) -> str:
    return etag.strip('"')


def multipart_etag(part_digests: Sequence[bytes]) -> str:
    """S3's ETag of a multipart object: md5 of the concatenated part md5s, `-` part count."""
    return f"{md5(b''.join(part_digests)).hexdigest()}-{len(part_digests)}"
