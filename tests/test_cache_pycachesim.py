"""Cross-check against pycachesim (the C reference) on random designs and traces.

Compared where both implement the same thing: LRU and FIFO, write-back + write-allocate,
non-inclusive, one compute unit, line sizes growing downwards. pycachesim's MRU never fills a
set beyond one line and its RR never picks the last way, so neither is compared. Load-only
traces are compared in our native semantics; traces with stores in ``compat_pycachesim`` mode
(a store hit only marks the line dirty; every store miss fetches). pycachesim's EVICT_count
counts dirty evictions only, which is our WRITEBACKS.
"""

import numpy as np
from cachesim import Cache, CacheSimulator, MainMemory
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.cache import HITS, MISSES, WRITEBACKS, CacheHierarchy, Trace
from accelsim.kernels.trace import gemm_runs
from accelsim.testing import cache_hierarchies, cache_level, traces

COMPARABLE = dict(max_units=1, policies=("lru", "fifo"), write_policies=("write_back",),
                  inclusion=("non_inclusive",), write_allocate=True)


def pycachesim_for(levels):
    mem = MainMemory()
    below = None
    built = []
    for lvl in reversed(levels):
        lines = lvl.capacity_bytes // lvl.line_bytes
        ways = lvl.ways or lines
        c = Cache(lvl.name, lines // ways, ways, lvl.line_bytes, lvl.replacement.upper(),
                  write_back=True, write_allocate=True, load_from=below, store_to=below)
        if below is None:
            mem.load_to(c)
            mem.store_from(c)
        below = c
        built.append(c)
    return CacheSimulator(below, mem), built[::-1]


def replay_pycachesim(cs, t: Trace):
    """One call per run; a list keeps addresses >= 4 GiB intact."""
    for a, n, w in zip(t.addr.tolist(), t.nbytes.tolist(), t.is_write.tolist(), strict=True):
        if n <= 0:
            continue
        if w:
            cs.store([a], length=n)
        else:
            cs.load([a], length=n)


def compare(levels, t, compat):
    cs, caches = pycachesim_for(levels)
    replay_pycachesim(cs, t)
    ours = CacheHierarchy(levels, 1, compat_pycachesim=compat).run(t).total().data[0]
    for i, c in enumerate(caches):
        s = c.stats()
        assert (ours[i, HITS], ours[i, MISSES]) == (s["HIT_count"], s["MISS_count"]), c.name
        assert ours[i, WRITEBACKS] == s["EVICT_count"], c.name


@st.composite
def shifted(draw, t: Trace) -> Trace:
    """Optionally move the trace above 4 GiB (pycachesim's single-address trap)."""
    off = draw(st.sampled_from([0, 0, 5 << 32]))
    return Trace(addr=t.addr + off, nbytes=t.nbytes, is_write=t.is_write, unit=t.unit,
                 op_start=t.op_start)


@settings(max_examples=80, deadline=None)
@given(cache_hierarchies(**COMPARABLE), st.data())
def test_load_only_matches_pycachesim(design, data):
    levels, _ = design
    t = data.draw(traces(n_units=1, writes=False))
    compare(levels, data.draw(shifted(t)), compat=False)


@settings(max_examples=80, deadline=None)
@given(cache_hierarchies(**COMPARABLE), st.data())
def test_stores_match_pycachesim_in_compat_mode(design, data):
    levels, _ = design
    t = data.draw(traces(n_units=1, writes=True))
    compare(levels, data.draw(shifted(t)), compat=True)


def test_gemm_two_level_matches_pycachesim():
    """A realistic tiled GEMM on a 2-level LRU hierarchy, load-only and with stores."""
    addr, nbytes, is_write, unit = gemm_runs(96, 80, 64, 32, 16, 16, 4, 0, 1 << 20, 1 << 21,
                                             False, True, 0, 1, False)
    levels = [cache_level(name="L1", capacity_bytes=4096, line_bytes=64, ways=4),
              cache_level(name="L2", capacity_bytes=32768, line_bytes=128, ways=8)]
    loads = Trace.single_op(addr, nbytes, np.zeros_like(is_write), unit * 0)
    compare(levels, loads, compat=False)
    compare(levels, Trace.single_op(addr, nbytes, is_write, unit * 0), compat=True)
