"""The house shows its plan: no module imports another that imports it back (at the top or inside a function)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# train/ and export/ install as fer_edge.train and fer_edge.export
ROOTS = {"fer_edge": REPO / "fer_edge", "fer_edge.train": REPO / "train", "fer_edge.export": REPO / "export"}


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in ROOTS.items():
        for path in folder.rglob("*.py"):
            parts = [p for p in path.relative_to(folder).with_suffix("").parts if p != "__init__"]
            if package == "fer_edge" and parts and parts[0] in ("train", "export", "assets"):
                continue  # links to the folders above
            found[".".join([package, *parts])] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + (path.name == "__init__.py")]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            candidates = [f"{module}.{a.name}" for a in node.names] + [module]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        for target in candidates:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):  # a package's own __init__
                targets.add(target)
    return targets


def test_no_import_circles():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    circles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert len(modules) > 80 and any(graph.values())  # the walk saw the house
    assert not circles, circles


def test_no_arrow_back_up():
    """The floors: the runtime (fer_edge, its CLI aside) never reaches the model factory, and the trainer never
    reaches the exporter above it; the CLI is the one room that calls every floor."""
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    factory = ("fer_edge.train", "fer_edge.export")
    runtime = [m for m in graph if not m.startswith(factory) and not m.startswith("fer_edge.cli")]
    up = [f"{m} -> {t}" for m in runtime for t in graph[m] if t.startswith(factory)]
    up += [f"{m} -> {t}" for m in graph if m.startswith("fer_edge.train") for t in graph[m] if t.startswith("fer_edge.export")]
    assert len(runtime) > 50 and not up, up
