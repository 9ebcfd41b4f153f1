"""Build the deployable template of a stage: `chalice package` merged with infra/resources.json, then wired.

    python infra/package.py --stage dev --out build/package

Chalice merges infra/resources.json (the queues, alarms, IAM) into its SAM template. What a static merge file
cannot say, because it depends on the handlers app.py has, is done here on the merged template:

- every SQS event source must read one of the template's queues: its `Fn::Sub` ARN becomes a `Fn::GetAtt`, so
  CloudFormation creates the queue before the mapping; a handler on an unknown queue stops the build;
- SQS event sources with batches above 1 get `FunctionResponseTypes: [ReportBatchItemFailures]` (Chalice cannot
  set it); a function with reserved concurrency gets a matching `ScalingConfig` so the poller never throttles it;
- every function gets HLS_QUEUE_URL, MASTER_QUEUE_URL, NOTIFY_QUEUE_URL and, with a WebSocket API, WEBSOCKET_API_DOMAIN/STAGE from
  the template itself (no account id in .chalice/config.json);
- the Lambda role gets the access policy of infra/resources.json, and Chalice's wildcard SQS and
  `execute-api:ManageConnections` statements are replaced by ones scoped to this stack's queues and WebSocket API;
- the template's parameter defaults follow the stage (STAGE, QUEUE_PREFIX, the secrets' SSM path, SOURCE_BUCKETS);
- a Blueprint's handler that app.py re-exports is entered through `app.<name>`, so Lambda imports app.py and its
  middleware wraps the handler (aws/chalice#1566); the others are named in a warning.

`chalice package` runs with fake credentials: it needs a region, never an account.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import posixpath
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "infra" / "resources.json"
CHALICE_CONFIG = ROOT / ".chalice" / "config.json"

QUEUE_URL_VARIABLES = {
    "HLS_QUEUE_URL": "HlsUploadQueue",
    "MASTER_QUEUE_URL": "MasterPlaylistQueue",
    "NOTIFY_QUEUE_URL": "NotificationQueue",
}
SECRET_VARIABLES = ("MONGODB_URI_PARAM", "SPACES_KEY_PARAM", "SPACES_SECRET_PARAM", "AUTH_JWT_SECRET_PARAM")
# Chalice names these functions itself; every other function is named after its handler.
CHALICE_FUNCTION_IDS = {"api_handler": "APIHandler"}
QUEUE_ARN = re.compile(r"^arn:\$\{AWS::Partition\}:sqs:\$\{AWS::Region\}:\$\{AWS::AccountId\}:(?P<name>.+)$")
FUNCTION = "AWS::Serverless::Function"


class PackagingError(Exception):
    """The app and the infrastructure do not fit together; the message says how."""


def stage_config(stage: str, config_path: Path = CHALICE_CONFIG) -> dict[str, Any]:
    """The stage's section of .chalice/config.json, with the top-level environment merged under it."""
    config = json.loads(config_path.read_text())
    if stage not in config.get("stages", {}):
        raise PackagingError(f"no stage {stage!r} in {config_path}")
    section = dict(config["stages"][stage])
    section["environment_variables"] = {
        **config.get("environment_variables", {}),
        **section.get("environment_variables", {}),
    }
    return section


def packaging_environment(stage_env: dict[str, str], region: str) -> dict[str, str]:
    """What app.py sees when Chalice imports it: the stage's variables, as in Lambda, and no real account."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(stage_env)
    env.update(
        AWS_DEFAULT_REGION=region,
        AWS_ACCESS_KEY_ID="packaging-needs-no-account",
        AWS_SECRET_ACCESS_KEY="packaging-needs-no-account",
    )
    return env


def run_chalice_package(stage: str, out: Path, env: dict[str, str]) -> dict[str, Any]:
    chalice = Path(sys.executable).with_name("chalice")
    command = [str(chalice), "package", "--stage", stage, "--merge-template", str(RESOURCES), str(out)]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PackagingError(f"chalice package failed:\n{result.stdout}{result.stderr}")
    template: dict[str, Any] = json.loads((out / "sam.json").read_text())
    return template


def wire(template: dict[str, Any], stage: dict[str, Any]) -> dict[str, Any]:
    """Bind the app's handlers to the merged infrastructure (see the module docstring)."""
    env: dict[str, str] = stage["environment_variables"]
    resources: dict[str, Any] = template["Resources"]
    set_parameter_defaults(template, env)
    queues = queue_ids_by_name(resources, env.get("QUEUE_PREFIX", ""))
    websocket_stage = websocket_stage_name(resources)
    for function_id, function in functions(resources).items():
        set_environment(function, websocket_stage)
        for event_name, event in function["Properties"].get("Events", {}).items():
            if event["Type"] == "SQS":
                bind_queue(function_id, event_name, event["Properties"], function, queues, resources)
    for role in lambda_roles(resources).values():
        scope_role(role, websocket_stage)
    repoint_log_groups(resources)
    check_function_settings(stage, resources)
    return template


