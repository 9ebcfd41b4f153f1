"""`make bench`: the service against the tools a team would otherwise use, on this machine, in one run.

    python -m bench.run                  # the full benchmark (bench/results.json)
    python -m bench.run --smoke --data DIR --out FILE   # tiny data, one round: the test suite's check
    python -m bench.run --markdown       # README's tables from bench/results.json

What it measures (each upload into a fresh prefix of the same bucket on the same moto server,
entrants alternating, the first one rotating each round, the median of the rounds):

1. Upload of an HLS rendition (600 segments of 128 KiB and its playlist) on the plain endpoint:
   the whole system (POST /upload-jobs -> SQS -> local poller -> worker -> progress writes ->
   JobCompleted on a WebSocket) against `aws s3 sync`, `s5cmd cp`, `rclone copy` and a 16-thread
   boto3 loop, each a process of its own on its defaults. Ratio = their time / ours.
2. The same through a proxy that makes every request 100 ms late (bench/proxy.py): the workers'
   S3 endpoint and every contender go through it; SQS and MongoDB do not.
3. The system process's peak memory above its baseline while it uploads a 1 GiB file as a video job.
4. MongoDB writes (calls on the jobs collection naming the job) and WebSocket messages (to a client
   subscribed to everything) for a rendition of 2,000 small segments, against seconds / interval + 10.
5. `import app` (the Lambda cold start's share of ours) against its dependencies' bare imports.
6. Analytics, stats, the Prometheus scrape and the search over 100,000 jobs on the embedded store
   (bench/analytics.py; `python -m bench.analytics` runs this step alone).

Each part runs against a fresh system process (moto's memory is restarted with it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench import measure
from bench.analytics import analytics_figures
from bench.contenders import Contender, installed
from bench.data import Dataset, DataSpec, prepare
from bench.harness import Bucket, EventListener, delay_proxy, system_process
from bench.report import Figure, machine, markdown, median, print_table, spread, write_json
from chalicelib.local.api_client import ApiClient

BENCH = Path(__file__).resolve().parent
SERVICE = "studio-uploads"
SMOKE_SPEC = DataSpec(large_segments=20, small_segments=20, video_mib=20)
DELAY_MS = 100
ANALYTICS_JOBS, SMOKE_ANALYTICS_JOBS = 100_000, 500
# Their time / ours, at least: (endpoint, contender name) -> ratio.
RATIO_TARGETS = {("plain", "aws s3 sync"): 1.2, ("plain", "s5cmd cp"): 0.9, ("proxy", "aws s3 sync"): 2.5}
ENDPOINT_TITLES = {
    "plain": "Upload, plain endpoint (moto's server on loopback)",
    "proxy": f"Upload through the {DELAY_MS} ms proxy (every S3 request {DELAY_MS} ms late; SQS and MongoDB are not)",
}

_started = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _started:6.1f} s] {message}", file=sys.stderr, flush=True)


@contextmanager
def session(root: Path, **system_options: Any) -> Iterator[measure.Session]:
    started = time.monotonic()
    with system_process(root, **system_options) as system:
        log(f"system process {system.pid} up in {time.monotonic() - started:.1f} s")
        ready = system.ready
        with EventListener(ready["ws"], ready["token"]) as listener:
            yield measure.Session(
                system, ApiClient(ready["api"], ready["token"]), listener, Bucket(ready["aws"], ready["bucket"])
            )


def upload_contest(
    endpoint_kind: str,
    s: measure.Session,
    endpoint: str,
    dataset: Dataset,
    contenders: list[Contender],
    rounds: int,
    warm_up: str,
) -> list[Figure]:
    """`warm_up`: "all" (one untimed run each), "service" (only the system's) or "none"."""
    folder = dataset.large
    entrants: list[measure.Entrant] = [(SERVICE, partial(measure.our_upload, s, dataset, folder))]
    entrants += [(c.name, partial(measure.their_upload, s, c, endpoint, folder)) for c in contenders]
    # Untimed: the service's first job loads the worker's modules and builds its client and pool; a
    # tool's first run loads its binary from disk. Each gets one, so no measured run pays for it.
    for name, run in {"all": entrants, "service": entrants[:1], "none": []}[warm_up]:
        log(f"{endpoint_kind} warm-up: {name} {run().seconds:.2f} s")
    samples = measure.contest(entrants, rounds, log, endpoint_kind)
    return upload_figures(endpoint_kind, samples, contenders, dataset, s.system.settings)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def _how(samples: list[measure.Sample]) -> str:
    seconds = [sample.seconds for sample in samples]
    return f"{spread(seconds)}; moto CPU {median([sample.server_cpu for sample in samples]):.2f} s"


def upload_figures(
    endpoint_kind: str,
    samples: dict[str, list[measure.Sample]],
    contenders: list[Contender],
    dataset: Dataset,
    settings: dict[str, Any],
) -> list[Figure]:
    section = ENDPOINT_TITLES[endpoint_kind]
    files, mib = dataset.files(dataset.large), dataset.size(dataset.large) / measure.MIB
    times = {name: [sample.seconds for sample in runs] for name, runs in samples.items()}
    ours = median(times[SERVICE])
    to_claim = median([sample.to_claim or 0.0 for sample in samples[SERVICE]]) * 1000
    figures = [
        Figure(
            f"upload_{endpoint_kind}_seconds_service",
            section,
            f"{SERVICE}: POST -> JobCompleted",
            ours,
            "s",
            detail=f"{_how(samples[SERVICE])}; {files} files, {mib:.0f} MiB; created -> claimed {to_claim:.0f} ms; "
            f"UPLOAD_CONCURRENCY {settings['upload_concurrency']}",
            samples=times[SERVICE],
        )
    ]
    for contender in contenders:
        figures.append(
            Figure(
                f"upload_{endpoint_kind}_seconds_{_slug(contender.name)}",
                section,
                contender.name,
                median(times[contender.name]),
                "s",
                detail=f"{_how(samples[contender.name])}; {contender.defaults}",
                samples=times[contender.name],
            )
        )
    for contender in contenders:
        theirs = median(times[contender.name])
        target = RATIO_TARGETS.get((endpoint_kind, contender.name))
        figures.append(
            Figure(
                f"upload_{endpoint_kind}_ratio_vs_{_slug(contender.name)}",
                section,
                f"speed vs {contender.name} (their time / ours)",
                theirs / ours,
                "x",
                target=f">= {target}x" if target else "",
                passed=theirs / ours >= target if target else None,
                detail=f"{theirs:.2f} s / {ours:.2f} s (medians)",
            )
        )
    return figures


def write_figures(run: measure.WriteRun, settings: dict[str, Any]) -> list[Figure]:
    section = f"Per job, rendition of {run.files} small files"
    interval = settings["progress_interval_ms"]
    bound = measure.write_bound(run.seconds, interval)
    how = f"{run.seconds:.1f} s from POST to JobCompleted, PROGRESS_INTERVAL_MS {interval}; bound = s / interval + 10"
    target = f"<= {bound:.0f}" if bound is not None else ""
    return [
        Figure(
            "mongodb_writes_per_job",
            section,
            "MongoDB writes naming the job",
            run.writes,
            "",
            target=target,
            passed=run.writes <= bound if bound is not None else None,
            detail=how,
        ),
        Figure(
            "websocket_messages_per_job",
            section,
            "WebSocket messages about the job",
            run.messages,
            "",
            target=target,
            passed=run.messages <= bound if bound is not None else None,
            detail="to one client subscribed to all jobs; every event (queued, progress, completed)",
        ),
        Figure(
            "mongodb_reads_per_job",
            section,
            "MongoDB reads naming the job",
            run.reads,
            "",
            detail="claim checks, cancel polls (every 0.5 s), API reads",
        ),
    ]


def memory_figures(run: measure.MemoryRun, settings: dict[str, Any], video_mib: int) -> list[Figure]:
    section = f"Worker memory, one {video_mib} MiB file as a video job"
    bound = measure.memory_bound_mib(settings)
    part_mib = settings["part_size"] // measure.MIB
    return [
        Figure(
            "memory_peak_growth_mib",
            section,
            "peak RSS above the warm baseline",
            run.growth_mib,
            "MiB",
            target=f"<= {bound:.0f} MiB",
            passed=run.growth_mib <= bound,
            detail=f"{run.method}; baseline {run.baseline_mib:.0f} MiB; bound = {part_mib} MiB parts x "
            f"{settings['upload_concurrency']} + 64 MiB",
        ),
        Figure(
            "video_upload_seconds",
            section,
            "upload time, POST -> JobCompleted",
            run.seconds,
            "s",
            detail=f"{video_mib / run.seconds:.0f} MiB/s to moto",
        ),
    ]


def import_figures(result: dict[str, Any]) -> list[Figure]:
    section = "Cold start: import time in a fresh interpreter (above a bare `python -c pass`)"
    medians = {name: seconds * 1000 for name, seconds in result["medians"].items()}
    dependencies = [name for name in medians if name.startswith("dependency:")]
    each = ", ".join(f"{name.split(':', 1)[1]} {medians[name]:.0f}" for name in dependencies)
    loaded = ", ".join(result["loaded_packages"])
    return [
        Figure("import_app_ms", section, "import app", medians["app"], "ms", detail="what a cold Lambda pays for ours"),
        Figure(
            "import_app_dependencies_ms",
            section,
            "the modules import app loads from its dependencies",
            medians["its_dependencies"],
            "ms",
            detail=f"packages: {loaded}",
        ),
        Figure(
            "import_app_own_ms",
            section,
            "app's own share (difference)",
            medians["app"] - medians["its_dependencies"],
            "ms",
            detail="chalicelib modules imported at start",
        ),
        Figure(
            "import_all_runtime_dependencies_ms",
            section,
            "every runtime dependency imported eagerly",
            medians["all_runtime_dependencies"],
            "ms",
            detail=f"each alone (ms): {each}",
        ),
    ]


@dataclass
class Outcome:
    figures: list[Figure]
    settings: dict[str, Any]  # the system's (UPLOAD_CONCURRENCY, PART_SIZE_MB...)
    versions: dict[str, str | None]  # the tools', by binary name


def run_benchmark(args: argparse.Namespace) -> Outcome:
    spec = SMOKE_SPEC if args.smoke else DataSpec()
    log(f"preparing data under {args.data}")
    dataset = prepare(args.data, spec)
    contenders = installed()
    missing = sorted({"aws s3 sync", "s5cmd cp", "rclone copy"} - {c.name for c in contenders})
    if missing:
        log(f"not installed, skipped: {', '.join(missing)} (make bench installs them)")
    figures: list[Figure] = []

    with session(dataset.root) as s:
        settings = s.system.settings
        if args.smoke:  # tiny file: no need for a fresh process (the full run gives it one)
            figures += memory_figures(measure.peak_memory(s, dataset), settings, spec.video_mib)
        warm_up = "none" if args.smoke else "all"
        figures += upload_contest("plain", s, s.system.ready["aws"], dataset, contenders, args.rounds, warm_up)
        log("MongoDB writes and WebSocket messages for the many-segment rendition")
        figures += write_figures(measure.writes_per_job(s, dataset), settings)

    from chalicelib.local.aws import free_port

    aws_port = free_port()
    with delay_proxy(aws_port, DELAY_MS) as proxy, session(dataset.root, aws_port=aws_port, spaces_endpoint=proxy) as s:
        # The tools' binaries are warm from the plain contest; this system process is new.
        warm_up = "none" if args.smoke else "service"
        figures += upload_contest("proxy", s, proxy, dataset, contenders, args.rounds, warm_up)

    if not args.smoke:
        with session(dataset.root) as s:  # a fresh process: its memory baseline owes nothing to the contests
            log(f"peak memory while uploading the {spec.video_mib} MiB file")
            figures += memory_figures(measure.peak_memory(s, dataset), settings, spec.video_mib)

    # One timed run per query: mongomock caches nothing, and its $group sorts in pure Python, so a
    # query over the 30 days of 100,000 jobs takes minutes there (bench/analytics.py).
    analytics_jobs = SMOKE_ANALYTICS_JOBS if args.smoke else ANALYTICS_JOBS
    figures += analytics_figures(analytics_jobs, 1, warm_up=False, log=log)

    log(f"import times, median of {args.import_repeats}")
    figures += import_figures(measure.import_times(args.import_repeats))
    return Outcome(figures, settings, {c.binary: c.version() for c in contenders if c.binary})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny data, one round, no warm-up")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per contest (default 3; smoke 1)")
    parser.add_argument("--import-repeats", type=int, default=None, help="default 5; smoke 1")
    parser.add_argument("--data", type=Path, default=BENCH / "data")
    parser.add_argument("--out", type=Path, default=BENCH / "results.json")
    parser.add_argument("--markdown", action="store_true", help="print README's tables from --out and exit")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.out.read_text())))
        return 0
    args.rounds = args.rounds or (1 if args.smoke else 3)
    args.import_repeats = args.import_repeats or (1 if args.smoke else 5)
    load_at_start = os.getloadavg()[0]
    outcome = run_benchmark(args)
    about = machine(outcome.versions, outcome.settings, load_at_start, time.monotonic() - _started)
    write_json(args.out, outcome.figures, about)
    print_table(outcome.figures, about)
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
