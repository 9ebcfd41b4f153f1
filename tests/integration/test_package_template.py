"""`make package`: the deployable template of the dev stage, built and linted once per session with no AWS
account (no AWS variables at all, another region than the default)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-central-1"
MAIN_QUEUES = ("upload-hls-to-s3", "upload-master-playlist")
PREFIX = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]["dev"]["environment_variables"][
    "QUEUE_PREFIX"
]


@dataclass
class Package:
    template: dict[str, Any]
    output: str
    directory: Path

    @property
    def resources(self) -> dict[str, Any]:
        return dict(self.template["Resources"])

    def of_type(self, resource_type: str) -> dict[str, Any]:
        return {k: r for k, r in self.resources.items() if r["Type"] == resource_type}

    def functions(self) -> dict[str, Any]:
        return self.of_type("AWS::Serverless::Function")

    def queue_id(self, name: str) -> str:
        """The logical id of the queue whose name (with the stage prefix) is `name`."""
        for logical_id, queue in self.of_type("AWS::SQS::Queue").items():
            if queue["Properties"]["QueueName"]["Fn::Sub"].replace("${QueuePrefix}", PREFIX) == f"{PREFIX}{name}":
                return logical_id
        raise AssertionError(f"no queue {name}")

    def sqs_events(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(function properties, SQS event properties) of every SQS event source."""
        for function in self.functions().values():
            for event in function["Properties"].get("Events", {}).values():
                if event["Type"] == "SQS":
                    yield function["Properties"], event["Properties"]


@pytest.fixture(scope="session")
def package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    directory = tmp_path_factory.mktemp("package")
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "package",
            "STAGE=dev",
            f"PACKAGE_DIR={directory}",
            f"PACKAGE_REGION={REGION}",
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return Package(json.loads((directory / "sam.json").read_text()), output, directory)


def test_cfn_lint_reports_no_error_and_the_code_is_packaged(package: Package) -> None:
    assert "cfn-lint" in package.output
    assert not re.search(r"^E\d{4}", package.output, re.MULTILINE), package.output
    assert (package.directory / "deployment.zip").stat().st_size > 0
    assert {f["Properties"]["Runtime"] for f in package.functions().values()} == {"python3.11"}


def test_the_queues_and_their_redrive(package: Package) -> None:
    for name in (*MAIN_QUEUES, "upload-notifications"):
        queue = package.resources[package.queue_id(name)]["Properties"]
        dead_letter_id = package.queue_id(f"{name}-dlq")
        assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dead_letter_id, "Arn"]}
        assert queue["RedrivePolicy"]["maxReceiveCount"] >= 3
    assert package.template["Parameters"]["QueuePrefix"]["Default"] == PREFIX


def test_the_upload_workers_take_batches_of_one_from_the_template_queues(package: Package) -> None:
    consumers: dict[str, list[tuple[int, int]]] = {}
    for function, event in package.sqs_events():
        (queue_id, attribute) = event["Queue"]["Fn::GetAtt"]
        assert attribute == "Arn"
        consumers.setdefault(queue_id, []).append((event["BatchSize"], function["Timeout"]))
    for name in MAIN_QUEUES:
        assert consumers[package.queue_id(name)] == [(1, 900)]
    assert consumers[package.queue_id("upload-notifications")] == [(1, 60)]


def test_visibility_timeouts_are_six_times_the_consumer_timeout(package: Package) -> None:
    events = list(package.sqs_events())
    assert len(events) >= len(MAIN_QUEUES)
    for function, event in events:
        queue = package.resources[event["Queue"]["Fn::GetAtt"][0]]["Properties"]
        assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]


def test_batches_above_one_report_their_failed_items(package: Package) -> None:
    for _, event in package.sqs_events():
        reports = event.get("FunctionResponseTypes") == ["ReportBatchItemFailures"]
        assert reports == (event["BatchSize"] > 1)


def test_the_maintenance_runs_every_five_minutes(package: Package) -> None:
    schedules = [
        event["Properties"]["Schedule"]
        for function in package.functions().values()
        for event in function["Properties"].get("Events", {}).values()
        if event["Type"] == "Schedule"
    ]
    assert schedules == ["rate(5 minutes)"]


def test_the_websocket_api_and_how_functions_reach_it(package: Package) -> None:
    (api,) = package.of_type("AWS::ApiGatewayV2::Api").values()
    assert api["Properties"]["ProtocolType"] == "WEBSOCKET"
    routes = {r["Properties"]["RouteKey"] for r in package.of_type("AWS::ApiGatewayV2::Route").values()}
    assert routes == {"$connect", "$default", "$disconnect"}
    stage = package.resources["WebsocketAPIStage"]["Properties"]["StageName"]
    for function in package.functions().values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert "${WebsocketAPI}" in variables["WEBSOCKET_API_DOMAIN"]["Fn::Sub"]
        assert variables["WEBSOCKET_API_STAGE"] == stage


def test_functions_get_queue_urls_and_secret_names_never_secret_values(package: Package) -> None:
    secrets_path = package.template["Parameters"]["SecretsPath"]["Default"]
    for function in package.functions().values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["HLS_QUEUE_URL"] == {"Ref": package.queue_id("upload-hls-to-s3")}
        assert variables["MASTER_QUEUE_URL"] == {"Ref": package.queue_id("upload-master-playlist")}
        assert variables["NOTIFY_QUEUE_URL"] == {"Ref": package.queue_id("upload-notifications")}
        assert not {"MONGODB_URI", "SPACES_KEY", "SPACES_SECRET", "AUTH_JWT_SECRET"} & set(variables)
        for name in ("MONGODB_URI_PARAM", "SPACES_KEY_PARAM", "SPACES_SECRET_PARAM", "AUTH_JWT_SECRET_PARAM"):
            assert variables[name].startswith(f"{secrets_path}/")


def test_the_lambda_role_is_scoped_to_this_stack(package: Package) -> None:
    (role,) = package.of_type("AWS::IAM::Role").values()
    assert {"Ref": "StudioUploadsAccessPolicy"} in role["Properties"]["ManagedPolicyArns"]
    statements = [s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    assert not [s for s in statements if s["Resource"] == "*" or str(s["Resource"]).startswith("arn:*:execute-api")]
    (connections,) = [s for s in statements if s["Action"] == ["execute-api:ManageConnections"]]
    assert "${WebsocketAPI}" in connections["Resource"]["Fn::Sub"]
