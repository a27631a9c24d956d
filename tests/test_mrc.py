"""Miss-ratio curves from stack distances, checked by hand and against the cache kernel."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.cache import CacheHierarchy, Trace
from accelsim.mrc import capacity_for_hit_rate, miss_ratio_curve, stack_distances
from accelsim.testing import cache_level, traces


def reads(*addrs):
    return Trace.single_op(np.array(addrs, np.int64), 4)


def test_stack_distances_by_hand():
    # A B C A B B: A cold, B cold, C cold, A sees {B, C} -> 2, B sees {C, A} -> 2, B -> 0
    hist, n = stack_distances(reads(0, 32, 64, 0, 32, 32), 32)
    assert n == 6
    assert hist.tolist() == [1, 0, 2, 3]  # last bin: cold misses


def test_curve_and_capacity_lookup():
    curve = miss_ratio_curve(reads(0, 32, 64, 0, 32, 32), 32)
    cap, rate = curve
    assert cap.tolist() == [32, 64, 96]
    np.testing.assert_allclose(rate, [1 / 6, 1 / 6, 3 / 6])
    assert capacity_for_hit_rate(curve, 0.5) == 96
    assert capacity_for_hit_rate(curve, 0.1) == 32
    assert capacity_for_hit_rate(curve, 0.6) is None


def test_granule_size_merges_lines():
    # with 64 B granules, 0 and 32 are the same line: A A' C A -> distances -, 0, -, 1
    hist, n = stack_distances(reads(0, 32, 64, 0), 64)
    assert hist.tolist() == [1, 1, 2]


def test_empty_trace():
    cap, rate = miss_ratio_curve(Trace.concat([]), 32)
    assert cap.size == 0 and rate.size == 0


@settings(max_examples=60, deadline=None)
@given(t=traces(n_units=2), lines=st.integers(1, 40), line=st.sampled_from([16, 32, 64]))
def test_fully_associative_lru_hits_match_stack_distances(t, lines, line):
    """A shared fully associative LRU cache hits exactly the accesses with distance < lines."""
    level = cache_level(name="L1", capacity_bytes=lines * line, line_bytes=line, ways=0)
    hits = CacheHierarchy([level], 2).run(t).total().hits(0)[0]
    hist, n = stack_distances(t, line)
    assert hits == hist[:-1][:lines].sum()
    cap, rate = miss_ratio_curve(t, line)
    if lines <= cap.size:
        assert hits == round(rate[lines - 1] * n)
