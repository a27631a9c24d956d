"""Collective costs against hand derivations for small N, one topology at a time.

Every case: 1 GB/s per link unless said, efficiency 1, latency alpha = 1 us (network 10 us),
a 4 GB buffer. Derivations in the comments; formulas in docs/parallel.md.
"""

from __future__ import annotations

import attrs
import pytest

from accelsim.collectives import alpha_beta_s, collective_time_s, hbm_bytes, topology_problem
from accelsim.hardware import (
    CacheLevelSpec,
    Calibration,
    ComputeSpec,
    HardwareSpec,
    InterconnectSpec,
    MatrixPipe,
    MemorySpec,
)

GB = 1e9
ALPHA = 1e-6
NET_ALPHA = 1e-5
N_BYTES = 4 * GB


def _hw(**ic) -> HardwareSpec:
    links = dict(links=1, link_bandwidth_bytes_per_s=GB, latency_s=ALPHA, topology="ring")
    links.update(ic)
    return HardwareSpec(
        name="t", compute=ComputeSpec(units=1, clock_hz=1e9,
                                      matrix={"fp32": MatrixPipe(peak_flop_rate=1e12)},
                                      vector_flop_rate=1e12, local_memory_bytes=65536),
        caches=(CacheLevelSpec(name="L2", capacity_bytes=1 << 20, bandwidth_bytes_per_s=1e12),),
        memory=MemorySpec(capacity_bytes=32 * 10**9, bandwidth_bytes_per_s=1e12),
        interconnect=InterconnectSpec(**links), calibration=Calibration.ideal())


def test_ring_by_hand():
    hw = _hw()
    # all-reduce: 2 (p-1)/p n / B + 2 (p-1) alpha = 2 * 3/4 * 4 s + 6 us
    assert collective_time_s(hw, "all_reduce", N_BYTES, 4) == pytest.approx(6.0 + 6 * ALPHA)
    # reduce-scatter and all-gather: (p-1)/p n / B + (p-1) alpha
    assert collective_time_s(hw, "reduce_scatter", N_BYTES, 4) == pytest.approx(3.0 + 3 * ALPHA)
    assert collective_time_s(hw, "all_gather", N_BYTES, 4) == pytest.approx(3.0 + 3 * ALPHA)
    # point to point: n / B + alpha
    assert collective_time_s(hw, "send", N_BYTES, 2) == pytest.approx(4.0 + ALPHA)
    assert collective_time_s(hw, "all_reduce", N_BYTES, 1) == 0.0


def test_ring_allreduce_is_the_data_parallel_formula_split_into_alpha_and_beta():
    """The one data-parallel model (the replay's own ring formula is retired): 2 (N-1) ring
    steps of one latency each, 2 (N-1)/N x bytes at links x bandwidth x efficiency."""
    hw = attrs.evolve(_hw(links=2, link_bandwidth_bytes_per_s=GB),
                      calibration=Calibration.ideal(link_efficiency=0.5))
    assert collective_time_s(hw, "all_reduce", 1e6, 4) == pytest.approx(1.5e6 / 1e9 + 6 * ALPHA)
    latency, bandwidth = alpha_beta_s(hw, "all_reduce", 1e6, 4)
    assert latency == pytest.approx(6 * ALPHA) and bandwidth == pytest.approx(1.5e-3)
    assert alpha_beta_s(hw, "all_reduce", 1e6, 1) == (0.0, 0.0)
    # the 2-D torus too: alpha + beta x bytes, split exactly
    torus = _hw(topology="torus2d", links=4, torus_shape=(2, 4))
    a, b = alpha_beta_s(torus, "all_reduce", N_BYTES, 8)
    assert a + b == pytest.approx(collective_time_s(torus, "all_reduce", N_BYTES, 8))
    one, two = (collective_time_s(torus, "all_reduce", x, 8) for x in (1.0, 2.0))
    assert a == pytest.approx(one - (two - one))


def test_hbm_bytes_of_a_collective_by_hand():
    # 4 chips, n = 4 GB: each chip sends and receives 3 GB per phase; reductions read 3 GB
    assert hbm_bytes("all_reduce", N_BYTES, 4) == pytest.approx(5 * 3 * GB)
    assert hbm_bytes("reduce_scatter", N_BYTES, 4) == pytest.approx(3 * 3 * GB)
    assert hbm_bytes("all_gather", N_BYTES, 4) == pytest.approx(2 * 3 * GB)
    assert hbm_bytes("send", N_BYTES, 2) == N_BYTES
    assert hbm_bytes("all_reduce", N_BYTES, 1) == 0.0


