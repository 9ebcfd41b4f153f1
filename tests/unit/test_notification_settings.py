"""NOTIFY_* settings: http(s) URLs only, known events, a secret with the webhooks, a queue when deployed."""

from __future__ import annotations

import pytest

from chalicelib.config import Settings
from chalicelib.errors import ConfigurationError

DEPLOYED = {
    "stage": "prod",
    "mongodb_uri": "mongodb://db",
    "spaces_endpoint": "https://fra1.digitaloceanspaces.com",
    "hls_queue_url": "https://sqs/hls",
    "master_queue_url": "https://sqs/master",
    "auth_jwt_secret": "a-jwt-secret-of-at-least-thirty-two-bytes",
}


def test_lists_are_comma_separated_and_the_default_is_every_failure() -> None:
    settings = Settings(
        notify_webhook_urls="https://hooks.slack.com/services/T/B/x, http://127.0.0.1:9000/hook",
        notify_email_to="ops@example.com,oncall@example.com",
        notify_email_from="studio@example.com",
    )
    assert settings.notify_webhook_urls == ["https://hooks.slack.com/services/T/B/x", "http://127.0.0.1:9000/hook"]
    assert settings.notify_email_to == ["ops@example.com", "oncall@example.com"]
    assert Settings().notify_events == ["JobFailed"]
    assert Settings(notify_events="JobFailed, JobCompleted").notify_events == ["JobFailed", "JobCompleted"]
    assert not Settings().notifies


@pytest.mark.parametrize("url", ["ftp://files.example/hook", "hooks.slack.com/x", "https://", "file:///etc/passwd"])
def test_a_webhook_that_is_not_http_or_https_is_refused_without_quoting_the_url(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"NOTIFY_WEBHOOK_URLS: .* is not an http:// or https:// URL") as info:
        Settings(notify_webhook_urls=f"https://ok.example/hook,{url}/token-abc123")
    assert "token-abc123" not in str(info.value)


def test_an_unknown_event_is_refused_naming_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="JobFailed, JobCompleted, JobCancelled"):
        Settings(notify_events="JobFailed,uploadProgress")


def test_webhooks_need_the_secret_once_secrets_are_read() -> None:
    settings = Settings(notify_webhook_urls="https://hooks.example/x")
    with pytest.raises(ConfigurationError, match="NOTIFY_WEBHOOK_SECRET"):
        settings.check_notifications()
    Settings(notify_webhook_urls="https://hooks.example/x", notify_webhook_secret="s").check_notifications()


def test_email_needs_both_addresses() -> None:
    with pytest.raises(ConfigurationError, match="NOTIFY_EMAIL_TO and NOTIFY_EMAIL_FROM"):
        Settings(notify_email_to="ops@example.com")


def test_a_deployed_stage_with_notifications_needs_their_queue() -> None:
    settings = Settings(**DEPLOYED, notify_webhook_urls="https://hooks.example/x", notify_webhook_secret="s")
    with pytest.raises(ConfigurationError, match="NOTIFY_QUEUE_URL"):
        settings.check_deployed()
    Settings(**DEPLOYED).check_deployed()  # without notifications, no queue is needed
    settings.model_copy(update={"notify_queue_url": "https://sqs/notify"}).check_deployed()


def test_the_settings_repr_shows_neither_webhook_urls_nor_their_secret() -> None:
    settings = Settings(
        notify_webhook_urls="https://hooks.slack.com/services/T/B/token-1", notify_webhook_secret="whsec-unique-1"
    )
    assert "token-1" not in repr(settings)
    assert "whsec-unique-1" not in repr(settings)
