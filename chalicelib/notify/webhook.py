"""POST one signed notification to one URL with the standard library (no new dependency).

Redirects are not followed (a 3xx is the receiver's answer, refused by the rules), so the signed
body goes only where it was configured to. `timeout` bounds connecting and each read.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from chalicelib.notify.rules import Verdict, verdict
from chalicelib.notify.signature import HEADER, signature_header

USER_AGENT = "studio-uploads-notify/1"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError with the 3xx status


class WebhookSink:
    def __init__(self, url: str, secret: str, *, timeout: float, clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self._secret = secret
        self._timeout = timeout
        self._clock = clock
        self._opener = urllib.request.build_opener(_NoRedirects)

    def deliver(self, payload: dict[str, Any]) -> tuple[Verdict, str]:
        """The verdict of one POST, and what to log about it (never the URL: it may carry a token)."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            HEADER: signature_header(self._secret, body, int(self._clock())),
            "X-Studio-Event": str(payload.get("event")),
            "X-Studio-Notification-Id": str(payload.get("notificationId")),
        }
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                return verdict(response.status), f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            return verdict(error.code), f"HTTP {error.code}"
        except (OSError, http.client.HTTPException) as error:  # URLError, timeouts, resets are OSErrors
            return verdict(None), f"no answer: {type(error).__name__}"