def test_switch_by_hand():
    hw = _hw(topology="switch")
    # Rabenseifner: 2 ((p-1)/p n / B + ceil(log2 p) alpha) = 2 (3 s + 2 alpha)
    assert collective_time_s(hw, "all_reduce", N_BYTES, 4) == pytest.approx(6.0 + 4 * ALPHA)
    # p = 3: ceil(log2 3) = 2 latencies per phase
    assert collective_time_s(hw, "all_reduce", 3 * GB, 3) == pytest.approx(4.0 + 4 * ALPHA)


def test_fully_connected_by_hand():
    hw = _hw(topology="fully_connected", links=3)
    # each chip sends n/p = 1 GB to each of 3 peers at once, one per link: 1 s + alpha per phase
    assert collective_time_s(hw, "all_reduce", N_BYTES, 4) == pytest.approx(2.0 + 2 * ALPHA)
    assert collective_time_s(hw, "all_gather", N_BYTES, 4) == pytest.approx(1.0 + ALPHA)
    # a send goes over one link: 4 s + alpha
    assert collective_time_s(hw, "send", N_BYTES, 2) == pytest.approx(4.0 + ALPHA)


def test_torus_by_hand():
    hw = _hw(topology="torus2d", links=4, torus_shape=(2, 2))
    # halves of 2 GB in both dimension orders at once, each on 2 of the 4 links (2 GB/s):
    # reduce-scatter over 2: 1/2 * 2 GB / 2 GB/s = 0.5 s + alpha; all-reduce of the 1 GB
    # shard over 2: 2 * 1/2 * 1 / 2 = 0.5 s + 2 alpha; all-gather: 0.5 s + alpha
    assert collective_time_s(hw, "all_reduce", N_BYTES, 4) == pytest.approx(1.5 + 4 * ALPHA)
    # the same links as a ring: same bandwidth term, more latencies
    ring = attrs.evolve(hw, interconnect=attrs.evolve(hw.interconnect, topology="ring",
                                                      torus_shape=None))
    assert collective_time_s(ring, "all_reduce", N_BYTES, 4) == pytest.approx(1.5 + 6 * ALPHA)


def test_two_level_by_hand():
    hw = _hw(topology="two_level", link_bandwidth_bytes_per_s=10 * GB, chips_per_node=2,
             network_bandwidth_bytes_per_s=GB, network_latency_s=NET_ALPHA)
    # 2 nodes x 2 chips: reduce-scatter in the node 1/2 * 4 / 10 = 0.2 s + alpha; all-reduce
    # of the 2 GB shard over 2 nodes 2 * 1/2 * 2 / 1 = 2 s + 2 net alpha; all-gather 0.2 s + alpha
    assert collective_time_s(hw, "all_reduce", N_BYTES, 4) == pytest.approx(
        2.4 + 2 * ALPHA + 2 * NET_ALPHA)
    # a group inside one node stays on the fast links: ring of 2 at 10 GB/s
    assert collective_time_s(hw, "all_reduce", N_BYTES, 2) == pytest.approx(0.4 + 2 * ALPHA)
    # members 2 apart are in different nodes: the network only
    assert collective_time_s(hw, "all_reduce", N_BYTES, 2, stride=2) == pytest.approx(
        4.0 + 2 * NET_ALPHA)


def test_topology_has_a_consequence():
    times = {topo: collective_time_s(_hw(topology=topo, links=7), "all_reduce", N_BYTES, 8)
             for topo in ("ring", "switch", "fully_connected", "torus2d")}
    assert len(set(times.values())) == 4, times


def test_topologies_that_cannot_hold_the_chips():
    assert "holds 6 chips, not 8" in topology_problem(
        _hw(topology="torus2d", torus_shape=(2, 3)), 8)
    assert topology_problem(_hw(topology="torus2d", torus_shape=(2, 4)), 8) is None
    assert "at most 4 chips" in topology_problem(_hw(topology="fully_connected", links=3), 8)
    assert "whole nodes" in topology_problem(
        _hw(topology="two_level", chips_per_node=4, network_bandwidth_bytes_per_s=GB), 6)
