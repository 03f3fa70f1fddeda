"""The package's import contract, read from the source with ``ast`` (nothing is imported).

Every ``import`` / ``from ... import`` in ``edgecalc`` is an edge, tagged ``module`` (runs on import)
or ``function`` (inside a function body: runs when called). The contract:

- no import cycle between two modules, at either level (a lazy import only hides a circle);
- no cycle between subpackages (``edgecalc.X``) at module level;
- ``edgecalc.runtime`` (the cart) never imports ``model``, ``train``, ``eval``, ``export``,
  ``calibration`` or torch, nor the commands ``doctor``, ``bench``, ``locator``, at either level; the one exception is the TorchScript backend, whose job
  is to run a TorchScript file with torch when the user picks it (``RUNTIME_TORCH_BACKEND``);
- ``eval`` never imports ``train``, at either level (evaluation sits below training, which calls it for
  its final test-fold score); the studies that train and evaluate many runs (``sweep``, ``compare``) are
  the floor above both, ``edgecalc/studies/``, and only the CLI imports them;
- no module outside the package ``edgecalc/cli/`` imports it (the top floor), but the entry point
  ``edgecalc/__main__.py``.

The checks are functions of a graph, so the tests at the bottom plant each violation in a small
package written to a temporary folder and assert the checker finds it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "edgecalc"
RUNTIME_FORBIDDEN = ("edgecalc.model", "edgecalc.train", "edgecalc.eval", "edgecalc.export", "edgecalc.calibration", "torch",
                     # nor the commands above it (their machine probes are edgecalc.machine)
                     "edgecalc.doctor", "edgecalc.bench", "edgecalc.locator")
RUNTIME_TORCH_BACKEND = "edgecalc.runtime.engine.backends.torchscript_backend"
CLI_ENTRY_POINTS = ("edgecalc.__main__",)


@dataclass(frozen=True)
class Edge:
    source: str  # importing module
    target: str  # imported module or name, absolute
    level: str  # "module" | "function"
    line: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line} -> {self.target} ({self.level})"


def module_name(path: Path, package_dir: Path) -> str:
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    # ``from a import b`` may import the module a.b: keep both, the resolver picks what exists
    return [prefix] + [f"{prefix}.{a.name}" for a in node.names]


def import_edges(package_dir: Path) -> list[Edge]:
    edges: list[Edge] = []
    for path in sorted(package_dir.rglob("*.py")):
        module = module_name(path, package_dir)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

        def walk(node: ast.AST, level: str) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    for target in _targets(child, module, path.name == "__init__.py"):
                        edges.append(Edge(module, target, level, child.lineno))
                elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                    walk(child, "function")
                else:
                    walk(child, level)

        walk(tree, "module")
    return edges


def module_graph(edges: list[Edge], modules: set[str], levels: tuple[str, ...]) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (a name ``a.b.f`` resolves to module ``a.b``)."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for e in edges:
        if e.level not in levels:
            continue
        target = e.target
        while target and target not in modules:
            target = target.rpartition(".")[0]
        # importing a submodule runs its package's __init__ too, but that is the package's own business
        if target and target != e.source and not e.source.startswith(target + "."):
            graph[e.source].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def subpackage(module: str, root: str) -> str:
    """``edgecalc.runtime.live.loop`` -> ``edgecalc.runtime``; top-level modules are their own node."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == root and len(parts) > 1 else module


def subpackage_cycles(edges: list[Edge], modules: set[str], root: str) -> list[list[str]]:
    graph: dict[str, set[str]] = {}
    for source, targets in module_graph(edges, modules, ("module",)).items():
        node = subpackage(source, root)
        graph.setdefault(node, set())
        for target in targets:
            if subpackage(target, root) != node:
                graph[node].add(subpackage(target, root))
    return cycles(graph)


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def forbidden(edges: list[Edge], sources: tuple[str, ...], targets: tuple[str, ...], levels: tuple[str, ...],
              allowed: tuple[tuple[str, str], ...] = ()) -> list[Edge]:
    """Edges from inside ``sources`` to inside ``targets`` at ``levels``, less the (source, target) pairs allowed."""
    return [e for e in edges if e.level in levels and _within(e.source, sources) and _within(e.target, targets)
            and not any(e.source == s and _within(e.target, (t,)) for s, t in allowed)]


def violations(package_dir: Path, root: str = "edgecalc") -> dict[str, list[str]]:
    """Every broken rule, as readable lines, keyed by the rule."""
    edges = import_edges(package_dir)
    modules = {module_name(p, package_dir) for p in package_dir.rglob("*.py")}
    both = ("module", "function")
    return {
        "module cycles (module-level imports)": [" <-> ".join(c) for c in cycles(module_graph(edges, modules, ("module",)))],
        "module cycles (module- and function-level imports)": [" <-> ".join(c) for c in cycles(module_graph(edges, modules, both))],
        "subpackage cycles (module level)": [" <-> ".join(c) for c in subpackage_cycles(edges, modules, root)],
        "runtime imports a training-side package or torch (module level)": [
            str(e) for e in forbidden(edges, (f"{root}.runtime",), _rooted(RUNTIME_FORBIDDEN, root), ("module",))],
        "runtime imports a training-side package or torch (function level)": [
            str(e) for e in forbidden(edges, (f"{root}.runtime",), _rooted(RUNTIME_FORBIDDEN, root), ("function",),
                                      allowed=((RUNTIME_TORCH_BACKEND.replace("edgecalc", root, 1), "torch"),))],
        "eval imports train": [str(e) for e in forbidden(edges, (f"{root}.eval",), (f"{root}.train",), both)],
        "a module below the studies imports them": [
            str(e) for e in forbidden(edges, (root,), (f"{root}.studies",), both)
            if not _within(e.source, (f"{root}.studies", f"{root}.cli"))],
        "a module imports the CLI": [
            str(e) for e in forbidden(edges, (root,), (f"{root}.cli",), both)
            if not _within(e.source, (f"{root}.cli",))
            and e.source not in {m.replace("edgecalc", root, 1) for m in CLI_ENTRY_POINTS}],
    }


