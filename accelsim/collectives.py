"""Collective communication costs on a topology: alpha-beta models, pure functions.

Each function gives the time one collective takes alone on the links of the chips in its
group: a latency term (alpha: one message latency per algorithm step) plus a bandwidth term
(beta: bytes each chip must send over the bandwidth it can send them at). `nbytes` is always
the size of the whole buffer on one chip (the full vector being reduced or gathered).

Algorithms per topology (formulas and sources in docs/parallel.md):

- ring: the bandwidth-optimal ring (Patarasuk & Yuan 2009; NCCL's ring): reduce-scatter and
  all-gather take p-1 steps each moving n/p; all-reduce is the two in sequence.
- torus2d (r x c): the two-dimensional ring algorithm (reduce-scatter along rows, all-reduce
  along columns on the 1/c shard, all-gather along rows), with the buffer halved and the two
  halves run in opposite dimension order at once, so every link of the chip is busy.
- fully_connected: direct exchange, every peer over its own link (one step per phase).
- switch: every chip has one port (`links` x link bandwidth) into a non-blocking switch;
  Rabenseifner's reduce-scatter + all-gather by recursive halving/doubling (Thakur,
  Rabenseifner & Gropp 2005): same bandwidth term as the ring, ceil(log2 p) latencies per phase.
- two_level: `chips_per_node` chips on the fast links (a ring in the node), nodes on the
  network: reduce-scatter in the node, all-reduce of the 1/g shard among the nodes (every chip
  of a node on its own network port at once), all-gather in the node (NCCL's tree/hierarchical
  scheme and Horovod's hierarchical all-reduce).

Nothing here knows graphs or time lines: `accelsim.partition` says which collectives a plan
needs and `accelsim.parallel` schedules them.
"""

from __future__ import annotations

import math

import attrs

from accelsim.hardware import HardwareSpec, InterconnectSpec
from accelsim.schema import Violation

COLLECTIVES = ("all_reduce", "reduce_scatter", "all_gather", "send")


@attrs.frozen
class Links:
    """What one chip can send over: bandwidth (one direction, efficiency applied) and latency."""

    bandwidth_bytes_per_s: float
    latency_s: float


def _links(hw: HardwareSpec) -> Links:
    ic = hw.interconnect
    return Links(ic.bandwidth_bytes_per_s * hw.calibration.link_efficiency, ic.latency_s)


def _network(hw: HardwareSpec) -> Links:
    ic = hw.interconnect
    bw = ic.network_bandwidth_bytes_per_s or ic.bandwidth_bytes_per_s
    return Links(bw * hw.calibration.link_efficiency, ic.network_latency_s)


# --- the ring (also the building block of the others) ----------------------------------------
def ring_time_s(kind: str, nbytes: float, p: int, links: Links) -> float:
    """Ring collective of `nbytes` over `p` chips: (p-1) steps of n/p per phase."""
    if p <= 1 or nbytes <= 0:
        return 0.0
    if kind == "send":
        return nbytes / links.bandwidth_bytes_per_s + links.latency_s
    phase = (p - 1) / p * nbytes / links.bandwidth_bytes_per_s + (p - 1) * links.latency_s
    return 2 * phase if kind == "all_reduce" else phase


def _torus_shape(ic: InterconnectSpec, chips: int) -> tuple[int, int]:
    if ic.torus_shape is not None:
        return int(ic.torus_shape[0]), int(ic.torus_shape[1])
    rows = int(math.isqrt(chips))
    while chips % rows:
        rows -= 1
    return rows, chips // rows


