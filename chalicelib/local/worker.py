"""One local Lambda container of `LOCAL_WORKER_PROCESSES=1`: a queue poller in a process of its own.

    python -m chalicelib.local.worker --handler upload_hls_worker --queue-url http://.../upload-hls-to-s3

It imports the deployed entry point (app.py) and runs the runtime's own `QueuePoller` on the app's
`on_sqs_message` handler, with the same Lambda-shaped events and contexts as the thread pollers. Its
settings come from the environment the runtime hands it (chalicelib/local/worker_process.py).
SIGTERM ends it after the invocation in flight; so does the runtime's death (no orphan keeps polling).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from types import FrameType

from chalicelib.logs import logger

PARENT_CHECK_SECONDS = 1.0


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.local.worker", description=__doc__)
    parser.add_argument("--handler", required=True, help="the app's on_sqs_message handler, by name")
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--name", default="", help="this poller's name in the log (default: the handler's)")
    parser.add_argument("--timeout", type=int, default=900, help="each invocation's time budget, seconds")
    return parser.parse_args(argv)


def stop_with_parent(stop: threading.Event) -> None:
    """Set `stop` once the process that started us is gone (we were re-parented)."""
    parent = os.getppid()
    while not stop.wait(PARENT_CHECK_SECONDS):
        if os.getppid() != parent:
            logger.warning("the runtime is gone; stopping")
            stop.set()


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    name = args.name or args.handler
    # The service logs JSON lines on stdout (chalicelib/logs.py); other libraries only their warnings, as text.
    logging.basicConfig(
        level=logging.WARNING, format=f"%(asctime)s %(levelname)s {name}[%(process)d] %(name)s: %(message)s"
    )
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    threading.Thread(target=stop_with_parent, args=(stop,), name="parent-watch", daemon=True).start()

    import boto3
    from chalice.app import SQSEventConfig

    import app as app_module  # the deployed entry point, unchanged
    from chalicelib.local.runtime import QueuePoller

    app = app_module.app
    source = next((s for s in app.event_sources if isinstance(s, SQSEventConfig) and s.name == args.handler), None)
    if source is None:
        print(f"worker: the app has no on_sqs_message handler named {args.handler!r}", file=sys.stderr)
        return 2
    poller = QueuePoller(
        sqs=boto3.session.Session().client("sqs"),
        queue_url=args.queue_url,
        handler=app.handler_map[args.handler],
        name=args.handler,
        batch_size=source.batch_size,
        timeout_seconds=args.timeout,
        stop=stop,
    )
    poller.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
