"""The local runtime's schedule timers reach the app's `@app.schedule` handlers, as EventBridge does."""

from __future__ import annotations

import threading
from typing import Any

from chalice import Chalice

from chalicelib.local.runtime import LocalRuntime, RuntimeOptions


def test_the_timer_calls_a_scheduled_handler_with_an_event_chalice_accepts() -> None:
    app = Chalice(app_name="schedule-test")
    called = threading.Event()
    seen: list[Any] = []

    @app.schedule("rate(5 minutes)")
    def tick(event: Any) -> None:
        seen.append((event.detail_type, event.account, event.resources))
        called.set()

    runtime = LocalRuntime(RuntimeOptions(schedule_seconds=0.05), app=app)
    runtime._start_schedules(app)
    try:
        assert called.wait(5), "the scheduled handler never ran"
    finally:
        runtime.stop()
    detail_type, account, resources = seen[0]
    assert detail_type == "Scheduled Event"
    assert account and resources and resources[0].endswith("/tick")
