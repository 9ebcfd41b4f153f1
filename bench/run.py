"""`make bench`: the service against the tools a team would otherwise use, on this machine, in one run.

    python -m bench.run                  # the full benchmark (bench/results.json)
    python -m bench.run --only uploads   # the upload parts alone (1-4 below, `make bench-uploads`): their
                                         # figures merged into bench/results.json, the others kept
    python -m bench.run --smoke --data DIR --out FILE   # tiny data, one round: the test suite's check
    python -m bench.run --markdown       # README's tables from bench/results.json

What it measures (each upload into a fresh prefix of the same bucket on the same moto server,
entrants alternating, the first one rotating each round, the median of the rounds; every upload
checked: each file there, same size, and the same MD5 where the ETag is one, then removed):

1. Upload of an HLS rendition (600 segments of 128 KiB and its playlist) on the plain endpoint:
   the whole system (POST /upload-jobs -> SQS -> local poller -> worker -> progress writes ->
   JobCompleted on a WebSocket) against `aws s3 sync`, `s5cmd cp`, `rclone copy` and a 16-thread
   boto3 loop, each a process of its own on its defaults. Ratio = their time / ours.
2. The same through a proxy that makes every request 100 ms late (bench/proxy.py): the workers'
   S3 endpoint and every contender go through it; SQS and MongoDB do not.
3. SlowDown: the same rendition through a proxy that also answers `503 SlowDown` above a request
   rate (--slowdown-rate, 300 a second: a token bucket, bench/slowdown.py), as S3 and Spaces do:
   the service (its adaptive engine on its defaults), the service with a fixed engine
   (UPLOAD_CONCURRENCY_MAX = UPLOAD_CONCURRENCY, in a second system process with its own moto and
   proxy), `s5cmd cp` and `aws s3 sync`; the time and the 503s each received (counted at the proxy).
4. The 1 GiB file: the system process's peak memory above its baseline while it uploads it as a
   video job (a fresh process), then its speed (MiB/s) against `s5cmd cp` and `aws s3 cp`.
5. MongoDB writes (calls on the jobs collection naming the job) and WebSocket messages (to a client
   subscribed to everything) for a rendition of 2,000 small segments, against seconds / interval + 10.
6. `import app` (the Lambda cold start's share of ours) against its dependencies' bare imports.
7. Analytics, stats, the Prometheus scrape and the search over 100,000 jobs on the embedded store
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
from bench.contenders import FILE_CONTENDERS, Contender, installed
from bench.data import Dataset, DataSpec, prepare
from bench.harness import Bucket, EventListener, s3_proxy, system_process
from bench.report import Figure, machine, markdown, median, merge_json, print_table, spread, write_json
from chalicelib.local.api_client import ApiClient
from chalicelib.local.aws import free_port

BENCH = Path(__file__).resolve().parent
SERVICE = "studio-uploads"
FIXED = "studio-uploads, fixed engine"
OUR_SLUGS = {SERVICE: "service", FIXED: "service_fixed"}
SMOKE_SPEC = DataSpec(large_segments=20, small_segments=20, video_mib=20)
DELAY_MS = 100
SLOWDOWN_RATE = 300  # requests a second (the proxy's burst: a fifth of it)
SMOKE_SLOWDOWN_RATE = 20  # low enough that the smoke's 21 files meet 503s
SLOWDOWN_CONTENDERS = ("s5cmd cp", "aws s3 sync")
ANALYTICS_JOBS, SMOKE_ANALYTICS_JOBS = 100_000, 500
# Their time / ours, at least: (endpoint, contender name) -> ratio.
RATIO_TARGETS = {
    ("plain", "aws s3 sync"): 1.2,
    ("plain", "s5cmd cp"): 0.95,
    ("proxy", "s5cmd cp"): 1.0,
    ("proxy", "aws s3 sync"): 3.0,
}


def endpoint_title(endpoint_kind: str, slowdown_rate: float = SLOWDOWN_RATE) -> str:
    return {
        "plain": "Upload, plain endpoint (moto's server on loopback)",
        "proxy": f"Upload through the {DELAY_MS} ms proxy (every S3 request {DELAY_MS} ms late; SQS and MongoDB "
        "are not)",
        "slowdown": f"Upload through the SlowDown proxy (every S3 request {DELAY_MS} ms late, and 503 SlowDown "
        f"above {slowdown_rate:g} requests a second)",
    }[endpoint_kind]


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
    warm(entrants, {"all": len(entrants), "service": 1, "none": 0}[warm_up], endpoint_kind)
    load = os.getloadavg()[0]
    samples = measure.contest(entrants, rounds, log, endpoint_kind)
    others = [(c.name, c.defaults) for c in contenders]
    return upload_figures(
        endpoint_kind, endpoint_title(endpoint_kind), samples, others, dataset, s.system.settings, load
    )


def warm(entrants: list[measure.Entrant], how_many: int, title: str) -> None:
    for name, run in entrants[:how_many]:
        log(f"{title} warm-up: {name} {run().seconds:.2f} s")


def _slug(name: str) -> str:
    """An entrant's name in figure keys: `service`, `service_fixed`, `s5cmd_cp`, `aws_s3_sync`..."""
    if name in OUR_SLUGS:
        return OUR_SLUGS[name]
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def _how(samples: list[measure.Sample]) -> str:
    seconds = [sample.seconds for sample in samples]
    return f"{spread(seconds)}; moto CPU {median([sample.server_cpu for sample in samples]):.2f} s"


