"""infra/resources.json, the part merged into Chalice's template, deployed into moto's CloudFormation over HTTP.

moto's CloudFormation does not implement AWS::CloudWatch::Alarm (it skips it with a warning): each alarm of the
template is resolved against the resources the stack did create and put into moto's CloudWatch, which checks
that it is a valid alarm on this stack's queues and topic.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

RESOURCES = Path(__file__).resolve().parents[2] / "infra" / "resources.json"
WORKER_TIMEOUT_SECONDS = 900
NOTIFY_TIMEOUT_SECONDS = 60  # deliver_notifications' lambda_timeout in .chalice/config.json


def client(service: str, endpoint: str) -> Any:
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


@dataclass
class Stack:
    endpoint: str
    prefix: str
    parameters: dict[str, str]
    physical_ids: dict[str, str]
    template: dict[str, Any]

    def queue_url(self, suffix: str) -> str:
        return str(client("sqs", self.endpoint).get_queue_url(QueueName=f"{self.prefix}{suffix}")["QueueUrl"])

    def queue_attributes(self, suffix: str) -> dict[str, str]:
        sqs = client("sqs", self.endpoint)
        return dict(sqs.get_queue_attributes(QueueUrl=self.queue_url(suffix), AttributeNames=["All"])["Attributes"])

    def policy_document(self, logical_id: str) -> dict[str, Any]:
        iam = client("iam", self.endpoint)
        arn = self.physical_ids[logical_id]
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        return json.loads(document) if isinstance(document, str) else dict(document)

    def resolve(self, value: Any) -> Any:
        """The intrinsic functions the alarms use, against this stack's parameters and resources."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if "Ref" in value:
            return self.parameters.get(value["Ref"]) or self.physical_ids[value["Ref"]]
        if "Fn::Sub" in value:
            return re.sub(r"\$\{(\w+)\}", lambda match: self.parameters[match[1]], value["Fn::Sub"])
        if "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            assert attribute == "QueueName", f"no resolver for {attribute}"
            return self.physical_ids[logical_id].rsplit("/", 1)[1]
        return {key: self.resolve(item) for key, item in value.items()}


def deploy(endpoint: str, parameters: dict[str, str]) -> Stack:
    cloudformation = client("cloudformation", endpoint)
    name = f"studio-{parameters['QueuePrefix']}stack"
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=RESOURCES.read_text(),
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    status = cloudformation.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    assert status == "CREATE_COMPLETE"
    resources = cloudformation.describe_stack_resources(StackName=name)["StackResources"]
    physical_ids = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources if "LogicalResourceId" in r}
    defaults = {key: str(p.get("Default", "")) for key, p in json.loads(RESOURCES.read_text())["Parameters"].items()}
    return Stack(
        endpoint, parameters["QueuePrefix"], {**defaults, **parameters}, physical_ids, json.loads(RESOURCES.read_text())
    )


@pytest.fixture
def stack(moto_endpoint: str) -> Iterator[Stack]:
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    parameters = {
        "QueuePrefix": prefix,
        "SecretsPath": "/studio-uploads/test",
        "SourceBuckets": "staging-a,staging-b",
        "AlarmEmail": "ops@example.com",
        "Stage": "test",
    }
    deployed = deploy(moto_endpoint, parameters)
    yield deployed
    client("cloudformation", moto_endpoint).delete_stack(StackName=f"studio-{prefix}stack")


