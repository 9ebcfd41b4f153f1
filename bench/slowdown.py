"""The SlowDown fault's rules, pure: which request S3 refuses, how a request's body is framed, the answer.

S3 (and Spaces, past about 1,500 requests per second per IP) answers `503 SlowDown` to requests
above a rate. The proxy (bench/proxy.py --slowdown-rate) plays that with a token bucket: `rate`
tokens a second up to `burst`; a request that finds a token takes it and is forwarded, one that
finds none is answered 503 SlowDown at the proxy (and takes no token: refused requests cost the
server nothing, so a client that keeps retrying does not lock itself out forever).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

SLOWDOWN_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
    "<RequestId>{request_id}</RequestId><HostId>{host_id}</HostId></Error>"
)


class TokenBucket:
    """`rate` admissions a second on average, at most `burst` at once; time is passed in (monotonic s)."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._updated = now

    def admit(self, now: float) -> bool:
        """True (and one token spent) if a request arriving at `now` is within the rate."""
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._updated = max(self._updated, now)
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


@dataclass(frozen=True)
class RequestHead:
    """What the proxy needs of an HTTP/1.1 request head to find where the request ends."""

    method: str
    content_length: int  # 0 without a body
    chunked: bool  # Transfer-Encoding: chunked (then content_length is 0)
    expects_continue: bool  # Expect: 100-continue: the client sends its body only once asked to


def parse_head(head: bytes) -> RequestHead:
    """The request line and headers up to the blank line (RFC 9112: a request without
    Content-Length or Transfer-Encoding has no body)."""
    lines = head.decode("latin-1").split("\r\n")
    method = lines[0].split(" ", 1)[0]
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    length = 0 if chunked else int(headers.get("content-length", "0") or "0")
    expects = headers.get("expect", "").lower() == "100-continue"
    return RequestHead(method, length, chunked, expects)


def slowdown_response(method: str, *, close: bool) -> bytes:
    """S3's 503 SlowDown, as bytes on the wire (no body to a HEAD, whose answer never has one)."""
    body = SLOWDOWN_XML.format(request_id=secrets.token_hex(8).upper(), host_id=secrets.token_hex(16)).encode()
    head = (
        "HTTP/1.1 503 Slow Down\r\n"
        "Content-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: {'close' if close else 'keep-alive'}\r\n"
        "Server: bench-slowdown-proxy\r\n\r\n"
    ).encode()
    return head if method == "HEAD" else head + body
