"""The bootstrap against moto's S3 server and the embedded store: it sets the bucket and the indexes up, and a
second run changes nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from chalicelib.bootstrap import LIFECYCLE_RULE_ID, BootstrapOptions, bootstrap, main
from chalicelib.config import Settings

ORIGINS = "https://player.example.com,https://admin.example.com"


def spaces_settings(moto_endpoint: str, bucket: str) -> Settings:
    return Settings(stage="test", spaces_endpoint=moto_endpoint, spaces_bucket=bucket)


@pytest.fixture
def new_bucket() -> str:
    """A bucket name nobody created yet: the bootstrap creates it."""
    return f"boot-{uuid.uuid4().hex[:12]}"


def test_a_second_run_reports_no_change(s3: Any, database: Any, moto_endpoint: str, new_bucket: str) -> None:
    settings = spaces_settings(moto_endpoint, new_bucket)
    options = BootstrapOptions(player_origins=ORIGINS)

    first = bootstrap(settings, options, s3=s3, database=database)
    second = bootstrap(settings, options, s3=s3, database=database)

    assert {step.outcome for step in first} == {"created"}
    assert [step.outcome for step in second] == ["unchanged"] * len(first)
    assert [step.name for step in second] == [step.name for step in first]


def test_the_bucket_gets_cors_for_the_players_and_aborts_abandoned_multipart_uploads(
    s3: Any, database: Any, moto_endpoint: str, new_bucket: str
) -> None:
    bootstrap(
        spaces_settings(moto_endpoint, new_bucket),
        BootstrapOptions(player_origins=ORIGINS, abort_multipart_after_days=2),
        s3=s3,
        database=database,
    )
    (cors,) = s3.get_bucket_cors(Bucket=new_bucket)["CORSRules"]
    assert sorted(cors["AllowedOrigins"]) == ["https://admin.example.com", "https://player.example.com"]
    assert set(cors["AllowedMethods"]) == {"GET", "HEAD"}
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=new_bucket)["Rules"]
    assert rule["ID"] == LIFECYCLE_RULE_ID
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 2}


def test_the_indexes_of_the_jobs_and_the_connections_are_created(
    s3: Any, database: Any, moto_endpoint: str, new_bucket: str
) -> None:
    bootstrap(spaces_settings(moto_endpoint, new_bucket), BootstrapOptions(), s3=s3, database=database)
    assert "jobId_unique" in database["upload_jobs"].index_information()
    assert "connectedAt_ttl" in database["ws_connections"].index_information()


def test_changed_origins_update_the_cors_and_other_lifecycle_rules_are_kept(
    s3: Any, database: Any, moto_endpoint: str, bucket: str
) -> None:
    other_rule = {"ID": "expire-tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}}
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [other_rule]})
    settings = spaces_settings(moto_endpoint, bucket)
    bootstrap(settings, BootstrapOptions(player_origins="https://old.example.com"), s3=s3, database=database)

    steps = {s.name: s.outcome for s in bootstrap(settings, BootstrapOptions(), s3=s3, database=database)}

    assert steps[f"CORS of {bucket}"] == "updated"
    assert steps[f"lifecycle of {bucket}"] == "unchanged"
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"][0]["AllowedOrigins"] == ["*"]
    rule_ids = {rule["ID"] for rule in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert rule_ids == {"expire-tmp", LIFECYCLE_RULE_ID}


def test_bucket_configuration_is_sent_with_content_md5_not_a_crc32_header(
    s3: Any, database: Any, moto_endpoint: str, new_bucket: str
) -> None:
    """S3-compatible stores (Spaces among them) reject boto3's CRC32 default on these calls."""
    sent: dict[str, dict[str, str]] = {}

    def record(request: Any, event_name: str, **_: Any) -> None:
        sent[event_name.rsplit(".", 1)[1]] = {name.lower(): value for name, value in request.headers.items()}

    s3.meta.events.register("before-send.s3.PutBucketCors", record)
    s3.meta.events.register("before-send.s3.PutBucketLifecycleConfiguration", record)
    bootstrap(spaces_settings(moto_endpoint, new_bucket), BootstrapOptions(), s3=s3, database=database)

    assert set(sent) == {"PutBucketCors", "PutBucketLifecycleConfiguration"}
    for headers in sent.values():
        assert "content-md5" in headers
        assert not [name for name in headers if name.startswith("x-amz-checksum") or "sdk-checksum" in name]


def test_the_command_prints_each_step(
    moto_endpoint: str, new_bucket: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STAGE", "local")
    monkeypatch.setenv("MONGODB_URI", "")
    monkeypatch.setenv("SPACES_ENDPOINT", moto_endpoint)
    monkeypatch.setenv("SPACES_BUCKET", new_bucket)

    assert main([]) == 0

    output = capsys.readouterr().out
    assert f"created  bucket {new_bucket}" in output
    assert f"CORS of {new_bucket}: *" in output
