"""Mapping: tile shapes that fit a unit, wave counts, split-K and stream chunks, by hand."""

from __future__ import annotations

import math

import pytest

from accelsim import refdata
from accelsim.graph import Op
from accelsim.mapping import (
    GemmMapping,
    StreamMapping,
    gemm_candidates,
    stream_mapping,
    tile_shapes,
)
from accelsim.spec import load_hardware
from accelsim.timing import map_op


def test_tiles_fit_local_memory_and_registers_on_v100():
    hw = load_hardware(refdata.hardware_spec_path("v100"))
    for dtype, eb in (("fp32", 4), ("fp16", 2)):
        shapes = tile_shapes(hw, dtype)
        assert shapes
        for tm, tn, tk in shapes:
            assert hw.kernel_library.menu(dtype).stages * (tm + tn) * tk * eb <= hw.compute.local_memory_bytes
            assert tm * tn * 4 <= hw.compute.register_file_bytes // 2  # fp32 accumulators
            if dtype == "fp16":  # tensor-core granule
                assert tm % 16 == 0 and tn % 16 == 0 and tk % 16 == 0


def test_tiny_local_memory_allows_only_small_tiles(tiny_hw):
    # 16 KiB local memory, fp32, two stages: (tm + tn) * tk * 4 * 2 <= 16384.
    # 64x64 needs tk <= 16; 128x128 needs tk <= 8; 128x256 would need tk <= 5: excluded.
    shapes = {(tm, tn): tk for tm, tn, tk in tile_shapes(tiny_hw(), "fp32")}
    assert shapes[(32, 32)] == 32
    assert shapes[(64, 64)] == 16
    # 64 KiB register file, half for accumulators: tm * tn * 4 <= 32768 -> at most 8192 outputs
    assert (128, 128) not in shapes and (128, 64) in shapes


def test_wave_counts_by_hand(tiny_hw, gemm):
    hw = tiny_hw(units=4)
    cands = gemm_candidates(hw, gemm(256, 128, 512), "fp32")
    by_tile = {(c.tile_m, c.tile_n, c.split_k): c for c in cands}
    # 32x32 tiles: 8 x 4 = 32 tiles on 4 units -> 8 waves, all units busy.
    c = by_tile[(32, 32, 1)]
    assert (c.tiles, c.waves, c.units_used) == (32, 8, 4)
    # 64x128 tiles: 4 x 1 = 4 tiles -> exactly one wave.
    c = by_tile[(64, 128, 1)]
    assert (c.tiles, c.waves, c.units_used) == (4, 1, 4)
    # Edge tiles count: 100 x 40 with 64x32 tiles -> 2 x 2 = 4 tiles.
    c = {(c.tile_m, c.tile_n): c for c in gemm_candidates(hw, gemm(100, 40, 64), "fp32")
         if c.split_k == 1}[(64, 32)]
    assert c.tiles == 4 and c.waves == 1


def test_split_k_only_when_output_tiles_leave_units_idle(tiny_hw, gemm):
    hw = tiny_hw(units=4)
    # 32x32 output is a single 32x32 tile: K=4096 can be split (4096 / 256 = 16 max).
    cands = gemm_candidates(hw, gemm(32, 32, 4096), "fp32")
    splits = {c.split_k for c in cands if (c.tile_m, c.tile_n) == (32, 32)}
    assert {1, 2, 4, 8, 16} <= splits and 32 not in splits
    c = next(c for c in cands if (c.tile_m, c.tile_n, c.split_k) == (32, 32, 8))
    assert (c.tiles, c.waves, c.units_used) == (8, 2, 4)
    # Enough output tiles to fill every unit: no split-K candidates.
    assert all(c.split_k == 1 for c in gemm_candidates(hw, gemm(256, 256, 4096), "fp32")
               if (c.tile_m, c.tile_n) == (32, 32))


def test_batch_multiplies_tiles(tiny_hw, gemm):
    hw = tiny_hw(units=4)
    c = next(c for c in gemm_candidates(hw, gemm(64, 64, 64, batch=3), "fp32")
             if (c.tile_m, c.tile_n, c.split_k) == (32, 32, 1))
    assert c.tiles == 12 and c.waves == 3


def test_map_op_returns_a_candidate_and_streams_for_other_ops(tiny_hw, gemm):
    hw = tiny_hw()
    op = gemm(256, 128, 512)
    mp = map_op(hw, op, "fp32")
    assert isinstance(mp, GemmMapping)
    assert mp in gemm_candidates(hw, op, "fp32")
    ew = Op(id=1, name="e", kind="elementwise", phase="forward", inputs=(), outputs=(),
            flops=1000.0)
    sm = map_op(hw, ew, "fp32", nbytes=10 * 64 * 1024)
    assert isinstance(sm, StreamMapping)
    assert (sm.units_used, sm.waves) == (4, 3)  # 10 chunks over 4 units


@pytest.mark.parametrize("nbytes,units,waves", [(1, 1, 1), (64 * 1024 * 4, 4, 1),
                                                 (64 * 1024 * 9, 4, 3)])
def test_stream_chunks(tiny_hw, nbytes: int, units: int, waves: int):
    sm = stream_mapping(tiny_hw(units=4), nbytes)
    assert (sm.units_used, sm.waves) == (units, waves)
    assert sm.waves == math.ceil(math.ceil(nbytes / sm.chunk_bytes) / 4)