def set_parameter_defaults(template: dict[str, Any], env: dict[str, str]) -> None:
    parameters = template["Parameters"]
    if not env.get("STAGE"):
        raise PackagingError("the stage sets no STAGE: the functions need it, and the alarms read their metrics by it")
    parameters["Stage"]["Default"] = env["STAGE"]
    parameters["QueuePrefix"]["Default"] = env.get("QUEUE_PREFIX", "")
    parameters["SecretsPath"]["Default"] = secrets_path(env)
    parameters["SourceBuckets"]["Default"] = env.get("SOURCE_BUCKETS", "")


def secrets_path(env: dict[str, str]) -> str:
    """The SSM path under which every secret parameter of the stage lives (what the role may read)."""
    names = [env[variable] for variable in SECRET_VARIABLES if env.get(variable)]
    if not names:
        raise PackagingError(f"the stage names no secret parameter ({', '.join(SECRET_VARIABLES)})")
    parents = {posixpath.dirname(name) for name in names}
    if len(parents) != 1 or not names[0].startswith("/") or parents == {"/"}:
        raise PackagingError(f"the secret parameters must share one SSM path like /studio-uploads/dev: {names}")
    return parents.pop()


def queue_ids_by_name(resources: dict[str, Any], prefix: str) -> dict[str, str]:
    """Queue name as the handlers see it (QUEUE_PREFIX resolved) -> the queue's logical id."""
    names = {}
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::SQS::Queue":
            name = resource["Properties"]["QueueName"]["Fn::Sub"].replace("${QueuePrefix}", prefix)
            names[name] = logical_id
    return names


