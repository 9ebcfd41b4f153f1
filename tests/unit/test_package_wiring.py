"""infra/package.py binds the app's handlers to the merged infrastructure, and refuses what would not deploy."""

from __future__ import annotations

import copy
import json
import types
from pathlib import Path
from typing import Any

import pytest

from infra.package import PackagingError, enter_through_app, wire

RESOURCES = json.loads((Path(__file__).resolve().parents[2] / "infra" / "resources.json").read_text())
STAGE_ENV = {
    "STAGE": "dev",
    "QUEUE_PREFIX": "studio-dev-",
    "MONGODB_URI_PARAM": "/studio-uploads/dev/mongodb-uri",
    "AUTH_JWT_SECRET_PARAM": "/studio-uploads/dev/auth-jwt-secret",
}
ROLE = {
    "Type": "AWS::IAM::Role",
    "Properties": {
        "AssumeRolePolicyDocument": {
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ]
        },
        "Policies": [],
    },
}


def merged(queue_name: str, *, timeout: int = 900, batch_size: int = 1) -> dict[str, Any]:
    """A template as `chalice package --merge-template` leaves it: one worker on `queue_name`."""
    template = copy.deepcopy(RESOURCES)
    template["Resources"]["DefaultRole"] = copy.deepcopy(ROLE)
    template["Resources"]["UploadHlsWorker"] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "Handler": "chalicelib.blueprints.workers.upload_hls_worker",
            "Timeout": timeout,
            "Events": {
                "UploadHlsWorkerSqsEventSource": {
                    "Type": "SQS",
                    "Properties": {
                        "Queue": {
                            "Fn::Sub": f"arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:{queue_name}"
                        },
                        "BatchSize": batch_size,
                    },
                }
            },
        },
    }
    return template


def stage(**env: str) -> dict[str, Any]:
    return {"environment_variables": {**STAGE_ENV, **env}, "lambda_functions": {"upload_hls_worker": {}}}


def test_the_event_source_reads_the_template_queue_and_the_function_gets_its_url() -> None:
    template = wire(merged("studio-dev-upload-hls-to-s3"), stage())
    worker = template["Resources"]["UploadHlsWorker"]["Properties"]
    source = worker["Events"]["UploadHlsWorkerSqsEventSource"]["Properties"]
    assert source["Queue"] == {"Fn::GetAtt": ["HlsUploadQueue", "Arn"]}
    assert "FunctionResponseTypes" not in source
    assert worker["Environment"]["Variables"]["HLS_QUEUE_URL"] == {"Ref": "HlsUploadQueue"}
    assert template["Parameters"]["SecretsPath"]["Default"] == "/studio-uploads/dev"


def test_a_handler_on_a_queue_of_another_prefix_stops_the_build() -> None:
    with pytest.raises(PackagingError, match=r"upload-hls-to-s3.*QUEUE_PREFIX"):
        wire(merged("upload-hls-to-s3"), stage())


def test_a_consumer_outliving_the_visibility_timeout_stops_the_build() -> None:
    template = merged("studio-dev-upload-hls-to-s3-dlq", timeout=900)
    with pytest.raises(PackagingError, match="visibility timeout 360 s is below UploadHlsWorker's 900 s"):
        wire(template, stage())


def test_settings_for_a_function_the_app_lacks_stop_the_build() -> None:
    settings = stage()
    settings["lambda_functions"]["upload_hsl_worker"] = {"lambda_timeout": 900}
    with pytest.raises(PackagingError, match="upload_hsl_worker"):
        wire(merged("studio-dev-upload-hls-to-s3"), settings)


def test_the_alarms_read_the_metrics_of_the_stage_and_a_stage_without_stage_stops_the_build() -> None:
    template = wire(merged("studio-dev-upload-hls-to-s3"), stage(STAGE="prod"))
    assert template["Parameters"]["Stage"]["Default"] == "prod"
    with pytest.raises(PackagingError, match="STAGE"):
        wire(merged("studio-dev-upload-hls-to-s3"), stage(STAGE=""))


def test_secrets_must_share_one_path_the_role_can_read() -> None:
    with pytest.raises(PackagingError, match="one SSM path"):
        wire(merged("studio-dev-upload-hls-to-s3"), stage(SPACES_KEY_PARAM="/elsewhere/spaces-key"))


def test_a_handler_re_exported_by_app_py_is_entered_through_it() -> None:
    from chalicelib.blueprints import workers

    resources = wire(merged("studio-dev-upload-hls-to-s3"), stage())["Resources"]
    worker = resources["UploadHlsWorker"]["Properties"]

    assert enter_through_app(resources, types.SimpleNamespace()) == [
        "UploadHlsWorker (chalicelib.blueprints.workers.upload_hls_worker)"
    ]
    assert worker["Handler"] == "chalicelib.blueprints.workers.upload_hls_worker"

    app = types.SimpleNamespace(upload_hls_worker=workers.upload_hls_worker)
    assert enter_through_app(resources, app) == []
    assert worker["Handler"] == "app.upload_hls_worker"
