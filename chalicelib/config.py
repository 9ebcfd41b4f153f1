"""Settings from the environment (SPEC 9): one object, validated once per container."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from chalicelib import logs
from chalicelib.errors import ConfigurationError, ErrorCode
from chalicelib.secrets import default_ssm_client, named_parameters, read_secrets

MIB = 1024 * 1024
LOCAL_JWT_SECRET = "local-dev-secret-not-for-production"
LOCAL_STAGES = frozenset({"local", "test"})
MIN_JWT_SECRET_BYTES = 32  # HS256's key should be at least as long as its hash (RFC 7518 3.2)
DEFAULT_JWT_MAX_LIFETIME_SECONDS = 24 * 3600
LAMBDA_EXECUTION_ENV_PREFIX = "AWS_Lambda_"
DEFAULT_NOTIFY_EVENTS = ("JobFailed",)  # every failure: stalled and dead-lettered jobs are failed jobs
# The WebSocket event names NOTIFY_EVENTS may name (values of chalicelib/realtime/events.py's JobEvent;
# chalicelib/notify/rules.py turns them into events). Checked here as strings: this foundation module
# imports no package above it.
NOTIFIABLE_EVENT_NAMES = ("JobFailed", "JobCompleted", "JobCancelled")

# Settings a deployed stage must set explicitly: their local defaults would be wrong there.
REQUIRED_WHEN_DEPLOYED = (
    "mongodb_uri",
    "spaces_endpoint",
    "spaces_bucket",
    "hls_queue_url",
    "master_queue_url",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    stage: str = "local"
    mongodb_uri: str = ""
    mongodb_db: str = "studio_uploads"
    spaces_endpoint: str = ""
    spaces_region: str = "us-east-1"
    spaces_bucket: str = "studio-media"
    spaces_key: str = ""
    spaces_secret: str = ""
    cdn_base_url: str = ""
    public_read: bool = True
    source_root: Path = Path("./.local/sources")
    source_buckets: Annotated[list[str], NoDecode] = Field(default_factory=list)
    hls_queue_url: str = ""
    master_queue_url: str = ""
    auth_jwt_secret: str = LOCAL_JWT_SECRET
    auth_jwt_audience: str = ""  # when set, a token's `aud` must name it
    auth_jwt_issuer: str = ""  # when set, a token's `iss` must be it
    auth_jwt_max_lifetime_seconds: int = Field(default=DEFAULT_JWT_MAX_LIFETIME_SECONDS, ge=60)
    upload_concurrency: int = Field(default=32, ge=1, le=256)
    # The adaptive limit's ceiling (docs/configuration.md says why 128); at or below
    # upload_concurrency, the engine keeps a fixed upload_concurrency.
    upload_concurrency_max: int = Field(default=128, ge=1, le=512)
    part_concurrency: int = Field(default=8, ge=1, le=10)
    part_size_mb: int = Field(default=8, ge=5, le=5 * 1024)
    multipart_threshold_mb: int = Field(default=8, ge=5, le=5 * 1024)
    max_attempts: int = Field(default=5, ge=1, le=100)
    lease_seconds: int = Field(default=120, ge=10)
    stuck_after_seconds: int = Field(default=900, ge=1)
    progress_interval_ms: int = Field(default=1000, ge=0)
    master_recheck_seconds: int = Field(default=15, ge=0, le=900)
    master_wait_seconds: int = Field(default=3600, ge=0)
    job_retention_days: int = Field(default=30, ge=0)
    # The JSON logs' threshold (chalicelib/logs.py); a typo fails at start rather than logging everything.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # The WebSocket API's management endpoint, for workers that push events outside a ws handler.
    websocket_api_domain: str = ""
    websocket_api_stage: str = ""
    # The WebSocket URL the dashboard page connects to; else derived from the two settings above.
    dashboard_websocket_url: str = ""
    # Notifications (docs/notifications.md): webhooks and an optional SES email, through their own queue.
    # Out of repr: a webhook URL often carries its own token (Slack's do).
    notify_webhook_urls: Annotated[list[str], NoDecode] = Field(default_factory=list, repr=False)
    notify_webhook_secret: str = Field(default="", repr=False)
    notify_events: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_NOTIFY_EVENTS))
    notify_email_to: Annotated[list[str], NoDecode] = Field(default_factory=list)
    notify_email_from: str = ""
    notify_queue_url: str = ""
    notify_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    notify_retry_base_seconds: int = Field(default=30, ge=0, le=900)
    # Set by the Lambda runtime itself: a function never runs a local stage, whatever its STAGE says.
    aws_lambda_function_name: str = ""
    aws_execution_env: str = ""

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("source_buckets", mode="before")
    @classmethod
    def _split_buckets(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("notify_webhook_urls", "notify_events", "notify_email_to", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("notify_webhook_urls")
    @classmethod
    def _check_webhook_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                shown = f"{parts.scheme}://{parts.hostname}" if parts.scheme else repr(url[:20])
                # ConfigurationError, not ValueError: pydantic would quote the whole URL, and its token with it
                raise ConfigurationError(f"NOTIFY_WEBHOOK_URLS: {shown} is not an http:// or https:// URL with a host")
        return urls

    @field_validator("notify_events")
    @classmethod
    def _check_events(cls, entries: list[str]) -> list[str]:
        return [checked_event_entry(entry) for entry in entries]

    @model_validator(mode="after")
    def _check_email(self) -> Self:
        if bool(self.notify_email_to) != bool(self.notify_email_from):
            # ConfigurationError: with a ValueError pydantic would quote every setting, the secrets too
            raise ConfigurationError("email notifications need both NOTIFY_EMAIL_TO and NOTIFY_EMAIL_FROM (or neither)")
        return self

    @property
    def notifies(self) -> bool:
        """A webhook or an email is configured."""
        return bool(self.notify_webhook_urls or self.notify_email_to)

    @property
    def is_deployed(self) -> bool:
        """A deployed stage: named so, or running in Lambda (where a missing STAGE must not mean local)."""
        return self.stage not in LOCAL_STAGES or self.in_lambda

    @property
    def in_lambda(self) -> bool:
        # AWS_EXECUTION_ENV alone is not enough: CloudShell and others set it too; Lambda's is AWS_Lambda_<runtime>.
        return bool(self.aws_lambda_function_name) or self.aws_execution_env.startswith(LAMBDA_EXECUTION_ENV_PREFIX)

    @property
    def upload_concurrency_ceiling(self) -> int:
        """The most requests a job may keep in flight: what the pool and the connections are sized to."""
        return max(self.upload_concurrency, self.upload_concurrency_max)

    @property
    def part_size(self) -> int:
        return self.part_size_mb * MIB

    @property
    def multipart_threshold(self) -> int:
        return self.multipart_threshold_mb * MIB

    def check_deployed(self) -> None:
        """Fail at start with every missing setting named, rather than deep in a request."""
        if not self.is_deployed:
            return
        missing = [name.upper() for name in REQUIRED_WHEN_DEPLOYED if not getattr(self, name)]
        if self.stage in LOCAL_STAGES:  # only in Lambda: the local default, or a local stage named there
            missing.insert(0, "STAGE (a deployed stage's name: in Lambda it cannot be local or test)")
        if self.notifies and not self.notify_queue_url:
            missing.append("NOTIFY_QUEUE_URL (notifications are configured)")
        if not is_real_secret(self.auth_jwt_secret):
            missing.append(f"AUTH_JWT_SECRET (a secret of its own, at least {MIN_JWT_SECRET_BYTES} bytes)")
        if missing:
            raise ConfigurationError(f"stage {self.stage!r} is missing required settings: {', '.join(missing)}")

    def check_notifications(self) -> None:
        """Once the secrets are in (a deployed stage reads NOTIFY_WEBHOOK_SECRET from SSM)."""
        if self.notify_webhook_urls and not self.notify_webhook_secret:
            raise ConfigurationError("NOTIFY_WEBHOOK_URLS needs NOTIFY_WEBHOOK_SECRET: receivers verify the signature")


def checked_event_entry(entry: str) -> str:
    """`JobFailed` or `JobFailed:STALLED`, stripped; ValueError naming what is allowed otherwise."""
    name, _, code = entry.strip().partition(":")
    if name not in NOTIFIABLE_EVENT_NAMES:
        allowed = ", ".join(NOTIFIABLE_EVENT_NAMES)
        raise ValueError(f"NOTIFY_EVENTS: {name!r} is not one of {allowed} (optionally :ERROR_CODE)")
    codes = {error.value for error in ErrorCode}
    if code and (name != "JobFailed" or code not in codes):
        raise ValueError(f"NOTIFY_EVENTS: {entry.strip()!r}: only JobFailed takes an errorCode, one of {sorted(codes)}")
    return f"{name}:{code}" if code else name


def is_real_secret(secret: str) -> bool:
    """Not the public development secret, and long enough for HS256."""
    return secret != LOCAL_JWT_SECRET and len(secret.encode()) >= MIN_JWT_SECRET_BYTES


def with_secrets(
    settings: Settings,
    *,
    environ: Mapping[str, str] | None = None,
    ssm_client: Callable[[], Any] = default_ssm_client,
) -> Settings:
    """The settings with the named secrets filled in; unchanged in a local stage or when no parameter is named."""
    parameters = named_parameters(os.environ if environ is None else environ)
    if not settings.is_deployed or not parameters:
        return settings
    return settings.model_copy(update=read_secrets(parameters, ssm_client))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    settings = with_secrets(Settings())
    settings.check_deployed()
    settings.check_notifications()
    logs.configure(level=settings.log_level, stage=settings.stage)
    return settings