def _rooted(names: tuple[str, ...], root: str) -> tuple[str, ...]:
    return tuple(n.replace("edgecalc", root, 1) for n in names)


def test_package_keeps_its_import_contract():
    broken = {rule: lines for rule, lines in violations(PACKAGE_DIR).items() if lines}
    assert not broken, "\n".join(f"{rule}:\n  " + "\n  ".join(lines) for rule, lines in broken.items())


def test_the_torchscript_exception_names_a_real_module():
    """The one allowed torch import must point at a file that exists, or the exemption hides nothing real."""
    assert (PACKAGE_DIR.parent / (RUNTIME_TORCH_BACKEND.replace(".", "/") + ".py")).is_file()


def test_edges_are_tagged_by_level():
    edges = import_edges(PACKAGE_DIR)
    levels = {e.level for e in edges}
    assert levels == {"module", "function"}
    assert any(e.source == "edgecalc.__main__" and e.target == "edgecalc.cli" and e.level == "module" for e in edges)


# --- the checker on planted violations -------------------------------------------------------------

def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for rel, text in {"__init__.py": "", **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(root).parents:
            (root / parent / "__init__.py").touch()
        path.write_text(text)
    return root


CLEAN = {
    "data/prep.py": "import numpy\n",
    "runtime/live/loop.py": "from pkg.data.prep import numpy\n",
    "train/run.py": "from pkg.eval import metrics\n",
    "train/config.py": "",
    "eval/metrics.py": "def f():\n    from pkg.run_folder import read_config\n",
    "run_folder.py": "",
    "studies/sweep.py": "from pkg.train.run import run_training\nfrom pkg.eval import metrics\n",
    "cli/train.py": "def sweep():\n    from pkg.studies.sweep import run_training\n",
}


def test_checker_passes_a_clean_package(tmp_path):
    assert not any(violations(_package(tmp_path, CLEAN), root="pkg").values())


@pytest.mark.parametrize("rule, files", [
    ("module cycles (module- and function-level imports)",
     {"bench/report.py": "from pkg.bench.run import Row\n", "bench/run.py": "def go():\n    from pkg.bench import report\n"}),
    ("module cycles (module-level imports)",
     {"a.py": "import pkg.b\n", "b.py": "from . import a\n"}),
    ("subpackage cycles (module level)",
     {"data/x.py": "from pkg.runtime.y import thing\n", "runtime/y.py": "from ..data import x\nthing = 1\n"}),
    ("runtime imports a training-side package or torch (module level)",
     {"runtime/engine/bundle.py": "from pkg.export.pipeline import run\n"}),
    ("runtime imports a training-side package or torch (function level)",
     {"runtime/live/overlay.py": "def draw():\n    import torch.nn\n"}),
    ("runtime imports a training-side package or torch (function level)",
     {"runtime/cache.py": "def go():\n    from pkg.model.weights import load\n"}),
    ("eval imports train",  # (train no longer imports eval here, so no circle either)
     {"train/run.py": "", "eval/sweep.py": "from pkg.train.run import run_training\n"}),
    ("eval imports train", {"train/run.py": "", "eval/evaluate.py": "def f():\n    from pkg.train.config import TrainConfig\n"}),
    ("a module below the studies imports them",
     {"train/run.py": "", "train/commands.py": "def go():\n    from pkg.studies.sweep import run_training\n"}),
    ("a module imports the CLI", {"train/__main__.py": "from pkg.cli import app\n", "cli.py": ""}),
    ("a module imports the CLI", {"train/commands.py": "def go():\n    from pkg.cli.options import RECIPE\n",
                                  "cli/__init__.py": "from pkg.cli import options\n", "cli/options.py": ""}),
])
def test_checker_finds_a_planted_violation(tmp_path, rule, files):
    found = violations(_package(tmp_path, {**CLEAN, **files}), root="pkg")
    assert found[rule], f"{rule} not found in {found}"
    # a planted circle may show under more than one cycle rule; every other rule stays quiet
    assert all(not lines for other, lines in found.items() if other != rule and not ("cycles" in other and "cycles" in rule))


def test_checker_allows_only_the_torchscript_backend_to_import_torch(tmp_path):
    files = {**CLEAN, "runtime/engine/backends/torchscript_backend.py": "def load():\n    import torch\n"}
    assert not violations(_package(tmp_path, files), root="pkg")["runtime imports a training-side package or torch (function level)"]
    files["runtime/engine/backends/torchscript_backend.py"] = "import torch\n"  # at module level: not allowed
    assert violations(_package(tmp_path, files), root="pkg")["runtime imports a training-side package or torch (module level)"]


def private_imports(package_dir: Path, root: str = "edgecalc") -> list[str]:
    """``from edgecalc.x import _name``: a private name used outside its module (make it public or move it)."""
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and (node.module == root or node.module.startswith(root + ".")):
                found += [f"{path.relative_to(package_dir.parent)}:{node.lineno}: {node.module}.{a.name}"
                          for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    return found


def test_no_module_imports_another_modules_private_names():
    assert private_imports(PACKAGE_DIR) == []


def test_the_private_import_check_finds_a_planted_one(tmp_path):
    pkg = _package(tmp_path, {"a.py": "def _helper():\n    pass\n", "b.py": "def f():\n    from pkg.a import _helper\n"})
    assert private_imports(pkg, root="pkg") == ["pkg/b.py:2: pkg.a._helper"]
