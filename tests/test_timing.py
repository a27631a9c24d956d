"""Timing: hand-checked small cases, the re-streaming rule, and the lower-bound property."""

from __future__ import annotations

import math

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim import refdata
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
from accelsim.mapping import GemmMapping, gemm_candidates
from accelsim.spec import load_hardware
from accelsim.timing import (
    analytic_traffic,
    compulsory_bytes,
    local_feed_fraction,
    lower_bound_s,
    map_op,
    op_timing,
)
from accelsim.traffic import Traffic
from accelsim.vocabulary import MEMORY as HBM


def test_compute_bound_gemm_by_hand(tiny_hw, gemm):
    hw = tiny_hw(units=4, l2_bytes=64 * 1024)
    op = gemm(128, 128, 1024)
    mp = GemmMapping(tile_m=32, tile_n=32, tile_k=32, split_k=1, loop_order=0, units_used=4,
                     waves=4, tiles=16)
    tr = analytic_traffic(hw, op, mp, "fp32")
    # Each A element is read once per tile column (4), each B element once per tile row (4).
    assert tr.level_bytes["L2"] == 4 * 128 * 1024 * 4 * 2 + 128 * 128 * 4
    # B (512 KiB) does not fit the 64 KiB L2: swept once per tile row (one row per wave).
    assert tr.level_bytes[HBM] == 128 * 1024 * 4 * (1 + 4) + 128 * 128 * 4
    # (A: the 4 tiles of a tile row run in the same wave, so each A panel is fetched once.)
    t = op_timing(hw, op, mp, tr, "fp32")
    tile_s = 2 * 32 * 32 * 1024 / (2 * 64 * 1e9)          # 16.384 us at 128 GFLOP/s per unit
    # Issue 9: the first operand stage waits for the latency of where the bytes come from
    # (L2 1e-7 s for the bytes it serves, HBM 2e-7 s for its own), no longer the slowest
    # level's. The default library runs each tile's epilogue (the 4 KiB C tile stored through
    # the unit's quarter of the L2 port) after its K loop: once per wave.
    l2_served = tr.level_bytes["L2"] - tr.level_bytes[HBM]
    first_byte_s = (l2_served * 1e-7 + tr.level_bytes[HBM] * 2e-7) / tr.level_bytes["L2"]
    store_s = 32 * 32 * 4 / (1e11 / 4)
    assert t.wave_compute_s == pytest.approx(tile_s)
    assert t.wave_overhead_s == pytest.approx(first_byte_s + store_s)
    assert t.latency_s == pytest.approx(first_byte_s)
    assert t.isolated_time_s == pytest.approx(1e-6 + first_byte_s
                                              + 4 * (first_byte_s + store_s + tile_s))
    assert t.bound == "compute" and t.waves == 4 and t.units_used == 4
    # A library that overlaps the epilogue with the next tile's K loop (persistent kernels)
    # exposes only the last wave's.
    overlapped = attrs.evolve(hw, kernel_library=KernelLibrary(
        default=KernelMenu(overlapped_epilogue=True)))
    t = op_timing(overlapped, op, mp, tr, "fp32")
    assert t.wave_overhead_s == pytest.approx(first_byte_s)
    assert t.latency_s == pytest.approx(first_byte_s + store_s)
    assert t.isolated_time_s == pytest.approx(1e-6 + first_byte_s + store_s
                                              + 4 * (first_byte_s + tile_s))


def test_accumulating_gemm_reads_its_addend_in_the_epilogue(tiny_hw, gemm):
    # C = A@B + D (DeepBench's beta = 1, a fused gradient accumulation): the epilogue reads
    # the D tile before storing the C tile, and memory sees D read once beside C written once.
    hw = tiny_hw(units=4, l2_bytes=64 * 1024)
    plain = gemm(128, 128, 1024)
    acc = attrs.evolve(plain, accumulate=True)
    mp = GemmMapping(tile_m=32, tile_n=32, tile_k=32, split_k=1, loop_order=0, units_used=4,
                     waves=4, tiles=16)
    tr_plain, tr_acc = (analytic_traffic(hw, op, mp, "fp32") for op in (plain, acc))
    for level in ("L2", HBM):
        assert tr_acc.level_bytes[level] - tr_plain.level_bytes[level] == 128 * 128 * 4
    t_plain = op_timing(hw, plain, mp, tr_plain, "fp32")
    t_acc = op_timing(hw, acc, mp, tr_plain, "fp32")  # same traffic: only the epilogue differs
    store_s = 32 * 32 * 4 / (1e11 / 4)
    assert t_acc.wave_overhead_s - t_plain.wave_overhead_s == pytest.approx(store_s)
    assert t_acc.isolated_time_s - t_plain.isolated_time_s == pytest.approx(4 * store_s)


def test_operand_that_fits_is_fetched_once(tiny_hw, gemm):
    hw = tiny_hw(l2_bytes=4 * 1024 * 1024)
    op = gemm(128, 128, 1024)
    mp = GemmMapping(tile_m=32, tile_n=32, tile_k=32, split_k=1, loop_order=0, units_used=4,
                     waves=4, tiles=16)
    tr = analytic_traffic(hw, op, mp, "fp32")
    assert tr.level_bytes[HBM] == compulsory_bytes(op, "fp32")
    assert tr.hit_rate["L2"] == pytest.approx(1 - tr.level_bytes[HBM] / tr.level_bytes["L2"])


