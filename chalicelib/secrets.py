"""Secrets of a deployed stage, read once per container from SSM Parameter Store (SPEC 9).

The stage's configuration names the SecureString parameters (`MONGODB_URI_PARAM=/studio-uploads/dev/mongodb-uri`,
...), never their values: those live only in Parameter Store. At the first `get_settings()` of a deployed stage
one GetParameters call (WithDecryption) fetches them all, and chalicelib/config.py puts their values into
the settings: this module knows nothing of the settings (config.py imports it, never the reverse). A Secrets
Manager secret can be named too, through Parameter Store's `/aws/reference/secretsmanager/<secret-id>` path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.errors import ConfigurationError

# Environment variable naming the parameter -> the setting its value goes into.
SECRET_PARAMETERS: Mapping[str, str] = {
    "MONGODB_URI_PARAM": "mongodb_uri",
    "SPACES_KEY_PARAM": "spaces_key",
    "SPACES_SECRET_PARAM": "spaces_secret",
    "AUTH_JWT_SECRET_PARAM": "auth_jwt_secret",
    "NOTIFY_WEBHOOK_SECRET_PARAM": "notify_webhook_secret",
}  # five names: one GetParameters call takes up to ten


def named_parameters(environ: Mapping[str, str]) -> dict[str, str]:
    """Setting name -> SSM parameter name, for each secret the environment names a parameter for."""
    return {setting: environ[variable] for variable, setting in SECRET_PARAMETERS.items() if environ.get(variable)}


def fetch_parameters(ssm: Any, names: list[str]) -> dict[str, str]:
    """One GetParameters call; every name must exist, else a ConfigurationError naming the missing ones."""
    response = ssm.get_parameters(Names=names, WithDecryption=True)
    if response.get("InvalidParameters"):
        missing = ", ".join(sorted(response["InvalidParameters"]))
        raise ConfigurationError(f"SSM parameters not found (or not readable): {missing}")
    return {parameter["Name"]: parameter["Value"] for parameter in response["Parameters"]}


def default_ssm_client() -> Any:
    """Short timeouts: a cold start that cannot reach SSM should fail fast and say so."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "ssm", config=Config(connect_timeout=5, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})
    )


def read_secrets(parameters: Mapping[str, str], ssm_client: Callable[[], Any] = default_ssm_client) -> dict[str, str]:
    """Setting name -> its secret value, for `parameters` (setting name -> SSM parameter name)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        values = fetch_parameters(ssm_client(), sorted(set(parameters.values())))
    except (BotoCoreError, ClientError) as exc:  # no access, no network, throttled
        raise ConfigurationError(f"cannot read the stage's secrets from SSM Parameter Store: {exc}") from exc
    return {setting: values[name] for setting, name in parameters.items()}