def torus_time_s(kind: str, nbytes: float, rows: int, cols: int, links: Links) -> float:
    """2-D ring algorithm on a rows x cols torus, both dimension orders at once on half each.

    Each half-buffer of n/2 runs reduce-scatter over one dimension (a), all-reduce of its 1/a
    shard over the other (b), all-gather over a, on links/2 of the chip's bandwidth; the two
    halves use the two dimensions in opposite order at the same time.
    """
    p = rows * cols
    if p <= 1 or nbytes <= 0:
        return 0.0
    half = Links(links.bandwidth_bytes_per_s / 2, links.latency_s)
    if kind == "send":
        return nbytes / links.bandwidth_bytes_per_s + links.latency_s

    def one_order(a: int, b: int) -> float:
        n = nbytes / 2
        if kind == "all_reduce":
            return (ring_time_s("reduce_scatter", n, a, half)
                    + ring_time_s("all_reduce", n / a, b, half)
                    + ring_time_s("all_gather", n, a, half))
        # reduce-scatter / all-gather: along a on the whole half, then along b on its 1/a shard
        return ring_time_s(kind, n, a, half) + ring_time_s(kind, n / a, b, half)

    return max(one_order(rows, cols), one_order(cols, rows))


def fully_connected_time_s(kind: str, nbytes: float, p: int, links: Links, n_links: int) -> float:
    """Direct exchange: each chip sends n/p to each of p-1 peers, min(links, p-1) at a time."""
    if p <= 1 or nbytes <= 0:
        return 0.0
    if kind == "send":
        return nbytes / links.bandwidth_bytes_per_s * max(1, n_links) + links.latency_s
    per_link = links.bandwidth_bytes_per_s / max(1, n_links)
    parallel = max(1, min(n_links, p - 1))
    rounds = math.ceil((p - 1) / parallel)
    phase = (p - 1) / p * nbytes / (parallel * per_link) + rounds * links.latency_s
    return 2 * phase if kind == "all_reduce" else phase


def switch_time_s(kind: str, nbytes: float, p: int, links: Links) -> float:
    """Rabenseifner (recursive halving then doubling) through a non-blocking switch."""
    if p <= 1 or nbytes <= 0:
        return 0.0
    if kind == "send":
        return nbytes / links.bandwidth_bytes_per_s + links.latency_s
    phase = ((p - 1) / p * nbytes / links.bandwidth_bytes_per_s
             + math.ceil(math.log2(p)) * links.latency_s)
    return 2 * phase if kind == "all_reduce" else phase


def two_level_time_s(kind: str, nbytes: float, local: int, nodes: int, node_links: Links,
                     network: Links) -> float:
    """Hierarchical: `local` chips per node on fast links, `nodes` nodes on the network."""
    if local * nodes <= 1 or nbytes <= 0:
        return 0.0
    if kind == "send":
        return ring_time_s("send", nbytes, 2, network if nodes > 1 else node_links)
    if kind == "all_reduce":
        return (ring_time_s("reduce_scatter", nbytes, local, node_links)
                + ring_time_s("all_reduce", nbytes / local, nodes, network)
                + ring_time_s("all_gather", nbytes, local, node_links))
    return (ring_time_s(kind, nbytes, local, node_links)
            + ring_time_s(kind, nbytes / local, nodes, network))


