"""The local runtime of SPEC 10: the same Chalice app, with what Lambda and AWS give it played locally.

- HTTP: `chalice.local.create_local_server` (per-thread request object), in a thread.
- S3 and SQS: moto's server in its own process, with the bucket and queues created at start.
- Workers: pollers that receive from every queue the app has an `on_sqs_message` handler for and
  call that very handler with a Lambda-shaped event and context; delete on success, leave the
  message on an exception so SQS redelivers. Threads of this process, or with `worker_processes`
  (LOCAL_WORKER_PROCESSES=1) one OS process each, restarted when killed (chalicelib/local/worker_process.py).
- Schedules: every `@app.schedule` handler on a timer.
- WebSocket: the local gateway (chalicelib/local/ws_gateway.py).
- Notifications: their queue is polled like the others; with LOCAL_WEBHOOK_RECEIVER=1 a tiny receiver
  (chalicelib/local/webhook_receiver.py) is one of the webhooks, and logs what arrives.
- CloudWatch metrics: off (POWERTOOLS_METRICS_DISABLED=true unless set; chalicelib/metrics/cloudwatch.py).
- MongoDB: the embedded store in this process, or with `LOCAL_MONGO=wire` the wire-protocol server
  in its own process (chalicelib/local/mongo_wire.py) on `MONGO_PORT`; an explicit `MONGODB_URI` wins.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.errors import ConfigurationError
from chalicelib.local.aws import (
    create_bucket,
    create_notification_queue,
    create_queues,
    local_environment,
    start_moto_server,
    wait_for_port,
)
from chalicelib.local.mongo_wire import DEFAULT_PORT as DEFAULT_MONGO_PORT
from chalicelib.local.mongo_wire import WireServer, start_wire_server
from chalicelib.local.worker_process import (
    WorkerPool,
    WorkerProcess,
    WorkerSpec,
    require_shared_store,
    worker_environment,
)
from chalicelib.logs import logger

RECEIVE_WAIT_SECONDS = 1  # short long-poll, so a stop is noticed within a second
RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
RATE_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


@dataclass
class RuntimeOptions:
    host: str = "127.0.0.1"
    api_port: int = 8000
    ws_port: int = 8001
    aws_port: int = 5000
    bucket: str = "studio-media"
    source_root: Path = Path("./.local/sources")
    queue_prefix: str = ""
    workers_per_queue: int = 4
    log_requests: bool = True  # one line per HTTP request on stderr, as `chalice local` does
    lambda_timeout_seconds: int = 900
    schedule_seconds: float | None = None  # None: as each schedule expression says
    cdn_base_url: str = ""  # default: the bucket's URL on the local endpoint
    dashboard_websocket_url: str = ""  # default: this runtime's gateway
    spaces_endpoint: str | None = None  # where workers send S3 requests; None: moto's server (bench: a proxy)
    worker_processes: bool = False  # each poller in its own OS process (needs MONGODB_URI)
    mongo: str = "embedded"  # "wire": MongoDB as its own server process (LOCAL_MONGO)
    mongo_port: int = DEFAULT_MONGO_PORT
    webhook_receiver: bool = False  # a local webhook receiver among NOTIFY_WEBHOOK_URLS (LOCAL_WEBHOOK_RECEIVER)

    @classmethod
    def from_environment(cls) -> RuntimeOptions:
        env = os.environ
        schedule = env.get("LOCAL_SCHEDULE_SECONDS")
        return cls(
            api_port=int(env.get("API_PORT", "8000")),
            ws_port=int(env.get("WS_PORT", "8001")),
            aws_port=int(env.get("AWS_PORT", "5000")),
            bucket=env.get("SPACES_BUCKET", "studio-media"),
            source_root=Path(env.get("SOURCE_ROOT", "./.local/sources")),
            queue_prefix=env.get("QUEUE_PREFIX", ""),
            workers_per_queue=int(env.get("LOCAL_WORKERS", "4")),
            lambda_timeout_seconds=int(env.get("LOCAL_LAMBDA_TIMEOUT_SECONDS", "900")),
            schedule_seconds=float(schedule) if schedule else None,
            cdn_base_url=env.get("CDN_BASE_URL", ""),
            dashboard_websocket_url=env.get("DASHBOARD_WEBSOCKET_URL", ""),
            worker_processes=env.get("LOCAL_WORKER_PROCESSES", "").lower() in ("1", "true", "yes"),
            mongo=local_mongo(env.get("LOCAL_MONGO", "embedded")),
            mongo_port=int(env.get("MONGO_PORT", str(DEFAULT_MONGO_PORT))),
            webhook_receiver=env.get("LOCAL_WEBHOOK_RECEIVER", "").lower() in ("1", "true", "yes"),
        )

    @property
    def aws_endpoint(self) -> str:
        return f"http://{self.host}:{self.aws_port}"


def local_mongo(value: str) -> str:
    if value not in ("embedded", "wire"):
        raise ConfigurationError(f"LOCAL_MONGO is embedded (the default) or wire, not {value!r}")
    return value


@dataclass
class LambdaContext:
    """What Lambda hands a handler: above all the time left, which the workers watch."""

    function_name: str
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 1024
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS integration builds for a batch of received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


def scheduled_event(rule_name: str) -> dict[str, Any]:
    """The event EventBridge hands a scheduled Lambda: every field, since Chalice's
    CloudWatchEvent reads each of them (a missing `account` fails before the handler runs)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": "us-east-1",
        "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{rule_name}"],
        "detail": {},
    }


