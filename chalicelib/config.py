"""Settings from the environment (SPEC 9): one object, validated once per container."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from chalicelib import logs
from chalicelib.errors import ConfigurationError

MIB = 1024 * 1024
LOCAL_JWT_SECRET = "local-dev-secret-not-for-production"
LOCAL_STAGES = frozenset({"local", "test"})
MIN_JWT_SECRET_BYTES = 32  # HS256's key should be at least as long as its hash (RFC 7518 3.2)
DEFAULT_JWT_MAX_LIFETIME_SECONDS = 24 * 3600
LAMBDA_EXECUTION_ENV_PREFIX = "AWS_Lambda_"

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

    @property
    def is_deployed(self) -> bool:
        """A deployed stage: named so, or running in Lambda (where a missing STAGE must not mean local)."""
        return self.stage not in LOCAL_STAGES or self.in_lambda

    @property
    def in_lambda(self) -> bool:
        # AWS_EXECUTION_ENV alone is not enough: CloudShell and others set it too; Lambda's is AWS_Lambda_<runtime>.
        return bool(self.aws_lambda_function_name) or self.aws_execution_env.startswith(LAMBDA_EXECUTION_ENV_PREFIX)

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
        if not is_real_secret(self.auth_jwt_secret):
            missing.append(f"AUTH_JWT_SECRET (a secret of its own, at least {MIN_JWT_SECRET_BYTES} bytes)")
        if missing:
            raise ConfigurationError(f"stage {self.stage!r} is missing required settings: {', '.join(missing)}")


def is_real_secret(secret: str) -> bool:
    """Not the public development secret, and long enough for HS256."""
    return secret != LOCAL_JWT_SECRET and len(secret.encode()) >= MIN_JWT_SECRET_BYTES


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    from chalicelib.secrets import with_secrets  # deferred: secrets imports this module

    settings = with_secrets(Settings())
    settings.check_deployed()
    logs.configure(settings)
    return settings
