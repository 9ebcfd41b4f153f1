"""Resume: what the bucket already holds (one listing per folder), whether a source matches the
bucket's copy (its ETag), and which parts of a checkpointed multipart upload are still there."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.upload.cancellation import UnitInterrupted
from chalicelib.upload.items import MultipartCheckpoint, UploadItem
from chalicelib.upload.parts import bare, md5, multipart_etag, part_count, part_range
from chalicelib.upload.sources import SourceFile


def list_existing(client: Any, bucket: str, keys: Iterable[str]) -> dict[str, tuple[int, str]]:
    """{key: (size, bare ETag)} for those `keys` already in the bucket.

    One ListObjectsV2 walk per folder of keys, starting at the keys' common prefix and not
    descending into subfolders (Delimiter `/`): a folder of 2,000 segments is 2 requests,
    a lone master playlist in a big folder is 1.
    """
    wanted = set(keys)
    folders: dict[str, list[str]] = {}
    for key in wanted:
        folders.setdefault(posixpath.dirname(key), []).append(key)
    found: dict[str, tuple[int, str]] = {}
    paginator = client.get_paginator("list_objects_v2")
    for group in folders.values():
        prefix = posixpath.commonprefix(group)
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            for item in page.get("Contents", []):
                if item["Key"] in wanted:
                    found[item["Key"]] = (int(item["Size"]), bare(item["ETag"]))
    return found


def expected_etag(
    source: SourceFile, part_size: int, remote_etag: str, interrupted: Callable[[], bool] = lambda: False
) -> str | None:
    """The ETag `source` would have in the bucket, in the same form as `remote_etag` (single or
    multipart); None when the remote one has a part count our part size cannot give. Reads the
    source a part at a time, and raises UnitInterrupted as soon as `interrupted()` says so."""
    remote = bare(remote_etag)
    parts = part_count(source.size, part_size)
    if "-" in remote and remote.rsplit("-", 1)[1] != str(parts):
        return None  # uploaded with another part size: cannot compare without guessing it
    whole = md5(b"")
    digests = []
    for number in range(1, parts + 1):
        if interrupted():
            raise UnitInterrupted(f"stopped hashing {source} at part {number} of {parts}")
        data = source.read(*part_range(number, source.size, part_size))
        whole.update(data)
        digests.append(md5(data).digest())
    return multipart_etag(digests) if "-" in remote else whole.hexdigest()


def listed_parts(client: Any, bucket: str, item: UploadItem, checkpoint: MultipartCheckpoint) -> dict[int, str] | None:
    """Parts of the checkpoint's upload already in the bucket with the right size (and the
    checkpoint's ETag when it knows one); None when the upload no longer exists."""
    found: dict[int, str] = {}
    paginator = client.get_paginator("list_parts")
    pages = paginator.paginate(Bucket=bucket, Key=item.key, UploadId=checkpoint.upload_id)
    total = part_count(item.size, checkpoint.part_size)
    try:
        for page in pages:
            for part in page.get("Parts", []):
                number, etag = int(part["PartNumber"]), part["ETag"]
                known = checkpoint.parts.get(number)
                if (
                    number <= total
                    and int(part["Size"]) == part_range(number, item.size, checkpoint.part_size)[1]
                    and (known is None or bare(known) == bare(etag))
                ):
                    found[number] = etag
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchUpload":
            return None
        raise
    return found
