"""The package shows the pipeline: imports go one way (docs/architecture.md), no module import cycles.

Imports under ``if TYPE_CHECKING:`` are annotations only and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "copilot"
# Lowest first: a package may import only packages ranked below it (and itself).
LAYERS = (
    ("config", "errors", "types"),
    ("models",),
    ("knowledge",),
    ("transcription",),
    ("judgement",),
    ("suggest",),
    ("qa",),
    ("session",),
    ("evaluation",),
    ("ui",),
    ("commands",),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
MAX_TOP_LEVEL_ENTRIES = 14


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(path: Path, known: set[str]) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.ImportFrom) and child.module and child.module.startswith("copilot"):
                for alias in child.names:
                    full = f"{child.module}.{alias.name}"
                    found.add(full if full in known else child.module)
            elif isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name.startswith("copilot"))
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {name for name in found if name in known}


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py") if "bundled" not in p.parts}
    known = set(files)
    return {name: _runtime_imports(path, known) - {name} for name, path in files.items()}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "copilot"


def test_every_package_imports_only_packages_below_it() -> None:
    wrong = []
    for module, imports in _graph().items():
        here = _package(module)
        if here == "copilot":
            continue
        for imported in imports:
            there = _package(imported)
            same_layer_ok = RANK[there] == RANK[here] == 0  # config imports errors
            if there not in (here, "copilot") and RANK[there] >= RANK[here] and not same_layer_ok:
                wrong.append(f"{module} -> {imported}")
    assert wrong == []


def test_no_module_import_cycle() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def strongly_connect(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                strongly_connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            strongly_connect(node)
    assert cycles == []


def test_every_package_is_placed_and_the_top_level_stays_small() -> None:
    entries = [p for p in PACKAGE.iterdir() if p.name != "__pycache__"]
    assert len(entries) <= MAX_TOP_LEVEL_ENTRIES, sorted(p.name for p in entries)
    packages = {p.name for p in entries if p.is_dir()}
    assert packages <= set(RANK), f"place {packages - set(RANK)} in LAYERS and docs/architecture.md"
