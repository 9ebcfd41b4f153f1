"""The Spaces client sends Content-MD5, never boto3's CRC32 headers, which S3-compatible stores refuse."""

from __future__ import annotations

from typing import Any

from chalicelib.services import Services


def record_headers(client: Any, operation: str) -> dict[str, str]:
    seen: dict[str, str] = {}
    client.meta.events.register(
        f"before-send.s3.{operation}",
        lambda request, **_: seen.update({k.lower(): v for k, v in request.headers.items()}),
    )
    return seen


def checksum_headers(headers: dict[str, str]) -> set[str]:
    return {name for name in headers if name.startswith("x-amz-checksum") or name == "x-amz-sdk-checksum-algorithm"}


def test_batch_delete_sends_content_md5_and_no_crc(services: Services, bucket: str) -> None:
    s3 = services.s3
    s3.put_object(Bucket=bucket, Key="a.ts", Body=b"segment")
    seen = record_headers(s3, "DeleteObjects")
    response = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a.ts"}]})
    assert [item["Key"] for item in response["Deleted"]] == ["a.ts"]
    assert "content-md5" in seen
    assert checksum_headers(seen) == set()
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_put_object_adds_no_crc_header(services: Services, bucket: str) -> None:
    s3 = services.s3
    seen = record_headers(s3, "PutObject")
    s3.put_object(Bucket=bucket, Key="b.ts", Body=b"segment")
    assert checksum_headers(seen) == set()
