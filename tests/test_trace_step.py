"""Step-level cache simulation: coalesced vs exact, conservation, compulsory traffic, reuse."""

from __future__ import annotations

import pathlib

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.cache import (
    ACCESSES,
    BYTES_READ_FROM_BELOW,
    BYTES_WRITTEN_BELOW,
    FETCHES,
    HITS,
    MISSES,
    WRITEBACKS,
    WRITES_BELOW,
    CacheHierarchy,
    Trace,
)
from accelsim.coarsening import step_block_bytes
from accelsim.graph import GraphBuilder
from accelsim.mapping import GemmMapping
from accelsim.models import build_graph
from accelsim.models.nmt import NMTConfig
from accelsim.spec import load_hardware
from accelsim.trace import step_traffic
from accelsim.trace_layout import allocate
from accelsim.trace_runs import gemm_op_runs
from accelsim.trace_steady import PeriodicRegion, op_keys, periodic_regions
from accelsim.workload import WorkloadSpec

ROOT = str(pathlib.Path(__file__).parents[1])


def reduced_nmt(hidden: int = 384, seq: int = 5, batch: int = 32, vocab: int = 2000):
    wl = WorkloadSpec(name="nmt_reduced", subbatch=batch,
                      model=NMTConfig(hidden=hidden, vocab=vocab, sequence_length=seq))
    return build_graph(wl)


def small_hw(l2_bytes: int, sram_bytes: int, ways: int = 16):
    """bigcache with its two levels shrunk so that a reduced NMT does not fit."""
    hw = load_hardware(f"{ROOT}/hwspecs/bigcache.yaml")
    l2, sram = hw.caches
    return attrs.evolve(hw, caches=(attrs.evolve(l2, capacity_bytes=l2_bytes, ways=ways),
                                    attrs.evolve(sram, capacity_bytes=sram_bytes, ways=ways)))


@pytest.fixture(scope="module")
def maps_for(fakes):
    """`maps_for(hw, graph)`: the stand-in mapping of every op (conftest `fakes`)."""
    return lambda hw, graph: [fakes.fake_map_op(hw, op, "fp32") for op in graph.ops]


@pytest.fixture(scope="module")
def nmt_case(maps_for):
    graph = reduced_nmt()
    hw = small_hw(512 * 1024, 8 * 2**20)
    maps = maps_for(hw, graph)
    exact = step_traffic(hw, graph, maps, "fp32", mode="exact")
    return graph, hw, maps, exact


def test_coalesced_hit_rates_within_one_point_of_exact(nmt_case):
    graph, hw, maps, exact = nmt_case
    # max_accesses=1 forces the coarsest blocks the defaults allow (the frontier's regime)
    co = step_traffic(hw, graph, maps, "fp32", mode="coalesced", max_accesses=1)
    assert co.mode_used == "coalesced" and exact.mode_used == "exact"
    assert co.granule_bytes[0] >= 8 * hw.caches[0].line_bytes  # really coarser
    assert not co.simulated.all()  # steady state really skipped repeated timesteps
    assert co.simulated_accesses * 8 < exact.simulated_accesses
    assert any("steady state" in s for s in co.shortcuts)
    ex_rate, co_rate = exact.step_hit_rate(), co.step_hit_rate()
    for level in ex_rate:
        assert 0.05 < ex_rate[level] < 0.95  # the cache matters at this size
        assert abs(co_rate[level] - ex_rate[level]) < 0.01, (level, co_rate, ex_rate)
    ex_b, co_b = exact.total_bytes(), co.total_bytes()
    assert co_b[hw.caches[0].name] == pytest.approx(ex_b[hw.caches[0].name], rel=1e-9)
    assert co_b["HBM"] == pytest.approx(ex_b["HBM"], rel=0.03)


def test_coalesced_with_line_blocks_and_no_steady_state_is_nearly_exact(nmt_case):
    """Left: only merged k-steps and shared tile reads counted as hits; both nearly exact."""
    graph, hw, maps, exact = nmt_case
    co = step_traffic(hw, graph, maps, "fp32", mode="coalesced", steady_state=False,
                      max_accesses=1e15)
    assert co.granule_bytes == tuple(lv.line_bytes for lv in hw.caches)
    assert co.simulated.all()
    acc_ex, acc_co = exact.counters[:, :, ACCESSES].sum(0), co.counters[:, :, ACCESSES].sum(0)
    np.testing.assert_allclose(acc_co, acc_ex, rtol=0.01)
    for level, rate in exact.step_hit_rate().items():
        assert abs(co.step_hit_rate()[level] - rate) < 0.002
    np.testing.assert_allclose(co.level_bytes[:, 0], exact.level_bytes[:, 0])


