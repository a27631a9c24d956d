"""Issue 9: a memory level that feeds the compute units directly, latency weighted by where the
bytes come from, and output stores (overlapped with the next wave when the library does so)."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.graph import Op
from accelsim.hardware import (
    CacheLevelSpec,
    Calibration,
    ComputeSpec,
    HardwareSpec,
    InterconnectSpec,
    KernelLibrary,
    KernelMenu,
    MatrixPipe,
    MemorySpec,
)
from accelsim.mapping import GemmMapping
from accelsim.spec import load_hardware
from accelsim.timing import first_byte_latency_s, op_timing, port_bytes, source_latencies_s
from accelsim.traffic import Traffic
from accelsim.vocabulary import MEMORY as HBM

HWSPECS = Path(__file__).resolve().parents[1] / "hwspecs"


def _chip(feeds: bool, sram_latency_s: float = 3e-7) -> HardwareSpec:
    return HardwareSpec(
        name="two_levels",
        compute=ComputeSpec(units=4, clock_hz=1e9,
                            matrix={"fp32": MatrixPipe(macs_per_cycle_per_unit=64)},
                            vector_flop_rate=1e11, local_memory_bytes=16 * 1024,
                            register_file_bytes=64 * 1024),
        caches=(CacheLevelSpec(name="L2", capacity_bytes=64 * 1024, bandwidth_bytes_per_s=1e11,
                               latency_s=1e-7),
                CacheLevelSpec(name="SRAM", capacity_bytes=1 << 24, bandwidth_bytes_per_s=4e11,
                               latency_s=sram_latency_s, feeds_compute=feeds)),
        memory=MemorySpec(capacity_bytes=2**30, bandwidth_bytes_per_s=5e10, latency_s=2e-7),
        interconnect=InterconnectSpec(link_bandwidth_bytes_per_s=1e10),
        calibration=Calibration.ideal(launch_overhead_s=1e-6))


def _gemm() -> tuple[Op, GemmMapping]:
    op = Op(id=0, name="g", kind="gemm", phase="forward", inputs=(), outputs=(),
            flops=2.0 * 128 * 128 * 1024, m=128, n=128, k=1024)
    mp = GemmMapping(tile_m=32, tile_n=32, tile_k=32, split_k=1, loop_order=0, units_used=4,
                     waves=4, tiles=16)
    return op, mp


def test_bytes_from_a_level_that_feeds_compute_skip_the_upper_port():
    level_bytes = {"L2": 10e6, "SRAM": 8e6, HBM: 1e6}
    # default: every SRAM byte crosses the L2 port (an L2 miss), as before issue 9
    assert port_bytes(_chip(False), level_bytes) == level_bytes
    # feeding the units directly: the L2 port carries only its own 2 MB of hits
    assert port_bytes(_chip(True), level_bytes) == {"L2": 2e6, "SRAM": 8e6, HBM: 1e6}
    op, mp = _gemm()
    tr = Traffic(level_bytes=level_bytes, hit_rate={})
    before, after = (op_timing(_chip(f), op, mp, tr, "fp32") for f in (False, True))
    assert before.bound == "L2" and before.wave_transfer_s("L2") == pytest.approx(10e6 / 4 / 1e11)
    assert after.wave_transfer_s("L2") == pytest.approx(2e6 / 4 / 1e11)
    assert after.isolated_time_s < before.isolated_time_s
    assert after.level_bytes == before.level_bytes  # what each level serves is reported unchanged


def test_latency_is_weighted_by_where_the_bytes_come_from():
    hw = _chip(False)
    assert source_latencies_s(hw) == {"L2": 1e-7, "SRAM": 3e-7, HBM: 3e-7}
    # all hits in L2: the L2's latency, not the farther SRAM's
    assert first_byte_latency_s(hw, {"L2": 1e6, "SRAM": 0.0, HBM: 0.0}) == pytest.approx(1e-7)
    # half from L2, half from SRAM
    assert first_byte_latency_s(hw, {"L2": 2e6, "SRAM": 1e6, HBM: 0.0}) == pytest.approx(2e-7)
    # no bytes: the slowest source (a cold operand)
    assert first_byte_latency_s(hw) == pytest.approx(3e-7)
    # adding a slow level below L2 does not slow an op that hits in L2
    op, mp = _gemm()
    l2_only = attrs.evolve(hw, caches=hw.caches[:1])
    hits = Traffic(level_bytes={"L2": 1e6, "SRAM": 0.0, HBM: 0.0}, hit_rate={})
    assert op_timing(hw, op, mp, hits, "fp32").isolated_time_s == pytest.approx(
        op_timing(l2_only, op, mp, Traffic(level_bytes={"L2": 1e6, HBM: 0.0}, hit_rate={}),
                  "fp32").isolated_time_s)


def test_output_store_is_exposed_per_wave_unless_the_library_overlaps_it():
    # Issue 9 overlapped every wave's store with the next wave; issue 10 makes that a property
    # of the kernel library (`KernelMenu.overlapped_epilogue`): cuBLAS's Volta kernels, one
    # large tile per SM, run it after each K loop (the default).
    hw = _chip(False)
    op, mp = _gemm()
    hits = Traffic(level_bytes={"L2": 1e6, "SRAM": 0.0, HBM: 0.0}, hit_rate={})
    store_s = 32 * 32 * 4 / (1e11 / 4)
    t = op_timing(hw, op, mp, hits, "fp32")
    assert t.wave_overhead_s == pytest.approx(1e-7 + store_s)
    assert t.latency_s == pytest.approx(1e-7)
    overlapped = attrs.evolve(hw, kernel_library=KernelLibrary(
        default=KernelMenu(overlapped_epilogue=True)))
    t = op_timing(overlapped, op, mp, hits, "fp32")
    assert t.wave_overhead_s == pytest.approx(1e-7)
    assert t.latency_s == pytest.approx(1e-7 + store_s)


def test_bigcache_sram_feeds_the_cores_and_target_keeps_its_meaning():
    big = load_hardware(HWSPECS / "bigcache.yaml")
    target = load_hardware(HWSPECS / "ppopp19_target.yaml")
    assert [c.feeds_compute for c in big.caches] == [False, True]
    assert not any(c.feeds_compute for c in target.caches)
    sram = big.caches[1]
    # the comment's ratio: 8 TB/s against 898 GB/s of HBM is 8.9x
    assert sram.bandwidth_bytes_per_s / big.memory.bandwidth_bytes_per_s == pytest.approx(8.9,
                                                                                          abs=0.05)


def test_padding_waste_by_hand():
    from accelsim.mapping import padding_waste

    hw = _chip(False)
    op = Op(id=0, name="g", kind="gemm", phase="forward", inputs=(), outputs=(), flops=1.0,
            m=96, n=128, k=1024)
    mp = GemmMapping(tile_m=128, tile_n=128, tile_k=32, split_k=1, loop_order=0, units_used=1,
                     waves=1, tiles=1)
    assert padding_waste(hw, op, mp, "fp32") == pytest.approx(0.25)  # 96 of 128 rows used
    exact = attrs.evolve(mp, tile_m=32)
    assert padding_waste(hw, op, exact, "fp32") == 0.0
    # on a pipe with a 16-element granule, 8 rows pad to 16 anyway: only 16 -> 32 is waste
    tc = attrs.evolve(hw, compute=attrs.evolve(hw.compute, matrix={
        "fp16": MatrixPipe(macs_per_cycle_per_unit=256, min_tile=16)}))
    thin = attrs.evolve(op, m=8)
    assert padding_waste(tc, thin, attrs.evolve(mp, tile_m=32), "fp16") == pytest.approx(0.5)


def test_report_shows_each_gemms_mapping():
    from accelsim import simulate
    from accelsim.models.nmt import NMTConfig
    from accelsim.workload import WorkloadSpec

    wl = WorkloadSpec(name="nmt_tiny", subbatch=4,
                      model=NMTConfig(hidden=64, vocab=100, sequence_length=3))
    rep = simulate(load_hardware(HWSPECS / "ppopp19_target.yaml"), wl)
    gemms = [op for op in rep.ops if op.kind == "gemm"]
    assert gemms and all(op.tile and op.loop_order in ("rows", "columns") and op.split_k >= 1
                         and 0.0 <= op.padding_waste < 1.0 for op in gemms)
    assert all(not op.tile for op in rep.ops if op.kind != "gemm")
    header = rep.to_csv().splitlines()[0].split(",")
    assert {"tile", "loop_order", "split_k", "padding_waste"} <= set(header)
    assert "mapping" in rep.text()
    assert any("one GEMM over all timesteps" in note for note in rep.notes)
    framework = simulate(load_hardware(HWSPECS / "ppopp19_target.yaml"),
                         attrs.evolve(wl, recurrent_execution="framework"))
    assert any("recurrent_execution: framework" in note for note in framework.notes)
    assert framework.summary.flops == rep.summary.flops


#: How much more HBM traffic (or step time) a larger cache level may show on small designs:
#: a larger level can change the mapping the timing model picks (scored on analytic traffic,
#: not on the simulated cache), which moved HBM bytes by at most +2.6 % and step time by +3 %
#: in a sweep of 64 KiB - 4 MiB L2s on small word LMs and NMTs (issue 9).
ENLARGE_TOLERANCE = 0.05


@pytest.mark.slow
@settings(max_examples=8, deadline=None)
@given(family=st.sampled_from(["word_lm", "nmt"]), subbatch=st.sampled_from([4, 32]),
       kib=st.sampled_from([64, 128, 256, 512, 1024, 2048]), factor=st.sampled_from([2, 4]))
def test_enlarging_a_cache_level_does_not_add_hbm_traffic(family, subbatch, kib, factor):
    from accelsim import pipeline
    from accelsim.models.nmt import NMTConfig
    from accelsim.models.word_lm import WordLMConfig
    from accelsim.workload import WorkloadSpec

    model = (WordLMConfig(hidden=256, vocab=500, sequence_length=6) if family == "word_lm"
             else NMTConfig(hidden=192, vocab=400, sequence_length=5))
    graph = pipeline.prepare(WorkloadSpec(name="t", model=model, subbatch=subbatch)).executed
    base = load_hardware(HWSPECS / "ppopp19_target.yaml")
    out = []
    for capacity in (kib * 1024, kib * 1024 * factor):
        hw = attrs.evolve(base, caches=(attrs.evolve(base.caches[0], capacity_bytes=capacity),))
        step = pipeline.simulate_step(hw, graph, "fp32", mode="exact")
        out.append((sum(t.level_bytes.get(HBM, 0.0) for t in step.traffic.traffics),
                    step.step_time_s))
    (small_hbm, small_s), (large_hbm, large_s) = out
    assert large_hbm <= small_hbm * (1 + ENLARGE_TOLERANCE)
    assert large_s <= small_s * (1 + ENLARGE_TOLERANCE)


def test_mapper_scores_recurrent_weights_as_resident_when_they_fit():
    from accelsim.fusion import execute
    from accelsim.models import build_graph
    from accelsim.models.word_lm import WordLMConfig
    from accelsim.timing import resident_weight_bytes
    from accelsim.workload import WorkloadSpec

    graph, _ = execute(build_graph(WorkloadSpec(
        name="t", subbatch=2, model=WordLMConfig(hidden=8, vocab=20, sequence_length=3))))
    kernel = next(t for t in graph.tensors if t.name == "lstm0/kernel")
    steps = [op for op in graph.ops if op.kind == "gemm" and len(op.inputs) > 1
             and op.inputs[1] == kernel.id]  # the hoisted input GEMM, then each timestep
    hw = _chip(False)
    seen: set[int] = set()
    got = []
    for op in graph.ops:
        if op in steps:
            got.append(resident_weight_bytes(hw, graph, op, seen))
        seen.update(op.inputs)
    # the first read of the kernel comes from memory; later reads find the rows they read
    # (k x n of the GEMM) resident
    assert got[0] == 0.0 and len(got) >= 4
    assert all(g == op.k * op.n * 4 for g, op in zip(got[1:], steps[1:], strict=True))
    tiny_llc = attrs.evolve(hw, caches=(attrs.evolve(hw.caches[0], capacity_bytes=128,
                                                     ways=1),))
    assert resident_weight_bytes(tiny_llc, graph, steps[1], seen) == 0.0


# --- a larger L2 never adds HBM traffic: the 6 -> 24 -> 96 MiB sweep (issue 9 item 2) -----------
def test_wave_step_bytes_by_hand():
    from accelsim.trace_runs import wave_step_bytes

    # columns first (order 1), 2 tile rows: 80 tiles span 2 rows and at most 41 columns
    assert wave_step_bytes(2, 117, 80, 64, 256, 128, 1) == (2 * 64 + 41 * 256) * 128
    # rows first (order 0), 350 tile columns: 80 tiles span at most 2 rows and 80 columns
    assert wave_step_bytes(175, 350, 80, 256, 256, 64, 0) == (2 * 256 + 80 * 256) * 64
    # a wave larger than the GEMM: every tile row and column once
    assert wave_step_bytes(2, 3, 6, 32, 32, 4, 0) == (2 * 32 + 3 * 32) * 4


def test_coalesced_gemm_matches_line_exact_when_a_waves_distinct_tiles_fit():
    """A thin GEMM (two row tiles, a wave of 40 column tiles) whose wave re-reads each A tile
    40 times: one k-step of the wave touches 2 A tiles and 41 B tiles (1.4 MB), not 80 x 2
    (3.3 MB), so it fits the 6 MiB L2 twice over and coalesced mode merges its k-steps into
    whole blocks. Before, it kept 8 KiB A runs inside 16 KiB blocks, and the block-to-line
    scaling of the op's misses charged B only 83 % of its bytes: HBM bytes below the
    compulsory ones (0.757 vs 0.908 GB on the word LM's 128 x 7441 x 29764 GEMM)."""
    from accelsim.graph import GraphBuilder
    from accelsim.mapping import gemm_candidates
    from accelsim.trace import step_traffic

    b = GraphBuilder("thin")
    a = b.input("a", (128, 1024))
    w = b.weight("w", (1024, 16384))
    b.matmul("mm", a, w)
    graph = b.build()
    hw = load_hardware(HWSPECS / "ppopp19_target.yaml")
    mp = next(c for c in gemm_candidates(hw, graph.ops[0], "fp32")
              if (c.tile_m, c.tile_n, c.loop_order) == (64, 256, 1))
    exact = step_traffic(hw, graph, [mp], "fp32", "exact").level_bytes[0, -1]
    # blocks of 16 KiB, as the whole word LM step gets at 6 MiB
    coarse = step_traffic(hw, graph, [mp], "fp32", "coalesced", max_accesses=2e3)
    assert "L2 16 KiB" in coarse.shortcuts[0]
    compulsory_reads = (128 * 1024 + 1024 * 16384) * 4  # C may stay in the write-back L2
    assert exact >= compulsory_reads
    assert coarse.level_bytes[0, -1] == pytest.approx(exact, rel=0.02)


#: word_lm_current on ppopp19_target with only the L2 capacity changed, HBM bytes per step
#: (2026-12-02, branch study): before the fix above 0.736 / 0.813 / 0.800 TB (the 6 MiB point
#: undercounted by the coalesced accounting), after 0.833 / 0.813 / 0.800 TB; 0.833 / 0.804 /
#: 0.800 TB since the mapper scores each wave's epilogue (issue 10: the 24 MiB point's GEMMs
#: take other tiles).
MEASURED_L2_SWEEP_HBM_TB = (0.833, 0.804, 0.800)


@pytest.mark.slow
def test_l2_sweep_6_24_96_mib_is_monotone_in_hbm_bytes_and_step_time():
    from accelsim import pipeline
    from accelsim.spec import load_workload

    wl = load_workload(HWSPECS.parent / "workloads" / "word_lm_current.yaml")
    graph = pipeline.prepare(wl).executed
    base = load_hardware(HWSPECS / "ppopp19_target.yaml")
    hbm, step = [], []
    for mib in (6, 24, 96):
        hw = attrs.evolve(base, caches=(attrs.evolve(base.caches[0],
                                                     capacity_bytes=mib * 2**20),))
        sim = pipeline.simulate_step(hw, graph, wl.precision)
        hbm.append(sum(t.level_bytes.get(HBM, 0.0) for t in sim.traffic.traffics))
        step.append(sim.step_time_s)
    assert hbm[0] >= hbm[1] >= hbm[2]
    assert step[0] >= step[1] >= step[2]
    assert [round(b / 1e12, 3) for b in hbm] == list(MEASURED_L2_SWEEP_HBM_TB)