@pytest.mark.parametrize(
    ("queue", "consumer_timeout"),
    [
        ("upload-hls-to-s3", WORKER_TIMEOUT_SECONDS),
        ("upload-master-playlist", WORKER_TIMEOUT_SECONDS),
        ("upload-notifications", NOTIFY_TIMEOUT_SECONDS),
    ],
)
def test_each_queue_redrives_to_its_dead_letter_queue(stack: Stack, queue: str, consumer_timeout: int) -> None:
    main = stack.queue_attributes(queue)
    dead = stack.queue_attributes(f"{queue}-dlq")
    redrive = json.loads(main["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dead["QueueArn"]
    assert int(redrive["maxReceiveCount"]) >= 3
    assert int(main["VisibilityTimeout"]) >= 6 * consumer_timeout
    assert int(dead["MessageRetentionPeriod"]) == 14 * 24 * 3600


def test_the_alarms_watch_this_stacks_dead_letter_depth_and_message_age(stack: Stack) -> None:
    cloudwatch = client("cloudwatch", stack.endpoint)
    alarms = {
        k: r["Properties"] for k, r in stack.template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    for properties in alarms.values():
        resolved = stack.resolve(properties)
        cloudwatch.put_metric_alarm(**{**resolved, "Threshold": float(resolved["Threshold"])})
    names = [stack.resolve(properties["AlarmName"]) for properties in alarms.values()]
    described = cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]
    watched = {(a["MetricName"], a["Dimensions"][0]["Value"]) for a in described if "MetricName" in a}
    assert watched == {
        ("ApproximateNumberOfMessagesVisible", f"{stack.prefix}upload-hls-to-s3-dlq"),
        ("ApproximateNumberOfMessagesVisible", f"{stack.prefix}upload-master-playlist-dlq"),
        ("ApproximateNumberOfMessagesVisible", f"{stack.prefix}upload-notifications-dlq"),
        ("ApproximateAgeOfOldestMessage", f"{stack.prefix}upload-hls-to-s3"),
        ("ApproximateAgeOfOldestMessage", f"{stack.prefix}upload-master-playlist"),
        ("OldestWaitingJobAgeSeconds", "test"),  # the scheduled maintenance's metric, this stage's
    }
    topics = {t["TopicArn"] for t in client("sns", stack.endpoint).list_topics()["Topics"]}
    assert all(alarm["AlarmActions"] == [stack.physical_ids["AlarmTopic"]] for alarm in described)
    assert stack.physical_ids["AlarmTopic"] in topics
    for suffix in (
        "upload-hls-to-s3",
        "upload-master-playlist",
        "upload-hls-to-s3-dlq",
        "upload-master-playlist-dlq",
        "upload-notifications-dlq",
    ):
        stack.queue_url(suffix)  # every watched queue exists


def test_the_access_policy_covers_the_four_queues_and_the_stage_secrets(stack: Stack) -> None:
    statements = {s["Sid"]: s for s in stack.policy_document("StudioUploadsAccessPolicy")["Statement"]}
    queue_arns = {
        stack.queue_attributes(suffix)["QueueArn"]
        for suffix in (
            "upload-hls-to-s3",
            "upload-master-playlist",
            "upload-hls-to-s3-dlq",
            "upload-master-playlist-dlq",
        )
    }
    assert set(statements["UploadQueues"]["Resource"]) == queue_arns
    assert {"sqs:SendMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"} <= set(
        statements["UploadQueues"]["Action"]
    )
    notification_arns = {
        stack.queue_attributes(suffix)["QueueArn"] for suffix in ("upload-notifications", "upload-notifications-dlq")
    }
    assert set(statements["NotificationQueues"]["Resource"]) == notification_arns
    assert statements["NotificationEmail"]["Action"] == ["ses:SendEmail"]
    assert "ssm:GetParameters" in statements["StageSecrets"]["Action"]
    assert statements["StageSecrets"]["Resource"].endswith(":parameter/studio-uploads/test/*")


def test_staging_buckets_get_read_access_only_when_named(stack: Stack, moto_endpoint: str) -> None:
    (staging,) = stack.policy_document("StagingBucketsAccessPolicy")["Statement"]
    assert set(staging["Resource"]) == {
        "arn:aws:s3:::staging-a",
        "arn:aws:s3:::staging-b",
        "arn:aws:s3:::staging-a/*",
        "arn:aws:s3:::staging-b/*",
    }
    without = deploy(moto_endpoint, {"QueuePrefix": f"t{uuid.uuid4().hex[:8]}-"})
    assert "StagingBucketsAccessPolicy" not in without.physical_ids
    client("cloudformation", moto_endpoint).delete_stack(StackName=f"studio-{without.prefix}stack")


def test_the_failure_rate_alarm_divides_this_stages_failures_by_its_finished_jobs(stack: Stack) -> None:
    cloudwatch = client("cloudwatch", stack.endpoint)
    properties = stack.resolve(stack.template["Resources"]["JobFailureRateAlarm"]["Properties"])
    cloudwatch.put_metric_alarm(**{**properties, "Threshold": float(properties["Threshold"])})

    [alarm] = cloudwatch.describe_alarms(AlarmNames=[f"{stack.prefix}job-failure-rate"])["MetricAlarms"]
    queries = {query["Id"]: query for query in alarm["Metrics"]}
    for name, metric in (("failed", "JobsFailed"), ("completed", "JobsCompleted")):
        stat = queries[name]["MetricStat"]
        assert stat["Metric"] == {
            "Namespace": "StudioUploads",
            "MetricName": metric,
            "Dimensions": [{"Name": "stage", "Value": "test"}],
        }
        assert (stat["Period"], stat["Stat"]) == (15 * 60, "Sum")
    assert queries["rate"]["Expression"] == "IF(finished >= 5, 100 * FILL(failed, 0) / finished, 0)"
    assert [query["Id"] for query in alarm["Metrics"] if query["ReturnData"]] == ["rate"]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (10.0, "GreaterThanThreshold")
    assert alarm["AlarmActions"] == [stack.physical_ids["AlarmTopic"]]
