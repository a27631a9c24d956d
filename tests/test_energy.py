"""Energy, area and cost (accelsim.energy): hand-checked numbers, invariants and published anchors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim import energy, spec
from accelsim.api import simulate
from accelsim.cli import main
from accelsim.errors import AccelsimError
from accelsim.graph import GraphBuilder
from accelsim.hardware import CacheLevelSpec, HardwareSpec, TechnologySpec
from accelsim.report import OpResult, Report, Summary

HWSPECS = Path(__file__).resolve().parents[1] / "hwspecs"

#: Published die areas (mm^2) with every SM of the die: NVIDIA's architecture whitepapers for
#: P100 (GP100, 16 nm), V100 (GV100, 12 nm), A100 (GA100, 7 nm) and H100 (GH100, 4N).
MEASURED_DIE_AREA_MM2 = {"p100": 610, "v100": 815, "a100": 826, "h100": 814}
#: V100 SXM2 board power (W), NVIDIA V100 datasheet: a compute-bound GEMM runs at this limit.
MEASURED_V100_BOARD_POWER_W = 300


def _hw(name: str) -> HardwareSpec:
    return spec.load_hardware(HWSPECS / f"{name}.yaml")


# --- a hand-made report: exact numbers without a simulation -----------------------------------
ROUND = TechnologySpec(
    node="12nm", matrix_energy_pj_per_flop={"fp32": 1.0}, vector_energy_pj_per_flop=2.0,
    sram_energy_pj_per_byte_at_1mib=2.0, sram_energy_capacity_exponent=0.5,
    hbm_energy_pj_per_bit=1.0, link_energy_pj_per_bit=1.0, logic_leakage_w_per_mm2=0.0,
    sram_leakage_mw_per_mib=0.0, hbm_static_w_per_stack=1.0, hbm_stacks=1,
    sram_bank_bytes=4 * 2**20, wire_energy_pj_per_bit_per_mm=1.0, sram_bitcell_area_um2=0.1,
    sram_array_efficiency=0.5)


def _chip(technology: TechnologySpec | None = ROUND, **cache: object) -> HardwareSpec:
    level = dict(name="L1", capacity_bytes=4 * 2**20, line_bytes=64, ways=1,
                 bandwidth_bytes_per_s=1e12)
    level.update(cache)
    data = {"name": "round", "compute": {"units": 4, "clock": "1 GHz",
                                         "matrix": {"fp32": {"macs_per_cycle_per_unit": 8}},
                                         "vector_flop_rate": "1 TFLOP/s", "local_memory": "64 KiB"},
            "caches": [{"name": "L1", "capacity": "4 MiB", "line": "64 B", "ways": 1,
                        "bandwidth": "1 TB/s"}],  # replaced below: the level under test
            "memory": {"capacity": "16 GiB", "bandwidth": "900 GB/s"},
            "interconnect": {"link_bandwidth": "50 GB/s"}}
    hw = spec.hardware_from_data(data)
    return attrs.evolve(hw, caches=(CacheLevelSpec(**level),), technology=technology)


def _report(ops: list[tuple[str, float, float, float]], step_time_s: float = 1.0,
            chips: int = 1, params: int = 0) -> Report:
    """ops: (kind, flops, L1 bytes, HBM bytes)."""
    results = tuple(OpResult(name=f"op{i}", kind=kind, phase="forward", shape="", flops=flops,
                             start_s=0.0, end_s=step_time_s, time_s=step_time_s,
                             bytes={"L1": l1, "HBM": hbm}, hit_rate={"L1": 0.5}, bound="compute",
                             units=1)
                    for i, (kind, flops, l1, hbm) in enumerate(ops))
    summary = Summary(params=params, flops=sum(o.flops for o in results), bytes_accessed=0.0,
                      step_time_s=step_time_s, peak_flop_rate=1e12, flop_utilization=0.0,
                      hit_rate={}, level_bytes={}, bound_time_s={}, footprint_bytes=0,
                      footprint_by_role={}, algorithmic_footprint_bytes=0, capacity_bytes=1,
                      shortfall_bytes=0, chips_needed=1, chips=chips, samples_per_step=1.0,
                      steps_per_epoch=1000.0, epoch_time_s=1000.0 * step_time_s)
    return Report(hardware="round", workload="hand", ops=results, summary=summary)


def test_energy_per_op_by_hand():
    # 4 MiB direct-mapped level, 64 B lines: 65536 sets, tag = 48 - 16 - 6 + 2 = 28 bits read
    # per access, 28 / (8 x 64) of a line's bytes; data energy 2 pJ/B x sqrt(4 MiB / 1 MiB).
    hw = _chip()
    per_byte = 2.0 * math.sqrt(4) * (1 + 28 / 512) * 1e-12
    assert energy.level_energy_per_byte_j(hw.caches[0], energy.technology(hw)) == pytest.approx(
        per_byte, rel=1e-12)
    report = _report([("gemm", 1e12, 1e9, 1e9), ("elementwise", 1e9, 0.0, 0.0)],
                     chips=4, params=1000)
    e = energy.estimate(report, hw, "fp32")
    assert e.step_energy_j["matrix"] == pytest.approx(1.0)             # 1e12 FLOP x 1 pJ
    assert e.step_energy_j["vector"] == pytest.approx(2e-3)            # 1e9 FLOP x 2 pJ
    assert e.step_energy_j["L1"] == pytest.approx(1e9 * per_byte)
    assert e.step_energy_j["HBM"] == pytest.approx(8e-3)               # 8e9 bit x 1 pJ
    assert e.step_energy_j["links"] == pytest.approx(2 * 3 / 4 * 1000 * 4 * 8 * 1e-12)
    assert e.step_energy_j["static"] == pytest.approx(1.0)             # one 1 W stack, 1 s
    assert e.total_step_energy_j == pytest.approx(sum(e.step_energy_j.values()), rel=1e-12)
    assert e.average_power_w == pytest.approx(e.total_step_energy_j / 1.0)
    assert e.op_dynamic_energy_j[0] == pytest.approx(1.0 + 1e9 * per_byte + 8e-3)
    # a run: 1000 steps on 4 chips
    assert e.run_energy_j == pytest.approx(e.total_step_energy_j * 4 * 1000)
    assert e.run_energy_kwh == pytest.approx(e.run_energy_j / 3.6e6)


def test_banked_level_energy_by_hand():
    # The same 4 MiB level built of 1 MiB banks: one bank's access, 2 pJ/B x sqrt(1) x the
    # tags (28 bits of 512), plus 1 pJ/bit/mm x 8 bits x (sqrt(level) - sqrt(bank)) / 2 of
    # wire. Level area: 4 MiB x (0.1 um^2 x 8 Mi / 0.5 = 1.6777216 mm^2/MiB) x (1 + 28/512)
    # = 7.077888 mm^2, bank a quarter of it: (2.66043 - 1.33021) / 2 = 0.66511 mm.
    hw = _chip(technology=attrs.evolve(ROUND, sram_bank_bytes=2**20))
    level, tech = hw.caches[0], energy.technology(hw)
    level_mm2 = 4 * 1.6777216 * (1 + 28 / 512)
    assert level_mm2 == pytest.approx(7.077888, rel=1e-9)
    wire_pj = 1.0 * 8 * (math.sqrt(level_mm2) - math.sqrt(level_mm2 / 4)) / 2
    assert wire_pj == pytest.approx(5.32086, rel=1e-5)
    assert energy.level_wire_energy_per_byte_pj(level, tech) == pytest.approx(wire_pj, rel=1e-12)
    bank_pj = 2.0 * 1.0 * (1 + 28 / 512)
    assert energy.level_energy_per_byte_j(level, tech) == pytest.approx(
        (bank_pj + wire_pj) * 1e-12, rel=1e-12)
    # at one bank (the 4 MiB default of ROUND) the wire term vanishes: the law alone, continuous
    one = energy.technology(_chip())
    assert energy.level_wire_energy_per_byte_pj(level, one) == 0.0


def test_bank_as_big_as_the_level_recovers_the_capacity_law():
    # bigcache's 64 GiB, 16-way, 128 B SRAM at 12 nm: 18-bit tags. As one 64 GiB bank it pays
    # the extrapolated law, 3.51 x 65536^0.475 x (1 + 16 x 18 / 1024) = 873 pJ/B (the old
    # model); built of 1 MiB banks, a bank's 4.50 pJ/B plus 0.158 pJ/bit/mm x 8 x 131 mm of
    # wire (half the side of its 68,995 mm^2 square, less half a bank's): 170 pJ/B.
    hw = _hw("bigcache")
    sram, tech = hw.caches[1], energy.technology(hw)
    assert energy.tag_bits(sram) == 18
    monolithic = attrs.evolve(tech, sram_bank_bytes=sram.capacity_bytes)
    law = 3.51 * 65536**0.475 * (1 + 16 * 18 / 1024)
    assert law == pytest.approx(873, rel=1e-3)
    assert energy.level_energy_per_byte_j(sram, monolithic) * 1e12 == pytest.approx(law, rel=1e-9)
    assert tech.sram_bank_bytes == 2**20
    side_mm = math.sqrt(energy.area_mm2(hw, tech)["SRAM"])
    bank_side_mm = side_mm / 2**8  # 65536 banks: 256 to a side
    banked = 3.51 * (1 + 16 * 18 / 1024) + 0.158 * 8 * (side_mm - bank_side_mm) / 2
    assert banked == pytest.approx(170, rel=0.01)
    assert energy.level_energy_per_byte_j(sram, tech) * 1e12 == pytest.approx(banked, rel=1e-9)


@settings(max_examples=80, deadline=None)
@given(node=st.sampled_from(["45nm", "28nm", "16nm", "12nm", "7nm", "5nm", "4nm"]),
       ways=st.sampled_from([0, 1, 2, 4, 8, 16]), line=st.sampled_from([64, 128, 256]),
       sets_log2=st.integers(0, 28), grow_log2=st.integers(1, 8),
       bank_log2=st.integers(14, 30))
def test_energy_per_byte_never_decreases_with_capacity(node, ways, line, sets_log2, grow_log2,
                                                       bank_log2):
    # Levels of every bank size, node and common geometry (up to 16 ways, lines >= 64 B;
    # docs/energy.md says why much shorter lines with more ways can dip just above one bank).
    tech = attrs.evolve(spec.node_defaults(node), sram_bank_bytes=2**bank_log2)

    def per_byte(log2_sets: int) -> float:
        level = CacheLevelSpec(name="L", capacity_bytes=line * max(ways, 1) * 2**log2_sets,
                               line_bytes=line, ways=ways, bandwidth_bytes_per_s=1e12)
        return energy.level_energy_per_byte_j(level, tech)

    assert per_byte(sets_log2 + grow_log2) >= per_byte(sets_log2)


def test_energy_is_the_sum_of_its_components_on_a_simulation(tiny):
    report = simulate(_hw("v100"), spec.load_workload(tiny), chips=2)
    e = report.summary.energy_area_cost
    assert e is not None and e.node == "12nm"
    assert e.total_step_energy_j == pytest.approx(sum(e.step_energy_j.values()), rel=1e-12)
    dynamic = sum(v for k, v in e.step_energy_j.items() if k not in ("static", "links"))
    assert sum(e.op_dynamic_energy_j) == pytest.approx(dynamic, rel=1e-9)
    assert e.step_energy_j["links"] > 0
    assert e.step_energy_j["static"] == pytest.approx(
        sum(e.static_power_w.values()) * report.summary.step_time_s)
    assert e.die_area_mm2 == pytest.approx(sum(e.area_mm2.values()))


_OPS = st.lists(st.tuples(st.sampled_from(["gemm", "elementwise"]),
                          st.floats(0, 1e15), st.floats(0, 1e12), st.floats(0, 1e12)),
                min_size=1, max_size=5)


@settings(max_examples=60, deadline=None)
@given(ops=_OPS, which=st.integers(0, 4), field=st.integers(1, 3), extra=st.floats(0, 1e12),
       chips=st.integers(1, 8), params=st.integers(0, 10**9))
def test_energy_never_decreases_with_more_work(ops, which, field, extra, chips, params):
    hw = _chip(technology=TechnologySpec(node="7nm", hbm_stacks=4))
    before = energy.estimate(_report(ops, chips=chips, params=params), hw, "fp32")
    i = which % len(ops)
    grown = list(ops)
    op = list(grown[i])
    op[field] += extra
    grown[i] = tuple(op)
    after = energy.estimate(_report(grown, chips=chips, params=params), hw, "fp32")
    assert after.total_step_energy_j >= before.total_step_energy_j
    for k, v in before.step_energy_j.items():
        assert after.step_energy_j[k] >= v
    more_params = energy.estimate(_report(ops, chips=chips, params=params + 1000), hw, "fp32")
    assert more_params.total_step_energy_j >= before.total_step_energy_j


@settings(max_examples=40, deadline=None)
@given(which=st.sampled_from(["cache", "local", "registers", "units", "links", "stacks",
                              "private"]),
       factor=st.integers(2, 64))
def test_area_grows_with_every_capacity(which, factor):
    hw = _hw("v100")
    tech = energy.technology(hw)
    c, level = hw.compute, hw.caches[0]
    bigger = {
        "cache": lambda: attrs.evolve(hw, caches=(attrs.evolve(
            level, capacity_bytes=level.capacity_bytes * factor),)),
        "local": lambda: attrs.evolve(hw, compute=attrs.evolve(
            c, local_memory_bytes=c.local_memory_bytes * factor)),
        "registers": lambda: attrs.evolve(hw, compute=attrs.evolve(
            c, register_file_bytes=c.register_file_bytes * factor)),
        "units": lambda: attrs.evolve(hw, technology=attrs.evolve(
            hw.technology, die_units=84 * factor)),
        "links": lambda: attrs.evolve(hw, interconnect=attrs.evolve(
            hw.interconnect, links=hw.interconnect.links * factor)),
        "stacks": lambda: attrs.evolve(hw, technology=attrs.evolve(hw.technology, hbm_stacks=4 * factor)),
        "private": lambda: attrs.evolve(hw, caches=(attrs.evolve(level, sharing="private"),)),
    }[which]()
    assert sum(energy.area_mm2(bigger, energy.technology(bigger)).values()) > sum(
        energy.area_mm2(hw, tech).values())


@pytest.mark.parametrize("name", sorted(MEASURED_DIE_AREA_MM2))
def test_die_area_anchors_within_15_percent(name):
    # UNIT_BASE and MAC_FACTOR were fitted on these four dies (technology_nodes.yaml says so):
    # the test holds the fit, it is not an out-of-sample check.
    hw = _hw(name)
    area = sum(energy.area_mm2(hw, energy.technology(hw)).values())
    assert area == pytest.approx(MEASURED_DIE_AREA_MM2[name], rel=0.15)


def test_bigcache_is_wafer_scale_with_its_arithmetic():
    hw = _hw("bigcache")
    tech = energy.technology(hw)
    area = energy.area_mm2(hw, tech)
    sram = hw.caches[1]
    assert sram.capacity_bytes == 64 * 2**30
    # 64 GiB = 549.8e9 bit cells x 0.074 um^2 (12 nm) = 40,682 mm^2 of cells; / 0.6 array
    # efficiency = 67,803 mm^2; tags (18 bits per 128 B line) add 18 / 1024.
    cells_mm2 = 64 * 2**30 * 8 * 0.074e-6
    assert cells_mm2 == pytest.approx(40682, rel=1e-4)
    tags = 1 + energy.tag_bits(sram) / (8 * 128)
    assert area["SRAM"] == pytest.approx(cells_mm2 / 0.6 * tags, rel=1e-9)
    b = energy.build(sum(area.values()), tech)
    assert b.verdict == "wafer scale" and b.wafers == 2
    assert any("reticles > 4 dies per package" in line for line in b.arithmetic)


def test_v100_and_a100_fit_one_die_and_cost_arithmetic():
    for name in ("v100", "a100"):
        hw = _hw(name)
        tech = energy.technology(hw)
        b = energy.build(sum(energy.area_mm2(hw, tech).values()), tech)
        assert b.verdict == "single die" and b.dies == 1
        assert b.silicon_usd == pytest.approx(tech.wafer_cost_usd / (b.dies_per_wafer * b.die_yield))
    # the standard formula by hand: 300 mm wafer, 100 mm^2 die
    assert energy.dies_per_wafer(100, 300) == pytest.approx(
        math.pi * 150**2 / 100 - math.pi * 300 / math.sqrt(200))
    assert energy.murphy_yield(100, 0.0) == 1.0
    assert energy.murphy_yield(100, 1.0) == pytest.approx(((1 - math.exp(-1)) / 1) ** 2)
    tech = energy.technology(_hw("v100"))
    two = energy.build(1000, tech)  # over the reticle: two dies of 500 mm^2
    assert two.verdict == "multi-die" and two.dies == 2 and two.die_mm2 == 500


def _gemm(n: int):
    g = GraphBuilder("gemm", "fp16")
    g.matmul("gemm", g.input("A", (n, n)), g.input("B", (n, n)))
    return g.build()


def _stream(elements: int):
    g = GraphBuilder("stream", "fp16")
    g.pointwise("add", [g.input("A", (elements,)), g.input("B", (elements,))])
    return g.build()


def _fp16(tiny):
    return attrs.evolve(spec.load_workload(tiny), precision="fp16")


def test_v100_compute_bound_gemm_power_within_25_percent_of_board_power(tiny):
    # DELIVERY (the one fitted energy constant) was fitted to this anchor: the test holds it.
    report = simulate(_hw("v100"), _fp16(tiny), graph=_gemm(8192))
    assert report.summary.flop_utilization > 0.7  # compute bound
    power = report.summary.energy_area_cost.average_power_w
    assert power == pytest.approx(MEASURED_V100_BOARD_POWER_W, rel=0.25)


def test_v100_hbm_bound_stream_power_band(tiny):
    # Stated band (docs/energy.md): an HBM-bound stream draws 60-150 W in the model (HBM and L2
    # traffic plus static power): well under board power, as the SMs idle.
    report = simulate(_hw("v100"), _fp16(tiny), graph=_stream(1 << 27))
    e = report.summary.energy_area_cost
    assert report.summary.bound_time_s.get("HBM", 0) > 0.5 * report.summary.step_time_s
    assert 60 <= e.average_power_w <= 150
    assert e.step_energy_j["HBM"] > e.step_energy_j["vector"]


def test_no_technology_no_estimate_and_unknown_node_is_an_error(tiny):
    wl = spec.load_workload(tiny)
    bare = attrs.evolve(_hw("v100"), technology=None)
    report = simulate(bare, wl)
    assert report.summary.energy_area_cost is None
    assert report.to_dict()["summary"]["energy_area_cost"] is None
    with pytest.raises(AccelsimError, match="technology.node: expected one of"):
        energy.technology(attrs.evolve(bare, technology=TechnologySpec(node="3nm", hbm_stacks=4)))
    with pytest.raises(AccelsimError, match="no technology section"):
        energy.technology(bare)


def test_every_stock_spec_states_its_node_and_every_row_is_complete():
    for path in sorted(HWSPECS.glob("*.yaml")):
        hw = spec.load_hardware(path)
        assert hw.technology is not None, path.name
    optional = {"die_units", "hbm_stacks"}
    for node in spec.technology_table().nodes:
        row = spec.node_defaults(node)
        missing = [f.name for f in attrs.fields(TechnologySpec)
                   if getattr(row, f.name) is None and f.name not in optional]
        assert not missing, (node, missing)


def test_override_one_value_keeps_the_others():
    hw = _hw("v100")
    tech = energy.technology(attrs.evolve(hw, technology=attrs.evolve(
        hw.technology, matrix_energy_pj_per_flop={"fp16": 9.0}, wafer_cost_usd=1.0)))
    row = spec.node_defaults("12nm")
    assert tech.matrix_energy_pj_per_flop["fp16"] == 9.0
    assert tech.matrix_energy_pj_per_flop["fp32"] == row.matrix_energy_pj_per_flop["fp32"]
    assert tech.wafer_cost_usd == 1.0 and tech.hbm_energy_pj_per_bit == row.hbm_energy_pj_per_bit


def test_run_text_json_csv_carry_the_estimate(tiny, tmp_path, capsys):
    js, cs = tmp_path / "r.json", tmp_path / "r.csv"
    assert main(["run", str(HWSPECS / "v100.yaml"), tiny, "--json", str(js), "--csv", str(cs)]) == 0
    out = capsys.readouterr().out
    for text in ("energy per step (one chip)", "average power", "energy per training run",
                 "die area", "buildability", "cost per trained model", "assumptions:"):
        assert text in out
    data = json.loads(js.read_text())
    e = data["summary"]["energy_area_cost"]
    assert e["node"] == "12nm" and e["buildability"] == "single die"
    header = cs.read_text().splitlines()[0].split(",")
    assert header[-1] == "dynamic_energy_j"
    assert len(e["op_dynamic_energy_j"]) == len(data["ops"])


def test_compare_shows_energy_area_and_cost(tiny, capsys):
    files = [str(HWSPECS / f"{n}.yaml") for n in ("ppopp19_target", "bigcache")]
    assert main(["compare", *files, tiny]) == 0
    out = capsys.readouterr().out
    for text in ("energy per step", "average power", "die area", "buildability",
                 "wafer scale", "cost per trained model", "reticles > 4 dies per package"):
        assert text in out


def test_energy_module_loads_no_simulation_engine():
    import subprocess
    import sys

    code = ("import sys, accelsim.energy; "
            "print(sorted(m for m in ('numba', 'simpy', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"


def test_sweep_table_and_csv_gain_energy_and_cost_columns(tiny, tmp_path, capsys):
    table = tmp_path / "s.csv"
    argv = ["sweep", str(HWSPECS / "v100.yaml"), tiny, "--set", "caches[0].capacity=1MiB,24MiB",
            "--csv", str(table)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for text in ("energy/step", "power", "die area", "build", "cost/model", "single die"):
        assert text in out
    header = table.read_text().splitlines()[0].split(",")
    assert {"total_step_energy_j", "average_power_w", "die_area_mm2", "buildability",
            "total_run_cost_usd"} <= set(header)
    rows = [line.split(",") for line in table.read_text().splitlines()[1:]]
    area = header.index("die_area_mm2")
    assert float(rows[1][area]) > float(rows[0][area])  # 24 MiB of L2 takes more silicon


def test_pareto_front_and_sweep_plot(tiny, tmp_path, capsys):
    from accelsim import dse

    values = [(1.0, 5.0), (2.0, 2.0), (3.0, 3.0), None, (2.0, 2.0), (0.5, 9.0)]
    assert dse.pareto_front(values) == [True, True, False, False, True, True]
    png = tmp_path / "pareto.png"
    argv = ["sweep", str(HWSPECS / "v100.yaml"), tiny, "--set", "technology.node=12nm,7nm",
            "--plot", str(png), "--axes", "time_to_train,energy"]
    assert main(argv) == 0
    assert png.stat().st_size > 0 and f"wrote {png}" in capsys.readouterr().out
    bad = ["sweep", str(HWSPECS / "v100.yaml"), tiny, "--set", "technology.node=12nm",
           "--plot", str(png), "--axes", "time,cost"]
    assert main(bad) == 2
    assert "expected two of" in capsys.readouterr().err