def test_conservation_between_levels(nmt_case):
    graph, hw, _, st = nmt_case
    c = st.counters
    for lv, level in enumerate(hw.caches):
        line = level.line_bytes
        assert np.all(c[:, lv, HITS] + c[:, lv, MISSES] == c[:, lv, ACCESSES])
        assert np.all(c[:, lv, FETCHES] <= c[:, lv, MISSES])
        # write-back, write-allocate: below gets fetched lines and written-back lines only
        assert np.all(c[:, lv, BYTES_READ_FROM_BELOW] == c[:, lv, FETCHES] * line)
        assert np.all(c[:, lv, BYTES_WRITTEN_BELOW] == c[:, lv, WRITEBACKS] * line)
        np.testing.assert_array_equal(st.level_bytes[:, lv + 1],
                                      (c[:, lv, FETCHES] + c[:, lv, WRITEBACKS]) * line)
        # the next level (same line size) sees exactly those requests
        assert np.all(c[:, lv + 1, ACCESSES] == c[:, lv, FETCHES] + c[:, lv, WRITES_BELOW])
    # level 0 serves every byte the ops ask for
    ops_bytes = np.array([graph.op_bytes(op) for op in graph.ops], float)
    gemm = np.array([op.kind == "gemm" for op in graph.ops])
    np.testing.assert_allclose(st.level_bytes[~gemm, 0], ops_bytes[~gemm])
    assert np.all(st.level_bytes[gemm, 0] >= ops_bytes[gemm])  # tiles re-read operands


@pytest.mark.parametrize("mode", ["exact", "coalesced"])
def test_compulsory_traffic_lower_bound(nmt_case, mode):
    graph, hw, maps, exact = nmt_case
    st = exact if mode == "exact" else step_traffic(hw, graph, maps, "fp32", mode=mode,
                                                    max_accesses=1)
    first_read = set()
    written = set()
    for op in graph.ops:
        first_read |= {t for t in op.inputs if t not in written}
        written |= set(op.outputs)
    must_read = sum(graph.tensors[t].nbytes for t in first_read)
    hbm_read = st.counters[:, -1, BYTES_READ_FROM_BELOW].sum() if mode == "exact" else None
    if hbm_read is not None:
        assert hbm_read >= must_read
    # bytes moved to or from HBM at least cover the data that must come from memory
    assert st.total_bytes()["HBM"] >= 0.99 * must_read
    assert st.total_bytes()["HBM"] <= st.total_bytes()[hw.caches[-1].name] + 1


def test_weights_stay_resident_across_timesteps_only_if_they_fit(maps_for):
    graph = reduced_nmt(hidden=256, seq=4, batch=16)
    kernel = next(t for t in graph.tensors if t.name == "decoder/cell/kernel")
    steps = [i for i, op in enumerate(graph.ops)
             if op.name.startswith("decoder/t") and op.name.endswith("/cell/matmul")]
    assert len(steps) == 4
    results = {}
    for sram in (1 * 2**20, 64 * 2**20):
        hw = small_hw(64 * 1024, sram)
        st = step_traffic(hw, graph, maps_for(hw, graph), "fp32", mode="exact")
        results[sram] = st.level_bytes[steps, -1]
    small, big = results[1 * 2**20], results[64 * 2**20]
    assert np.all(small[1:] >= kernel.nbytes)  # re-streamed every timestep
    assert np.all(big[1:] < 0.05 * kernel.nbytes)  # read from HBM once per step
    assert big[0] >= kernel.nbytes  # ... namely at the first timestep


def test_allocator_keeps_live_tensors_apart_and_updates_in_place():
    graph = reduced_nmt(hidden=64, seq=3, batch=4, vocab=100)
    layout = allocate(graph, 256)
    base, top = layout.bases, layout.size_bytes
    sizes = np.array([t.nbytes for t in graph.tensors])
    last = {}
    for i, op in enumerate(graph.ops):
        for t in (*op.inputs, *op.outputs):
            last[t] = i
    live: dict[int, int] = {}
    for i, op in enumerate(graph.ops):
        for t in op.outputs:
            live.setdefault(t, i)
        cur = [t for t in live if last[t] >= i or graph.tensors[t].persistent]
        cur += [t.id for t in graph.tensors if graph.producer(t.id) is None and t.id not in live]
        # ranges of distinct live tensors may only coincide for buffer forwarding (in place)
        spans = sorted({(int(base[t]), int(base[t] + sizes[t])) for t in cur})
        for (a0, a1), (b0, _) in zip(spans, spans[1:], strict=False):
            assert a1 <= b0 or (a0 == b0), (i, op.name)
        for t in [t for t in live if last[t] <= i and not graph.tensors[t].persistent]:
            live.pop(t)
    assert top >= sum(t.nbytes for t in graph.tensors if t.persistent)
    for op in graph.ops:
        if op.kind == "update":
            assert op.inputs[0] == op.outputs[0]  # same tensor, same address
    # a gradient running sum is updated in place (buffer forwarding)
    acc = [op for op in graph.ops if op.name.endswith("cell/kernel/accumulate")]
    assert acc and all(base[op.outputs[0]] == base[op.inputs[0]] for op in acc)
    persistent = [t.id for t in graph.tensors if t.persistent]
    assert len({int(base[t]) for t in persistent}) == len(persistent)


