"""A Lambda never runs a local stage: without an explicit deployed STAGE and a real secret it refuses to start."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.auth import issue_token
from chalicelib.config import LOCAL_JWT_SECRET, Settings, get_settings
from chalicelib.errors import ConfigurationError
from chalicelib.services import Services, set_services

REAL_SECRET = "a-jwt-secret-of-at-least-thirty-two-bytes"
EVERYTHING_ELSE = {
    "MONGODB_URI": "mongodb://studio:pw@mongo.example:27017",
    "SPACES_ENDPOINT": "https://fra1.digitaloceanspaces.com",
    "SPACES_BUCKET": "studio-media",
    "HLS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/studio-dev-upload-hls-to-s3",
    "MASTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/studio-dev-upload-master-playlist",
    "AUTH_JWT_SECRET": REAL_SECRET,
}
LAMBDA_MARKERS = [
    {"AWS_LAMBDA_FUNCTION_NAME": "studio-uploads-dev"},
    {"AWS_EXECUTION_ENV": "AWS_Lambda_python3.12"},
]


@pytest.fixture
def lambda_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The environment of a function: no STAGE, no setting, no installed services, settings read afresh."""
    for name in ["STAGE", *EVERYTHING_ELSE, "AWS_LAMBDA_FUNCTION_NAME", "AWS_EXECUTION_ENV"]:
        monkeypatch.delenv(name, raising=False)
    for variable in ("MONGODB_URI_PARAM", "SPACES_KEY_PARAM", "SPACES_SECRET_PARAM", "AUTH_JWT_SECRET_PARAM"):
        monkeypatch.delenv(variable, raising=False)
    set_services(None)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()
    set_services(None)


@pytest.mark.parametrize("marker", LAMBDA_MARKERS, ids=["function-name", "execution-env"])
@pytest.mark.parametrize("configured", [{}, EVERYTHING_ELSE], ids=["nothing-set", "all-but-stage-set"])
def test_a_function_without_stage_refuses_to_start(
    lambda_environment: pytest.MonkeyPatch, marker: dict[str, str], configured: dict[str, str]
) -> None:
    for name, value in {**marker, **configured}.items():
        lambda_environment.setenv(name, value)
    with pytest.raises(ConfigurationError, match="STAGE"):
        get_settings()


@pytest.mark.parametrize("stage", ["local", "test"])
def test_a_function_naming_a_local_stage_refuses_to_start(lambda_environment: pytest.MonkeyPatch, stage: str) -> None:
    for name, value in {**LAMBDA_MARKERS[0], **EVERYTHING_ELSE, "STAGE": stage}.items():
        lambda_environment.setenv(name, value)
    with pytest.raises(ConfigurationError, match="STAGE"):
        get_settings()


@pytest.mark.parametrize(
    "secret", [LOCAL_JWT_SECRET, "short-secret", "x" * 31], ids=["public-dev-secret", "short", "31-bytes"]
)
def test_a_deployed_stage_refuses_a_secret_that_is_not_real(
    lambda_environment: pytest.MonkeyPatch, secret: str
) -> None:
    for name, value in {**LAMBDA_MARKERS[0], **EVERYTHING_ELSE, "STAGE": "dev", "AUTH_JWT_SECRET": secret}.items():
        lambda_environment.setenv(name, value)
    with pytest.raises(ConfigurationError, match="AUTH_JWT_SECRET"):
        get_settings()


def test_a_function_with_a_deployed_stage_and_its_settings_starts(lambda_environment: pytest.MonkeyPatch) -> None:
    for name, value in {**LAMBDA_MARKERS[0], **EVERYTHING_ELSE, "STAGE": "dev"}.items():
        lambda_environment.setenv(name, value)
    settings = get_settings()
    assert settings.is_deployed
    assert settings.auth_jwt_secret == REAL_SECRET


def test_another_aws_execution_environment_is_not_lambda(lambda_environment: pytest.MonkeyPatch) -> None:
    lambda_environment.setenv("AWS_EXECUTION_ENV", "CloudShell")
    assert get_settings().stage == "local"


def test_the_public_dev_token_opens_nothing_in_a_function_without_stage(lambda_environment: pytest.MonkeyPatch) -> None:
    """Before: the function ran the local stage, took the public secret and kept jobs in an in-process store."""
    from chalice.test import Client

    import app as app_module

    lambda_environment.setenv("AWS_LAMBDA_FUNCTION_NAME", "studio-uploads-dev")
    headers = {"Authorization": f"Bearer {issue_token(LOCAL_JWT_SECRET)}"}
    with Client(app_module.app, stage_name="local") as client:
        response = client.http.get("/v1/studio/upload-jobs", headers=headers)
    assert response.status_code >= 500
    assert b"items" not in response.body


def test_services_of_a_deployed_stage_never_fall_back_to_the_in_process_store() -> None:
    services: Any = Services(Settings(stage="dev", mongodb_uri=""))
    with pytest.raises(ConfigurationError, match="MONGODB_URI"):
        services.store  # noqa: B018 - building it is the point
