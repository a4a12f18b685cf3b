"""The dependency direction holds: import-linter contracts, no cycle between packages, typed seams in daemon/."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STAGES = ("capture", "detect", "classify", "track", "analytics", "publish", "daemon")
# The composition root's modules that wire stages together: no parameter or field may be plain `Any` there.
SEAM_MODULES = ("agent", "builders", "camera", "messages", "reload", "stats", "analytics_adapter")


def package_graph() -> dict[str, set[str]]:
    grimp = pytest.importorskip("grimp")  # installed with import-linter (dev extra)
    graph = grimp.build_graph("edge_agent", include_external_packages=False)
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        src = module.split(".")[1] if "." in module else ""
        for imported in graph.find_modules_directly_imported_by(module):
            dst = imported.split(".")[1] if "." in imported else ""
            if src != dst:
                edges.setdefault(src, set()).add(dst)
    return edges


def cycles(edges: dict[str, set[str]], nodes: tuple[str, ...]) -> list[list[str]]:
    """Every cycle (as a path) through the given nodes, by depth-first search from each node."""
    found: list[list[str]] = []

    def walk(path: list[str]) -> None:
        for nxt in sorted(edges.get(path[-1], set()) & set(nodes)):
            if nxt == path[0]:
                found.append([*path, nxt])
            elif nxt not in path and nxt > path[0]:  # each cycle once, from its smallest node
                walk([*path, nxt])

    for node in nodes:
        walk([node])
    return found


def test_cycle_finder_finds_a_planted_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ("a", "b", "c")) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": {"c"}}, ("a", "b", "c")) == []


def test_no_import_cycle_between_stage_packages() -> None:
    assert cycles(package_graph(), STAGES) == []


def test_track_does_not_import_analytics() -> None:
    """analytics builds on track (the tracker feeds the summaries), so track must not reach back up."""
    assert "analytics" not in package_graph().get("track", set())


def test_import_linter_contracts_are_kept() -> None:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(exe).exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    res = subprocess.run([exe], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "broken" not in res.stdout.split("Contracts:")[-1].replace("0 broken", "")


def _plain_any(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Name) and node.id == "Any"


@pytest.mark.parametrize("name", SEAM_MODULES)
def test_daemon_seams_have_no_plain_any(name: str) -> None:
    """Stage parameters, returns and attributes are typed with the stage interfaces (JSON payloads may hold Any)."""
    tree = ast.parse((REPO / "edge_agent" / "daemon" / f"{name}.py").read_text(encoding="utf-8"))
    offenders = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
            offenders += [f"{node.name}({a.arg})" for a in args if _plain_any(a.annotation)]
            if _plain_any(node.returns):
                offenders.append(f"{node.name} -> Any")
        elif isinstance(node, ast.AnnAssign) and _plain_any(node.annotation):
            offenders.append(ast.unparse(node.target))
    assert offenders == []