def test_periodic_regions_finds_repeated_blocks():
    keys = list("xab") + list("cde") * 5 + list("yy") + list("fg") * 4
    regions = periodic_regions(keys, min_repeats=4)
    assert PeriodicRegion(3, 3, 5) in regions
    assert PeriodicRegion(20, 2, 4) in regions
    assert all(r.repeats >= 4 for r in regions)
    assert periodic_regions(list("abcabc"), min_repeats=4) == []


def test_op_keys_equal_across_timesteps():
    graph = reduced_nmt(hidden=64, seq=4, batch=4, vocab=100)
    keys = op_keys(graph)
    names = {op.name: k for op, k in zip(graph.ops, keys, strict=True)}
    assert names["decoder/t1/cell/matmul"] == names["decoder/t2/cell/matmul"]
    assert names["decoder/t1/cell/matmul"] != names["decoder/t1/attention_layer"]


def test_block_sizes_bounded_for_huge_caches():
    hw = load_hardware(f"{ROOT}/hwspecs/bigcache.yaml")
    blocks = step_block_bytes(hw.caches, stream_bytes=1e6, n_units=hw.compute.units)
    n_blocks = [lv.capacity_bytes // b for lv, b in zip(hw.caches, blocks, strict=True)]
    assert 8 * sum(n_blocks) <= 256 * 2**20  # 64 GiB SRAM: state stays small
    assert blocks[0] / hw.caches[0].line_bytes == blocks[1] / hw.caches[1].line_bytes
    assert n_blocks[0] >= 256


def test_auto_mode_and_64_gib_cache_on_a_small_model(maps_for):
    graph = reduced_nmt(hidden=64, seq=3, batch=8, vocab=200)
    hw = load_hardware(f"{ROOT}/hwspecs/bigcache.yaml")
    st = step_traffic(hw, graph, maps_for(hw, graph), "fp32", mode="auto")
    assert st.mode_used == "coalesced"  # 64 GiB of line state is too much for exact
    assert any("auto chose coalesced" in s for s in st.shortcuts)
    # everything fits: after the first touch nothing comes from HBM again
    first = set()
    written = set()
    for op in graph.ops:
        first |= {t for t in op.inputs if t not in written}
        written |= set(op.outputs)
    must_read = sum(graph.tensors[t].nbytes for t in first)
    assert st.counters[:, -1, BYTES_WRITTEN_BELOW].sum() == 0  # nothing is ever evicted
    # 2 KiB tensors in 4 KiB blocks: partly written blocks are fetched, hence the slack
    assert must_read <= st.total_bytes()["HBM"] <= 1.5 * must_read
    hw_small = small_hw(256 * 1024, 2 * 2**20)
    assert step_traffic(hw_small, graph, maps_for(hw_small, graph), "fp32").mode_used == "exact"


def test_bad_arguments(maps_for):
    g = GraphBuilder("g")
    a, b = g.input("a", (8, 8)), g.input("b", (8, 8))
    g.matmul("mm", a, b)
    graph = g.build()
    hw = small_hw(64 * 1024, 1 * 2**20)
    with pytest.raises(ValueError, match="mode"):
        step_traffic(hw, graph, maps_for(hw, graph), "fp32", mode="fast")
    with pytest.raises(ValueError, match="mappings"):
        step_traffic(hw, graph, [], "fp32")
    g = GraphBuilder("huge")
    a, b = g.input("a", (4096, 65536)), g.input("b", (65536, 8192))
    g.matmul("mm", a, b)
    huge = g.build()
    with pytest.raises(ValueError, match="line accesses"):
        step_traffic(hw, huge, maps_for(hw, huge), "fp32", mode="exact")
    big = load_hardware(f"{ROOT}/hwspecs/bigcache.yaml")  # 64 GiB: 4 GiB of line state
    with pytest.raises(ValueError, match="GiB of line state"):
        step_traffic(big, graph, maps_for(big, graph), "fp32", mode="exact")


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300), st.integers(1, 300), st.integers(1, 200),
       st.sampled_from([(16, 16, 8), (32, 16, 16), (16, 64, 8)]), st.integers(1, 12),
       st.sampled_from([0, 1]))
