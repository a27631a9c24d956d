"""Hypothesis properties of the cache hierarchy, drawn with ``accelsim.testing`` strategies."""

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
    INVALIDATIONS,
    MISSES,
    WRITE_ACCESSES,
    WRITEBACKS,
    WRITES_BELOW,
    CacheHierarchy,
    Trace,
)
from accelsim.testing import cache_hierarchies, cache_level, traces

FAST = settings(max_examples=60, deadline=None)


def resident(h: CacheHierarchy, level: int) -> set[tuple[int, int]]:
    """(instance, line) pairs held at a level."""
    n_inst = h.n_units if h.levels[level].sharing == "private" else 1
    return {(i, x) for i in range(n_inst) for x in h.resident_lines(level, i)}


def check_invariants(h: CacheHierarchy) -> None:
    """No line twice in a set, each line in its own set, valid lines packed first in
    recency-ordered sets, occupancy within capacity."""
    for lv, lines in enumerate(h.lines_per_instance):
        n_inst = h.n_units if h.levels[lv].sharing == "private" else 1
        ways = int(h.cfg[lv, 2])
        n_sets = lines // ways
        sets = h._level_slots(lv).reshape(n_inst * n_sets, ways)
        for g, row in enumerate(sets):
            valid = row[row >= 0] >> 1
            assert len(set(valid.tolist())) == valid.size
            assert ((valid % n_sets) == g % n_sets).all()
            if h.levels[lv].replacement in ("lru", "fifo", "mru"):
                assert (row[:valid.size] >= 0).all()
        assert h.occupancy_lines()[lv] <= n_inst * lines
    # inclusion: every line above an inclusive level lies in a line that level holds
    for lv, lvl in enumerate(h.levels):
        if lvl.inclusion != "inclusive":
            continue
        shift = h.line_bytes[lv]
        for up in range(lv):
            n_up = h.n_units if h.levels[up].sharing == "private" else 1
            for inst in range(n_up):
                below = h.resident_lines(lv, inst if lvl.sharing == "private" else 0)
                for x in h.resident_lines(up, inst):
                    assert x * h.line_bytes[up] // shift in below, (up, inst, x, lv)


@st.composite
def design_and_trace(draw, **kw):
    levels, n_units = draw(cache_hierarchies(**kw))
    return levels, n_units, draw(traces(n_units=n_units))


@FAST
@given(design_and_trace(), st.integers(0, 3))
def test_counter_identities(dt, seed):
    levels, n_units, t = dt
    h = CacheHierarchy(levels, n_units, seed=seed)
    c = h.run(t).total().data[0]
    n = len(levels)
    assert (c[:n, HITS] + c[:n, MISSES] == c[:n, ACCESSES]).all()
    assert c[0, ACCESSES] == t.line_accesses(levels[0].line_bytes)
    assert c[0, WRITE_ACCESSES] == Trace.single_op(
        t.addr[t.is_write == 1], t.nbytes[t.is_write == 1]).line_accesses(levels[0].line_bytes)
    for lv in range(n):
        line = h.line_bytes[lv]
        # every request sent below lies inside one line of the level below
        assert c[lv + 1, ACCESSES] == c[lv, FETCHES] + c[lv, WRITES_BELOW]
        assert c[lv + 1, WRITE_ACCESSES] == c[lv, WRITES_BELOW]
        assert c[lv, BYTES_READ_FROM_BELOW] == c[lv, FETCHES] * line
        assert c[lv, FETCHES] <= c[lv, MISSES]
        assert c[lv, WRITEBACKS] * line <= c[lv, BYTES_WRITTEN_BELOW]
        assert c[lv, WRITEBACKS] <= c[lv, WRITES_BELOW]
        if lv + 1 < n:
            assert c[lv + 1, HITS] + c[lv + 1, MISSES] == c[lv + 1, ACCESSES]
    assert c[n, BYTES_READ_FROM_BELOW] == c[n - 1, BYTES_READ_FROM_BELOW]
    assert c[n, BYTES_WRITTEN_BELOW] == c[n - 1, BYTES_WRITTEN_BELOW]
    if not any(lvl.inclusion == "inclusive" for lvl in levels[1:]):
        assert c[:n, INVALIDATIONS].sum() == 0
    check_invariants(h)


