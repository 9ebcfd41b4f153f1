"""The S3 client for DigitalOcean Spaces: what S3-compatible stores accept from boto3."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from chalicelib.config import Settings

# Calls whose body botocore (>= 1.36) would protect with a CRC32 header even with
# request_checksum_calculation="when_required"; several S3-compatible stores want Content-MD5.
MD5_OPERATIONS = ("DeleteObjects", "PutBucketCors", "PutBucketLifecycleConfiguration")


def spaces_client_config(settings: Settings) -> Any:
    """botocore settings for Spaces: no CRC checksum headers (Content-MD5 is sent instead)."""
    from botocore.config import Config

    return Config(
        region_name=settings.spaces_region,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        max_pool_connections=settings.upload_concurrency_ceiling + 8,  # one per pool thread, and a margin
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=10,
        read_timeout=60,
        tcp_keepalive=True,
    )


def send_content_md5(s3: Any) -> None:
    """Make the client send Content-MD5 (and no CRC32 header) on the calls that need a checksum."""

    def use_md5(params: dict[str, Any], **_: Any) -> None:
        params["context"].get("checksum", {}).pop("request_algorithm", None)
        body = params["body"]
        digest = hashlib.md5(body.encode() if isinstance(body, str) else body, usedforsecurity=False).digest()
        params["headers"]["Content-MD5"] = base64.b64encode(digest).decode()

    for operation in MD5_OPERATIONS:
        s3.meta.events.register(f"before-call.s3.{operation}", use_md5, unique_id=f"studio-content-md5-{operation}")