def test_resident_weights_are_not_refetched(tiny_hw, gemm):
    hw = tiny_hw(l2_bytes=4 * 1024 * 1024)
    op = gemm(128, 16, 128)
    mp = map_op(hw, op, "fp32")
    cold = analytic_traffic(hw, op, mp, "fp32")
    warm = analytic_traffic(hw, op, mp, "fp32", resident_bytes=128 * 128 * 4)
    assert cold.level_bytes[HBM] - warm.level_bytes[HBM] == 128 * 128 * 4


def test_stream_op_is_bandwidth_bound_by_hand(tiny_hw):
    hw = tiny_hw(units=4)
    op = Op(id=0, name="e", kind="elementwise", phase="forward", inputs=(), outputs=(),
            flops=1000.0)
    mp = map_op(hw, op, "fp32", nbytes=2**20)
    t = op_timing(hw, op, mp, analytic_traffic(hw, op, mp, "fp32", nbytes=2**20), "fp32")
    assert t.waves == 4  # 16 chunks of 64 KiB on 4 units
    assert t.isolated_time_s == pytest.approx(1e-6 + 2e-7 + 2**20 / 5e10)
    assert t.bound == HBM


def test_split_k_costs_a_reduction_launch(tiny_hw, gemm):
    hw = tiny_hw(units=4)
    op = gemm(32, 32, 4096)
    one = GemmMapping(tile_m=32, tile_n=32, tile_k=32, split_k=1, loop_order=0, units_used=1,
                      waves=1, tiles=1)
    four = GemmMapping(tile_m=32, tile_n=32, tile_k=32, split_k=4, loop_order=0, units_used=4,
                       waves=1, tiles=4)
    t1 = op_timing(hw, op, one, analytic_traffic(hw, op, one, "fp32"), "fp32")
    t4 = op_timing(hw, op, four, analytic_traffic(hw, op, four, "fp32"), "fp32")
    assert t4.launch_s == 2 * t1.launch_s
    assert t4.wave_compute_s == pytest.approx(t1.wave_compute_s / 4)
    assert t4.level_bytes["L2"] > t1.level_bytes["L2"]  # partial sums written and read back


def test_small_fp32_tiles_are_fed_below_peak_on_v100():
    hw = load_hardware(refdata.hardware_spec_path("v100"))

    def frac(tm: int, tn: int, dtype: str = "fp32") -> float:
        return local_feed_fraction(hw, GemmMapping(tile_m=tm, tile_n=tn, tile_k=32, split_k=1,
                                                   loop_order=0, units_used=1, waves=1,
                                                   tiles=1), dtype)
    # 128 threads, 8 accumulators each: 2 * 4 B * sqrt(128/1024) = 2.83 B/MAC at 64 MAC/clk.
    assert frac(32, 32) == pytest.approx(128 / (2 * 4 * math.sqrt(128 / 1024) * 64))
    assert frac(64, 32) == 1.0 and frac(128, 128) == 1.0
    assert frac(32, 32, "fp16") == 1.0


def test_thin_gemm_is_memory_or_latency_bound_and_big_gemm_compute_bound(gemm):
    hw = load_hardware(refdata.hardware_spec_path("v100"))
    thin = map_op(hw, gemm(8448, 16, 2816), "fp16")
    t = op_timing(hw, gemm(8448, 16, 2816), thin,
                  analytic_traffic(hw, gemm(8448, 16, 2816), thin, "fp16"), "fp16")
    assert t.bound in (HBM, "latency")
    big = gemm(4096, 4096, 4096)
    mp = map_op(hw, big, "fp16")
    assert op_timing(hw, big, mp, analytic_traffic(hw, big, mp, "fp16"), "fp16").bound == "compute"


def test_analytic_traffic_matches_cache_simulation(tiny_hw, gemm):
    from accelsim.validate import simulated_gemm_traffic

    hw = tiny_hw(units=4, l2_bytes=64 * 1024)
    for m, n, k in ((128, 128, 1024), (256, 32, 512), (64, 512, 256)):
        op = gemm(m, n, k)
        mp = map_op(hw, op, "fp32")
        sim = simulated_gemm_traffic(hw, op, mp, "fp32")
        ana = analytic_traffic(hw, op, mp, "fp32")
        assert sim.level_bytes["L2"] == pytest.approx(ana.level_bytes["L2"], rel=0.02)
        assert sim.level_bytes[HBM] == pytest.approx(ana.level_bytes[HBM], rel=0.25)


