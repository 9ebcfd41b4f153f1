"""The tools a team would use instead of the service, each run as a process with its own defaults.

Each contender copies one local folder (CONTENDERS) or one file (FILE_CONTENDERS) to
`s3://BUCKET/PREFIX` on an S3 endpoint; the benchmark times the process from start to exit (interpreter or binary start included, as a team pays it).
Binaries are looked up in the virtualenv first (`make bench` installs them there), then on PATH;
a contender whose binary is missing is skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
REGION = "us-east-1"
RCLONE_REMOTE = "BENCH"
LOOP_SCRIPT = Path(__file__).with_name("boto3_loop.py")
VERSION = re.compile(r"v?\d+\.\d+[\w.+-]*")  # "aws-cli/1.45.11 ...", "v2.3.0-991c9fb", "rclone v1.75.2"


@dataclass(frozen=True)
class Target:
    endpoint: str
    bucket: str
    prefix: str  # ends with "/"
    source: Path  # a folder (its files, flat) or one file


@dataclass(frozen=True)
class Contender:
    name: str
    binary: str  # looked up on the venv's bin and PATH; "" for the Python of this interpreter
    defaults: str  # how it runs, said in the output
    argv: Callable[[str, Target], list[str]]
    extra_env: Callable[[Target], dict[str, str]] = lambda _target: {}

    def executable(self) -> str | None:
        if not self.binary:
            return sys.executable
        search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        return shutil.which(self.binary, path=search)

    def version(self) -> str | None:
        executable = self.executable()
        if executable is None or not self.binary:
            return None
        flag = {"aws": "--version", "s5cmd": "version", "rclone": "version"}[self.binary]
        result = subprocess.run([executable, flag], capture_output=True, text=True, timeout=60, env=clean_env())
        found = VERSION.search(result.stdout or result.stderr)
        return found.group(0) if result.returncode == 0 and found else None

    def run(self, target: Target, timeout: float) -> float:
        """Seconds from process start to exit; raises if the copy failed."""
        executable = self.executable()
        assert executable is not None, f"{self.name} is not installed"
        env = {**clean_env(), **self.extra_env(target)}
        started = time.perf_counter()
        result = subprocess.run(self.argv(executable, target), capture_output=True, text=True, timeout=timeout, env=env)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"{self.name} exited {result.returncode}: {(result.stderr or result.stdout)[-2000:]}")
        return elapsed


def clean_env() -> dict[str, str]:
    """This environment without AWS settings (no endpoint or profile leaks in), plus moto's credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    missing = "/nonexistent/bench"  # no ~/.aws or rclone.conf: every tool on its defaults
    env.update(CREDENTIALS, AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION)
    env.update(AWS_CONFIG_FILE=missing, AWS_SHARED_CREDENTIALS_FILE=missing, RCLONE_CONFIG=missing)
    return env


def _rclone_env(target: Target) -> dict[str, str]:
    prefix = f"RCLONE_CONFIG_{RCLONE_REMOTE}_"
    return {
        prefix + "TYPE": "s3",
        prefix + "PROVIDER": "Other",
        prefix + "ENDPOINT": target.endpoint,
        prefix + "ACCESS_KEY_ID": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        prefix + "SECRET_ACCESS_KEY": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        prefix + "REGION": REGION,
    }


CONTENDERS = (
    Contender(
        "aws s3 sync",
        "aws",
        "AWS CLI v1 defaults: max_concurrent_requests 10",
        lambda exe, t: [
            exe, "s3", "sync", str(t.source), f"s3://{t.bucket}/{t.prefix}",
            "--endpoint-url", t.endpoint, "--only-show-errors",
        ],
    ),
    Contender(
        "s5cmd cp",
        "s5cmd",
        "s5cmd defaults: 256 workers",
        lambda exe, t: [exe, "--endpoint-url", t.endpoint, "cp", f"{t.source}/*", f"s3://{t.bucket}/{t.prefix}"],
    ),
    Contender(
        "rclone copy",
        "rclone",
        "rclone defaults: --transfers 4, --checkers 8",
        lambda exe, t: [exe, "copy", str(t.source), f"{RCLONE_REMOTE}:{t.bucket}/{t.prefix}"],
        _rclone_env,
    ),
    Contender(
        "boto3 loop (16 threads)",
        "",
        "put_object on 16 threads, default client, pool of 16",
        lambda exe, t: [exe, str(LOOP_SCRIPT), t.endpoint, t.bucket, t.prefix, str(t.source)],
    ),
)  # fmt: skip


# The big file: each tool's multipart upload on its defaults.
FILE_CONTENDERS = (
    Contender(
        "s5cmd cp",
        "s5cmd",
        "s5cmd defaults: 50 MiB parts, 5 at once",
        lambda exe, t: [exe, "--endpoint-url", t.endpoint, "cp", str(t.source), f"s3://{t.bucket}/{t.prefix}"],
    ),
    Contender(
        "aws s3 cp",
        "aws",
        "AWS CLI v1 defaults: 8 MiB parts, max_concurrent_requests 10",
        lambda exe, t: [
            exe, "s3", "cp", str(t.source), f"s3://{t.bucket}/{t.prefix}{t.source.name}",
            "--endpoint-url", t.endpoint, "--only-show-errors",
        ],
    ),
)  # fmt: skip


def installed(contenders: tuple[Contender, ...] = CONTENDERS) -> list[Contender]:
    return [c for c in contenders if c.executable() is not None]