def engine_settings(settings: dict[str, Any]) -> str:
    said = f"UPLOAD_CONCURRENCY {settings['upload_concurrency']}"
    if settings.get("upload_concurrency_max") is not None:
        said += f", UPLOAD_CONCURRENCY_MAX {settings['upload_concurrency_max']}"
    return said


def upload_figures(
    endpoint_kind: str,
    section: str,
    samples: dict[str, list[measure.Sample]],
    others: list[tuple[str, str]],
    dataset: Dataset,
    settings: dict[str, Any],
    load: float,
) -> list[Figure]:
    """The service's time, each other entrant's (name, how it runs), and the ratios (their time / ours)."""
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
            f"{engine_settings(settings)}; 1-minute load average {load:.2f} at the contest's start",
            samples=times[SERVICE],
        )
    ]
    for name, defaults in others:
        figures.append(
            Figure(
                f"upload_{endpoint_kind}_seconds_{_slug(name)}",
                section,
                name,
                median(times[name]),
                "s",
                detail=f"{_how(samples[name])}; {defaults}",
                samples=times[name],
            )
        )
    for name, _ in others:
        theirs = median(times[name])
        target = RATIO_TARGETS.get((endpoint_kind, name))
        figures.append(
            Figure(
                f"upload_{endpoint_kind}_ratio_vs_{_slug(name)}",
                section,
                f"speed vs {name} (their time / ours)",
                theirs / ours,
                "x",
                target=f">= {target}x" if target else "",
                passed=theirs / ours >= target if target else None,
                detail=f"{theirs:.2f} s / {ours:.2f} s (medians)",
            )
        )
    return figures


