"""`make fuzz`: schemathesis against the local runtime (the same stack `make run` starts).

The schema is the one the running API serves (`GET /v1/openapi.json`). Every operation gets
positive and negative cases with a valid admin token, then a sample with bad tokens (none, garbage,
`alg: none`, HS512, expired, not yet valid, no `exp`, another key, a non-admin). Operations on one
job run against random ids and against real jobs made first, so the 200s and 409s are reached too.

Counted: operations covered, requests sent, server errors (5xx), schema mismatches (status code,
content type, headers or body not as documented), negative inputs accepted (2xx for input the
schema forbids), and bad tokens let through. All but the first two must be 0; exit 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

SCHEMA_CHECKS = (
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)
RESOURCE = "64b7f0c2a1b2c3d4e5f60718"


@dataclass
class Report:
    operations: set[str] = field(default_factory=set)
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    schema_mismatches: list[str] = field(default_factory=list)
    negative_accepted: list[str] = field(default_factory=list)
    tokens_let_through: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.server_errors or self.schema_mismatches or self.negative_accepted or self.tokens_let_through)

    def lines(self, seconds: float, total_operations: int) -> list[str]:
        lines = [
            f"operations covered:      {len(self.operations)} of {total_operations}",
            f"requests sent:           {self.requests} in {seconds:.1f} s",
            "status codes:            " + ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items())),
            f"server errors:           {len(self.server_errors)}",
            f"schema mismatches:       {len(self.schema_mismatches)}",
            f"negative input accepted: {len(self.negative_accepted)}",
            f"bad tokens let through:  {len(self.tokens_let_through)}",
        ]
        for title, found in (
            ("server error", self.server_errors),
            ("schema mismatch", self.schema_mismatches),
            ("negative input accepted", self.negative_accepted),
            ("bad token let through", self.tokens_let_through),
        ):
            lines += [f"  {title}: {item}" for item in sorted(set(found))[:20]]
        return lines


def bad_tokens(secret: str) -> dict[str, str | None]:
    """Authorization header values that must each be answered 401 (403 for the non-admin)."""
    now = int(time.time())
    admin = {"sub": "fuzz", "roles": ["admin"]}
    return {
        "no token": None,
        "garbage": "Bearer not-a-jwt",
        "basic scheme": "Basic YWRtaW46YWRtaW4=",
        "alg none": "Bearer " + jwt.encode({**admin, "exp": now + 600}, key=None, algorithm="none"),
        "wrong alg HS512": "Bearer " + jwt.encode({**admin, "exp": now + 600}, secret * 2, algorithm="HS512"),
        "expired": "Bearer " + jwt.encode({**admin, "exp": now - 60}, secret, algorithm="HS256"),
        "nbf in the future": "Bearer "
        + jwt.encode({**admin, "exp": now + 600, "nbf": now + 300}, secret, algorithm="HS256"),
        "no exp": "Bearer " + jwt.encode(admin, secret, algorithm="HS256"),
        "another key": "Bearer " + jwt.encode({**admin, "exp": now + 600}, "x" * 40, algorithm="HS256"),
        "not admin": "Bearer " + jwt.encode({"sub": "viewer", "roles": ["viewer"], "exp": now + 600}, secret),
    }


class Fuzzer:
    def __init__(self, base_url: str, admin_token: str, secret: str, examples: int, report: Report) -> None:
        self.base_url = base_url.rstrip("/")
        self.admin = {"Authorization": f"Bearer {admin_token}"}
        self.secret = secret
        self.examples = examples
        self.report = report
        self.session = requests.Session()
        # Loaded as a document: schemathesis leaves out the operation that serves the schema it read.
        self.document = self.session.get(f"{self.base_url}/v1/openapi.json").json()
        self.schema = schemathesis.openapi.from_dict(self.document)

    def operations(self) -> list[Any]:
        return [result.ok() for result in self.schema.get_all_operations()]

    def real_job_ids(self) -> list[str]:
        """Two fresh jobs: one as created (the worker may take it) and one cancelled (finished)."""
        ids = []
        for index in range(2):
            body = {
                "jobType": "upload-hls-to-s3",
                "resourceType": "film",
                "resourceId": RESOURCE,
                "hlsDir": f"fuzz/missing-{index}",
                "label": "720p",
            }
            response = self.session.post(f"{self.base_url}/v1/studio/upload-jobs", json=body, headers=self.admin)
            response.raise_for_status()
            ids.append(str(response.json()["jobId"]))
        cancel = self.session.post(f"{self.base_url}/v1/studio/upload-jobs/{ids[1]}/cancel", headers=self.admin)
        if cancel.status_code not in (200, 409):  # 409: the worker had already failed it
            cancel.raise_for_status()
        return ids

    def run(self) -> None:
        for operation in self.operations():
            label = f"{operation.method.upper()} {operation.path}"
            self.report.operations.add(label)
            fixed: list[dict[str, Any] | None] = [None]
            if "{jobId}" in operation.path:
                fixed += [{"jobId": job_id} for job_id in self.real_job_ids()]
            for path_parameters in fixed:
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    self._explore(operation, label, mode, path_parameters)
                for body in self.body_examples(operation):
                    self._explore(operation, label, GenerationMode.POSITIVE, path_parameters, body=body)
            for name, header in bad_tokens(self.secret).items():
                self._explore(operation, label, GenerationMode.POSITIVE, None, token=(name, header))

    def body_examples(self, operation: Any) -> list[Any]:
        """The documented examples of the operation's body (valid ones: random bodies rarely are)."""
        raw = self.document["paths"][operation.path][operation.method.lower()]
        reference = raw.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
        name = str(reference.get("$ref", "")).rsplit("/", 1)[-1]
        return list(self.document["components"]["schemas"].get(name, {}).get("examples", []))

    def _explore(
        self,
        operation: Any,
        label: str,
        mode: GenerationMode,
        path_parameters: dict[str, Any] | None,
        token: tuple[str, str | None] | None = None,
        body: Any = None,
    ) -> None:
        fixed = {"body": body} if body is not None else {}
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters, **fixed)
        examples = 1 if body is not None else self.examples if token is None else max(1, self.examples // 10)

        @seed(12)
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(strategy)
        def one(case: Any) -> None:
            self._send(case, label, mode, token)

        # Unsatisfiable: nothing to make negative (an operation without parameters or body).
        with contextlib.suppress(Unsatisfiable):
            one()

    def _send(self, case: Any, label: str, mode: GenerationMode, token: tuple[str, str | None] | None) -> None:
        headers = dict(case.headers or {})
        headers.pop("Authorization", None)
        if token is None:
            headers.update(self.admin)
        elif token[1] is not None:
            headers["Authorization"] = token[1]
        case.headers = headers
        self.report.requests += 1
        try:
            response = case.call(base_url=self.base_url, session=self.session)
        except requests.RequestException as error:  # the server dropped the connection: a server fault
            self.report.server_errors.append(f"{label} [{mode.value}]: no answer: {error}"[:300])
            return
        self.report.statuses[response.status_code] += 1
        where = f"{label} [{mode.value}{', ' + token[0] if token else ''}] -> {response.status_code}"
        self._check(case, response, [not_a_server_error], self.report.server_errors, where)
        self._check(case, response, list(SCHEMA_CHECKS), self.report.schema_mismatches, where)
        if mode is GenerationMode.NEGATIVE and token is None and case.meta is not None:
            self._check(case, response, [negative_data_rejection], self.report.negative_accepted, where)
        if token is not None:
            expected = 403 if token[0] == "not admin" else 401
            public = case.operation.definition.raw.get("security") == []
            if not public and response.status_code != expected:
                self.report.tokens_let_through.append(f"{where} (expected {expected})")

    @staticmethod
    def _check(case: Any, response: Any, checks: list[Callable[..., Any]], into: list[str], where: str) -> None:
        try:
            case.validate_response(response, checks=checks)
        except BaseExceptionGroup as failures:  # schemathesis's FailureGroup: one entry per failed check
            into += [f"{where}: {_first_line(failure)}" for failure in failures.exceptions]
        except Exception as failure:
            into.append(f"{where}: {_first_line(failure)}")


def _first_line(failure: BaseException) -> str:
    title = getattr(failure, "title", "") or type(failure).__name__
    lines = [line.strip() for line in str(failure).splitlines() if line.strip()]
    return f"{title}: {lines[0] if lines else ''}"[:300]


@contextlib.contextmanager
def local_runtime() -> Iterator[tuple[str, str]]:
    """The local runtime on free ports with a throwaway SOURCE_ROOT; its URL and JWT secret."""
    from chalicelib.config import get_settings
    from chalicelib.local.aws import free_port
    from chalicelib.local.runtime import LocalRuntime, RuntimeOptions
    from chalicelib.services import set_services

    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="fuzz-sources-") as sources:
        os.environ["STAGE"] = "local"
        options = RuntimeOptions(
            api_port=free_port(),
            ws_port=free_port(),
            aws_port=free_port(),
            source_root=Path(sources),
            workers_per_queue=1,
            log_requests=False,
        )
        runtime = LocalRuntime(options)
        try:
            runtime.start()
            yield runtime.api_url, runtime.services.settings.auth_jwt_secret
        finally:
            runtime.stop()
            os.environ.clear()
            os.environ.update(saved)
            get_settings.cache_clear()
            set_services(None)


def fuzz(base_url: str, secret: str, examples: int) -> tuple[Report, float, int]:
    from chalicelib.auth import issue_token

    report = Report()
    started = time.monotonic()
    fuzzer = Fuzzer(base_url, issue_token(secret), secret, examples, report)
    fuzzer.run()
    return report, time.monotonic() - started, len(fuzzer.operations())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=50, help="examples per operation, mode and job id")
    parser.add_argument("--url", help="an API already running (`make run`); default: start the local runtime")
    args = parser.parse_args(argv)
    if args.url:
        from chalicelib.config import get_settings

        report, seconds, total = fuzz(args.url, get_settings().auth_jwt_secret, args.examples)
    else:
        with local_runtime() as (url, secret):
            report, seconds, total = fuzz(url, secret, args.examples)
    print("\n".join(report.lines(seconds, total)))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