def functions(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {logical_id: resource for logical_id, resource in resources.items() if resource["Type"] == FUNCTION}


def websocket_stage_name(resources: dict[str, Any]) -> str | None:
    stage = resources.get("WebsocketAPIStage")
    return str(stage["Properties"]["StageName"]) if stage else None


def set_environment(function: dict[str, Any], websocket_stage: str | None) -> None:
    variables = function["Properties"].setdefault("Environment", {}).setdefault("Variables", {})
    for variable, queue_id in QUEUE_URL_VARIABLES.items():
        variables[variable] = {"Ref": queue_id}
    if websocket_stage is not None:
        variables["WEBSOCKET_API_DOMAIN"] = {"Fn::Sub": "${WebsocketAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}
        variables["WEBSOCKET_API_STAGE"] = websocket_stage


def bind_queue(
    function_id: str,
    event_name: str,
    properties: dict[str, Any],
    function: dict[str, Any],
    queues: dict[str, str],
    resources: dict[str, Any],
) -> None:
    queue = properties["Queue"]
    match = QUEUE_ARN.match(queue.get("Fn::Sub", "")) if isinstance(queue, dict) else None
    if match is None or match["name"] not in queues:
        raise PackagingError(
            f"{function_id}.{event_name} reads {queue!r}, which is none of the template's queues "
            f"{sorted(queues)}: is QUEUE_PREFIX the stage's?"
        )
    queue_id = queues[match["name"]]
    properties["Queue"] = {"Fn::GetAtt": [queue_id, "Arn"]}
    if properties.get("BatchSize", 1) > 1:
        properties["FunctionResponseTypes"] = ["ReportBatchItemFailures"]
    reserved = function["Properties"].get("ReservedConcurrentExecutions")
    if reserved is not None and reserved >= 2 and "ScalingConfig" not in properties:
        properties["ScalingConfig"] = {"MaximumConcurrency": reserved}
    visibility = resources[queue_id]["Properties"]["VisibilityTimeout"]
    timeout = function["Properties"]["Timeout"]
    if visibility < timeout:
        raise PackagingError(f"{queue_id}'s visibility timeout {visibility} s is below {function_id}'s {timeout} s")


def lambda_roles(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    def assumed_by_lambda(role: dict[str, Any]) -> bool:
        statements = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        return any(s.get("Principal", {}).get("Service") == "lambda.amazonaws.com" for s in statements)

    return {
        logical_id: resource
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::IAM::Role" and assumed_by_lambda(resource)
    }


def scope_role(role: dict[str, Any], websocket_stage: str | None) -> None:
    properties = role["Properties"]
    managed = properties.setdefault("ManagedPolicyArns", [])
    managed.append({"Ref": "StudioUploadsAccessPolicy"})
    managed.append({"Fn::If": ["HasSourceBuckets", {"Ref": "StagingBucketsAccessPolicy"}, {"Ref": "AWS::NoValue"}]})
    for policy in properties.get("Policies", []):
        statements = policy["PolicyDocument"]["Statement"]
        statements[:] = [s for s in statements if not is_chalice_wildcard(s)]
    if websocket_stage is not None:
        properties.setdefault("Policies", []).append(websocket_policy(websocket_stage))


def is_chalice_wildcard(statement: dict[str, Any]) -> bool:
    """Chalice's own grants on every queue / every WebSocket API of the account; ours are scoped."""
    actions = statement.get("Action", [])
    resource = statement.get("Resource")
    sqs_anywhere = resource == "*" and all(action.startswith("sqs:") for action in actions)
    any_websocket = actions == ["execute-api:ManageConnections"] and str(resource).startswith("arn:*:execute-api:*")
    return sqs_anywhere or any_websocket


def websocket_policy(websocket_stage: str) -> dict[str, Any]:
    connections = (
        "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebsocketAPI}/"
        f"{websocket_stage}/*/@connections/*"
    )
    return {
        "PolicyName": "WebsocketConnections",
        "PolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["execute-api:ManageConnections"], "Resource": {"Fn::Sub": connections}}
            ],
        },
    }


def repoint_log_groups(resources: dict[str, Any]) -> None:
    """Chalice 1.34 names the API handler's log group after `ApiHandler`, then renames the function `APIHandler`."""
    renamed = {
        f"${{{to_cfn_resource_name(name)}}}": f"${{{logical_id}}}" for name, logical_id in CHALICE_FUNCTION_IDS.items()
    }
    for resource in resources.values():
        if resource["Type"] == "AWS::Logs::LogGroup":
            name = resource["Properties"]["LogGroupName"]
            for wrong, right in renamed.items():
                name["Fn::Sub"] = name["Fn::Sub"].replace(wrong, right)


def enter_through_app(resources: dict[str, Any], app_module: Any) -> list[str]:
    """Point blueprint handlers at their re-export in app.py, where app.py has one; name those it lacks.

    Chalice gives a Blueprint's event handler the blueprint's module as Lambda entry point, so Lambda never
    imports app.py for it: the blueprints are never registered and the app's middleware (the realtime event
    flush among them) never wraps the handler (aws/chalice#1566). Entering through `app.<name>` fixes that.
    """
    bypassing = []
    for logical_id, function in functions(resources).items():
        module_name, _, attribute = function["Properties"]["Handler"].rpartition(".")
        if module_name == "app":
            continue
        handler = getattr(importlib.import_module(module_name), attribute)
        if getattr(app_module, attribute, None) is handler:
            function["Properties"]["Handler"] = f"app.{attribute}"
        else:
            bypassing.append(f"{logical_id} ({module_name}.{attribute})")
    return bypassing


def check_function_settings(stage: dict[str, Any], resources: dict[str, Any]) -> None:
    """Chalice ignores settings for a function the app does not have: a renamed handler would lose them."""
    known = set(functions(resources))
    for name in stage.get("lambda_functions", {}):
        if CHALICE_FUNCTION_IDS.get(name, to_cfn_resource_name(name)) not in known:
            raise PackagingError(f"lambda_functions names {name!r}, which the app has no function for")


def to_cfn_resource_name(name: str) -> str:
    from chalice.utils import to_cfn_resource_name as chalice_name

    return str(chalice_name(name))


def import_app(env: dict[str, str]) -> Any:
    """app.py as Lambda imports it: with the stage's variables (QUEUE_PREFIX is read at import)."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    return importlib.import_module("app")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "package")
    args = parser.parse_args(argv)
    try:
        stage = stage_config(args.stage)
        env = packaging_environment(stage["environment_variables"], args.region)
        template = wire(run_chalice_package(args.stage, args.out, env), stage)
    except PackagingError as exc:
        print(f"package: {exc}", file=sys.stderr)
        return 1
    bypassing = enter_through_app(template["Resources"], import_app(env))
    if bypassing:
        names = ", ".join(bypassing)
        print(f"package: warning: Lambda would enter {names} without app.py (no middleware): re-export them in app.py")
    (args.out / "sam.json").write_text(json.dumps(template, indent=2) + "\n")
    print(f"package: {args.out / 'sam.json'} ({len(functions(template['Resources']))} functions) and deployment.zip")
    return 0


if __name__ == "__main__":
    sys.exit(main())