# --- property: nothing beats the roofline -------------------------------------------------------
@st.composite
def hardware(draw: st.DrawFn) -> HardwareSpec:
    units = draw(st.integers(1, 160))
    clock = draw(st.floats(0.3e9, 3e9))
    fp16_tile = draw(st.sampled_from([1, 8, 16]))
    caches = []
    if draw(st.booleans()):
        caches.append(CacheLevelSpec(
            name="L1", capacity_bytes=2 ** draw(st.integers(12, 18)), line_bytes=128, ways=4,
            sharing="private", bandwidth_bytes_per_s=draw(st.floats(1e11, 1e14)),
            latency_s=draw(st.floats(0, 1e-7))))
    if draw(st.booleans()) or not caches:  # a chip has at least one level (HardwareSpec rule)
        caches.append(CacheLevelSpec(
            name="L2", capacity_bytes=2 ** draw(st.integers(14, 26)), line_bytes=128,
            ways=draw(st.sampled_from([0, 4, 16])),
            bandwidth_bytes_per_s=draw(st.floats(1e10, 1e13)),
            latency_s=draw(st.floats(0, 1e-6))))
    return HardwareSpec(
        name="random",
        compute=ComputeSpec(
            units=units, clock_hz=clock,
            matrix={"fp32": MatrixPipe(macs_per_cycle_per_unit=draw(st.integers(1, 256))),
                    "fp16": MatrixPipe(macs_per_cycle_per_unit=draw(st.integers(1, 2048)),
                                       min_tile=fp16_tile)},
            vector_flop_rate=draw(st.floats(1e9, 1e14)),
            local_memory_bytes=2 ** draw(st.integers(12, 18)),
            register_file_bytes=draw(st.sampled_from([0, 64 * 1024, 256 * 1024])),
            local_memory_bandwidth_bytes_per_cycle=draw(st.sampled_from([0.0, 32.0, 128.0]))),
        caches=tuple(caches),
        memory=MemorySpec(capacity_bytes=2**34, bandwidth_bytes_per_s=draw(st.floats(1e10, 4e12)),
                          latency_s=draw(st.floats(0, 2e-6))),
        interconnect=InterconnectSpec(link_bandwidth_bytes_per_s=1e10),
        calibration=Calibration(
            compute_efficiency=draw(st.floats(0.05, 1.0)),
            vector_efficiency=draw(st.floats(0.05, 1.0)),
            bandwidth_efficiency=draw(st.floats(0.05, 1.0)),
            cache_bandwidth_efficiency=draw(st.floats(0.05, 1.0)),
            launch_overhead_s=draw(st.floats(0, 1e-5))))


@settings(max_examples=150, deadline=None)
@given(hw=hardware(), m=st.integers(1, 6000), n=st.integers(1, 6000), k=st.integers(1, 60000),
       batch=st.integers(1, 4), dtype=st.sampled_from(["fp32", "fp16"]),
       pick=st.integers(0, 10**6))
def test_no_gemm_beats_flops_or_compulsory_bytes(gemm, hw, m, n, k, batch, dtype, pick):
    op = gemm(m, n, k, batch)
    bound = lower_bound_s(hw, op, dtype)
    chosen = map_op(hw, op, dtype)
    cands = gemm_candidates(hw, op, dtype)
    for mp in (chosen, cands[pick % len(cands)]):
        t = op_timing(hw, op, mp, analytic_traffic(hw, op, mp, dtype), dtype)
        assert t.isolated_time_s >= bound * (1 - 1e-9)
        assert t.level_bytes[HBM] >= compulsory_bytes(op, dtype) * (1 - 1e-9)
        assert_replayable(t)


def assert_replayable(t) -> None:
    """The structure replay reproduces wave by wave: per wave, a fixed part, then compute
    overlapping the transfers through every level."""
    per_wave = t.wave_overhead_s + max(t.wave_compute_s,
                                       *(t.wave_transfer_s(lvl) for lvl in t.level_bytes))
    assert t.isolated_time_s == pytest.approx(t.launch_s + t.latency_s + t.waves * per_wave, rel=1e-12)
    assert set(t.level_bytes) == set(t.level_bandwidth)
    assert 1 <= t.units_used and 1 <= t.waves


@settings(max_examples=100, deadline=None)
@given(hw=hardware(), flops=st.floats(0, 1e12), nbytes=st.integers(1, 10**10),
       kind=st.sampled_from(["elementwise", "reduce", "softmax", "data", "update"]))
def test_no_stream_op_beats_the_roofline(hw, flops, nbytes, kind):
    op = Op(id=0, name="s", kind=kind, phase="forward", inputs=(), outputs=(), flops=flops)
    mp = map_op(hw, op, "fp32", nbytes=nbytes)
    t = op_timing(hw, op, mp, analytic_traffic(hw, op, mp, "fp32", nbytes=nbytes), "fp32")
    assert t.isolated_time_s >= lower_bound_s(hw, op, "fp32", nbytes) * (1 - 1e-9)
    assert_replayable(t)


def test_op_timing_uses_given_traffic(tiny_hw, gemm):
    hw = tiny_hw()
    op = gemm(64, 64, 64)
    mp = map_op(hw, op, "fp32")
    big = Traffic(level_bytes={"L2": 1e9, HBM: 1e9}, hit_rate={"L2": 0.0})
    t = op_timing(hw, op, mp, big, "fp32")
    assert t.bound == HBM and t.isolated_time_s >= 1e9 / 5e10
