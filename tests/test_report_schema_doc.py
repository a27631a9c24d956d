"""docs/report-schema.md is generated from the report classes; it must match what they say now."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import attrs
import pytest

from accelsim.report import (
    SCHEMA_VERSION,
    EnergyAreaCost,
    OpResult,
    ParallelSummary,
    Report,
    StageSummary,
    Summary,
)

DOCS = Path(__file__).resolve().parents[1] / "docs"
CLASSES = (Report, Summary, OpResult, EnergyAreaCost, ParallelSummary, StageSummary)


def _generator():
    loaded = importlib.util.spec_from_file_location("gen_report_schema",
                                                    DOCS / "gen_report_schema.py")
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module


def _sections(text: str) -> dict[str, list[str]]:
    """Keys of each table, by section heading."""
    out: dict[str, list[str]] = {}
    heading = ""
    for line in text.splitlines():
        if line.startswith("## "):
            heading = line[3:].strip("`").removesuffix("[]")
            out[heading] = []
        m = re.match(r"\| `(\w+)` \|", line)
        if m:
            out[heading].append(m.group(1))
    return out


def test_committed_schema_is_up_to_date():
    text = (DOCS / "report-schema.md").read_text(encoding="utf-8")
    assert text == _generator().render(), "stale: run python docs/gen_report_schema.py"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_field_has_a_meaning(cls):
    for f in attrs.fields(cls):
        assert f.metadata.get("doc"), f"{cls.__name__}.{f.name}: declare it with _doc()"
        assert "unit" in f.metadata, f"{cls.__name__}.{f.name}"


def test_field_without_meaning_is_refused():
    @attrs.frozen
    class Bare:
        x: int

    with pytest.raises(ValueError, match="Bare.x has no meaning"):
        _generator().table(Bare)


def test_schema_rows_are_the_json_keys():
    """Each table lists exactly the keys `to_dict()` writes there, in the same order."""
    op = OpResult(name="a", kind="gemm", phase="forward", shape="[1x1]@[1x1]", flops=2.0,
                  start_s=0.0, end_s=1.0, time_s=1.0, bytes={"HBM": 1.0}, hit_rate={},
                  bound="compute", units=1)
    summary = Summary(params=1, flops=2.0, bytes_accessed=1.0, step_time_s=1.0,
                      peak_flop_rate=1.0, flop_utilization=1.0, hit_rate={}, level_bytes={},
                      bound_time_s={}, footprint_bytes=1, footprint_by_role={},
                      algorithmic_footprint_bytes=1, capacity_bytes=1, shortfall_bytes=0,
                      chips_needed=1, chips=1, samples_per_step=1.0, steps_per_epoch=None,
                      epoch_time_s=None)
    data = Report(hardware="hw", workload="wl", ops=(op,), summary=summary).to_dict()
    sections = _sections(_generator().render())
    assert sorted(sections["Top level"]) == sorted(data)
    assert sections["summary"] == list(data["summary"])
    assert sections["ops"] == list(data["ops"][0])
    assert sections["summary.energy_area_cost"] == [f.name for f in attrs.fields(EnergyAreaCost)]
    assert sections["parallel"] == [f.name for f in attrs.fields(ParallelSummary)]
    assert sections["parallel.stages"] == [f.name for f in attrs.fields(StageSummary)]
    assert data["schema_version"] == SCHEMA_VERSION


def test_optional_fields_say_null():
    text = _generator().render()
    assert "| `epoch_time_s` | s or null |" in text
    assert "| `parallel` | object or null |" in text
    assert "| `achieved_flop_rate` | FLOP/s |" in text
    assert f"`schema_version` is {SCHEMA_VERSION} (" in text