def slowdown_contest(
    dataset: Dataset, contenders: list[Contender], rounds: int, rate: float, warm_up: bool
) -> list[Figure]:
    """The rendition through the SlowDown proxy: the adaptive engine, the fixed one, the tools.

    Each engine runs in a system process of its own (the engine's settings are read at start),
    each with its own moto behind its own proxy under the same rule; the tools go through the
    first. Entrants run one at a time, so each one's 503s are the proxy's count across its run."""
    folder = dataset.large
    tools = [c for c in contenders if c.name in SLOWDOWN_CONTENDERS]
    first_port, second_port = free_port(), free_port()
    with (
        s3_proxy(first_port, DELAY_MS, rate) as proxy,
        session(dataset.root, aws_port=first_port, spaces_endpoint=proxy.endpoint) as s,
    ):
        fixed_level = str(s.system.settings["upload_concurrency"])
        fixed_env = {"UPLOAD_CONCURRENCY": fixed_level, "UPLOAD_CONCURRENCY_MAX": fixed_level}
        with (
            s3_proxy(second_port, DELAY_MS, rate) as fixed_proxy,
            session(dataset.root, aws_port=second_port, spaces_endpoint=fixed_proxy.endpoint, env=fixed_env) as fixed,
        ):
            entrants: list[measure.Entrant] = [
                (SERVICE, measure.through(proxy, partial(measure.our_upload, s, dataset, folder))),
                (FIXED, measure.through(fixed_proxy, partial(measure.our_upload, fixed, dataset, folder))),
            ]
            entrants += [
                (c.name, measure.through(proxy, partial(measure.their_upload, s, c, proxy.endpoint, folder)))
                for c in tools
            ]
            warm(entrants, 2 if warm_up else 0, "slowdown")  # the tools' binaries are warm from the plain contest
            load = os.getloadavg()[0]
            samples = measure.contest(entrants, rounds, log, "slowdown")
            fixed_settings = fixed.system.settings
    section = endpoint_title("slowdown", rate)
    others = [(FIXED, f"the same service, {engine_settings(fixed_settings)}")] + [(c.name, c.defaults) for c in tools]
    figures = upload_figures("slowdown", section, samples, others, dataset, s.system.settings, load)
    return figures + slowdown_figures(section, samples)


def slowdown_figures(section: str, samples: dict[str, list[measure.Sample]]) -> list[Figure]:
    figures = []
    for name, runs in samples.items():
        slowdowns = [float(sample.slowdowns or 0) for sample in runs]
        requests = [sample.requests or 0 for sample in runs]
        attempts = [sample.attempts for sample in runs if sample.attempts is not None]
        detail = f"per run: {', '.join(f'{s:.0f} of {r}' for s, r in zip(slowdowns, requests, strict=True))} requests"
        if attempts:
            detail += f"; job attempts {', '.join(str(a) for a in attempts)}"
        figures.append(
            Figure(
                f"upload_slowdown_503s_{_slug(name)}",
                section,
                f"503 SlowDown received: {name}",
                median(slowdowns),
                "",
                detail=detail + "; every object checked (size, MD5)",
                samples=slowdowns,
            )
        )
    return figures


def video_contest(s: measure.Session, dataset: Dataset, rounds: int) -> list[Figure]:
    """The big file on the plain endpoint: the service's peak memory, then its speed against the tools'."""
    settings = s.system.settings
    log(f"peak memory while uploading the {dataset.spec.video_mib} MiB file")
    memory = measure.peak_memory(s, dataset)
    tools = installed(FILE_CONTENDERS)
    entrants: list[measure.Entrant] = [(SERVICE, partial(measure.our_video_upload, s, dataset))]
    endpoint = s.system.ready["aws"]
    entrants += [(c.name, partial(measure.their_upload, s, c, endpoint, dataset.video)) for c in tools]
    samples = measure.contest(entrants, rounds, log, f"{dataset.spec.video_mib} MiB file")
    return memory_figures(memory, settings, dataset.spec.video_mib) + video_figures(samples, tools, dataset)


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
    section = video_section(video_mib)
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
            f"{settings['upload_concurrency']} + 64 MiB; that upload took {run.seconds:.2f} s",
        ),
    ]


def video_section(video_mib: int) -> str:
    return f"One {video_mib} MiB file as a video job: worker memory, and speed on the plain endpoint"


