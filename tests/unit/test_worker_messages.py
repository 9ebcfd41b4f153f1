"""A queue message that carries its job is validated exactly like the API's create body."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.config import Settings
from chalicelib.errors import Invalid
from chalicelib.queue import parse_message
from chalicelib.usecases.intake import message_job_id, spec_request

SPEC = {
    "jobType": "upload-hls-to-s3",
    "resourceType": "film",
    "resourceId": "64b7f0c2a1b2c3d4e5f60718",
    "hlsDir": "films/x/720p",
    "label": "720p",
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(stage="test", source_root=tmp_path)


def test_the_job_id_comes_from_the_message_or_its_job() -> None:
    assert message_job_id(parse_message('{"v": 1, "jobId": "a"}')) == "a"
    assert message_job_id(parse_message('{"v": 1, "job": {"jobId": "b"}}')) == "b"


def test_a_valid_spec_becomes_a_create_request_with_the_message_job_id(settings: Settings) -> None:
    request = spec_request("job-1", SPEC, settings)

    assert (request.job_id, request.label, request.content_type) == ("job-1", "720p", "video")


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ({**SPEC, "jobId": "someone-else"}, "jobId"),
        ({**SPEC, "resourceId": "not-an-object-id"}, "resourceId"),
        ({key: value for key, value in SPEC.items() if key != "label"}, "label"),
        ({**SPEC, "hlsDir": "../../etc"}, "hlsDir"),
        ({**SPEC, "hlsDir": "s3://not-allowed/x"}, "hlsDir"),
        ({**SPEC, "colour": "blue"}, "colour"),
    ],
)
def test_an_invalid_spec_is_refused_naming_the_field(settings: Settings, spec: dict[str, str], names: str) -> None:
    with pytest.raises(Invalid, match=names):
        spec_request("job-1", spec, settings)
