"""Prepare a stage's storage, idempotently, and say what changed (docs/deploy.md):

- the Spaces bucket, created if missing, with CORS for the players' origins (`PLAYER_ORIGINS`, comma-separated,
  default `*`) and a lifecycle rule that aborts multipart uploads left incomplete after
  `ABORT_MULTIPART_AFTER_DAYS` (default 3) days;
- MongoDB's indexes: the jobs collection's and the WebSocket connections registry's.

    python -m chalicelib.bootstrap --stage dev        (make bootstrap STAGE=dev)

`--stage` takes the stage's variables from .chalice/config.json and its secrets from SSM Parameter Store with
your own AWS credentials; without it, the current environment is used (the local stage: embedded store).
A second run reports every step `unchanged`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from chalicelib.config import Settings, with_secrets
from chalicelib.spaces import send_content_md5

Outcome = Literal["created", "updated", "unchanged"]

LIFECYCLE_RULE_ID = "abort-incomplete-multipart-uploads"
CHALICE_CONFIG = Path(__file__).resolve().parent.parent / ".chalice" / "config.json"
# Players fetch playlists and segments (with Range for byte-range HLS) and read these headers back.
CORS_METHODS = ["GET", "HEAD"]
CORS_EXPOSED_HEADERS = ["Content-Length", "Content-Range", "ETag"]
CORS_MAX_AGE_SECONDS = 3600


class BootstrapOptions(BaseSettings):
    """Settings only the bootstrap reads."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    player_origins: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"], min_length=1)
    abort_multipart_after_days: int = Field(default=3, ge=1, le=365)

    @field_validator("player_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value


@dataclass(frozen=True)
class Step:
    name: str
    outcome: Outcome
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.outcome:>9}  {self.name}" + (f": {self.detail}" if self.detail else "")


# Spaces bucket -------------------------------------------------------------------------------------------------


def error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def ensure_bucket(s3: Any, bucket: str, *, location: str | None) -> Step:
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
        return Step(f"bucket {bucket}", "unchanged")
    except ClientError as exc:
        if error_code(exc) not in {"404", "NoSuchBucket", "NotFound"}:
            raise
    arguments: dict[str, Any] = {"Bucket": bucket}
    if location:
        arguments["CreateBucketConfiguration"] = {"LocationConstraint": location}
    s3.create_bucket(**arguments)
    return Step(f"bucket {bucket}", "created")


def bucket_location(settings: Settings) -> str | None:
    """AWS wants a LocationConstraint outside us-east-1; Spaces' endpoint already names the region."""
    if settings.spaces_endpoint or settings.spaces_region == "us-east-1":
        return None
    return settings.spaces_region


def cors_rules(origins: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "AllowedOrigins": sorted(origins),
            "AllowedMethods": CORS_METHODS,
            "AllowedHeaders": ["*"],
            "ExposeHeaders": CORS_EXPOSED_HEADERS,
            "MaxAgeSeconds": CORS_MAX_AGE_SECONDS,
        }
    ]


def comparable_rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rules as the store may echo them back: lists in any order, IDs added or dropped."""
    return [{key: normalized(value) for key, value in rule.items() if key != "ID"} for rule in rules]


def normalized(value: Any) -> Any:
    return sorted(value) if isinstance(value, list) else value


def ensure_cors(s3: Any, bucket: str, origins: list[str]) -> Step:
    """The bootstrap owns the bucket's CORS configuration: one rule for the players."""
    from botocore.exceptions import ClientError

    wanted = cors_rules(origins)
    try:
        current = s3.get_bucket_cors(Bucket=bucket).get("CORSRules", [])
    except ClientError as exc:
        if error_code(exc) != "NoSuchCORSConfiguration":
            raise
        current = []
    name = f"CORS of {bucket}"
    if comparable_rules(current) == comparable_rules(wanted):
        return Step(name, "unchanged", ", ".join(sorted(origins)))
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": wanted})
    return Step(name, "updated" if current else "created", ", ".join(sorted(origins)))


def lifecycle_rule(days: int) -> dict[str, Any]:
    return {
        "ID": LIFECYCLE_RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": days},
    }


