"""The pipeline's stages, the shared vocabulary and the model protocol."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from accelsim import api, pipeline
from accelsim.cache import POLICY_CODES
from accelsim.errors import AccelsimError
from accelsim.graph import GraphBuilder
from accelsim.hardware import CacheLevelSpec
from accelsim.models.nmt import NMTConfig
from accelsim.models.registry import register
from accelsim.spec import load_hardware
from accelsim.vocabulary import (
    COMPUTE_DTYPES,
    DTYPE_BYTES,
    MEMORY,
    REPLACEMENT_POLICIES,
    dtype_bytes,
)
from accelsim.workload import DatasetSpec, WorkloadSpec

ROOT = Path(__file__).resolve().parents[1]
HW = load_hardware(ROOT / "hwspecs" / "ppopp19_target.yaml")
WL = WorkloadSpec(name="nmt_tiny", subbatch=8, model=NMTConfig(hidden=64, vocab=500,
                                                                sequence_length=3),
                  dataset=DatasetSpec(samples=1e6))


@pytest.fixture(scope="module")
def report():
    return api.simulate(HW, WL, mode="exact")


def test_stages_compose_to_simulate(report):
    """Running the stages one by one (as a plan pass between fuse and map would) gives the
    report `simulate` gives."""
    prepared = pipeline.prepare(WL)
    mapping = pipeline.map_step(HW, prepared.executed, WL.precision)
    traffic = pipeline.trace_step(HW, prepared.executed, mapping, mode="exact")
    timing = pipeline.time_step(HW, prepared.executed, mapping, traffic)
    replayed = pipeline.replay_step(HW, prepared.executed, timing, traffic)
    assert len(mapping.mappings) == len(timing.timings) == len(prepared.executed.ops)
    assert replayed.step_time_s == report.summary.step_time_s
    assert [r.end_s for r in replayed.ops] == [o.end_s for o in report.ops]
    step = pipeline.simulate_step(HW, prepared.executed, WL.precision, mode="exact")
    summary = pipeline.summarize(HW, prepared, step, chips=1)
    assert pipeline.estimate_cost(HW, WL, summary).to_dict() == report.to_dict()


def test_records_are_frozen():
    prepared = pipeline.prepare(WL)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        prepared.executed = prepared.graph  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        prepared.executed.ops[0].name = "x"  # type: ignore[misc]


def test_report_time_is_contended_and_never_below_isolated(report):
    step = pipeline.simulate_step(HW, pipeline.prepare(WL).executed, WL.precision, mode="exact")
    for rec, op in zip(step.ops, report.ops, strict=True):
        assert op.time_s == rec.duration_s == rec.end_s - rec.start_s
        assert op.time_s >= rec.isolated_time_s * (1 - 1e-9)
    assert MEMORY in report.summary.level_bytes


def test_missing_precision_pipe_is_noted():
    hw = attrs.evolve(HW, compute=attrs.evolve(
        HW.compute, matrix={"fp32": HW.compute.matrix["fp32"]}))
    wl = attrs.evolve(WL, precision="fp16")
    notes = api.simulate(hw, wl).notes
    assert any("no fp16 matrix pipe" in n and "fp32 pipe" in n for n in notes)
    assert not any("matrix pipe" in n for n in api.simulate(HW, WL).notes)


def test_epoch_uses_the_family_samples_per_example(report):
    s = report.summary
    assert s.samples_per_step == 8 * WL.model.samples_per_example()
    assert s.steps_per_epoch == pytest.approx(1e6 / s.samples_per_step)


def test_dtype_table_is_strict():
    assert dtype_bytes("int32") == 4 and dtype_bytes("fp16") == 2
    with pytest.raises(AccelsimError, match="dtype"):
        dtype_bytes("fp12")
    g = GraphBuilder("g")
    t = g.tensor("x", (4,), dtype="fp12")
    with pytest.raises(AccelsimError):
        _ = t.nbytes
    assert set(COMPUTE_DTYPES) < set(DTYPE_BYTES)


def test_one_list_of_policies():
    assert tuple(POLICY_CODES) == REPLACEMENT_POLICIES
    choices = attrs.fields(CacheLevelSpec).replacement.metadata.get("choices")
    assert tuple(choices) == REPLACEMENT_POLICIES


def test_a_model_family_must_declare_its_protocol():
    @attrs.frozen
    class NoProtocol:
        width: int = 1

    with pytest.raises(TypeError, match="samples_per_example"):
        register("no_protocol", NoProtocol)
