"""`make run`: the whole system in the foreground until Ctrl-C or SIGTERM (SPEC 10)."""

from __future__ import annotations

import itertools
import logging
import signal
import sys
import threading
from types import FrameType

from chalicelib.auth import TokenPolicy
from chalicelib.errors import ConfigurationError
from chalicelib.local.runtime import LocalRuntime, RuntimeOptions
from chalicelib.logs import logger


def main() -> int:
    # The service logs JSON lines on stdout (chalicelib/logs.py); other libraries only their warnings, as text.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    received = itertools.count()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        # A terminal's job control signals the whole group and make passes its own SIGTERM on: one stop,
        # one line. The second signal can interrupt the first one's logging, so a check of `stop` would
        # let both log; taking a number from the counter is one step that no signal can split.
        if next(received) == 0:
            logger.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    # Installed explicitly: a shell may start us in the background with SIGINT ignored.
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    runtime: LocalRuntime | None = None
    try:
        runtime = LocalRuntime(RuntimeOptions.from_environment())
        runtime.start()
        settings = runtime.services.settings
        print(f"HTTP API   {runtime.api_url}/v1/studio/upload-jobs", flush=True)
        print(f"Dashboard  {runtime.api_url}/dashboard", flush=True)
        print(f"WebSocket  {runtime.ws_url}/?token=<token>", flush=True)
        print(
            f"S3 / SQS   {runtime.options.aws_endpoint} (bucket {settings.spaces_bucket}; any credentials)", flush=True
        )
        print(f"MongoDB    {mongo_line(runtime)}", flush=True)
        print(f"Sources    {settings.source_root}", flush=True)
        print(f"Notify     {notify_line(runtime)}", flush=True)
        if workers := runtime.worker_processes():
            print(
                f"Workers    {len(workers)} processes (python -m chalicelib.local.worker), restarted if killed",
                flush=True,
            )
        print(f"Admin token:\n{TokenPolicy.from_settings(settings).issue()}", flush=True)
        print("Ready. Ctrl-C stops everything.", flush=True)
        while not stop.wait(0.5):
            pass
    except ConfigurationError as error:  # e.g. LOCAL_MONGO=wire without the server's Python: one line, why
        print(f"make run: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        if runtime is not None:
            runtime.stop()
    return 0


def notify_line(runtime: LocalRuntime) -> str:
    """What NOTIFY_* configures, never a webhook's URL (it may carry a token) but the local receiver's."""
    settings = runtime.services.settings
    if not settings.notifies:
        return "off (NOTIFY_WEBHOOK_URLS or NOTIFY_EMAIL_TO turn it on; docs/notifications.md)"
    sinks = [f"{len(settings.notify_webhook_urls)} webhooks"] + (["email"] if settings.notify_email_to else [])
    receiver = f"; local receiver {runtime.webhook_receiver.url}" if runtime.webhook_receiver is not None else ""
    return f"{', '.join(sinks)} on {', '.join(settings.notify_events)}{receiver}"


def mongo_line(runtime: LocalRuntime) -> str:
    if runtime.wire_server is not None:
        return f"{runtime.mongodb_uri} (wire server, pid {runtime.wire_server.process.pid}; pymongo or mongosh can look inside)"
    if runtime.mongodb_uri:
        return "MONGODB_URI from the environment"  # never printed: it may hold credentials
    return "embedded in this process (LOCAL_MONGO=wire runs a MongoDB server process instead)"


if __name__ == "__main__":
    sys.exit(main())