def is_same_lifecycle_rule(rule: dict[str, Any], days: int) -> bool:
    prefix = rule.get("Filter", {}).get("Prefix", rule.get("Prefix", ""))
    return (
        rule.get("Status") == "Enabled"
        and prefix == ""
        and rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") == days
    )


def ensure_lifecycle(s3: Any, bucket: str, days: int) -> Step:
    """Our rule, by its ID, next to whatever other rules the bucket has."""
    from botocore.exceptions import ClientError

    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except ClientError as exc:
        if error_code(exc) != "NoSuchLifecycleConfiguration":
            raise
        rules = []
    name = f"lifecycle of {bucket}"
    detail = f"abort incomplete multipart uploads after {days} days"
    ours = [rule for rule in rules if rule.get("ID") == LIFECYCLE_RULE_ID]
    if len(ours) == 1 and is_same_lifecycle_rule(ours[0], days):
        return Step(name, "unchanged", detail)
    others = [rule for rule in rules if rule.get("ID") != LIFECYCLE_RULE_ID]
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [*others, lifecycle_rule(days)]}
    )
    return Step(name, "updated" if ours else "created", detail)


# MongoDB -------------------------------------------------------------------------------------------------------


def ensure_indexes(name: str, collection: Any, create: Callable[[], None]) -> Step:
    """Run an idempotent `ensure_indexes` and name the indexes it added."""
    before = set(collection.index_information())
    create()
    added = sorted(set(collection.index_information()) - before)
    if added:
        return Step(name, "created", ", ".join(added))
    return Step(name, "unchanged", f"{len(before)} indexes")


def mongo_steps(database: Any) -> list[Step]:
    from chalicelib.jobs.store import JOBS_COLLECTION, JobStore
    from chalicelib.realtime.connections import CONNECTIONS_COLLECTION, ConnectionRegistry

    return [
        ensure_indexes(
            f"MongoDB {JOBS_COLLECTION} indexes", database[JOBS_COLLECTION], JobStore(database).ensure_indexes
        ),
        ensure_indexes(
            f"MongoDB {CONNECTIONS_COLLECTION} indexes",
            database[CONNECTIONS_COLLECTION],
            ConnectionRegistry(database).ensure_indexes,
        ),
    ]


# Together ------------------------------------------------------------------------------------------------------


def bootstrap(settings: Settings, options: BootstrapOptions, *, s3: Any, database: Any) -> list[Step]:
    send_content_md5(s3)  # idempotent: the client may not come from Services
    bucket = settings.spaces_bucket
    return [
        ensure_bucket(s3, bucket, location=bucket_location(settings)),
        ensure_cors(s3, bucket, options.player_origins),
        ensure_lifecycle(s3, bucket, options.abort_multipart_after_days),
        *mongo_steps(database),
    ]


def stage_environment(stage: str, config_path: Path = CHALICE_CONFIG) -> dict[str, str]:
    """The variables a stage's functions get from .chalice/config.json (top level, then the stage's own)."""
    config = json.loads(config_path.read_text())
    if stage not in config.get("stages", {}):
        raise SystemExit(f"bootstrap: no stage {stage!r} in {config_path}")
    return {**config.get("environment_variables", {}), **config["stages"][stage].get("environment_variables", {})}


def load_settings(environ: Mapping[str, str]) -> Settings:
    """The stage's settings with its secrets; the queues and WebSocket API need not exist yet."""
    os.environ.update(environ)
    return with_secrets(Settings())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Create or check the Spaces bucket and MongoDB indexes of a stage.")
    parser.add_argument("--stage", help="take the stage's variables from .chalice/config.json")
    args = parser.parse_args(argv)
    settings = load_settings(stage_environment(args.stage) if args.stage else {})
    from chalicelib.services import Services

    services = Services(settings)
    steps = bootstrap(settings, BootstrapOptions(), s3=services.s3, database=services.database)
    for step in steps:
        print(step)
    changed = [step for step in steps if step.outcome != "unchanged"]
    print(f"bootstrap of stage {settings.stage!r}: {len(changed)} change(s)" if changed else "no change")
    return 0


if __name__ == "__main__":
    sys.exit(main())
