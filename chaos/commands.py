"""Standard input as a proxy's control line: `faults on` / `faults off`; its end stops the proxy."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable


def follow_commands(set_faults: Callable[[bool], None]) -> asyncio.Event:
    """Calls `set_faults` (on the running loop) for each command; the event is set at the end."""
    loop = asyncio.get_running_loop()
    closed = asyncio.Event()

    def read() -> None:
        for line in sys.stdin:
            command = line.strip()
            if command in ("faults on", "faults off"):
                loop.call_soon_threadsafe(set_faults, command == "faults on")
        loop.call_soon_threadsafe(closed.set)

    threading.Thread(target=read, name="commands", daemon=True).start()
    return closed
