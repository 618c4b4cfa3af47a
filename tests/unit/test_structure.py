"""The package's shape, read from the source: no import cycles between packages, and the kernel
never imports what runs in the training process (workbench/train/runner)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNNER = "workbench.train.runner"
# The two ways into the runner process: `python -m workbench.train` and the warm runner's wait.
PROCESS_ENTRIES = {"workbench.train.__main__", "workbench.train.warm"}


def modules(package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of `package` (a folder under the root)."""
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imported(name: str, path: Path) -> set[str]:
    """Every module `name` imports at run time, at any depth (lazy imports too), as dotted
    names; imports under `if TYPE_CHECKING:` are for type checkers only and do not count."""
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for inner in ast.walk(node)
    }
    out = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            prefix = ".".join(base + ([node.module] if node.module else []))
            out |= {prefix} | {f"{prefix}.{alias.name}" for alias in node.names}
    return out


def package_of(module: str, depth: int = 2) -> str:
    return ".".join(module.split(".")[:depth])


def cycles(edges: dict[str, set[str]]) -> list[set[str]]:
    """Groups of nodes that reach each other (strongly connected, more than one node)."""
    reach = {node: _reachable(edges, node) for node in edges}
    groups = {
        frozenset(n for n in reach if node in reach[n] and n in reach[node]) for node in edges
    }
    return [set(group) for group in groups if len(group) > 1]


def _reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_two_packages_import_each_other():
    """workbench.data never imports workbench.preferences back, and so on for every pair."""
    for top in ("workbench", "widgets"):
        found = modules(top)
        del found[top]  # the root's __init__ re-exports the public names of every package
        edges: dict[str, set[str]] = {}
        for name, path in found.items():
            local = {package_of(t) for t in imported(name, path)} & found.keys()
            edges.setdefault(package_of(name), set()).update(local - {package_of(name)})
        assert not cycles(edges), f"{top}: packages import each other: {cycles(edges)}"


def test_the_kernel_never_imports_the_runner_process_modules():
    """What a notebook imports stays free of the trainers; only the process entries start them."""
    kernel_side = {
        name: path
        for name, path in modules("workbench").items()
        if not name.startswith(RUNNER) and name not in PROCESS_ENTRIES
    }
    offenders = {
        name: sorted(t for t in imported(name, path) if t.startswith(RUNNER))
        for name, path in kernel_side.items()
    }
    assert not {k: v for k, v in offenders.items() if v}
    assert all(imported(entry, modules("workbench")[entry]) for entry in PROCESS_ENTRIES)