@FAST
@given(design_and_trace(write_policies=("write_back",), write_allocate=True))
def test_traffic_below_is_misses_plus_writebacks(dt):
    """Write-back, write-allocate, partial writes: level-0 misses each fetch one line."""
    levels, n_units, t = dt
    nbytes = np.minimum(t.nbytes, levels[0].line_bytes // 2)
    t = Trace(addr=t.addr, nbytes=nbytes, is_write=t.is_write, unit=t.unit, op_start=t.op_start)
    c = CacheHierarchy(levels, n_units).run(t).total().data[0]
    assert c[1, ACCESSES] == c[0, MISSES] + c[0, WRITEBACKS]
    for lv in range(len(levels)):
        assert c[lv, WRITES_BELOW] == c[lv, WRITEBACKS]
        assert c[lv + 1, ACCESSES] == c[lv, FETCHES] + c[lv, WRITEBACKS]


@FAST
@given(design_and_trace())
def test_hits_do_not_change_resident_lines(dt):
    levels, n_units, t = dt
    h = CacheHierarchy(levels, n_units)
    line0 = levels[0].line_bytes
    for r in range(min(t.n_runs, 40)):
        a, n = int(t.addr[r]), int(t.nbytes[r])
        n = max(1, min(n, line0 - a % line0))  # stay inside one level-0 line
        before = resident(h, 0)
        c = h.run(Trace.single_op([a], [n], [t.is_write[r]], [t.unit[r]])).data[0]
        if c[0, HITS] == 1 and c[0, INVALIDATIONS] == 0:
            assert resident(h, 0) == before
        check_invariants(h)


@FAST
@given(design_and_trace(), st.data())
def test_second_read_of_a_line_hits(dt, data):
    levels, n_units, t = dt
    h = CacheHierarchy(levels, n_units)
    h.run(t)
    r = data.draw(st.integers(0, t.n_runs - 1))
    u = data.draw(st.integers(0, n_units - 1))
    one = Trace.single_op([t.addr[r]], [1], [0], [u])
    c = h.run(Trace.concat([one, one]))
    assert c.hits(0).tolist()[1] == 1 and c.accesses(0).tolist()[1] == 1


@FAST
@given(traces(n_units=2), st.integers(1, 24), st.integers(1, 24), st.sampled_from([16, 64]))
def test_fully_associative_lru_inclusion_property(t, a, b, line):
    small, big = sorted((a, b))

    def misses(lines):
        lvl = cache_level(name="L1", capacity_bytes=lines * line, line_bytes=line, ways=0)
        return CacheHierarchy([lvl], 2).run(t).total().misses(0)[0]

    assert misses(big) <= misses(small)


@FAST
@given(design_and_trace(), st.integers(0, 2**31))
def test_deterministic_for_a_seed(dt, seed):
    levels, n_units, t = dt
    h1, h2 = CacheHierarchy(levels, n_units, seed=seed), CacheHierarchy(levels, n_units, seed=seed)
    assert (h1.run(t).data == h2.run(t).data).all()
    assert (h1.slots == h2.slots).all()


@FAST
@given(design_and_trace())
def test_op_by_op_equals_one_call_and_flush_cleans(dt):
    levels, n_units, t = dt
    whole = CacheHierarchy(levels, n_units, seed=5)
    stepped = CacheHierarchy(levels, n_units, seed=5)
    a = whole.run(t).data
    parts = []
    for o in range(t.n_ops):
        s, e = t.op_start[o], t.op_start[o + 1]
        parts.append(stepped.run(Trace.single_op(t.addr[s:e], t.nbytes[s:e], t.is_write[s:e],
                                                 t.unit[s:e])).data)
    assert (np.concatenate(parts) == a).all()
    f = whole.flush().data[0]
    assert whole.dirty_lines() == [0] * len(levels)
    assert f[len(levels), BYTES_WRITTEN_BELOW] >= 0
    assert whole.flush().data.sum() == 0
    check_invariants(whole)


# slow: 14.8 s alone on the 2-core CI machine (--durations, 2026-12-02), over 20 s when it is shared.
@pytest.mark.slow
@FAST
@given(cache_hierarchies(policies=("lru",), inclusion=("non_inclusive",)), st.data())
def test_doubling_last_level_sets_never_reads_more_from_memory(design, data):
    """The example in docs/cache.md: LRU keeps its inclusion property per set."""
    levels, n_units = design
    t = data.draw(traces(n_units=n_units, writes=False))
    last = levels[-1]
    ways = last.ways or last.capacity_bytes // last.line_bytes
    bigger = cache_level(name=last.name, line_bytes=last.line_bytes, ways=ways,
                        capacity_bytes=2 * last.capacity_bytes, sharing=last.sharing)
    small = CacheHierarchy(levels, n_units).run(t).bytes_from_memory.sum()
    big = CacheHierarchy([*levels[:-1], bigger], n_units).run(t).bytes_from_memory.sum()
    assert big <= small
