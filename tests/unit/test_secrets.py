"""Secrets of a deployed stage come from one GetParameters call (WithDecryption) at the first get_settings()."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.config import Settings, with_secrets
from chalicelib.errors import ConfigurationError

PARAMETERS = {
    "MONGODB_URI_PARAM": "/studio-uploads/dev/mongodb-uri",
    "SPACES_KEY_PARAM": "/studio-uploads/dev/spaces-key",
    "SPACES_SECRET_PARAM": "/studio-uploads/dev/spaces-secret",
    "AUTH_JWT_SECRET_PARAM": "/studio-uploads/dev/auth-jwt-secret",
}
VALUES = {
    "/studio-uploads/dev/mongodb-uri": "mongodb+srv://studio:pw@cluster0.example.mongodb.net",
    "/studio-uploads/dev/spaces-key": "DO00KEY",
    "/studio-uploads/dev/spaces-secret": "spaces-secret-value",
    "/studio-uploads/dev/auth-jwt-secret": "a-jwt-secret-of-at-least-thirty-two-bytes",
}


def ssm_client() -> Any:
    return boto3.session.Session().client(
        "ssm", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def parameters_response(names: list[str]) -> dict[str, Any]:
    return {"Parameters": [{"Name": name, "Type": "SecureString", "Value": VALUES[name]} for name in names]}


def test_one_decrypting_call_fills_every_named_secret() -> None:
    client = ssm_client()
    names = sorted(VALUES)
    with Stubber(client) as stubber:
        stubber.add_response("get_parameters", parameters_response(names), {"Names": names, "WithDecryption": True})
        settings = with_secrets(Settings(stage="dev"), environ=PARAMETERS, ssm_client=lambda: client)
        stubber.assert_no_pending_responses()
    assert settings.mongodb_uri == VALUES["/studio-uploads/dev/mongodb-uri"]
    assert settings.spaces_key == "DO00KEY"
    assert settings.spaces_secret == "spaces-secret-value"
    assert settings.auth_jwt_secret == VALUES["/studio-uploads/dev/auth-jwt-secret"]
    assert settings.stage == "dev"


def test_only_the_named_secrets_are_fetched_and_the_others_keep_their_setting() -> None:
    client = ssm_client()
    name = "/studio-uploads/dev/auth-jwt-secret"
    with Stubber(client) as stubber:
        stubber.add_response("get_parameters", parameters_response([name]), {"Names": [name], "WithDecryption": True})
        settings = with_secrets(
            Settings(stage="dev", mongodb_uri="mongodb://set-directly"),
            environ={"AUTH_JWT_SECRET_PARAM": name},
            ssm_client=lambda: client,
        )
    assert settings.auth_jwt_secret == VALUES[name]
    assert settings.mongodb_uri == "mongodb://set-directly"


@pytest.mark.parametrize("stage", ["local", "test"])
def test_a_local_stage_never_calls_ssm(stage: str) -> None:
    def no_client() -> Any:
        raise AssertionError("SSM was called in a local stage")

    settings = Settings(stage=stage)
    assert with_secrets(settings, environ=PARAMETERS, ssm_client=no_client) is settings


def test_a_deployed_stage_naming_no_parameter_never_calls_ssm() -> None:
    def no_client() -> Any:
        raise AssertionError("SSM was called with nothing to fetch")

    settings = Settings(stage="dev")
    assert with_secrets(settings, environ={}, ssm_client=no_client) is settings


def test_a_missing_parameter_is_a_configuration_error_naming_it() -> None:
    client = ssm_client()
    names = sorted(VALUES)
    found = [name for name in names if not name.endswith("spaces-secret")]
    response = {**parameters_response(found), "InvalidParameters": ["/studio-uploads/dev/spaces-secret"]}
    with Stubber(client) as stubber:
        stubber.add_response("get_parameters", response, {"Names": names, "WithDecryption": True})
        with pytest.raises(ConfigurationError, match="/studio-uploads/dev/spaces-secret"):
            with_secrets(Settings(stage="dev"), environ=PARAMETERS, ssm_client=lambda: client)


def test_access_denied_is_a_configuration_error_not_a_crash_in_a_request() -> None:
    client = ssm_client()
    with Stubber(client) as stubber:
        stubber.add_client_error("get_parameters", service_error_code="AccessDeniedException", http_status_code=400)
        with pytest.raises(ConfigurationError, match="SSM Parameter Store"):
            with_secrets(Settings(stage="dev"), environ=PARAMETERS, ssm_client=lambda: client)
