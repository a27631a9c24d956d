"""Miss-ratio curves: hit rate of a fully associative LRU cache at every capacity, one pass.

Sizing question ("how much SRAM for 90 % hits on this op?") without simulating each size.
The curve treats the trace as one shared cache with write-allocate and granules of
``line_bytes`` (reads and writes alike); set conflicts and non-LRU policies are ignored, so it
bounds a set-associative LRU cache of the same capacity from the optimistic side in practice.
"""

from __future__ import annotations

import numpy as np

from accelsim.cache import Trace
from accelsim.kernels.mrc import stack_distance_histogram
from accelsim.kernels.trace import expand_lines

__all__ = ["capacity_for_hit_rate", "curve_from_histogram", "curve_from_line_ids",
           "miss_ratio_curve", "stack_distances"]


def stack_distances(trace: Trace, line_bytes: int) -> tuple[np.ndarray, int]:
    """(histogram, accesses): ``hist[d]`` = accesses with LRU stack distance ``d`` (0-based
    count of distinct other lines since the last touch); the last bin counts cold misses."""
    if line_bytes < 1 or line_bytes & (line_bytes - 1):
        raise ValueError(f"line_bytes: expected a power of two, got {line_bytes}")
    lines = expand_lines(trace.addr, trace.nbytes, np.int64(line_bytes))
    if lines.shape[0] == 0:
        return np.zeros(1, np.int64), 0
    uniq, dense = np.unique(lines, return_inverse=True)
    hist = stack_distance_histogram(dense.astype(np.int64).ravel(), uniq.shape[0])
    return hist, int(lines.shape[0])


def miss_ratio_curve(trace: Trace, line_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """(capacity_bytes, hit_rate) for capacities of 1 .. distinct-lines lines.

    ``hit_rate[i]`` is the fraction of line accesses that hit in a fully associative LRU cache
    of ``capacity_bytes[i]``; it is non-decreasing and reaches its maximum (all but the cold
    misses) at the trace's footprint.
    """
    hist, n = stack_distances(trace, line_bytes)
    return curve_from_histogram(hist, n, line_bytes)


def curve_from_line_ids(line_ids: np.ndarray, line_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """The curve of a stream of line indices (address // line_bytes), e.g. built op by op.

    Ids are used as they are (dense enough when they come from a compact address space), so
    no sort or copy of the stream is needed: memory is about 16 bytes per access.
    """
    if line_ids.shape[0] == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    hist = stack_distance_histogram(np.ascontiguousarray(line_ids, np.int64),
                                    int(line_ids.max()) + 1)
    return curve_from_histogram(hist, int(line_ids.shape[0]), line_bytes)


def curve_from_histogram(hist: np.ndarray, n: int,
                         line_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """(capacity_bytes, hit_rate) from a stack-distance histogram of `n` accesses."""
    n_distinct = hist.shape[0] - 1
    capacity_bytes = np.arange(1, n_distinct + 1, dtype=np.int64) * line_bytes
    if n == 0:
        return capacity_bytes, np.zeros(0)
    hit_rate = np.cumsum(hist[:-1]) / n
    return capacity_bytes, hit_rate


def capacity_for_hit_rate(curve: tuple[np.ndarray, np.ndarray], target: float) -> int | None:
    """Smallest capacity (bytes) whose hit rate reaches ``target``; None if none does."""
    capacity_bytes, hit_rate = curve
    ok = np.flatnonzero(hit_rate >= target - 1e-12)
    return int(capacity_bytes[ok[0]]) if ok.size else None
