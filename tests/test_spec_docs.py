"""docs/spec-format.md is generated from the spec classes; it must match what the code says now."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import attrs

from accelsim import hardware, spec, workload
from accelsim.models import FAMILIES

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _generator():
    loaded = importlib.util.spec_from_file_location("gen_spec_docs", DOCS / "gen_spec_docs.py")
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module


def test_committed_reference_is_up_to_date():
    text = (DOCS / "spec-format.md").read_text(encoding="utf-8")
    assert text == _generator().render(), "stale: run python docs/gen_spec_docs.py"


def test_reference_names_every_key():
    text = _generator().render()
    classes = [hardware.HardwareSpec, hardware.ComputeSpec, hardware.MatrixPipe,
               hardware.CacheLevelSpec, hardware.MemorySpec, hardware.InterconnectSpec,
               hardware.Calibration, workload.WorkloadSpec, workload.DatasetSpec]
    classes += [f.config_class for f in FAMILIES.values()]
    for cls in classes:
        assert f"### {cls.__name__}" in text or f"({cls.__name__})" in text
        for f in attrs.fields(cls):
            assert f"| `{spec.yaml_key(f.name)}`" in text, (cls.__name__, f.name)
    assert "chip.yaml:9:52: caches[0].ways: expected a divisor" in text
