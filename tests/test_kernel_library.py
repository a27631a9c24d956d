"""The kernel library as spec data (issue 10): the mapper chooses only from the spec's menu."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim import refdata
from accelsim.errors import SpecError
from accelsim.hardware import KernelLibrary, KernelMenu
from accelsim.mapping import GemmMapping, gemm_candidates, tile_shapes
from accelsim.spec import dump_yaml, hardware_from_yaml, load_hardware
from accelsim.spec_strategies import kernel_menus
from accelsim.timing import map_op

#: A chip without a kernel_library section, to which the tests append one.
BASE_TEXT = """name: tiny
compute:
  units: 4
  clock: 1 GHz
  matrix:
    fp32: {peak_flop_rate: 1 TFLOP/s}
    fp16: {peak_flop_rate: 8 TFLOP/s, min_tile: 16}
  vector_flop_rate: 1 TFLOP/s
  local_memory: 64 KiB
caches:
  - {name: L2, capacity: 1 MiB, line: 64 B, ways: 8, bandwidth: 1 TB/s}
memory:
  capacity: 16 GiB
  bandwidth: 900 GB/s
interconnect:
  link_bandwidth: 50 GB/s
"""


def _with_library(hw, **menus: KernelMenu):
    return attrs.evolve(hw, kernel_library=KernelLibrary(menus=menus))


def test_default_menu_is_the_generic_tiled_blas(tiny_hw):
    # 4 edges, aspect <= 4: all 16 pairs but 32x256 and 256x32.
    shapes = KernelMenu().shapes()
    assert len(shapes) == 14 and (32, 256) not in shapes and (256, 64) in shapes
    assert KernelMenu().split_k == (1, 2, 4, 8, 16, 32, 64)


def test_menu_restricts_tiles_and_split_k(tiny_hw, gemm):
    hw = _with_library(tiny_hw(units=4), fp32=KernelMenu(tiles=((64, 32),), split_k=(1, 4)))
    cands = gemm_candidates(hw, gemm(64, 32, 4096), "fp32")
    # One tile shape, split 1 or 4 (the single output tile leaves 3 of 4 units idle), two
    # loop orders: four candidates.
    assert {(c.tile_m, c.tile_n, c.split_k) for c in cands} == {(64, 32, 1), (64, 32, 4)}
    assert len(cands) == 4
    assert map_op(hw, gemm(64, 32, 4096), "fp32") in cands


def test_min_k_per_split_stops_the_split(tiny_hw, gemm):
    hw = _with_library(tiny_hw(units=4), fp32=KernelMenu(tiles=((32, 32),),
                                                         min_k_per_split=1024))
    splits = {c.split_k for c in gemm_candidates(hw, gemm(32, 32, 4096), "fp32")}
    assert splits == {1, 2, 4}  # 4096 / 8 = 512 < 1024


def test_layout_menu_beats_dtype_menu(tiny_hw, gemm):
    hw = _with_library(tiny_hw(units=4), fp32=KernelMenu(tiles=((64, 64),)),
                       fp32_TN=KernelMenu(tiles=((32, 128),)))
    nn = gemm(256, 256, 256)
    tn = attrs.evolve(nn, trans_a=True)
    assert {(c.tile_m, c.tile_n) for c in gemm_candidates(hw, nn, "fp32")} == {(64, 64)}
    assert {(c.tile_m, c.tile_n) for c in gemm_candidates(hw, tn, "fp32")} == {(32, 128)}
    # fp16 has no menu here: the default applies.
    assert hw.kernel_library.menu("fp16", True, False) == KernelMenu()


def test_tile_k_first_that_fits(tiny_hw):
    # 16 KiB local memory, fp32, two stages: 64x64 fits tk 16 (not 32) -> first of [64, 16].
    hw = _with_library(tiny_hw(local_bytes=16 * 1024),
                       fp32=KernelMenu(tiles=((64, 64),), tile_k=(64, 16)))
    assert tile_shapes(hw, "fp32") == [(64, 64, 16)]


def test_menu_tiles_off_the_pipe_granule_are_dropped():
    hw = load_hardware(refdata.hardware_spec_path("v100"))
    hw = _with_library(hw, fp16=KernelMenu(tiles=((24, 64), (64, 64))))
    assert [(tm, tn) for tm, tn, _ in tile_shapes(hw, "fp16")] == [(64, 64)]


def test_spec_menu_round_trips():
    text = BASE_TEXT + """
