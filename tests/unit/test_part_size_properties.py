"""Property: for any file up to S3's 5 TiB and any configured PART_SIZE_MB, the parts fit S3's limits.

Every part but the last is the chosen size, between 5 MiB and 5 GiB; the last is 1 byte to that size;
there are at most 10,000 parts; together they cover the file exactly, in order, without overlap.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from chalicelib.config import Settings
from chalicelib.upload.engine import (
    MAX_PART_SIZE,
    MAX_PARTS,
    MIB,
    MIN_PART_SIZE,
    choose_part_size,
    part_count,
    part_range,
)

TIB = 1024 * 1024 * MIB
MAX_OBJECT_SIZE = 5 * TIB


def setting_bounds(name: str) -> tuple[int, int]:
    """The ge/le a setting accepts: every PART_SIZE_MB a deployment can configure."""
    metadata = Settings.model_fields[name].metadata
    return next(m.ge for m in metadata if hasattr(m, "ge")), next(m.le for m in metadata if hasattr(m, "le"))


configured_part_size_mb = st.integers(*setting_bounds("part_size_mb"))
file_size = st.one_of(
    st.integers(min_value=1, max_value=MAX_OBJECT_SIZE),
    # Around the edges where the part size has to grow: n parts of a size, give or take a byte.
    st.builds(
        lambda parts, size, delta: max(1, min(MAX_OBJECT_SIZE, parts * size + delta)),
        st.integers(1, MAX_PARTS + 1),
        st.integers(5, 5 * 1024).map(lambda mb: mb * MIB),
        st.integers(-1, 1),
    ),
)


@settings(max_examples=500, deadline=None)
@given(size=file_size, configured_mb=configured_part_size_mb)
@example(size=MAX_OBJECT_SIZE, configured_mb=5)
@example(size=MAX_OBJECT_SIZE, configured_mb=5 * 1024)
@example(size=MAX_PARTS * 8 * MIB + 1, configured_mb=8)
def test_parts_always_fit_s3s_limits(size: int, configured_mb: int) -> None:
    part_size = choose_part_size(size, configured_mb * MIB)
    count = part_count(size, part_size)

    assert MIN_PART_SIZE <= part_size <= MAX_PART_SIZE
    assert 1 <= count <= MAX_PARTS
    first_offset, first_length = part_range(1, size, part_size)
    last_offset, last_length = part_range(count, size, part_size)
    assert first_offset == 0
    assert first_length == min(size, part_size)
    assert last_offset == (count - 1) * part_size  # every part before the last is exactly part_size
    assert 1 <= last_length <= part_size
    assert last_offset + last_length == size  # the parts cover the file, no more, no less


@settings(max_examples=200, deadline=None)
@given(size=st.integers(min_value=1, max_value=MAX_OBJECT_SIZE), configured_mb=configured_part_size_mb)
def test_the_configured_size_is_kept_whenever_it_fits(size: int, configured_mb: int) -> None:
    part_size = choose_part_size(size, configured_mb * MIB)
    if size <= configured_mb * MIB * MAX_PARTS:
        assert part_size == configured_mb * MIB
    else:
        assert part_size > configured_mb * MIB and part_size % MIB == 0
        assert part_count(size, part_size - MIB) > MAX_PARTS  # grown no more than needed
