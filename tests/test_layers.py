"""posekit's imports run one way: lower layers never import upper ones, and no module-level import cycle exists.

The imports are read from the source (ast), both module-level ones and those inside functions, so a lazy import
cannot hide an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "posekit"
LOWER = ("hub", "convert", "decode", "transforms", "skeleton")
UPPER = ("estimators", "pipeline", "eval", "train", "commands", "data", "export", "serve", "batch", "search")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, top_level_only: bool) -> set[str]:
    """posekit modules imported by ``path`` (``from posekit.x import y`` counts as posekit.x and posekit.x.y)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("posekit"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("posekit") and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in ROOT.rglob("*.py")}


def layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


def test_lower_layers_never_import_upper_ones():
    known = modules()
    upward = []
    for name, path in known.items():
        if layer(name) not in LOWER:
            continue
        for target in imports(path, top_level_only=False):
            if target in known and layer(target) in UPPER:
                upward.append(f"{name} imports {target}")
    assert not upward, "lower layer imports an upper one:\n" + "\n".join(sorted(upward))


def test_no_module_level_import_cycle():
    known = modules()
    graph = {name: {t for t in imports(path, top_level_only=True) if t in known and t != name}
             for name, path in known.items()}
    # a package's __init__ importing its own submodules is how packages re-export; only cross-module cycles count
    for name in graph:
        graph[name] = {t for t in graph[name] if not t.startswith(name + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_the_checks_see_a_planted_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from posekit.estimators.base import Estimator\n")
    assert "posekit.estimators.base" in imports(bad, top_level_only=False)
    assert not imports(bad, top_level_only=True)
