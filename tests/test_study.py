"""`accelsim study` (issue 9 item 5): roofline floors by hand, the speedup-vs-floors criterion,
designs that differ only in memory capacity sharing one simulation, Table 5's arithmetic, and
the command end to end on tiny designs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import attrs
import pytest

from accelsim import study
from accelsim.cli import main
from accelsim.hardware import CacheLevelSpec, Calibration
from accelsim.report import OpResult
from accelsim.spec import load_hardware, load_workload

REPO = Path(__file__).resolve().parents[1]
TINY_HW = REPO / "tests" / "data" / "good" / "tiny_hw.yaml"

#: tiny_hw.yaml with a second, larger level that feeds the compute units (a "big cache" tiny
#: design) and the same memory.
TINY_BIGCACHE = TINY_HW.read_text().replace("name: tiny\n", "name: tiny_bigcache\n").replace(
    "memory:\n", "  - name: SRAM\n    capacity: 8 MiB\n    line: 64 B\n    ways: 16\n"
    "    bandwidth: 4 TB/s\n    feeds_compute: true\nmemory:\n")


#: How far a replayed step (which overlaps independent ops) may fall below the sum of its ops'
#: floors (measured: 0.6 % on the frontier word LM at subbatch 1 on ppopp19_target; 3.7 % on
#: bigcache, whose output projection overlaps its short recurrent steps: no test holds that point).
OVERLAP_SLACK = 1.02


def _op(flops: float, nbytes: dict[str, float], kind: str = "gemm") -> OpResult:
    return OpResult(name="op", kind=kind, phase="forward", shape="", flops=flops, start_s=0.0,
                    end_s=1.0, time_s=1.0, bytes=nbytes, hit_rate={}, bound="compute", units=4)


def test_op_floor_by_hand(tiny_hw):
    # 4 units x 64 MAC/cycle x 2 x 1 GHz = 512 GFLOP/s fp32; L2 1e11 B/s; HBM 5e10 B/s;
    # every efficiency 0.5 so that each one shows
    hw = tiny_hw()
    hw = attrs.evolve(hw, calibration=Calibration.ideal(
        compute_efficiency=0.5, vector_efficiency=0.5, bandwidth_efficiency=0.5,
        cache_bandwidth_efficiency=0.5, launch_overhead_s=1e-6))
    assert hw.compute.peak_flop_rate("fp32") == 512e9
    # compute 256e9 FLOPs / 256 GFLOP/s = 1 s; L2 2.5e10 / 5e10 = 0.5 s; HBM 2e10 / 2.5e10 = 0.8 s
    assert study.op_floor_s(hw, _op(256e9, {"L2": 2.5e10, "HBM": 2e10}), "fp32") == \
        pytest.approx(1.0)
    # HBM-bound: 5e10 / 2.5e10 = 2 s
    assert study.op_floor_s(hw, _op(256e9, {"L2": 2.5e10, "HBM": 5e10}), "fp32") == \
        pytest.approx(2.0)
    # a streaming op runs on the vector rate: 1e11 x 0.5 -> 1e11 FLOPs take 2 s
    assert study.op_floor_s(hw, _op(1e11, {}, kind="elementwise"), "fp32") == pytest.approx(2.0)
    # padded: a tile 75 % padding does 4x the work, 4 s of compute
    padded = attrs.evolve(_op(256e9, {"L2": 2.5e10, "HBM": 2e10}), padding_waste=0.75)
    assert study.op_floor_s(hw, padded, "fp32") == pytest.approx(1.0)
    assert study.op_floor_s(hw, padded, "fp32", padded=True) == pytest.approx(4.0)


def test_floor_bytes_of_a_level_that_feeds_compute_bypass_the_upper_port(tiny_hw):
    hw = tiny_hw()
    sram = CacheLevelSpec(name="SRAM", capacity_bytes=1 << 24, bandwidth_bytes_per_s=1e12,
                          latency_s=3e-7, feeds_compute=True)
    two = attrs.evolve(hw, caches=(*hw.caches, sram),
                       calibration=attrs.evolve(hw.calibration, cache_bandwidth_efficiency=1.0,
                                                bandwidth_efficiency=1.0))
    op = _op(0.0, {"L2": 3e10, "SRAM": 2e10, "HBM": 0.0})
    # only 1e10 B cross the L2 port (1e11 B/s): 0.1 s; the SRAM's 2e10 at 1e12: 0.02 s
    assert study.op_floor_s(two, op, "fp32") == pytest.approx(0.1)
    plain = attrs.evolve(two, caches=(hw.caches[0], attrs.evolve(sram, feeds_compute=False)))
    assert study.op_floor_s(plain, op, "fp32") == pytest.approx(0.3)


def test_granule_floor_rounds_gemm_shapes_up_to_the_pipe_granule(tiny_hw):
    """fp16 on the hypothetical designs computes in 16x16x16 granules: an m = 8 GEMM does at
    least twice its FLOPs whatever the kernel; fp32 (granule 1) and streaming ops: no rounding."""
    hw = load_hardware(REPO / "hwspecs" / "bigcache.yaml")
    assert hw.compute.pipe("fp16").min_tile == 16 and hw.compute.pipe("fp32").min_tile == 1
    op = attrs.evolve(_op(2.0 * 8 * 100 * 64, {}), shape="[8x64]@[64x100]")
    assert study.gemm_dims(op) == (8, 100, 64)
    # m 8 -> 16, k 64 stays, n 100 -> 112
    assert study.granule_work_factor(hw, op, "fp16") == pytest.approx(2 * 112 / 100)
    assert study.granule_work_factor(hw, op, "fp32") == 1.0
    batched = attrs.evolve(op, shape="4x[8x64]@[64x100]+C")
    assert study.gemm_dims(batched) == (8, 100, 64)
    assert study.granule_work_factor(hw, attrs.evolve(op, kind="elementwise", shape="1 FLOP"),
                                     "fp16") == 1.0
    with pytest.raises(ValueError, match="expected a GEMM shape"):
        study.gemm_dims(attrs.evolve(op, shape="8x64"))
    # compute-bound op: raw <= granule <= padded (padding beyond the granule on top of it)
    rate = hw.compute.peak_flop_rate("fp16") * hw.compute_efficiency("fp16")
    padded = attrs.evolve(op, padding_waste=0.5)
    assert study.op_floor_s(hw, padded, "fp16") == pytest.approx(op.flops / rate)
    assert study.op_floor_s(hw, padded, "fp16", granule=True) == \
        pytest.approx(2.24 * op.flops / rate)
    assert study.op_floor_s(hw, padded, "fp16", padded=True) == \
        pytest.approx(2 * 2.24 * op.flops / rate)


def _point(design: str, subbatch: int, step: float, floor: float, reused: str = "") -> study.StudyPoint:
    return study.StudyPoint(design=design, workload="w", subbatch=subbatch, llc_bytes=1,
                            step_time_s=step, flop_utilization=0.5, hbm_bytes=0.0,
                            floor_s=floor, granule_floor_s=floor, padded_floor_s=floor,
                            footprint_bytes=1.0, capacity_bytes=2.0, fits=True,
                            bound_time_s={}, reused_from=reused)


def test_floor_comparison_criterion():
    points = [_point("target", 4, 10.0, 8.0), _point("big", 4, 5.0, 3.0),
              _point("bigmem", 4, 10.0, 8.0, reused="target"),
              _point("target", 64, 10.0, 9.0), _point("big", 64, 9.0, 3.0)]
    got = study.floor_comparisons(points)
    assert [(f.design, f.subbatch) for f in got] == [("big", 4), ("big", 64)]  # bigmem: same run
    small, large = got
    assert small.speedup == pytest.approx(2.0) and small.floor_ratio == pytest.approx(8 / 3)
    assert small.deviation == pytest.approx(2.0 / (8 / 3) - 1)  # -25 %
    assert small.checked and not small.within
    assert not large.checked  # subbatch > 8: not held to the criterion
    assert study.floor_comparisons([_point("a", 4, 2.0, 1.0), _point("b", 4, 1.1, 0.5)])[0].within
    # the criterion is judged against the granule floors, the raw ratio printed beside it
    cmp = study.FloorComparison(workload="w", subbatch=8, baseline="a", design="b", speedup=2.0,
                                floor_ratio=3.0, granule_floor_ratio=2.1)
    assert cmp.deviation == pytest.approx(2.0 / 2.1 - 1) and cmp.within
    assert not attrs.evolve(cmp, granule_floor_ratio=3.0).within


def test_designs_differing_only_in_memory_capacity_share_one_simulation(tiny, monkeypatch):
    hw = load_hardware(TINY_HW)
    wl = load_workload(tiny)
    roomy = attrs.evolve(hw, name="tiny_bigmem",
                         memory=attrs.evolve(hw.memory, capacity_bytes=2**40))
    cramped = attrs.evolve(hw, name="tiny_small", memory=attrs.evolve(hw.memory,
                                                                      capacity_bytes=1024))
    calls = []
    real = study._simulate

    def counting(*args, **kwargs):
        calls.append(args[0].name)
        return real(*args, **kwargs)

    monkeypatch.setattr(study, "_simulate", counting)
    points = study.run_points([(cramped, wl), (roomy, wl)])
    assert calls == ["tiny_small"]
    small, big = points
    assert not small.fits and big.fits  # timed anyway, and labelled
    assert big.reused_from == "tiny_small" and small.reused_from == ""
    assert big.step_time_s == small.step_time_s
    assert small.floor_s <= small.step_time_s


def test_cache_size_point_equal_to_a_subbatch_point_reuses_it(tiny, monkeypatch):
    hw = load_hardware(TINY_HW)  # L1 64 KiB
    calls = []
    real = study._simulate
    monkeypatch.setattr(study, "_simulate",
                        lambda *a, **k: calls.append(a[0].name) or real(*a, **k))
    result = study.study([hw], [load_workload(tiny)], [8], cache_sizes=[64 * 1024, 2**20],
                         cache_subbatches=[8])
    assert calls == ["tiny", "tiny L1=1 MiB"]
    same, larger = result["cache_points"]
    assert same.reused_from == "tiny" and same.step_time_s == result["points"][0].step_time_s
    assert larger.reused_from == "" and larger.llc_bytes == 2**20


def test_table5_row_arithmetic(tiny):
    from accelsim.api import simulate

    hw = load_hardware(TINY_HW)
    wl = load_workload(tiny)
    report = simulate(hw, wl)
    tables = {"word_lm_case_study": {"stages": [
        {"stage": "best-case roofline baseline", "alg_flop_utilization": 0.80},
        {"stage": "cache-hierarchy-aware baseline", "alg_flop_utilization": 0.46}]}}
    row = study.table5_row(hw, wl, report, tables)
    s = report.summary
    assert row["paper_step_s"] == pytest.approx(s.flops / (0.46 * s.peak_flop_rate))
    bw = hw.memory.bandwidth_bytes_per_s * hw.calibration.bandwidth_efficiency
    assert row["paper_implied_hbm_bytes"] == pytest.approx(row["paper_step_s"] * bw)
    assert row["ratio"] == pytest.approx(s.flop_utilization / 0.46)
    assert row["within"] == (abs(row["ratio"] - 1) <= study.TABLE5_TOLERANCE)


def test_study_command_on_tiny_designs(tiny, tmp_path, capsys):
    big = tmp_path / "tiny_bigcache.yaml"
    big.write_text(TINY_BIGCACHE)
    out_json, out_dir = tmp_path / "study.json", tmp_path / "figs"
    rc = main(["study", "--hardware", str(TINY_HW), str(big), "--workload", tiny,
               "--subbatch", "2", "8", "--cache-sizes", "32KiB", "1MiB", "--cache-subbatch", "8",
               "--no-table5",
               "--json", str(out_json), "--plot", str(out_dir), "--quiet"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "Subbatch study" in text and "roofline floors" in text and "Cache-size study" in text
    doc = json.loads(out_json.read_text())
    assert [(p["design"], p["subbatch"]) for p in doc["points"]] == [
        ("tiny", 2), ("tiny_bigcache", 2), ("tiny", 8), ("tiny_bigcache", 8)]
    assert [p["llc_bytes"] for p in doc["cache_points"]] == [32 * 1024, 2**20]
    for p in doc["points"]:
        # the floors sum ops one after another; the replay overlaps independent ops, so a step
        # may beat the sum slightly (word_lm_frontier on ppopp19_target, subbatch 1: 18.69 s
        # against 18.81 s)
        assert 0 < p["floor_s"] <= p["padded_floor_s"] <= p["step_time_s"] * OVERLAP_SLACK
        assert 0 < p["flop_utilization"] < 1
    floors = doc["floors"]
    assert [(f["design"], f["subbatch"]) for f in floors] == [("tiny_bigcache", 2),
                                                               ("tiny_bigcache", 8)]
    for f in floors:
        assert f["speedup"] == pytest.approx(
            _step(doc, "tiny", f["subbatch"]) / _step(doc, "tiny_bigcache", f["subbatch"]))
        assert math.isfinite(f["deviation"]) and f["checked"]
    assert sorted(p.name for p in out_dir.iterdir()) == ["study_cache_size.png",
                                                        "study_subbatch.png"]


def _step(doc: dict, design: str, subbatch: int) -> float:
    return next(p["step_time_s"] for p in doc["points"]
                if p["design"] == design and p["subbatch"] == subbatch)


def test_study_refuses_a_bad_plot_folder_before_any_work(tiny, tmp_path, monkeypatch, capsys):
    def no_work(*args, **kwargs):
        raise AssertionError("simulated before checking the outputs")

    monkeypatch.setattr(study, "study", no_work)
    rc = main(["study", "--hardware", str(TINY_HW), "--workload", tiny,
               "--plot", str(tmp_path / "figure.png")])
    assert rc == 2
    assert "expected a folder" in capsys.readouterr().err
    rc = main(["study", "--hardware", str(TINY_HW), "--workload", tiny, "--subbatch", "0"])
    assert rc == 2


# --- real small points: ppopp19_target against bigcache -----------------------------------------
def _target_vs_bigcache(workload: str, subbatches: list[int]):
    designs = [load_hardware(REPO / "hwspecs" / f"{name}.yaml")
               for name in ("ppopp19_target", "bigcache")]
    wl = load_workload(REPO / "workloads" / f"{workload}.yaml")
    points = study.run_points(study.subbatch_jobs(designs, [wl], subbatches))
    return points, study.floor_comparisons(points)


@pytest.fixture(scope="module")
def nmt_frontier_small_subbatch():
    return _target_vs_bigcache("nmt_frontier", [4, 8])


@pytest.fixture(scope="module")
def nmt_current_small_subbatch():
    return _target_vs_bigcache("nmt_current", [4])


@pytest.mark.slow
def test_issue_criterion_frontier_nmt_speedup_within_20_percent_of_the_granule_floor_ratio(
        nmt_frontier_small_subbatch):
    """Issue 9 item 5 on the frontier NMT: with the stock designs' thin tiles (8- and 4-row fp32
    tiles) bigcache's speedup is within 20 % of the ratio of the granule floors (2026-12-02:
    subbatch 4 speedup 4.138 vs 4.380, subbatch 8 2.698 vs 2.812; fp32 runs on a granule-1
    pipe, so the granule floors equal the raw-FLOP floors here). It fails if the library loses
    its thin tiles (32-row tiles: speedup 1.179 vs 2.809 at subbatch 8) or the SRAM stops
    keeping the decoder weights resident."""
    points, comparisons = nmt_frontier_small_subbatch
    for p in points:
        assert p.floor_s <= p.granule_floor_s <= p.padded_floor_s <= \
            p.step_time_s * OVERLAP_SLACK
    assert [c.subbatch for c in comparisons] == [4, 8]
    for cmp in comparisons:
        assert cmp.checked and cmp.speedup > 2.0
        assert cmp.within, (cmp.subbatch, cmp.speedup, cmp.granule_floor_ratio)


@pytest.mark.slow
def test_current_nmt_small_point_is_launch_bound_not_padding_bound(nmt_current_small_subbatch):
    """On the current-size NMT (hidden 1359, subbatch 4) bigcache's SRAM removes
    the HBM time and the thin tiles remove the padding (padded floor within 10 % of the granule
    floor), and what is left is kernel launches (5 us each), which no floor counts (2026-12-02:
    step 25.4 ms, floor 7.39 ms, launch-bound op time 26.2 ms)."""
    points, (cmp,) = nmt_current_small_subbatch
    for p in points:
        assert p.floor_s <= p.granule_floor_s <= p.padded_floor_s <= \
            p.step_time_s * OVERLAP_SLACK
    target, big = points
    assert big.hbm_bytes < target.hbm_bytes / 10
    assert big.padded_floor_s <= 1.1 * big.granule_floor_s
    assert max(big.bound_time_s, key=big.bound_time_s.get) == "launch"
    assert cmp.speedup > 1.0


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "issue 9 item 5's criterion holds on the frontier NMT but not on the current-size NMT at "
    "subbatch 4: bigcache's step (25.4 ms) is kernel launches (5 us each, 26.2 ms of launch-"
    "bound op time), which the roofline floors (7.39 ms) leave out: speedup 1.54 against a "
    "granule floor ratio of 3.57"))
def test_current_nmt_small_point_speedup_within_20_percent_of_the_floor_ratio(
        nmt_current_small_subbatch):
    _points, (cmp,) = nmt_current_small_subbatch
    assert cmp.checked and cmp.within
