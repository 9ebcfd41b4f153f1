"""Figures, their targets, and how they are shown: a rich table, results.json, README's markdown."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    """One measured figure. `passed` is None when the figure has no target (shown for information)."""

    key: str
    section: str
    label: str
    value: float | None
    unit: str
    target: str = ""
    passed: bool | None = None
    detail: str = ""
    samples: list[float] = field(default_factory=list)

    def shown(self) -> str:
        if self.value is None:
            return "-"
        if self.unit == "x":
            return f"{self.value:.2f}x"
        if self.unit == "s":
            return f"{self.value:.2f} s"
        if self.unit in ("MiB", "MiB/s"):
            return f"{self.value:.0f} {self.unit}"
        if self.unit == "ms":
            return f"{self.value:.0f} ms"
        return f"{self.value:g} {self.unit}".strip()

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "MISS", None: "info"}[self.passed]


def median(samples: list[float]) -> float:
    return float(statistics.median(samples))


def spread(samples: list[float]) -> str:
    return f"{len(samples)} runs, {min(samples):.2f}-{max(samples):.2f} s" if samples else "no runs"


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine(
    tool_versions: dict[str, str | None], settings: dict[str, Any], load_at_start: float, seconds: float
) -> dict[str, Any]:
    """The machine and the run: what the figures depend on (a busy machine slows every entrant)."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1m_at_start": round(load_at_start, 2),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "seconds": round(seconds, 1),
        "versions": {
            "boto3": version("boto3"),
            "botocore": version("botocore"),
            "moto": version("moto"),
            "awscli": version("awscli") or tool_versions.get("aws"),
            "s5cmd": tool_versions.get("s5cmd"),
            "rclone": tool_versions.get("rclone"),
        },
        "settings": settings,
    }


def write_json(path: Path, figures: list[Figure], about: dict[str, Any]) -> None:
    document: dict[str, Any] = {"machine": about}
    for figure in figures:
        entry = asdict(figure)
        del entry["key"]
        document[figure.key] = entry
    path.write_text(json.dumps(document, indent=2) + "\n")


def merge_json(path: Path, figures: list[Figure], run: dict[str, Any] | None = None) -> None:
    """Put `figures` into an existing results.json (a step run on its own: bench/analytics.py,
    `bench.run --only uploads`), keeping the other figures and the machine of the run that wrote
    them. `run`: that step's machine and run ({"only": name, ...machine()}), kept beside it under
    `partial_runs` (or as the machine, in a file that had none)."""
    document: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    order = [key for key in document if key != "machine"]
    previous: str | None = None
    for figure in figures:  # a new figure goes after the one measured before it (README's order)
        if figure.key not in order:
            order.insert(order.index(previous) + 1 if previous else len(order), figure.key)
        previous = figure.key
        entry = asdict(figure)
        del entry["key"]
        document[figure.key] = entry
    document = {
        **({"machine": document["machine"]} if "machine" in document else {}),
        **{k: document[k] for k in order},
    }
    if run is not None:
        if "machine" in document:
            document["machine"].setdefault("partial_runs", {})[run["only"]] = run
        else:
            document = {"machine": {k: v for k, v in run.items() if k != "only"}, **document}
    path.write_text(json.dumps(document, indent=2) + "\n")


def print_table(figures: list[Figure], about: dict[str, Any] | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # a log file: wide enough that rows stay on one line
        console = Console(width=180)
    sections = list(dict.fromkeys(f.section for f in figures))
    for section in sections:
        table = Table(title=section, title_justify="left", show_lines=False)
        for column, justify in (("figure", "left"), ("value", "right"), ("target", "right"), ("", "center")):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        table.add_column("how", style="dim")
        for figure in (f for f in figures if f.section == section):
            colour = {True: "green", False: "bold red", None: "dim"}[figure.passed]
            verdict = f"[{colour}]{figure.verdict}[/]"
            table.add_row(figure.label, figure.shown(), figure.target or "-", verdict, figure.detail)
        console.print(table)
    if about is not None:
        versions = ", ".join(f"{k} {v}" for k, v in about["versions"].items() if v)
        console.print(f"[dim]{_about(about)}; {versions}[/]")
    targets = [f for f in figures if f.passed is not None]
    missed = [f for f in targets if not f.passed]
    summary = f"{len(targets) - len(missed)} of {len(targets)} targets met"
    console.print(f"[bold]{summary}[/]" + (f"; missed: {', '.join(f.label for f in missed)}" if missed else ""))


def markdown(document: dict[str, Any]) -> str:
    """README's tables, from a results.json document."""
    figures = [Figure(key=k, **v) for k, v in document.items() if k != "machine"]
    lines: list[str] = []
    for section in dict.fromkeys(f.section for f in figures):
        lines += [f"**{section}**", "", "| figure | value | target | result | how |", "|---|---:|---:|:---:|---|"]
        for f in (f for f in figures if f.section == section):
            lines.append(f"| {f.label} | {f.shown()} | {f.target or '-'} | {f.verdict} | {f.detail} |")
        lines.append("")
    about = document["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in about["versions"].items() if v)
    lines.append(f"Machine: {_about(about)}; {versions}.")
    for only, run in about.get("partial_runs", {}).items():
        lines.append(f"The {only} figures: `python -m bench.run --only {only}`, {_about(run)}.")
    return "\n".join(lines)


def _about(about: dict[str, Any]) -> str:
    return (
        f"{about['cpus']} CPUs, Python {about['python']}, 1-minute load average {about['load_average_1m_at_start']} "
        f"at start and {about['load_average_1m_at_end']} at the end, {about['seconds']:.0f} s in all"
    )
