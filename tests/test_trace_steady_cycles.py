"""Steady state in a cycle of instances: a region whose timesteps alternate between two
buffer sets (a caching allocator's ping-pong) settles, and later instances copy their phase."""

import numpy as np
import pytest

from accelsim.cache import ACCESSES, HITS, MISSES, N_COUNTERS
from accelsim.trace_steady import PeriodicRegion, RegionReuse, settled_cycle


def instances(hits_per_instance, period=3, levels=2):
    """Counters of a region whose instance i has `hits_per_instance[i]` first-level hits per op
    (100 accesses each)."""
    out = np.zeros((period * len(hits_per_instance), levels + 1, N_COUNTERS), np.int64)
    for i, h in enumerate(hits_per_instance):
        block = out[i * period:(i + 1) * period]
        block[:, 0, ACCESSES] = 100
        block[:, 0, HITS] = h
        block[:, 0, MISSES] = 100 - h
        block[:, 1, ACCESSES] = 100 - h
        block[:, 1, MISSES] = 100 - h
    return out


def test_settles_at_once_when_instances_repeat():
    c = instances([10, 50, 50])
    assert settled_cycle(c, 0, 3, 1) == 0
    assert settled_cycle(c, 0, 3, 2) == 1


def test_alternating_instances_settle_in_a_cycle_of_two():
    c = instances([10, 50, 80, 50, 80, 50])
    assert [settled_cycle(c, 0, 3, j) for j in range(1, 6)] == [0, 0, 0, 2, 2]
    assert settled_cycle(c, 0, 3, 4, max_cycle=1) == 0  # the old rule never settles


def test_one_coincidence_is_not_a_cycle():
    c = instances([10, 50, 80, 50, 90])  # 2 == 0? no; 3 agrees with 1, but 2 not with 0
    assert settled_cycle(c, 0, 3, 3) == 0
    assert settled_cycle(c, 0, 3, 4) == 0


def test_drifting_instances_never_settle():
    c = instances([10, 20, 30, 40, 50, 60])
    assert all(settled_cycle(c, 0, 3, j) == 0 for j in range(1, 6))


@pytest.mark.parametrize("cycle, settled_at, expect", [
    (1, 4, {5: 4, 6: 4, 9: 4}),
    (2, 5, {6: 4, 7: 5, 8: 4, 9: 5}),
])
def test_reused_instances_copy_the_instance_of_their_phase(cycle, settled_at, expect):
    r = RegionReuse(region=PeriodicRegion(0, 3, 10), settled_at=settled_at, reused_instances=0,
                    cycle=cycle)
    assert {j: r.source(j) for j in expect} == expect
    for j, src in expect.items():
        assert (j - src) % cycle == 0


def test_a_small_op_may_wander_within_a_share_of_the_block():
    """At small subbatches a 393-access streaming op's hits wander by ~8 % between timesteps
    while the block repeats: the op may differ by STEADY_OP_SHARE of the block's accesses."""
    from accelsim.trace_steady import STEADY_OP_SHARE, instances_agree

    def block(small_hits, big_hits):
        c = np.zeros((2, 2, N_COUNTERS), np.int64)
        c[:, 0, ACCESSES] = (393, 1_000_000)
        c[:, 0, HITS] = (small_hits, big_hits)
        c[:, 0, MISSES] = c[:, 0, ACCESSES] - c[:, 0, HITS]
        return c

    assert 30 < STEADY_OP_SHARE * 1_000_393
    assert instances_agree(block(158, 900_000), block(137, 900_000))
    assert not instances_agree(block(158, 900_000), block(158, 890_000))  # the big op moved
    assert not instances_agree(block(300, 900_000), block(100, 900_000))  # beyond the share