# --- one entry point -------------------------------------------------------------------------
def collective_time_s(hw: HardwareSpec, kind: str, nbytes: float, group: int, *,
                      stride: int = 1, chips: int | None = None) -> float:
    """Time of one collective of `nbytes` among `group` chips on `hw`'s topology.

    The group's members are `stride` apart in the chip numbering of a machine of `chips`
    chips (default `group * stride`); chips are numbered node by node and, on a torus, row
    by row. A group whose members share a node (two_level) or a torus row stays on those
    links.
    """
    if kind not in COLLECTIVES:
        raise ValueError(f"collective: expected one of {list(COLLECTIVES)}, got {kind!r}")
    if group <= 1 or nbytes <= 0:
        return 0.0
    ic = hw.interconnect
    links = _links(hw)
    total = chips if chips is not None else group * stride
    if ic.topology == "ring":
        return ring_time_s(kind, nbytes, group, links)
    if ic.topology == "switch":
        return switch_time_s(kind, nbytes, group, links)
    if ic.topology == "fully_connected":
        return fully_connected_time_s(kind, nbytes, group, links, ic.links)
    if ic.topology == "torus2d":
        rows, cols = _torus_shape(ic, total)
        span = group * stride
        if span <= cols:  # within one row
            return ring_time_s(kind, nbytes, group, Links(links.bandwidth_bytes_per_s / 2,
                                                          links.latency_s))
        if stride >= cols and stride % cols == 0:  # within one column
            return ring_time_s(kind, nbytes, group, Links(links.bandwidth_bytes_per_s / 2,
                                                          links.latency_s))
        in_row = max(1, cols // stride)
        return torus_time_s(kind, nbytes, group // in_row, in_row, links)
    # two_level
    per_node = ic.chips_per_node or 1
    local = max(1, min(group, per_node // stride)) if stride < per_node else 1
    nodes = max(1, group // local)
    return two_level_time_s(kind, nbytes, local, nodes, links, _network(hw))


def alpha_beta_s(hw: HardwareSpec, kind: str, nbytes: float, group: int, *, stride: int = 1,
                 chips: int | None = None) -> tuple[float, float]:
    """(latency term, bandwidth term) of `collective_time_s`: the replay waits the first and
    moves the second on the links (every formula here is alpha + beta x bytes)."""
    total = collective_time_s(hw, kind, nbytes, group, stride=stride, chips=chips)
    if total <= 0:
        return 0.0, 0.0
    alpha = collective_time_s(hw, kind, _TINY_BYTES, group, stride=stride, chips=chips)
    return alpha, max(0.0, total - alpha)


#: A buffer this small has no bandwidth term worth a float: the latency alone.
_TINY_BYTES = 1e-200


def hbm_bytes(kind: str, nbytes: float, group: int) -> float:
    """Bytes one chip reads and writes in its own HBM for a collective of `nbytes` among
    `group` chips: each byte it sends is read, each byte it receives is written, and a reduction
    also reads the local part it adds to. Ring-style algorithms send and receive (p-1)/p of
    the buffer per phase, so all-reduce 2 x 2(p-1)/p + (p-1)/p = 5(p-1)/p x n, reduce-scatter
    3(p-1)/p x n, all-gather 2(p-1)/p x n; a send reads n (its receiver writes n)."""
    if nbytes <= 0:
        return 0.0
    if kind == "send":
        return nbytes
    if group <= 1:
        return 0.0
    share = (group - 1) / group * nbytes
    return {"all_reduce": 5.0, "reduce_scatter": 3.0, "all_gather": 2.0}[kind] * share


def topology_problem(hw: HardwareSpec, chips: int) -> str | None:
    """Why `hw`'s interconnect cannot hold `chips` chips (None: it can)."""
    violation = topology_violation(hw, chips)
    return None if violation is None else str(violation)


def topology_violation(hw: HardwareSpec, chips: int) -> Violation | None:
    """The interconnect key that cannot hold `chips` chips, so `check --chips N` locates it."""
    ic = hw.interconnect
    if chips <= 1:
        return None
    if ic.topology == "torus2d" and ic.torus_shape is not None:
        rows, cols = ic.torus_shape
        if rows * cols != chips:
            return Violation("interconnect.torus_shape", f"two dimensions whose product is the "
                             f"{chips} chips", f"{list(ic.torus_shape)} (holds {rows * cols} "
                             f"chips, not {chips})")
    if ic.topology == "fully_connected" and ic.links < chips - 1:
        return Violation("interconnect.links", f"at least {chips - 1} links per chip to join "
                         f"{chips} chips fully connected", f"{ic.links} (joins at most "
                         f"{ic.links + 1} chips, not {chips})")
    if ic.topology == "two_level":
        per_node = ic.chips_per_node or 1
        if chips > per_node and chips % per_node:
            return Violation("interconnect.chips_per_node", f"a divisor of the {chips} chips "
                             "(they split into whole nodes)", str(per_node))
    if ic.links < 1:
        return Violation("interconnect.links", f"at least 1 link for {chips} chips to "
                         "communicate", "0")
    return None
