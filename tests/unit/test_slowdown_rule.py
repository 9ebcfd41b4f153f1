"""The SlowDown proxy's rules (bench/slowdown.py): the request rate S3 refuses above, a request's framing, the answer."""

from __future__ import annotations

import pytest

from bench.slowdown import TokenBucket, parse_head, slowdown_response


def test_a_burst_within_the_bucket_is_admitted_and_the_next_request_is_refused() -> None:
    bucket = TokenBucket(rate=300, burst=60, now=0.0)
    assert all(bucket.admit(0.0) for _ in range(60))
    assert not bucket.admit(0.0)


def test_tokens_come_back_at_the_rate_and_never_beyond_the_burst() -> None:
    bucket = TokenBucket(rate=100, burst=5, now=0.0)
    for _ in range(5):
        bucket.admit(0.0)
    assert not bucket.admit(0.005)  # half a token
    assert bucket.admit(0.011)  # 1.1 tokens by now
    assert not bucket.admit(0.011)
    # A long pause refills to the burst, not to pause x rate.
    assert sum(bucket.admit(60.0) for _ in range(20)) == 5


def test_a_steady_rate_below_the_limit_is_never_refused() -> None:
    bucket = TokenBucket(rate=300, burst=1, now=0.0)
    assert all(bucket.admit(i / 250) for i in range(1, 1000))


def test_over_a_long_run_admissions_follow_the_rate() -> None:
    bucket = TokenBucket(rate=300, burst=60, now=0.0)
    # 1,000 requests a second for 10 s: the burst, then 300 a second.
    admitted = sum(bucket.admit(i / 1000) for i in range(10_000))
    assert 60 + 2990 <= admitted <= 60 + 3000


def test_a_refused_request_takes_no_token() -> None:
    bucket = TokenBucket(rate=10, burst=1, now=0.0)
    assert bucket.admit(0.0)
    for _ in range(100):
        assert not bucket.admit(0.05)
    assert bucket.admit(0.1)


def test_a_clock_going_backwards_adds_no_tokens() -> None:
    bucket = TokenBucket(rate=10, burst=1, now=5.0)
    assert bucket.admit(5.0)
    assert not bucket.admit(4.0)
    assert not bucket.admit(5.05)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 5), (10, 0.5)])
def test_a_bucket_that_could_never_admit_is_refused(rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst, now=0.0)


def test_a_put_with_a_content_length_waiting_on_100_continue() -> None:
    head = parse_head(b"PUT /bucket/key HTTP/1.1\r\nHost: x\r\nContent-Length: 131072\r\nExpect: 100-continue\r\n\r\n")
    assert (head.method, head.content_length, head.chunked, head.expects_continue) == ("PUT", 131072, False, True)


def test_a_chunked_put_and_a_bodiless_get() -> None:
    chunked = parse_head(b"PUT /b/k HTTP/1.1\r\ntransfer-encoding: Chunked\r\ncontent-length: 9\r\n\r\n")
    assert chunked.chunked and chunked.content_length == 0 and not chunked.expects_continue
    get = parse_head(b"GET /b?list-type=2 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (get.method, get.content_length, get.chunked) == ("GET", 0, False)


def test_the_answer_is_s3s_503_slowdown_with_its_xml_body() -> None:
    answer = slowdown_response("PUT", close=False)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 Slow Down\r\n")
    assert f"Content-Length: {len(body)}".encode() in head and b"Connection: keep-alive" in head
    assert b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>" in body


def test_the_answer_to_a_head_request_has_no_body_and_can_close_the_connection() -> None:
    answer = slowdown_response("HEAD", close=True)
    assert answer.endswith(b"\r\n\r\n") and b"Connection: close" in answer and b"Content-Length: " in answer
