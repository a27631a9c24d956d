"""The stack-free read kernel (LRU, non-inclusive, clean state) equals the general kernel."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.cache import CacheHierarchy, Trace
from accelsim.kernels import cache as _k
from accelsim.testing import cache_hierarchies, traces

FAST = settings(max_examples=150, deadline=None)


@st.composite
def lru_design_and_reads(draw):
    """An LRU, non-inclusive hierarchy (any write policy, sharing, geometry) and a load-only
    trace, plus a second load-only trace to run on the state the first one left."""
    levels, n_units = draw(cache_hierarchies(policies=("lru",), inclusion=("non_inclusive",)))
    first = draw(traces(n_units=n_units, writes=False))
    second = draw(traces(n_units=n_units, writes=False))
    return levels, n_units, first, second


def general(h: CacheHierarchy, t: Trace) -> np.ndarray:
    """The general kernel on ``h``'s state, bypassing the wrapper's choice."""
    return _k.simulate(t.addr, t.nbytes, t.is_write, t.unit, t.op_start, h.cfg, h.recip, h.slots,
                       h.meta, h.rng, h.n_units, h.compat)


# slow: 6.1 s alone on the 2-core CI machine (--durations, 2026-12-02), over 20 s when it is shared.
@pytest.mark.slow
@FAST
@given(lru_design_and_reads())
def test_fast_reads_equal_general_kernel(dt):
    levels, n_units, first, second = dt
    fast = CacheHierarchy(levels, n_units)
    ref = CacheHierarchy(levels, n_units)
    compat = CacheHierarchy(levels, n_units, compat_pycachesim=True)  # same for loads
    assert fast._lru_reads and fast._clean and compat._lru_reads
    for t in (first, second):
        got = fast.run(t).data
        assert (got == general(ref, t)).all()
        assert (got == general(compat, t)).all()
        assert (fast.slots == ref.slots).all()  # same resident lines in the same LRU order
        assert (fast.slots == compat.slots).all()
        for lv in range(len(levels)):
            n_inst = n_units if levels[lv].sharing == "private" else 1
            for i in range(n_inst):
                assert fast.resident_lines(lv, i) == ref.resident_lines(lv, i)


@FAST
@given(cache_hierarchies(), st.booleans(), st.data())
def test_wrapper_choice_never_changes_results(design, compat, data):
    """Whatever the design, store semantics, trace mix and state (dirty lines left by
    writes, flushed or not), ``run`` gives what the general kernel gives."""
    levels, n_units = design
    h = CacheHierarchy(levels, n_units, seed=3, compat_pycachesim=compat)
    ref = CacheHierarchy(levels, n_units, seed=3, compat_pycachesim=compat)
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["reads", "writes", "flush"]))
        if action == "flush":
            assert (h.flush().data == _k.flush(ref.cfg, ref.recip, ref.slots, ref.meta, ref.rng,
                                               ref.n_units, ref.compat)).all()
        else:
            t = data.draw(traces(n_units=n_units, writes=action == "writes"))
            assert (h.run(t).data == general(ref, t)).all()
        assert (h.slots == ref.slots).all()


def test_fast_path_taken_only_when_exact():
    from accelsim.testing import cache_level

    lru = [cache_level(name="L1", capacity_bytes=1024, line_bytes=64, ways=4),
           cache_level(name="L2", capacity_bytes=4096, line_bytes=64, ways=8)]
    assert CacheHierarchy(lru, 1)._lru_reads
    incl = [lru[0], cache_level(name="L2", capacity_bytes=4096, line_bytes=64, ways=8,
                               inclusion="inclusive")]
    assert not CacheHierarchy(incl, 1)._lru_reads
    fifo = [cache_level(name="L1", capacity_bytes=1024, line_bytes=64, ways=4,
                       replacement="fifo")]
    assert not CacheHierarchy(fifo, 1)._lru_reads
    h = CacheHierarchy(lru, 1)
    h.run(Trace.single_op([0], [8], np.ones(1, np.uint8)))
    assert not h._clean  # a dirty line may exist: reads now take the general kernel
    h.flush()
    assert h._clean


@st.composite
def wb_design_and_traces(draw):
    """An LRU, write-back, write-allocate, non-inclusive hierarchy and two traces with
    writes (the second runs on the dirty state the first left)."""
    levels, n_units = draw(cache_hierarchies(policies=("lru",), write_policies=("write_back",),
                                             inclusion=("non_inclusive",), write_allocate=True))
    return levels, n_units, draw(traces(n_units=n_units)), draw(traces(n_units=n_units))


@FAST
@given(wb_design_and_traces())
def test_write_back_kernel_equals_general_kernel(dt):
    levels, n_units, first, second = dt
    fast = CacheHierarchy(levels, n_units)
    ref = CacheHierarchy(levels, n_units)
    assert fast._lru_wb
    for t in (first, second):
        got = _k.simulate_lru_wb(t.addr, t.nbytes, t.is_write, t.unit, t.op_start, fast.cfg,
                                 fast.recip, fast.slots)
        assert (got == general(ref, t)).all()
        assert (fast.slots == ref.slots).all()  # same lines, order and dirty bits
