"""SPEC 5's message schema: what producers send and what workers accept."""

from __future__ import annotations

import json

import pytest

from chalicelib.errors import Invalid
from chalicelib.queue import dead_letter_url, parse_message


def test_minimal_message() -> None:
    message = parse_message(json.dumps({"v": 1, "jobId": "abc"}))
    assert message.job_id == "abc"
    assert message.job is None


def test_message_carrying_the_job_spec() -> None:
    message = parse_message(json.dumps({"v": 1, "job": {"jobId": "abc", "jobType": "upload-hls-to-s3"}}))
    assert message.job == {"jobId": "abc", "jobType": "upload-hls-to-s3"}


@pytest.mark.parametrize(
    "body",
    ["not json", "[]", json.dumps({"v": 2, "jobId": "a"}), json.dumps({"jobId": "a"}), json.dumps({"v": 1}), "{}"],
)
def test_malformed_messages_are_invalid(body: str) -> None:
    with pytest.raises(Invalid):
        parse_message(body)


def test_dead_letter_queue_is_named_with_dlq_suffix() -> None:
    url = "https://sqs.us-east-1.amazonaws.com/123/studio-dev-upload-hls-to-s3"
    assert dead_letter_url(url) == url + "-dlq"