def video_figures(samples: dict[str, list[measure.Sample]], tools: list[Contender], dataset: Dataset) -> list[Figure]:
    section = video_section(dataset.spec.video_mib)
    mib = dataset.video.stat().st_size / measure.MIB
    times = {name: [sample.seconds for sample in runs] for name, runs in samples.items()}
    ours = median(times[SERVICE])
    figures = [
        Figure(
            "video_upload_seconds",
            section,
            "upload time, POST -> JobCompleted",
            ours,
            "s",
            detail=_how(samples[SERVICE]),
            samples=times[SERVICE],
        ),
        Figure(
            "video_upload_mibps_service",
            section,
            f"{SERVICE}: MiB/s",
            mib / ours,
            "MiB/s",
            detail=f"{mib:.0f} MiB / {ours:.2f} s (median), POST -> JobCompleted",
        ),
    ]
    for tool in tools:
        theirs = median(times[tool.name])
        figures.append(
            Figure(
                f"video_upload_mibps_{_slug(tool.name)}",
                section,
                f"{tool.name}: MiB/s",
                mib / theirs,
                "MiB/s",
                detail=f"{mib:.0f} MiB / {theirs:.2f} s (median; {_how(samples[tool.name])}); {tool.defaults}",
                samples=times[tool.name],
            )
        )
    return figures


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
    uploads_only = args.only == "uploads"
    figures: list[Figure] = []
    # Smoke: one round, no warm-up, and the big (tiny) file in the plain contest's process.
    warm_up = "none" if args.smoke else "all"

    with session(dataset.root) as s:
        settings = s.system.settings
        figures += upload_contest("plain", s, s.system.ready["aws"], dataset, contenders, args.rounds, warm_up)
        if not uploads_only:
            log("MongoDB writes and WebSocket messages for the many-segment rendition")
            figures += write_figures(measure.writes_per_job(s, dataset), settings)
        if args.smoke:
            figures += video_contest(s, dataset, args.rounds)

    aws_port = free_port()
    with (
        s3_proxy(aws_port, DELAY_MS) as proxy,
        session(dataset.root, aws_port=aws_port, spaces_endpoint=proxy.endpoint) as s,
    ):
        # The tools' binaries are warm from the plain contest; this system process is new.
        figures += upload_contest("proxy", s, proxy.endpoint, dataset, contenders, args.rounds, _service_only(warm_up))

    log(f"SlowDown contest: 503 above {args.slowdown_rate:g} requests a second")
    figures += slowdown_contest(dataset, contenders, args.rounds, args.slowdown_rate, warm_up=not args.smoke)

    if not args.smoke:
        with session(dataset.root) as s:  # a fresh process: its memory baseline owes nothing to the contests
            figures += video_contest(s, dataset, args.rounds)

    if not uploads_only:
        # One timed run per query: mongomock caches nothing, and its $group sorts in pure Python, so a
        # query over the 30 days of 100,000 jobs takes minutes there (bench/analytics.py).
        analytics_jobs = SMOKE_ANALYTICS_JOBS if args.smoke else ANALYTICS_JOBS
        figures += analytics_figures(analytics_jobs, 1, warm_up=False, log=log)
        log(f"import times, median of {args.import_repeats}")
        figures += import_figures(measure.import_times(args.import_repeats))
    return Outcome(figures, settings, {c.binary: c.version() for c in contenders if c.binary})


def _service_only(warm_up: str) -> str:
    return "none" if warm_up == "none" else "service"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny data, one round, no warm-up")
    parser.add_argument("--only", choices=["uploads"], default=None, help="the upload parts, merged into --out")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per contest (default 3; smoke 1)")
    parser.add_argument("--import-repeats", type=int, default=None, help="default 5; smoke 1")
    parser.add_argument("--slowdown-rate", type=float, default=None, help="requests a second before 503 (default 300)")
    parser.add_argument("--data", type=Path, default=BENCH / "data")
    parser.add_argument("--out", type=Path, default=BENCH / "results.json")
    parser.add_argument("--markdown", action="store_true", help="print README's tables from --out and exit")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.out.read_text())))
        return 0
    args.rounds = args.rounds or (1 if args.smoke else 3)
    args.import_repeats = args.import_repeats or (1 if args.smoke else 5)
    args.slowdown_rate = args.slowdown_rate or (SMOKE_SLOWDOWN_RATE if args.smoke else SLOWDOWN_RATE)
    load_at_start = os.getloadavg()[0]
    outcome = run_benchmark(args)
    about = machine(outcome.versions, outcome.settings, load_at_start, time.monotonic() - _started)
    if args.only:
        merge_json(args.out, outcome.figures, run={"only": args.only, **about})
    else:
        write_json(args.out, outcome.figures, about)
    print_table(outcome.figures, about)
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
