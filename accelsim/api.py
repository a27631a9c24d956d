"""The public entry points: `simulate(hw, wl)` and `miss_ratio_curve(hw, wl)`.

Both run the stages of `accelsim.pipeline`; this module checks arguments and shapes results.
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from accelsim import pipeline
from accelsim.errors import AccelsimError
from accelsim.graph import OpGraph
from accelsim.hardware import HardwareSpec
from accelsim.report import Report
from accelsim.vocabulary import MODES
from accelsim.workload import WorkloadSpec


def simulate(hw: HardwareSpec, wl: WorkloadSpec, *, chips: int = 1, mode: str = "auto",
             graph: OpGraph | None = None) -> Report:
    """Replay one training step of `wl` on `chips` data-parallel copies of `hw`."""
    if chips < 1:
        raise AccelsimError(f"chips: expected an integer >= 1, got {chips}")
    if mode not in MODES:
        raise AccelsimError(f"mode: expected one of {list(MODES)}, got {mode!r}")
    return pipeline.run(hw, wl, chips=chips, mode=mode, graph=graph)


@attrs.frozen(kw_only=True)
class MissRatioCurve:
    """Last-level hit rate of a fully associative LRU cache at every capacity, for one step."""

    workload: str
    hardware: str
    granule_bytes: int
    accesses: int
    capacity_bytes: np.ndarray
    hit_rate: np.ndarray

    def capacity_for(self, target: float) -> int | None:
        """Smallest capacity whose hit rate reaches `target` (None: no capacity does)."""
        ok = np.flatnonzero(self.hit_rate >= target - 1e-12)
        return int(self.capacity_bytes[ok[0]]) if ok.size else None

    def hit_rate_at(self, capacity_bytes: float) -> float:
        """Hit rate of a cache of `capacity_bytes` (whole granules; 0 below one granule)."""
        i = int(capacity_bytes // self.granule_bytes) - 1
        if i < 0 or self.hit_rate.size == 0:
            return 0.0
        return float(self.hit_rate[min(i, self.hit_rate.size - 1)])


#: The step's stream is cut into granules so that one pass sees at most this many accesses.
MRC_MAX_ACCESSES = 50_000_000


def miss_ratio_curve(hw: HardwareSpec, wl: WorkloadSpec, *,
                     granule_bytes: int | None = None) -> MissRatioCurve:
    """One pass over the executed step's address stream: hit rate at every cache size.

    The stream is what the caches see from the compute units (tiles as `mapping` chooses them
    for `hw`), at granules of `granule_bytes` (default: the largest of the chip's line size
    and the power of two that keeps the pass under `MRC_MAX_ACCESSES` accesses).
    """
    from accelsim.kernels.trace import expand_lines
    from accelsim.mrc import curve_from_line_ids
    from accelsim.trace_runs import estimated_bytes, iter_step_runs

    graph = pipeline.prepare(wl).executed
    mappings = pipeline.map_step(hw, graph, wl.precision).mappings
    line = hw.caches[0].line_bytes if hw.caches else 128
    if granule_bytes is None:
        total = float(np.sum(estimated_bytes(graph, mappings, wl.precision)))
        granule_bytes = max(line, 1 << max(0, math.ceil(math.log2(max(1.0, total / MRC_MAX_ACCESSES)))))
    elif granule_bytes < 1 or granule_bytes & (granule_bytes - 1):
        raise AccelsimError(f"granule: expected a power of two number of bytes, got {granule_bytes}")
    ids = np.concatenate([expand_lines(r.addr, r.nbytes, granule_bytes) for r in
                          iter_step_runs(graph, mappings, wl.precision, granule_bytes)])
    capacity, hit = curve_from_line_ids(ids, granule_bytes)
    return MissRatioCurve(workload=wl.name, hardware=hw.name, granule_bytes=granule_bytes,
                          accesses=int(ids.shape[0]), capacity_bytes=capacity, hit_rate=hit)
