"""The local runtime (chalicelib/local/runtime.py) for a test: started on free ports with the given
environment over the test's own, stopped afterwards with the environment, the cached settings and
the services as they were."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chalicelib.config import get_settings
from chalicelib.local.aws import free_port
from chalicelib.local.runtime import LocalRuntime, RuntimeOptions
from chalicelib.services import set_services


@contextmanager
def local_runtime(
    source_root: Path, environment: Mapping[str, str], *, unset: tuple[str, ...] = (), **options: Any
) -> Iterator[LocalRuntime]:
    saved = dict(os.environ)
    os.environ.update(environment)
    for name in unset:
        os.environ.pop(name, None)
    try:
        runtime = LocalRuntime(
            RuntimeOptions(
                api_port=free_port(),
                ws_port=free_port(),
                aws_port=free_port(),
                source_root=source_root,
                workers_per_queue=1,
                log_requests=False,
                **options,
            )
        )
        try:
            runtime.start()
            yield runtime
        finally:
            runtime.stop()
    finally:  # also when the runtime refuses to start
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()
        set_services(None)