kernel_library:
  default:
    split_k: [1, 2, 4]
  menus:
    fp16:
      tiles: [[256, 128], [128, 128], [64, 64]]
      tile_k: [32]
    fp32_TN:
      tile_edges: [32, 64, 128]
      max_aspect: 2
      min_k_per_split: 512
"""
    hw = hardware_from_yaml(text, "v100_menu.yaml")
    lib = hw.kernel_library
    assert lib.default.split_k == (1, 2, 4)
    assert lib.menu("fp16", True, True).tiles == ((256, 128), (128, 128), (64, 64))
    assert lib.menu("fp32", True, False).max_aspect == 2
    assert lib.menu("fp32", False, False) == lib.default
    assert hardware_from_yaml(dump_yaml(hw), "again.yaml") == hw


@pytest.mark.parametrize("menu,where,expected", [
    ("fp16: {split_k: [2, 4]}", "kernel_library.menus.fp16.split_k",
     "factors starting with 1"),
    ("fp16: {split_k: [1, 4, 2]}", "kernel_library.menus.fp16.split_k[2]",
     "a factor above 4"),
    ("fp16: {tiles: [[128, 64, 32]]}", "kernel_library.menus.fp16.tiles[0]",
     "a [tile_m, tile_n] pair"),
    ("fp16: {tile_edges: [64, 0]}", "kernel_library.menus.fp16.tile_edges[1]",
     "an edge from 1 to 65536"),
    ("fp61: {}", "kernel_library.menus.fp61", "a key among"),
])
def test_bad_menu_entries_are_located(menu: str, where: str, expected: str):
    text = BASE_TEXT + "kernel_library:\n  menus:\n    " + menu + "\n"
    with pytest.raises(SpecError) as err:
        hardware_from_yaml(text, "bad.yaml")
    message = str(err.value)
    assert f": {where}: expected {expected}" in message
    assert "bad.yaml:" in message


def test_k_major_operands_move_at_the_menus_memory_efficiency(gemm):
    from accelsim.mapping import memory_efficiency

    hw = load_hardware(refdata.hardware_spec_path("v100"))
    slow = _with_library(hw, fp32=KernelMenu(k_major_memory_efficiency=0.5))
    op = gemm(100, 10, 100)  # row-major A [100, 100] is K-contiguous, B [100, 10] is not
    # A: 10000 of 12000 compulsory elements at half rate: 1 / (10000/12000/0.5 + 2000/12000)
    assert memory_efficiency(slow, op, "fp32") == pytest.approx(1 / (5 / 3 + 1 / 6))
    assert memory_efficiency(slow, attrs.evolve(op, trans_a=True), "fp32") == 1.0
    both = attrs.evolve(op, trans_b=True)  # B as [n, k]: K-contiguous too
    assert memory_efficiency(slow, both, "fp32") == pytest.approx(1 / (11 / 12 / 0.5 + 1 / 12))
    assert memory_efficiency(hw, op, "fp32") == 1.0  # the default menu: no difference


def test_unaligned_k_major_rows_move_at_the_unaligned_efficiency(gemm):
    from accelsim.mapping import memory_efficiency

    hw = load_hardware(refdata.hardware_spec_path("v100"))
    menu = KernelMenu(k_major_memory_efficiency=0.8, k_major_aligned_stride_bytes=2048,
                      k_major_unaligned_memory_efficiency=0.5)
    lib = _with_library(hw, fp32=menu)
    # fp32 rows of K = 512 are 2048 B apart (aligned), K = 640 rows 2560 B (not).
    # A [m, k] K-contiguous, B [k, 16] not: A's m*k of m*k + 16k + 16m elements are slow.
    for k, eff in ((512, 0.8), (640, 0.5)):
        op = gemm(1024, 16, k)
        total = 1024 * k + k * 16 + 1024 * 16
        slow = 1024 * k / total
        assert memory_efficiency(lib, op, "fp32") == pytest.approx(1 / (slow / eff + 1 - slow))
    # Only K-major operands are affected, aligned or not.
    assert memory_efficiency(lib, attrs.evolve(gemm(1024, 16, 640), trans_a=True), "fp32") == 1.0


def test_more_stages_admit_fewer_tiles_and_hide_more_latency(gemm):
    from accelsim.timing import _gemm_pipeline_latency_s

    hw = load_hardware(refdata.hardware_spec_path("v100"))
    deep = _with_library(hw, fp32=KernelMenu(stages=4))
    # Each shape fits stages x (tm + tn) x tk x 4 B in the 96 KiB of local memory.
    for tm, tn, tk in tile_shapes(deep, "fp32"):
        assert 4 * (tm + tn) * tk * 4 <= hw.compute.local_memory_bytes
    # 1024 / 32 = 32 K steps, each waiting latency / (stages - 1): 32 us at 2 stages, a third
    # of it at 4.
    op = gemm(64, 64, 1024)
    mp = GemmMapping(tile_m=64, tile_n=64, tile_k=32, split_k=1, loop_order=0, units_used=1,
                     waves=1, tiles=1)
    assert _gemm_pipeline_latency_s(op, mp, 1e-6, 2) == pytest.approx(32e-6)
    assert _gemm_pipeline_latency_s(op, mp, 1e-6, 4) == pytest.approx(32e-6 / 3)


@settings(max_examples=60, deadline=None)
@given(menu=kernel_menus(), m=st.integers(1, 4096), n=st.integers(1, 4096),
       k=st.integers(1, 1 << 20), trans_a=st.booleans(), trans_b=st.booleans())
def test_candidates_come_only_from_the_menu(menu: KernelMenu, m: int, n: int, k: int,
                                            trans_a: bool, trans_b: bool):
    from accelsim.validate import gemm_op

    hw = load_hardware(refdata.hardware_spec_path("v100"))
    hw = attrs.evolve(hw, kernel_library=KernelLibrary(default=menu))
    op = gemm_op(m, n, k, trans_a, trans_b)
    offered = set(menu.shapes())
    for dtype in ("fp32", "fp16"):
        granule = hw.compute.pipe(dtype).min_tile
        legal = {t for t in offered if t[0] % granule == 0 and t[1] % granule == 0}
        for c in gemm_candidates(hw, op, dtype):
            assert (c.tile_m, c.tile_n) in (legal or {(granule, granule)})
            assert c.split_k in menu.split_k
            assert c.split_k == 1 or k / c.split_k >= menu.min_k_per_split


# --- the hypothetical designs' thin tiles (issue 9 item 5) -------------------------------------
def test_bigcache_maps_a_subbatch_8_recurrent_gemm_on_thin_tiles(gemm):
    """A subbatch-8 recurrent GEMM (m = 8, the frontier NMT's decoder kernel [3h, 4h]) whose
    weights are resident in bigcache's SRAM: the library offers 8-row fp32 tiles (SIMT pipe,
    granule 1) and 16-row fp16 ones (tensor pipe, granule 16), so the mapper pads nothing beyond
    the granule; the generic menu's 32-row tiles pad 75 % (fp32) and 50 % (fp16). (On
    ppopp19_target the weights stream from HBM, the GEMM is memory bound whatever the tile and
    the mapper's tie-break takes the larger 16-row tile.)"""
    from accelsim.mapping import padding_waste

    hw = load_hardware(refdata.hardware_spec_path("bigcache"))
    for other in ("ppopp19_target", "bigmem"):  # one library for the three designs
        assert load_hardware(refdata.hardware_spec_path(other)).kernel_library == \
            hw.kernel_library
    generic = attrs.evolve(hw, kernel_library=KernelLibrary())
    h = 22350
    op = gemm(8, 4 * h, 3 * h)
    for dtype, eb, thin_rows, generic_waste in (("fp32", 4, 8, 0.75), ("fp16", 2, 16, 0.5)):
        resident = 3 * h * 4 * h * eb
        thin = map_op(hw, op, dtype, resident_bytes=resident)
        assert thin.tile_m == thin_rows
        assert padding_waste(hw, op, thin, dtype) < 0.01
        wide = map_op(generic, op, dtype, resident_bytes=resident)
        assert wide.tile_m >= 32
        assert padding_waste(generic, op, wide, dtype) == pytest.approx(generic_waste, abs=0.01)


def test_stock_specs_without_a_library_keep_the_generic_menu():
    """The thin tiles are the hypothetical designs' choice: the generic default is unchanged."""
    assert KernelMenu().shapes() == [
        (32, 32), (32, 64), (32, 128), (64, 32), (64, 64), (64, 128), (64, 256), (128, 32),
        (128, 64), (128, 128), (128, 256), (256, 64), (256, 128), (256, 256)]
    hw = load_hardware(refdata.hardware_spec_path("bigcache"))
    assert set(KernelMenu().shapes()) < set(hw.kernel_library.menu("fp32").shapes())
