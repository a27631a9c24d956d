"""Imports point one way: the data flow of docs/architecture.md, engines in their rooms, no cycle.

    spec -> graph -> plan/partition -> mapping -> trace -> cache -> timing -> replay -> report

Every accelsim module belongs to one stage of that flow (or to the foundation every stage may
use, or to the entry points that drive the stages). A module may import its own stage and
earlier ones, never a later one. Parsed from the source with `ast`, so the check costs nothing
and sees lazy imports inside functions and `TYPE_CHECKING` blocks too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "accelsim"

#: The flow, in order. A module is listed by name; a package name covers its submodules.
#: `plan` and `partition` are the rooms of the parallel-plan pass (issue 8) between the graph
#: and the mapping, listed here so that modules added there are checked from the start.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("accelsim.errors", "accelsim.refdata", "accelsim.vocabulary",
                    "accelsim.units", "accelsim.schema")),
    ("spec", ("accelsim.plan", "accelsim.hardware", "accelsim.workload")),
    # model families are the workload's `model:` configs and their graph builders; the YAML
    # loader (`spec` module) reads those configs, so it sits after them
    ("graph", ("accelsim.graph", "accelsim.models", "accelsim.fusion", "accelsim.spec")),
    ("plan", ("accelsim.partition", "accelsim.collectives")),
    ("mapping", ("accelsim.mapping",)),
    # address streams of each op
    ("trace", ("accelsim.trace_layout", "accelsim.trace_runs", "accelsim.kernels.trace",
               "accelsim.kernels.__init__")),
    # the streams through the cache state: counters, block sizes, steady state, per-op traffic
    ("cache", ("accelsim.cache", "accelsim.kernels.cache", "accelsim.kernels.mrc",
               "accelsim.coarsening", "accelsim.trace_steady", "accelsim.trace",
               "accelsim.traffic", "accelsim.mrc")),
    ("timing", ("accelsim.timing",)),
    ("replay", ("accelsim.replay",)),
    # energy, area and cost read a finished Report and the spec (issue 14)
    ("report", ("accelsim.report", "accelsim.energy", "accelsim.timeline")),
    # drive the stages or sit beside them (learning curves, the paper's tables, plots, tests)
    ("entry", ("accelsim.estimate", "accelsim.outputs", "accelsim.progress", "accelsim.reuse", "accelsim.pipeline", "accelsim.parallel", "accelsim.planner", "accelsim.calibrate",
               "accelsim.case_study", "accelsim.study", "accelsim.api", "accelsim.validate", "accelsim.dse",
               "accelsim.cli", "accelsim.plot", "accelsim.scaling", "accelsim.reproduce",
               "accelsim.testing", "accelsim.spec_strategies", "accelsim.__main__")),
]
#: The package itself (`import accelsim`): the public face, re-exports of any stage.
PACKAGE_ROOT = "accelsim"

#: Narrower rules inside a stage or for rooms with a single job.
FORBIDDEN = {
    "accelsim.errors": ("accelsim",),  # imports nothing of accelsim
    "accelsim.refdata": ("accelsim",),  # packaged data files: imports nothing of accelsim
    "accelsim.vocabulary": ("accelsim.units", "accelsim.schema"),
    "accelsim.units": ("accelsim.schema", "accelsim.vocabulary"),
    "accelsim.kernels": ("accelsim",),  # numba only: arrays in, arrays out
    "accelsim.workload": ("accelsim.hardware",),
    "accelsim.hardware": ("accelsim.workload",),
    "accelsim.graph": ("accelsim.models", "accelsim.fusion", "accelsim.spec"),
    "accelsim.models": ("accelsim.spec", "accelsim.fusion"),
    "accelsim.fusion": ("accelsim.spec", "accelsim.models"),
    "accelsim.report": ("accelsim",),  # plain numbers; only foundation (checked below)
    "accelsim.plot": ("accelsim.pipeline", "accelsim.api", "accelsim.replay"),
    "accelsim.scaling": ("accelsim.pipeline", "accelsim.api", "accelsim.replay",
                         "accelsim.trace", "accelsim.cache", "accelsim.timing"),
    "accelsim.reproduce": ("accelsim.pipeline", "accelsim.api", "accelsim.replay",
                           "accelsim.trace", "accelsim.cache", "accelsim.timing"),
    "accelsim.timing": ("accelsim.cache", "accelsim.trace", "accelsim.kernels"),
    # a plan is plain spec data; the partition pass and collectives know no cache or replay
    "accelsim.plan": ("accelsim.hardware", "accelsim.workload"),
    "accelsim.collectives": ("accelsim.partition",),
    "accelsim.partition": ("accelsim.collectives",),
    # energy reads a finished Report and the spec: no simulation engine (report stage only)
    # the trace-event view of a finished Report
    "accelsim.timeline": ("accelsim.energy",),
    "accelsim.energy": ("accelsim.replay", "accelsim.timing", "accelsim.mapping",
                        "accelsim.kernels", "accelsim.cache", "accelsim.trace"),
}
#: What a narrow room may still import despite its FORBIDDEN prefix.
ALLOWED = {
    "accelsim.kernels": ("accelsim.kernels",),
    # Report.to_timeline hands itself to the timeline view (which imports no report)
    "accelsim.report": ("accelsim.units", "accelsim.errors", "accelsim.vocabulary",
                        "accelsim.timeline"),
}

#: third-party module -> the only accelsim modules that may import it.
ENGINE_ROOMS = {
    "numba": ("accelsim.kernels",),
    "simpy": ("accelsim.replay",),
    "matplotlib": ("accelsim.plot",),
    "yaml": ("accelsim.spec", "accelsim.reproduce", "accelsim.validate", "accelsim.refdata"),
    "distributed": ("accelsim.dse",),
    "dask": ("accelsim.dse",),
    "tqdm": ("accelsim.progress",),
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _resolve(name: str) -> str | None:
    """The accelsim module an imported name lives in (longest module prefix)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imported_modules(path: Path) -> set[str]:
    """accelsim modules a file imports, at any depth (functions, TYPE_CHECKING blocks)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from accelsim import timing` imports the module accelsim.timing
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES
                     else node.module for alias in node.names]
        for n in names:
            mod = _resolve(n) if n.startswith("accelsim") else None
            if mod is not None:
                found.add(mod)
    return found


def _third_party(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _stage(module: str) -> int | None:
    if module == "accelsim.kernels":  # the (empty) package of the numba kernels
        module = "accelsim.kernels.__init__"
    for rank, (_name, members) in enumerate(STAGES):
        if _within(module, members):
            return rank
    return None


IMPORTS = {m: _imported_modules(p) - {m} for m, p in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_has_a_room(module):
    assert module == PACKAGE_ROOT or _stage(module) is not None, (
        f"{module} is in no stage of tests/test_architecture.py STAGES: place it in the flow "
        "(and in docs/architecture.md's rooms table)")


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != PACKAGE_ROOT))
def test_imports_follow_the_flow(module):
    rank = _stage(module)
    later = sorted(i for i in IMPORTS[module]
                   if i != PACKAGE_ROOT and (_stage(i) or 0) > (rank or 0))
    assert not later, (f"{module} ({STAGES[rank or 0][0]}) imports later stages: "
                       + ", ".join(f"{i} ({STAGES[_stage(i) or 0][0]})" for i in later))
    assert PACKAGE_ROOT not in IMPORTS[module] or _stage(module) == len(STAGES) - 1, (
        f"{module} imports the package root `accelsim` (the public face); import the module")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_narrow_rooms(module):
    for owner, banned in FORBIDDEN.items():
        if not _within(module, (owner,)):
            continue
        allowed = (owner, *ALLOWED.get(owner, ()))
        bad = sorted(i for i in IMPORTS[module] if _within(i, banned) and not _within(i, allowed))
        assert not bad, f"{module} must not import {bad}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_engines_stay_in_their_rooms(module):
    used = _third_party(MODULES[module])
    for engine, rooms in ENGINE_ROOMS.items():
        if engine in used:
            assert _within(module, rooms), f"{module} imports {engine}; only {rooms} may"


def test_import_graph_has_no_cycle():
    """Depth-first search over every accelsim import (lazy ones included)."""
    color: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        color[m] = 1
        stack.append(m)
        for n in sorted(IMPORTS[m]):
            if color.get(n) == 1:
                cycle = stack[stack.index(n):] + [n]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if n not in color:
                visit(n)
        stack.pop()
        color[m] = 2

    for m in sorted(MODULES):
        if m not in color:
            visit(m)


def test_the_rules_catch_a_backward_import(tmp_path):
    """The checker itself: a mapping module importing timing is a later-stage import."""
    fake = tmp_path / "m.py"
    fake.write_text("def f():\n    from accelsim.timing import op_timing\n", encoding="utf-8")
    assert _imported_modules(fake) == {"accelsim.timing"}
    assert _stage("accelsim.timing") > _stage("accelsim.mapping")


def test_core_import_does_not_load_engines():
    import subprocess
    import sys

    code = ("import sys, accelsim, accelsim.spec, accelsim.models, accelsim.pipeline, "
            "accelsim.api, accelsim.timing; "
            "print(sorted(m for m in ('numba', 'simpy', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PKG.parent)
    assert out.stdout.strip() == "[]"
