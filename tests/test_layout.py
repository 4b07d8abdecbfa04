"""The layout is the architecture: these tests fail the build when an import breaks its rules.

Every import counts, at module level or inside a function (an import inside a function still
ties the two modules together; it only hides the tie). The rules, drawn in ARCHITECTURE.md:

* the stages stand in one order, ``core < collect < trust < learn < ask < govern < serve <
  watch``, and a module imports only its own stage and the ones before it (``core`` imports no
  stage);
* ``worker.py`` (job kinds -> handlers) and ``configure.py`` (settings checked once) sit above
  every stage; no stage imports them, so jobs are queued by kind name and dispatched in one place;
* the edges sit on top, in the order ``web < api < cli``: the static pages (``web/``), mounted by
  the HTTP API (``api/``), which ``looplab serve`` (``cli/``) runs; nothing below imports them;
* only the HTTP edge (``api/`` and the ``web/`` it mounts) imports FastAPI or Starlette, only
  ``cli/`` imports Typer;
* no module imports another in a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "looplab"
STAGES = ("core", "collect", "trust", "learn", "ask", "govern", "serve", "watch")
TOP = ("worker", "configure")
EDGES = ("web", "api", "cli")


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (migrations are Alembic's, not ours)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if "migrations" in parts:
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = modules()


def imports_of(path: Path) -> Iterator[tuple[str, int]]:
    """(imported module or package, line) for every import in ``path``, wherever it stands."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                yield (full if full in MODULES else node.module), node.lineno


def layer(module: str) -> tuple[int, str]:
    """Where ``module`` stands: (rank, group). Higher ranks may import lower ones."""
    parts = module.split(".")
    if len(parts) == 1:  # the package itself (its version)
        return 0, "looplab"
    group = parts[1]
    if group in STAGES:
        return 1 + STAGES.index(group), group
    if group in TOP:
        return 1 + len(STAGES), group
    if group in EDGES:
        return 2 + len(STAGES) + EDGES.index(group), group
    raise AssertionError(f"{module}: not in a stage, the top or an edge; place it in the layout")


def internal_edges() -> list[tuple[str, str, int]]:
    edges = []
    for name, path in MODULES.items():
        for target, line in imports_of(path):
            if target.startswith("looplab.") or target == "looplab":
                while target not in MODULES and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target != name:
                    edges.append((name, target, line))
    return edges


def test_every_module_has_a_place() -> None:
    for name in MODULES:
        layer(name)


def against_order(edges: list[tuple[str, str, int]]) -> list[str]:
    """The edges that import a later stage (or another group of the same rank)."""
    broken = []
    for source, target, line in edges:
        (rank_s, group_s), (rank_t, group_t) = layer(source), layer(target)
        if group_s == group_t or target == "looplab":
            continue
        if rank_t >= rank_s:
            broken.append(f"{source}:{line} ({group_s}) imports {target}")
    return broken


def test_each_stage_imports_only_itself_and_the_stages_before_it() -> None:
    broken = against_order(internal_edges())
    assert not broken, "imports against the layer order:\n" + "\n".join(broken)


@pytest.mark.parametrize(
    ("library", "allowed"),
    [("fastapi", ("api", "web")), ("starlette", ("api", "web")), ("typer", ("cli",))],
)
def test_frameworks_stay_at_their_edge(library: str, allowed: tuple[str, ...]) -> None:
    broken = [
        f"{path}:{line}: {name} imports {target}"
        for name, path in MODULES.items()
        if layer(name)[1] not in allowed
        for target, line in imports_of(path)
        if target == library or target.startswith(library + ".")
    ]
    assert not broken, f"only {allowed}/ may import {library}:\n" + "\n".join(broken)


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for source, target, _ in internal_edges():
        if target in graph:
            graph[source].add(target)
    # Tarjan's strongly connected components, iteratively.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
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
                    cycles.append(sorted(component))
    assert not cycles, f"import cycles: {cycles}"


def test_a_planted_function_level_back_edge_is_reported(tmp_path: Path) -> None:
    """The checks read imports inside functions: core importing watch there is caught."""
    planted = tmp_path / "planted.py"
    planted.write_text("def f():\n    from looplab.watch import monitor\n")
    edges = [("looplab.core.jobs", target, line) for target, line in imports_of(planted)]
    assert edges == [("looplab.core.jobs", "looplab.watch.monitor", 2)]
    assert against_order(edges) == ["looplab.core.jobs:2 (core) imports looplab.watch.monitor"]


#: A function's length: from its ``def`` line to its last line, docstring included.
MAX_FUNCTION_LINES = 80

#: Functions still longer than MAX_FUNCTION_LINES, each with the length it may not pass. This list
#: only shrinks: split a function below the limit and delete its line here; never add a function
#: or raise a cap.
LONG_FUNCTIONS = {
    "looplab.ask.diversity.diverse_top_k": 82,
    "looplab.ask.simulate.compare": 93,
    "looplab.ask.simulate.simulate": 85,
    "looplab.cli.demo.simulate": 99,
    "looplab.api.routes.transfer.upload": 83,
    "looplab.cli.projects.import_": 87,
    "looplab.collect.labelstudio.iter_array": 89,
}


def function_lengths() -> Iterator[tuple[str, int, Path, int]]:
    """(qualified name, length, file, line) of every function and method in the package."""
    for module, path in MODULES.items():
        pending: list[tuple[str, ast.AST]] = [(module, ast.parse(path.read_text(), str(path)))]
        while pending:
            prefix, node = pending.pop()
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    name = f"{prefix}.{child.name}"
                    if not isinstance(child, ast.ClassDef):
                        length = (child.end_lineno or child.lineno) - child.lineno + 1
                        yield name, length, path, child.lineno
                    pending.append((name, child))
                else:
                    pending.append((prefix, child))


def test_no_function_is_longer_than_80_lines() -> None:
    too_long = [
        f"{path}:{line}: {name} has {length} lines (at most {cap})"
        for name, length, path, line in function_lengths()
        if length > (cap := LONG_FUNCTIONS.get(name, MAX_FUNCTION_LINES))
    ]
    assert not too_long, "split these into well-named parts:\n" + "\n".join(too_long)


def test_the_long_function_list_only_names_long_functions() -> None:
    lengths = {name: length for name, length, _, _ in function_lengths()}
    done = [name for name in LONG_FUNCTIONS if lengths.get(name, 0) <= MAX_FUNCTION_LINES]
    assert not done, "no longer over the limit (or gone): delete from LONG_FUNCTIONS: " + ", ".join(
        done
    )
