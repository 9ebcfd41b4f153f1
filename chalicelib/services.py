"""Builds the real clients once per container, lazily: nothing connects at import time."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any

from chalicelib.config import Settings, get_settings
from chalicelib.errors import ConfigurationError
from chalicelib.jobs.model import QueueName
from chalicelib.jobs.store import JobStore
from chalicelib.logs import logger
from chalicelib.queue import JobQueue
from chalicelib.realtime.connections import ConnectionRegistry
from chalicelib.realtime.events import LogNotifier, Notifier
from chalicelib.realtime.senders import Sender
from chalicelib.spaces import send_content_md5, spaces_client_config
from chalicelib.timeouts import mongo_client_options, notify_client_config, sqs_client_config

if TYPE_CHECKING:
    from chalicelib.notify.delivery import Sink
    from chalicelib.notify.enqueue import NotificationEnqueuer
    from chalicelib.upload.engine import TransferEngine


class Services:
    """The container's clients and stores. Each is built on first use, then kept."""

    def __init__(
        self,
        settings: Settings,
        *,
        database: Any = None,
        notifier: Notifier | None = None,
        websocket_sender: Sender | None = None,
    ) -> None:
        self.settings = settings
        self._database = database
        self._notifier = notifier
        self._websocket_sender = websocket_sender
        self._lock = threading.Lock()

    @cached_property
    def boto_session(self) -> Any:
        import boto3

        return boto3.session.Session()

    @cached_property
    def database(self) -> Any:
        with self._lock:
            if self._database is not None:
                return self._database
            if self.settings.mongodb_uri:
                from pymongo import MongoClient

                options = mongo_client_options(self.settings.lease_seconds)  # no call outlasts the lease
                client: Any = MongoClient(self.settings.mongodb_uri, tz_aware=False, **options)
                return client[self.settings.mongodb_db]
            if self.settings.is_deployed:  # the in-process store would lose every job with the container
                raise ConfigurationError(f"stage {self.settings.stage!r} needs MONGODB_URI: no in-process store there")
            from chalicelib.embedded_mongo import embedded_database

            return embedded_database(self.settings.mongodb_db)

    @cached_property
    def store(self) -> JobStore:
        store = JobStore(self.database)
        if not self.settings.is_deployed:  # deployed stages create indexes in the bootstrap
            store.ensure_indexes()
        return store

    @cached_property
    def s3(self) -> Any:
        credentials = {}
        if self.settings.spaces_key:
            credentials = {
                "aws_access_key_id": self.settings.spaces_key,
                "aws_secret_access_key": self.settings.spaces_secret,
            }
        client = self.boto_session.client(
            "s3",
            endpoint_url=self.settings.spaces_endpoint or None,
            config=spaces_client_config(self.settings),
            **credentials,
        )
        send_content_md5(client)
        return client

    @cached_property
    def sqs(self) -> Any:
        return self.boto_session.client("sqs", config=sqs_client_config(self.settings.lease_seconds))

    @cached_property
    def queue(self) -> JobQueue:
        urls = {QueueName.HLS: self.settings.hls_queue_url, QueueName.MASTER: self.settings.master_queue_url}
        return JobQueue(self.sqs, urls)

    @cached_property
    def engine(self) -> TransferEngine:
        """One transfer engine (one thread pool over the S3 client) per container, shared by its jobs."""
        from chalicelib.upload.engine import EngineConfig, TransferEngine

        return TransferEngine(self.s3, EngineConfig.from_settings(self.settings))

    @cached_property
    def connections(self) -> ConnectionRegistry:
        registry = ConnectionRegistry(self.database)
        if not self.settings.is_deployed:  # deployed stages create indexes in the bootstrap
            registry.ensure_indexes()
        return registry

    @property
    def websocket_sender(self) -> Sender | None:
        """The local gateway's sender when one was installed, else API Gateway's when WEBSOCKET_API_DOMAIN is set."""
        with self._lock:
            if self._websocket_sender is None and self.settings.websocket_api_domain:
                from chalicelib.realtime.senders import ApiGatewaySender, management_endpoint

                endpoint = management_endpoint(self.settings.websocket_api_domain, self.settings.websocket_api_stage)
                self._websocket_sender = ApiGatewaySender.for_endpoint(self.boto_session, endpoint)
            return self._websocket_sender

    def install_websocket_sender(self, sender: Sender) -> None:
        """Deliver WebSocket messages through `sender` (the local gateway's) instead of logging events."""
        with self._lock:
            self._websocket_sender = sender
            if isinstance(self._notifier, LogNotifier):
                self._notifier = None

    @cached_property
    def notify_sqs(self) -> Any:
        """SQS for notifications: short timeouts, as the worker that ended a job waits for the enqueue."""
        return self.boto_session.client("sqs", config=notify_client_config())

    @cached_property
    def notification_enqueuer(self) -> NotificationEnqueuer | None:
        """None without a webhook or email configured, or without NOTIFY_QUEUE_URL (a local stage)."""
        if not self.settings.notifies:
            return None
        if not self.settings.notify_queue_url:
            logger.warning("notifications are configured but NOTIFY_QUEUE_URL is not: none will be sent")
            return None
        from chalicelib.notify.enqueue import NotificationEnqueuer

        return NotificationEnqueuer(self.notify_sqs, self.settings)

    @cached_property
    def notification_sinks(self) -> dict[str, Sink]:
        from chalicelib.notify.delivery import build_sinks

        return build_sinks(self.settings, lambda: self.boto_session.client("sesv2", config=notify_client_config()))

    @property
    def notifier(self) -> Notifier:
        """The WebSocket (or log) notifier, followed by the notification enqueuer when there is one."""
        realtime = self._realtime_notifier()
        enqueuer = self.notification_enqueuer
        if enqueuer is None:
            return realtime
        from chalicelib.notify.enqueue import FanOutNotifier

        return FanOutNotifier(realtime, enqueuer)

    def _realtime_notifier(self) -> Notifier:
        if self._notifier is None:
            built = self._build_notifier()  # outside the lock: it reaches the database, which takes it
            with self._lock:  # one notifier per container: it owns the event throttle and the send threads
                if self._notifier is None:
                    self._notifier = built
        return self._notifier

    def _build_notifier(self) -> Notifier:
        if self.websocket_sender is None:
            return LogNotifier()
        from chalicelib.realtime.notifier import WebSocketNotifier

        return WebSocketNotifier(
            self.connections, self.websocket_sender, progress_interval_ms=self.settings.progress_interval_ms
        )


_services: Services | None = None
_services_lock = threading.Lock()


def get_services() -> Services:
    global _services
    with _services_lock:
        if _services is None:
            _services = Services(get_settings())
        return _services


def set_services(services: Services | None) -> None:
    """Install the container's services (tests and the local runtime); None resets."""
    global _services
    with _services_lock:
        _services = services
