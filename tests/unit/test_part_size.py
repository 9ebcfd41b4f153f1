"""Part sizes, part ranges and the ETags the resume check compares (pure)."""

from __future__ import annotations

import hashlib
import os

import pytest

from chalicelib.errors import ErrorCode, PermanentUploadError
from chalicelib.upload.engine import (
    MAX_PARTS,
    MIB,
    choose_part_size,
    expected_etag,
    multipart_etag,
    part_count,
    part_range,
)

GIB = 1024 * MIB


@pytest.mark.parametrize(
    ("file_size", "configured", "expected"),
    [
        (100 * MIB, 8 * MIB, 8 * MIB),  # the configured size when it fits
        (100 * MIB, 1 * MIB, 5 * MIB),  # never below S3's 5 MiB floor
        (10_000 * 8 * MIB, 8 * MIB, 8 * MIB),  # exactly 10,000 parts still fits
        (10_000 * 8 * MIB + 1, 8 * MIB, 9 * MIB),  # one byte more: grown, to whole MiB
        (200 * GIB, 8 * MIB, 21 * MIB),  # 200 GiB / 10,000 = 20.48 MiB -> 21 MiB
    ],
)
def test_choose_part_size(file_size: int, configured: int, expected: int) -> None:
    part_size = choose_part_size(file_size, configured)
    assert part_size == expected
    assert part_count(file_size, part_size) <= MAX_PARTS


def test_a_file_beyond_s3_limits_is_refused() -> None:
    with pytest.raises(PermanentUploadError) as caught:
        choose_part_size(10_000 * 6 * GIB, 8 * MIB)
    assert caught.value.code == ErrorCode.VALIDATION


def test_part_ranges_cover_the_file_exactly_once() -> None:
    size, part_size = 12 * MIB + 7, 5 * MIB
    ranges = [part_range(n, size, part_size) for n in range(1, part_count(size, part_size) + 1)]
    assert ranges == [(0, 5 * MIB), (5 * MIB, 5 * MIB), (10 * MIB, 2 * MIB + 7)]
    assert part_count(0, part_size) == 1


class Bytes:
    """A SourceFile over bytes in memory."""

    ref = "memory"

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)

    def read(self, offset: int = 0, length: int | None = None) -> bytes:
        return self.data[offset : None if length is None else offset + length]


def test_expected_etag_single_and_multipart() -> None:
    data = os.urandom(11 * 1024)
    source = Bytes(data)
    md5 = hashlib.md5(data).hexdigest()
    assert expected_etag(source, 4096, f'"{md5}"') == md5
    parts = [hashlib.md5(data[i : i + 4096]).digest() for i in range(0, len(data), 4096)]
    assert expected_etag(source, 4096, "whatever-3") == multipart_etag(parts)
    assert multipart_etag(parts).endswith("-3")
    # A part count our part size cannot give: no guess, no match.
    assert expected_etag(source, 4096, "whatever-2") is None
