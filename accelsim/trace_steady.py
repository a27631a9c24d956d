"""Steady-state detection: periodic regions of a step and when their cache counters settle.

An unrolled recurrent step repeats the same block of ops (one timestep) many times. Coalesced
tracing (`accelsim.trace`) simulates a region's instances until two consecutive ones give the
same counters (`instances_agree`), then reuses those counters for the rest (docs/replay.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from accelsim.cache import ACCESSES, HITS, MISSES, WRITEBACKS
from accelsim.graph import OpGraph

#: A periodic region is simulated until two consecutive instances agree (see `instances_agree`).
STEADY_RTOL = 2e-3
STEADY_ATOL = 2
STEADY_BLOCK_RTOL = 1e-2
#: ... and an op's first-level counters may also differ by this share of the whole block's
#: first-level accesses: a small streaming op's hits wander by a few percent from one
#: timestep to the next at small subbatches (LRU interplay with the GEMMs around it) while
#: the block, and so the step, repeats to well within `STEADY_RTOL`.
STEADY_OP_SHARE = 1e-4
#: Simulate the last instance of a settled region again (its tensors then sit in the cache
#: state for the ops after the region) instead of reusing counters for it too.
STEADY_REFRESH_LAST = False
#: Instances of a region simulated in the first kernel call (fewer calls, each has a fixed cost;
#: the first repeat can be found at the second instance at the earliest, so 2 costs nothing).
FIRST_INSTANCES = 2
#: Fewest repetitions of an op block that make a periodic region worth detecting.
MIN_REPEATS = 4
#: Longest cycle of instances the steady state may be: a caching allocator hands a timestep
#: the buffers the timestep before last freed, so consecutive timesteps can alternate between
#: two address sets (the char LM's backward pass does: its instances repeat every second one).
#: A cycle of q is taken when instance j agrees with j - q and j - 1 with j - 1 - q.
STEADY_MAX_CYCLE = 2


@attrs.frozen
class PeriodicRegion:
    """`repeats` consecutive instances of a block of `period` ops starting at op `start`."""

    start: int
    period: int
    repeats: int

    @property
    def stop(self) -> int:
        """One past the region's last op."""
        return self.start + self.period * self.repeats


@attrs.frozen
class RegionReuse:
    """How the trace handled a region: settled at instance `settled_at` (None: never, every
    instance simulated) in a cycle of `cycle` instances; a later instance reuses the counters
    of the simulated instance of its phase (`source`)."""

    region: PeriodicRegion
    settled_at: int | None
    reused_instances: int
    cycle: int = 1

    def source(self, instance: int) -> int:
        """The simulated instance whose counters `instance` (> `settled_at`) reuses."""
        assert self.settled_at is not None and instance > self.settled_at
        return self.settled_at - self.cycle + 1 + (instance - self.settled_at - 1) % self.cycle


_DIGITS = re.compile(r"\d+")


def op_keys(graph: OpGraph) -> list[tuple]:
    """Key per op equal for the same computation at another timestep or layer index."""
    return [(_DIGITS.sub("#", op.name), op.signature) for op in graph.ops]


def periodic_regions(keys: Sequence[Any], min_repeats: int = MIN_REPEATS,
                     candidates: int = 8) -> list[PeriodicRegion]:
    """Maximal runs of a repeated block of op keys, left to right.

    At each position, tries the next few occurrences of its key as the period and keeps the
    one covering the most ops (so a timestep wins over a repeated op inside it).
    """
    n = len(keys)
    nxt: list[list[int]] = [[] for _ in range(n)]
    seen: dict[Any, list[int]] = {}
    for i in range(n - 1, -1, -1):
        later = seen.setdefault(keys[i], [])
        nxt[i] = later[-candidates:][::-1]
        later.append(i)
    regions = []
    i = 0
    while i < n:
        best = (0, 0, 0)
        for j in nxt[i]:
            p = j - i
            block = keys[i:j]
            reps = 1
            while i + (reps + 1) * p <= n and keys[i + reps * p:i + (reps + 1) * p] == block:
                reps += 1
            if reps >= min_repeats and reps * p > best[1] * best[2]:
                best = (i, p, reps)
        if best[2]:
            regions.append(PeriodicRegion(*best))
            i += best[1] * best[2]
        else:
            i += 1
    return regions


def settled_cycle(counters: np.ndarray, start: int, period: int, j: int,
                  max_cycle: int = STEADY_MAX_CYCLE) -> int:
    """The shortest cycle q <= `max_cycle` in which instance `j` of a region repeats (0: none).

    q = 1: instance j agrees with j - 1 (`instances_agree`); q > 1 also needs j - 1 to agree
    with j - 1 - q, so one coincidence does not end the simulation of a region.
    """

    def inst(i: int) -> np.ndarray:
        return counters[start + i * period:start + (i + 1) * period]

    for q in range(1, max_cycle + 1):
        if j - q < 0 or (q > 1 and j - 1 - q < 0):
            break
        if instances_agree(inst(j - q), inst(j)) and (
                q == 1 or instances_agree(inst(j - 1 - q), inst(j - 1))):
            return q
    return 0


def instances_agree(prev: np.ndarray, cur: np.ndarray) -> bool:
    """Two instances of a block of ops agree.

    The first level's accesses, hits and misses must agree op by op within `STEADY_RTOL` of
    the op's accesses or `STEADY_OP_SHARE` of the block's, whichever is larger. Below it requests include write-backs, and which op of a timestep pays
    for a dirty eviction shifts from one timestep to the next, so lower levels (and memory)
    are compared on block totals, within `STEADY_BLOCK_RTOL` of the block's accesses.
    """
    sel = [ACCESSES, HITS, MISSES]
    acc0 = prev[:, 0, ACCESSES][:, None]
    tol0 = np.maximum(STEADY_RTOL * acc0, STEADY_OP_SHARE * float(acc0.sum())) + STEADY_ATOL
    if np.any(np.abs(cur[:, 0, sel] - prev[:, 0, sel]) > tol0):
        return False
    sel = [ACCESSES, HITS, MISSES, WRITEBACKS]
    tp, tc = prev[:, 1:, sel].sum(axis=0), cur[:, 1:, sel].sum(axis=0)
    tol = STEADY_BLOCK_RTOL * tp[:, :1] + STEADY_ATOL
    return bool(np.all(np.abs(tc - tp) <= tol))


__all__ = [
    "FIRST_INSTANCES", "MIN_REPEATS", "STEADY_ATOL", "STEADY_BLOCK_RTOL", "STEADY_MAX_CYCLE",
    "STEADY_OP_SHARE",
    "STEADY_REFRESH_LAST", "STEADY_RTOL", "PeriodicRegion", "RegionReuse", "instances_agree",
    "op_keys", "periodic_regions", "settled_cycle",
]