def test_shared_tile_reads_taken_out_of_the_trace_are_exactly_the_hits(fakes, m, n, k, tile,
                                                                       units, order):
    """Dropping the re-reads of a wave's shared tiles and counting them as hits changes no
    counter when a k-step of the wave fits in the (shared, LRU) first level."""
    g = GraphBuilder("g")
    a, b = g.input("a", (m, k)), g.input("b", (k, n))
    g.matmul("mm", a, b)
    graph = g.build()
    bases = allocate(graph, 4096).bases
    tm, tn, tk = (min(t, d) for t, d in zip(tile, (m, n, k), strict=True))
    mp = GemmMapping(tm, tn, tk, 1, order, units, 1, 1)
    level = attrs.evolve(small_hw(1 << 20, 1 << 22).caches[0], line_bytes=64,
                         capacity_bytes=1 << 20, ways=0)
    args = dict(tile_major=True, min_run_bytes=1, max_runs=1 << 40, scratch_base=1 << 40,
                granule=64, line_bytes=64)
    full = gemm_op_runs(graph, graph.ops[0], mp, bases, shared_bytes=0, **args)
    dedup = gemm_op_runs(graph, graph.ops[0], mp, bases, shared_bytes=1 << 20, **args)
    assert full.hit_blocks == 0
    tiles = -(-m // tm) * -(-n // tn)
    assert (dedup.hit_blocks > 0) == (min(units, tiles) > 1)  # the first wave always shares
    runs = []
    for r in (full, dedup):
        hier = CacheHierarchy([level], n_units=units)
        runs.append(hier.run(Trace.single_op(r.addr, r.nbytes, r.is_write, r.unit)).data[0, 0])
    c_full, c_dedup = runs
    assert c_full[ACCESSES] == c_dedup[ACCESSES] + dedup.hit_blocks
    assert c_full[HITS] == c_dedup[HITS] + dedup.hit_blocks
    assert c_full[MISSES] == c_dedup[MISSES]
    assert full.nbytes.sum() == dedup.nbytes.sum() + dedup.hit_bytes


@pytest.mark.parametrize("mode", ["exact", "coalesced"])
def test_streams_follow_op_bytes_with_extra_bytes(maps_for, mode):
    """A gather reads only its rows (negative extra bytes); a workspace adds reads."""
    g = GraphBuilder("g")
    table, ids = g.weight("table", (5000, 64)), g.input("ids", (32,), dtype="int32")
    rows = g.tensor("rows", (32, 64))
    g.op("gather", "data", [table, ids], [rows], 0.0, extra_bytes=rows.nbytes - table.nbytes)
    y = g.pointwise("scale", [rows], 1.0)
    g.op("with_workspace", "elementwise", [y], [g.tensor("z", (32, 64))], 1.0,
         extra_bytes=40_000)
    graph = g.build()
    hw = small_hw(64 * 1024, 1 * 2**20)
    st = step_traffic(hw, graph, maps_for(hw, graph), "fp32", mode=mode, max_accesses=1)
    np.testing.assert_allclose(st.level_bytes[:, 0], [graph.op_bytes(op) for op in graph.ops])
    assert st.level_bytes[0, -1] < 0.2 * table.nbytes  # the table is not streamed whole


def test_coalesced_within_one_point_with_the_real_mapping():
    """The same check with `map_op`'s tiles (what `simulate_step` uses) on a longer sequence,
    where steady state skips most timesteps."""
    from accelsim.timing import map_op

    graph = reduced_nmt(hidden=256, seq=12, batch=16)
    hw = small_hw(256 * 1024, 2 * 2**20)
    maps = [map_op(hw, op, "fp32", nbytes=graph.op_bytes(op)) for op in graph.ops]
    exact = step_traffic(hw, graph, maps, "fp32", mode="exact")
    co = step_traffic(hw, graph, maps, "fp32", mode="coalesced", max_accesses=1)
    assert co.simulated.sum() < 0.5 * len(graph.ops)
    for level, rate in exact.step_hit_rate().items():
        assert abs(co.step_hit_rate()[level] - rate) < 0.01, level
    assert co.total_bytes()["HBM"] == pytest.approx(exact.total_bytes()["HBM"], rel=0.03)
