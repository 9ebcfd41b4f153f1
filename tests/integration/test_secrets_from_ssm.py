"""A deployed stage's get_settings() reads its SecureString secrets from SSM (moto's server over HTTP)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib.config import get_settings
from chalicelib.errors import ConfigurationError


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def deployed_stage(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, fresh_settings: None) -> dict[str, str]:
    """A dev stage's environment as Lambda has it: parameter names, no secret values. Returns the values."""
    path = f"/studio-uploads/test-{uuid.uuid4().hex[:8]}"
    ssm: Any = boto3.session.Session().client(
        "ssm",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    values = {
        "MONGODB_URI_PARAM": "mongodb://studio:pw@mongo.example:27017",
        "SPACES_KEY_PARAM": "DO00KEY",
        "SPACES_SECRET_PARAM": "spaces-secret-value",
        "AUTH_JWT_SECRET_PARAM": "a-jwt-secret-of-at-least-thirty-two-bytes",
    }
    for variable, value in values.items():
        name = f"{path}/{variable.removesuffix('_PARAM').lower().replace('_', '-')}"
        ssm.put_parameter(Name=name, Value=value, Type="SecureString")
        monkeypatch.setenv(variable, name)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", moto_endpoint)
    monkeypatch.setenv("STAGE", "dev")
    monkeypatch.setenv("SPACES_ENDPOINT", "https://fra1.digitaloceanspaces.com")
    monkeypatch.setenv("HLS_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/studio-dev-upload-hls-to-s3")
    monkeypatch.setenv(
        "MASTER_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/studio-dev-upload-master-playlist"
    )
    return values


def test_the_first_get_settings_puts_the_secrets_into_the_settings(deployed_stage: dict[str, str]) -> None:
    settings = get_settings()
    assert settings.mongodb_uri == deployed_stage["MONGODB_URI_PARAM"]
    assert settings.spaces_key == deployed_stage["SPACES_KEY_PARAM"]
    assert settings.spaces_secret == deployed_stage["SPACES_SECRET_PARAM"]
    assert settings.auth_jwt_secret == deployed_stage["AUTH_JWT_SECRET_PARAM"]


def test_a_parameter_that_does_not_exist_stops_the_start_with_its_name(
    deployed_stage: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPACES_SECRET_PARAM", "/studio-uploads/nowhere/spaces-secret")
    with pytest.raises(ConfigurationError, match="/studio-uploads/nowhere/spaces-secret"):
        get_settings()
