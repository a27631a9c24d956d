"""Imports point one way: third-party engines stay in their room, inner layers never import outer.

Parsed from the source with `ast`, so the check costs nothing and cannot be fooled by lazy
imports inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "accelsim"

#: third-party module -> the only accelsim modules that may import it.
ENGINE_ROOMS = {
    "numba": ("accelsim.kernels",),
    "simpy": ("accelsim.replay",),
    "matplotlib": ("accelsim.plot",),
    "yaml": ("accelsim.spec", "accelsim.reproduce", "accelsim.validate"),
    "distributed": ("accelsim.dse",),
    "dask": ("accelsim.dse",),
    "tqdm": ("accelsim.progress",),
}

#: accelsim module -> accelsim modules it must not import (the data flow of docs/architecture.md).
FORBIDDEN = {
    "accelsim.errors": ("accelsim",),
    "accelsim.units": ("accelsim.spec", "accelsim.hardware", "accelsim.workload", "accelsim.models"),
    "accelsim.hardware": ("accelsim.spec", "accelsim.models", "accelsim.graph", "accelsim.replay"),
    "accelsim.workload": ("accelsim.hardware", "accelsim.spec", "accelsim.models"),
    "accelsim.graph": ("accelsim.hardware", "accelsim.spec", "accelsim.models"),
    "accelsim.models": ("accelsim.hardware", "accelsim.spec", "accelsim.mapping", "accelsim.replay"),
    "accelsim.kernels": ("accelsim.hardware", "accelsim.graph", "accelsim.spec", "accelsim.cache"),
    "accelsim.report": ("accelsim.replay", "accelsim.trace", "accelsim.spec", "accelsim.models"),
}


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


MODULES = list(_modules())


@pytest.mark.parametrize("module, path", MODULES, ids=[m for m, _ in MODULES])
def test_imports_point_one_way(module, path):
    imports = _imports(path)
    for engine, rooms in ENGINE_ROOMS.items():
        if any(_within(i, (engine,)) for i in imports):
            assert _within(module, rooms), f"{module} imports {engine}; only {rooms} may"
    for owner, banned in FORBIDDEN.items():
        if _within(module, (owner,)):
            bad = sorted(i for i in imports if _within(i, banned) and not _within(i, (owner,)))
            if owner == "accelsim.errors":
                bad = [i for i in imports if i.startswith("accelsim")]
            assert not bad, f"{module} must not import {bad}"


def test_core_import_does_not_load_engines():
    import subprocess
    import sys

    code = ("import sys, accelsim, accelsim.spec, accelsim.models; "
            "print(sorted(m for m in ('numba', 'simpy', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