def schedule_seconds(expression: str) -> float:
    match = RATE.match(expression.strip())
    if not match:
        raise ValueError(f"the local runtime plays only rate(...) schedules, not {expression!r}")
    return int(match.group(1)) * RATE_UNITS[match.group(2)]


def _quiet_request_handler() -> type:
    """Chalice's request handler without its access log (the demo draws progress bars instead)."""
    from chalice.local import ChaliceRequestHandler

    class QuietRequestHandler(ChaliceRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    return QuietRequestHandler


class QueuePoller:
    """One thread of a local Lambda: receive from a queue, call the handler, delete on success."""

    def __init__(
        self,
        *,
        sqs: Any,
        queue_url: str,
        handler: Callable[[dict[str, Any], Any], Any],
        name: str,
        batch_size: int,
        timeout_seconds: int,
        stop: threading.Event,
    ) -> None:
        self._sqs = sqs
        self._url = queue_url
        self._handler = handler
        self._name = name
        self._batch = max(1, min(10, batch_size))
        self._timeout = timeout_seconds
        self._stop = stop
        self._arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self._poll_once()
            except Exception:
                if self._stop.is_set():
                    return
                logger.exception("poller %s failed; polling again", self._name)
                self._stop.wait(1.0)

    def _poll_once(self) -> None:
        response = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=self._batch,
            WaitTimeSeconds=RECEIVE_WAIT_SECONDS,
            AttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return
        try:
            self._handler(sqs_event(messages, self._arn), LambdaContext(self._name, self._timeout))
        except Exception:
            logger.exception("%s raised: the message stays in the queue for redelivery", self._name)
            return
        self._sqs.delete_message_batch(
            QueueUrl=self._url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )


class LocalRuntime:
    """Starts and stops the whole system on one machine (the body of `make run` and `make demo`)."""

    def __init__(self, options: RuntimeOptions, app: Any | None = None) -> None:
        self.options = options
        self._app = app
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._moto: subprocess.Popen[bytes] | None = None
        self._http: Any = None
        self._gateway: Any = None
        self._worker_pool: WorkerPool | None = None
        self.services: Any = None
        self.wire_server: WireServer | None = None
        self.mongodb_uri: str | None = None  # None: the embedded store in this process
        self._set_mongodb_uri = False
        self.webhook_receiver: Any = None
        self._replaced_environment: dict[str, str | None] = {}  # put back by stop()

    @property
    def api_url(self) -> str:
        return f"http://{self.options.host}:{self.options.api_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.options.host}:{self.options.ws_port}"

    def start(self) -> None:
        options = self.options
        self._start_mongo()  # first: without .venv-mongo, `make run` stops at once with the reason
        self._moto = start_moto_server(options.host, options.aws_port)
        self._configure_environment()
        app = self._load_app()
        from chalicelib.config import get_settings
        from chalicelib.services import Services, set_services

        get_settings.cache_clear()
        self.services = Services(get_settings())
        set_services(self.services)
        self.services.store.ensure_indexes()
        self._start_http(app)
        self._start_websocket_gateway(app)
        self._start_pollers(app)
        self._start_schedules(app)

    def _start_mongo(self) -> None:
        """With LOCAL_MONGO=wire, the wire server on MONGO_PORT, reached through MONGODB_URI as Atlas is.
        A MONGODB_URI already set wins: that database is used and no server is started."""
        self.mongodb_uri = os.environ.get("MONGODB_URI") or None
        if self.mongodb_uri or self.options.mongo != "wire":
            return
        log = Path(".local/mongo-wire.log")
        log.parent.mkdir(parents=True, exist_ok=True)
        self.wire_server = start_wire_server(self.options.host, self.options.mongo_port, log=log)
        self.mongodb_uri = self.wire_server.uri(os.environ.get("MONGODB_DB", "studio_uploads"))
        os.environ["MONGODB_URI"] = self.mongodb_uri
        self._set_mongodb_uri = True

    def _configure_environment(self) -> None:
        options = self.options
        os.environ.update(local_environment(options.aws_endpoint))
        if options.spaces_endpoint:
            os.environ["SPACES_ENDPOINT"] = options.spaces_endpoint
        options.source_root.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("STAGE", "local")
        # Nothing reads CloudWatch metrics here (GET /v1/studio/metrics is the local view): their EMF lines
        # would only crowd the logs, the demo's progress and the benchmarks. =false shows them.
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        os.environ["SPACES_BUCKET"] = options.bucket
        os.environ["SOURCE_ROOT"] = str(options.source_root.resolve())
        os.environ["CDN_BASE_URL"] = options.cdn_base_url or f"{options.aws_endpoint}/{options.bucket}"
        os.environ["DASHBOARD_WEBSOCKET_URL"] = options.dashboard_websocket_url or self.ws_url
        import boto3

        session = boto3.session.Session()
        s3 = session.client("s3", endpoint_url=options.aws_endpoint)
        sqs = session.client("sqs")
        create_bucket(s3, options.bucket)
        queue_urls = create_queues(sqs, prefix=options.queue_prefix)
        from chalicelib.jobs.model import QueueName

        os.environ["HLS_QUEUE_URL"] = queue_urls[QueueName.HLS]
        os.environ["MASTER_QUEUE_URL"] = queue_urls[QueueName.MASTER]
        os.environ["NOTIFY_QUEUE_URL"] = create_notification_queue(sqs, prefix=options.queue_prefix)
        if options.webhook_receiver:
            self._start_webhook_receiver()
        self._sqs = sqs

    def _start_webhook_receiver(self) -> None:
        """The local receiver, added to NOTIFY_WEBHOOK_URLS (with a secret of its own unless one is set)."""
        import secrets

        from chalicelib.local.webhook_receiver import WebhookReceiver

        secret = os.environ.get("NOTIFY_WEBHOOK_SECRET") or secrets.token_hex(16)
        self.webhook_receiver = WebhookReceiver(self.options.host, 0, secret).start()
        urls = [url for url in os.environ.get("NOTIFY_WEBHOOK_URLS", "").split(",") if url.strip()]
        self._replace_environment(
            NOTIFY_WEBHOOK_SECRET=secret, NOTIFY_WEBHOOK_URLS=",".join([*urls, self.webhook_receiver.url])
        )

    def _replace_environment(self, **values: str) -> None:
        for name, value in values.items():
            self._replaced_environment.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _load_app(self) -> Any:
        if self._app is None:
            import app as app_module  # the deployed entry point, unchanged

            self._app = app_module.app
        return self._app

    def _start_http(self, app: Any) -> None:
        from chalice.config import Config
        from chalice.local import LocalChalice, LocalDevServer, create_local_server

        config = Config.create(chalice_stage="local", app_name=app.app_name, chalice_app=app)
        if isinstance(app, LocalChalice):  # an earlier runtime of this process made it local (a second would loop)
            self._http = LocalDevServer(app, config, self.options.host, self.options.api_port)
        else:
            self._http = create_local_server(app, config, self.options.host, self.options.api_port)
        if not self.options.log_requests:
            self._http.server.RequestHandlerClass = functools.partial(
                _quiet_request_handler(), app_object=app, config=config
            )
        self._spawn("http", self._http.server.serve_forever)
        wait_for_port(self.options.host, self.options.api_port)

    def _start_websocket_gateway(self, app: Any) -> None:
        from chalicelib.local.ws_gateway import start_gateway

        self._gateway = start_gateway(app, self.options.host, self.options.ws_port, services=self.services)

    def _start_pollers(self, app: Any) -> None:
        from chalice.app import SQSEventConfig

        specs: list[tuple[WorkerSpec, int]] = []
        for source in app.event_sources:
            if not isinstance(source, SQSEventConfig) or not source.queue:
                continue
            url = self._sqs.get_queue_url(QueueName=source.queue)["QueueUrl"]
            pollers = self.options.workers_per_queue if source.batch_size == 1 else 1
            specs += [(WorkerSpec(source.name, url, index), source.batch_size) for index in range(pollers)]
        if self.options.worker_processes:
            self._start_worker_processes([spec for spec, _ in specs])
            return
        for spec, batch_size in specs:
            poller = QueuePoller(
                sqs=self._sqs,
                queue_url=spec.queue_url,
                handler=app.handler_map[spec.handler],
                name=spec.handler,
                batch_size=batch_size,
                timeout_seconds=self.options.lambda_timeout_seconds,
                stop=self._stop,
            )
            self._spawn(spec.name, poller.run)

    def _start_worker_processes(self, specs: list[WorkerSpec]) -> None:
        require_shared_store(self.services.settings)
        environment = worker_environment(os.environ, self._gateway.serve_management_api())
        self._worker_pool = WorkerPool(
            specs, environment=environment, timeout_seconds=self.options.lambda_timeout_seconds
        )
        self._worker_pool.start()

    def worker_processes(self) -> list[WorkerProcess]:
        """The worker processes (`WorkerProcess`: name, queue, pid, restarts, kill()); [] with thread pollers."""
        return list(self._worker_pool.processes) if self._worker_pool is not None else []

    def _start_schedules(self, app: Any) -> None:
        from chalice.app import ScheduledEventConfig, ScheduleExpression

        for source in app.event_sources:
            if not isinstance(source, ScheduledEventConfig):
                continue
            expression = source.schedule_expression
            text = expression.to_string() if isinstance(expression, ScheduleExpression) else expression
            interval = self.options.schedule_seconds or schedule_seconds(text)
            handler: Callable[[dict[str, Any], Any], Any] = app.handler_map[source.name]
            name = source.name
            self._spawn(f"schedule-{name}", functools.partial(self._every, handler, interval, name))

    def _every(self, handler: Callable[[dict[str, Any], Any], Any], seconds: float, name: str) -> None:
        while not self._stop.wait(seconds):
            try:
                handler(scheduled_event(name), LambdaContext(name, self.options.lambda_timeout_seconds))
            except Exception:
                logger.exception("scheduled %s failed", name)

    def _spawn(self, name: str, target: Callable[[], Any]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stop every thread and process this runtime started. Safe to call twice."""
        self._stop.set()
        if self._worker_pool is not None:  # first: their invocations in flight still reach every service
            self._worker_pool.stop()
            self._worker_pool = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server.server_close()
            self._http = None
        if self._gateway is not None:
            self._gateway.stop()
            self._gateway = None
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        if self.wire_server is not None:
            self.wire_server.stop()
            self.wire_server = None
        if self.webhook_receiver is not None:
            self.webhook_receiver.stop()
            self.webhook_receiver = None
        for name, previous in self._replaced_environment.items():  # a later runtime starts from the same
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous
        self._replaced_environment.clear()
        if self._set_mongodb_uri:  # a later runtime in this process must not take it for an explicit one
            os.environ.pop("MONGODB_URI", None)
            self._set_mongodb_uri = False
        if self._moto is not None:
            self._moto.terminate()
            try:
                self._moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._moto.kill()
            self._moto = None
