"""chalicelib's packages import one way (docs/architecture.md): edge -> service layer -> domain -> adapters.

A unit is a top-level package or module of chalicelib (`chalicelib.jobs`, `chalicelib.config`); modules
inside one package may import each other. Every import statement counts, wherever it stands: at the top,
inside a function (a lazy import) or under `if TYPE_CHECKING:`. Deferring an import keeps it from failing
at load time, it does not remove the circle: the two modules still need each other.

The HTTP edge (chalicelib/http.py: request bodies, errors as Chalice's) is for the entry points only:
app.py, the blueprints, and openapi.py, which documents that edge.
"""

from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "chalicelib"
HTTP_EDGE = f"{PACKAGE}.http"
MAY_IMPORT_HTTP = frozenset({f"{PACKAGE}.blueprints", f"{PACKAGE}.openapi", HTTP_EDGE})


@dataclass(frozen=True)
class Import:
    """One import statement's target unit: where the statement stands, and whether it is deferred."""

    importer: str  # the importing module
    imported: str  # the unit imported (`chalicelib.jobs` for `from chalicelib.jobs.model import X`)
    path: str
    line: int
    lazy: bool

    def __str__(self) -> str:
        where = "inside a function or block" if self.lazy else "at the top"
        return f"{self.path}:{self.line} imports {self.imported} ({where})"


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool) -> list[str]:
    """The modules a statement imports; `from pkg import name` may name a module, so it yields pkg.name too."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: resolved against the importing module's package
        package = importer.split(".") if is_package else importer.split(".")[:-1]
        base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def imports_of(root: Path, package: str) -> list[Import]:
    """Every import of a `package` unit by a `package` module, lazy ones included."""
    found = []
    for path in sorted((root / package).rglob("*.py")):
        importer = module_name(path, root)
        tree = ast.parse(path.read_text(), filename=str(path))
        top_level = {id(statement) for statement in tree.body}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = imported_names(node, importer, path.name == "__init__.py")
            units = sorted({unit_of(name) for name in names if name.startswith(package + ".")})
            relative = str(path.relative_to(root))
            found.extend(Import(importer, unit, relative, node.lineno, id(node) not in top_level) for unit in units)
    return found


def unit_of(module: str) -> str:
    """`chalicelib.jobs.store` -> `chalicelib.jobs`; the package itself is no unit of its own."""
    return ".".join(module.split(".")[:2])


def unit_edges(imports: list[Import]) -> dict[tuple[str, str], list[Import]]:
    edges: dict[tuple[str, str], list[Import]] = {}
    for item in imports:
        source, target = unit_of(item.importer), item.imported
        if "." in source and source != target:
            edges.setdefault((source, target), []).append(item)
    return edges


def find_cycle(edges: dict[tuple[str, str], list[Import]]) -> list[str] | None:
    """One circle of units (first unit repeated at the end), or None: a depth-first search."""
    graph: dict[str, list[str]] = {}
    for source, target in sorted(edges):
        graph.setdefault(source, []).append(target)
    done: set[str] = set()

    def visit(unit: str, path: list[str]) -> list[str] | None:
        if unit in path:
            return [*path[path.index(unit) :], unit]
        if unit in done:
            return None
        for target in graph.get(unit, []):
            cycle = visit(target, [*path, unit])
            if cycle:
                return cycle
        done.add(unit)
        return None

    for unit in sorted(graph):
        cycle = visit(unit, [])
        if cycle:
            return cycle
    return None


def describe_cycle(cycle: list[str], edges: dict[tuple[str, str], list[Import]]) -> str:
    lines = [" -> ".join(cycle)]
    for source, target in itertools.pairwise(cycle):
        lines.append(f"  {source} -> {target}:")
        lines.extend(f"    {item}" for item in edges[(source, target)])
    return "\n".join(lines)


def test_no_circle_between_chalicelibs_packages() -> None:
    edges = unit_edges(imports_of(ROOT, PACKAGE))
    cycle = find_cycle(edges)
    assert cycle is None, "an import circle between chalicelib's packages:\n" + describe_cycle(cycle, edges)


def test_only_the_entry_points_import_the_http_edge() -> None:
    offending = [
        str(item)
        for item in imports_of(ROOT, PACKAGE)
        if item.imported == HTTP_EDGE and unit_of(item.importer) not in MAY_IMPORT_HTTP
    ]
    assert not offending, "below the edge, chalicelib/http.py is imported by:\n" + "\n".join(offending)


def test_a_lazy_import_closes_a_circle_too(tmp_path: Path) -> None:
    """The check itself: a function-level import back into a package is reported, naming both edges."""
    for name, source in {
        "pkg/__init__.py": "",
        "pkg/config.py": "def get():\n    from pkg.secrets import read\n    return read()\n",
        "pkg/secrets/__init__.py": "",
        "pkg/secrets/ssm.py": "from .. import config\n",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(source)
    edges = unit_edges(imports_of(tmp_path, "pkg"))

    cycle = find_cycle(edges)

    assert cycle == ["pkg.config", "pkg.secrets", "pkg.config"]
    message = describe_cycle(cycle, edges)
    assert "pkg/config.py:2 imports pkg.secrets (inside a function or block)" in message
    assert "pkg/secrets/ssm.py:1 imports pkg.config (at the top)" in message
