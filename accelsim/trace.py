"""A whole training step through the cache hierarchy: per-op bytes and hit rates per level.

Every tensor gets an address range, every op its access stream (tiled GEMM or streaming), and
all ops run in program order through ONE `CacheHierarchy`, so a weight read at timestep t can
hit at t+1 when the cache holds it. No time here: `replay` turns these bytes into time.

Two modes (docs/replay.md):

* ``exact``: line-granular caches, the mapping's own tiles and chunks, every op simulated.
* ``coalesced``: each level simulated with block granules (line x one power-of-two factor,
  the same associativity), GEMM k-steps and stream chunks merged into runs of a few blocks,
  tile re-reads shared by the units of a wave counted as hits instead of simulated, and
  periodic regions (one LSTM timestep after the next) simulated only until their counters
  repeat; the repeats reuse the counters.

Both store tensors tile by tile (``layout="row_major"`` is available).
The shortcuts taken are listed in `StepTraffic.shortcuts` for the report.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import numpy as np

from accelsim.cache import (
    ACCESSES,
    BYTES_READ_FROM_BELOW,
    BYTES_WRITTEN_BELOW,
    HITS,
    MISSES,
    N_COUNTERS,
    WRITEBACKS,
    CacheHierarchy,
    Trace,
)
from accelsim.coarsening import (
    MAX_COALESCED_ACCESSES,
    MIN_BLOCKS_PER_LEVEL,
    coarse_levels,
    state_bytes,
    step_block_bytes,
)
from accelsim.graph import Op, OpGraph
from accelsim.hardware import HardwareSpec
from accelsim.kernels.trace import gemm_runs
from accelsim.traffic import Traffic
from accelsim.vocabulary import MEMORY, MODES, dtype_bytes

#: ``auto`` runs ``exact`` below both limits (line accesses of the step; bytes of cache state).
AUTO_EXACT_MAX_LINE_ACCESSES = 30_000_000
AUTO_EXACT_MAX_STATE_BYTES = 512 * 2**20
#: ``exact`` refuses hierarchies whose line state (8 B per line) exceeds this.
EXACT_MAX_STATE_BYTES = 2 * 2**30
#: ... and steps of more line accesses than this (~30 s of kernel time each 1e9).
EXACT_MAX_LINE_ACCESSES = 1e9
#: Ops outside periodic regions go to the cache kernel in batches of at most this many
#: (estimated) first-level granules, so a call's trace stays small in memory.
CALL_MAX_GRANULES = 20_000_000
#: A periodic region is simulated until two consecutive instances agree (see `_repeats`).
STEADY_RTOL = 2e-3
STEADY_ATOL = 2
STEADY_BLOCK_RTOL = 1e-2
#: Simulate the last instance of a settled region again (its tensors then sit in the cache
#: state for the ops after the region) instead of reusing counters for it too.
STEADY_REFRESH_LAST = False
#: Instances of a region simulated in the first kernel call (fewer calls, each has a fixed cost;
#: the first repeat can be found at the second instance at the earliest, so 2 costs nothing).
FIRST_INSTANCES = 2
#: Fewest repetitions of an op block that make a periodic region worth detecting.
MIN_REPEATS = 4
#: Coalesced mode merges GEMM k-steps and stream chunks into runs of this many first-level
#: blocks (fewer runs to generate; the cache kernel walks a run's blocks itself).
COALESCED_RUN_BLOCKS = 4
#: Alignment of tensor base addresses in exact mode (coalesced mode aligns to a block).
EXACT_ALIGN_BYTES = 4096
#: Address partitions the cache kernel may serve on parallel threads. 1: on this 2-core shared
#: machine the frontier step ran 17 s with 1 and 22-24 s with 2 (each partition scans the
#: whole trace); results do not depend on it.
CACHE_THREADS = 1
#: Kinds whose output may reuse the buffer of an input read for the last time (TF-style buffer
#: forwarding); a gradient running sum is then updated in place.
INPLACE_KINDS = ("elementwise", "update")


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------
@attrs.define(eq=False)
class StepTraffic:
    """Per-op cache counters and bytes per level of one training step.

    ``counters[op, level, c]`` are the cache kernel's counters (index constants from
    ``accelsim.cache``) in granules of ``granule_bytes[level]`` (lines in exact mode, blocks in
    coalesced mode); row ``n_levels`` is memory (HBM). ``level_bytes[op, level]`` are the bytes
    each level serves to the level above (level 0: the op's own loads and stores; HBM: bytes
    read plus written).
    """

    mode_used: str
    level_names: tuple[str, ...]
    granule_bytes: tuple[int, ...]
    counters: np.ndarray
    level_bytes: np.ndarray
    simulated: np.ndarray
    shortcuts: tuple[str, ...]
    unique_bytes: int
    simulated_accesses: int
    wall_s: float
    regions: tuple[tuple[int, int, int, int | None], ...] = ()

    @property
    def cache_names(self) -> tuple[str, ...]:
        return self.level_names[:-1]

    @property
    def n_ops(self) -> int:
        return int(self.counters.shape[0])

    def accesses(self, level: int | str) -> np.ndarray:
        return self.counters[:, self._lv(level), ACCESSES]

    def hits(self, level: int | str) -> np.ndarray:
        return self.counters[:, self._lv(level), HITS]

    def misses(self, level: int | str) -> np.ndarray:
        return self.counters[:, self._lv(level), MISSES]

    def hit_rates(self) -> np.ndarray:
        """hits / accesses per op and cache level, NaN where an op did not reach a level."""
        acc = self.counters[:, :-1, ACCESSES].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(acc > 0, self.counters[:, :-1, HITS] / acc, np.nan)

    def step_hit_rate(self) -> dict[str, float]:
        """Hit rate of each level over the step, each op weighted by the bytes it asked of it.

        Weighting by bytes (not granule counts) makes exact and coalesced rates comparable.
        """
        rates = self.hit_rates()
        out = {}
        for i, name in enumerate(self.cache_names):
            w = self.level_bytes[:, i]
            ok = ~np.isnan(rates[:, i]) & (w > 0)
            out[name] = float((rates[ok, i] * w[ok]).sum() / w[ok].sum()) if ok.any() else 0.0
        return out

    def total_bytes(self) -> dict[str, float]:
        """Bytes served by each level (and HBM) over the step."""
        tot = self.level_bytes.sum(axis=0)
        return {name: float(tot[i]) for i, name in enumerate(self.level_names)}

    def traffic(self, op_index: int) -> Traffic:
        """The op's `Traffic` (bytes per level incl. memory, hit rate per level)."""
        return self._traffics(self.hit_rates(), [op_index])[0]

    def traffics(self) -> list[Traffic]:
        """`traffic` of every op, in op order."""
        return self._traffics(self.hit_rates(), range(self.n_ops))

    def _traffics(self, rates: np.ndarray, indices: Any) -> list[Traffic]:
        names, caches = self.level_names, self.cache_names
        out = []
        for i in indices:
            lb, r = self.level_bytes[i], rates[i]
            out.append(Traffic(
                level_bytes={n: float(lb[j]) for j, n in enumerate(names)},
                hit_rate={n: (0.0 if math.isnan(r[j]) else float(r[j]))
                          for j, n in enumerate(caches)}))
        return out

    def summary(self) -> dict[str, Any]:
        return {"mode_used": self.mode_used, "granule_bytes": dict(zip(
            self.cache_names, self.granule_bytes, strict=True)),
            "hit_rate": self.step_hit_rate(), "bytes": self.total_bytes(),
            "ops_simulated": int(self.simulated.sum()), "ops": self.n_ops,
            "simulated_accesses": self.simulated_accesses, "shortcuts": list(self.shortcuts),
            "wall_s": self.wall_s}

    def _lv(self, level: int | str) -> int:
        return self.level_names.index(level) if isinstance(level, str) else int(level)


# --------------------------------------------------------------------------------------------
# address layout
# --------------------------------------------------------------------------------------------
def _align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


def allocate(graph: OpGraph, align_bytes: int) -> tuple[np.ndarray, int]:
    """Base address per tensor, as a caching allocator would place them in program order.

    Weights, optimizer state and graph inputs are placed first and never move (so they can
    stay resident across the step). Other tensors are allocated when produced and freed after
    their last use; a freed range is reused by the next tensor of the same aligned size, most
    recently freed first. An elementwise output may take over an input read for the last time
    (buffer forwarding), so a gradient running sum stays in one buffer. Returns the bases and
    the address-space size in bytes.
    """
    tensors = graph.tensors
    n = len(tensors)
    base = np.full(n, -1, np.int64)
    size = [_align(max(t.nbytes, 1), align_bytes) for t in tensors]
    last_use = np.full(n, -1, np.int64)
    for i, op in enumerate(graph.ops):
        for t in (*op.inputs, *op.outputs):
            last_use[t] = i
    fixed = [t.persistent or graph.producer(t.id) is None for t in tensors]
    top = 0
    for t in tensors:
        if fixed[t.id]:
            base[t.id] = top
            top += size[t.id]
    free: dict[int, list[int]] = {}
    donated = np.zeros(n, bool)
    for i, op in enumerate(graph.ops):
        for t in op.outputs:
            if base[t] >= 0:
                continue
            if op.kind in INPLACE_KINDS or op.accumulate:
                # a fused GEMM accumulates into its addend (inputs[2]), never into A or B
                for s in (op.inputs[2:] if op.accumulate else op.inputs):
                    if (not fixed[s] and not donated[s] and last_use[s] == i
                            and size[s] == size[t] and s not in op.outputs and base[s] >= 0):
                        base[t] = base[s]
                        donated[s] = True
                        break
                if base[t] >= 0:
                    continue
            pool = free.get(size[t])
            if pool:
                base[t] = pool.pop()
            else:
                base[t] = top
                top += size[t]
        for t in {*op.inputs, *op.outputs}:
            if last_use[t] == i and not fixed[t] and not donated[t] and base[t] >= 0:
                free.setdefault(size[t], []).append(int(base[t]))
    return base, top


# --------------------------------------------------------------------------------------------
# access streams per op
# --------------------------------------------------------------------------------------------
def _elem_bytes(graph: OpGraph, op: Op, dtype: str) -> int:
    tid = op.inputs[0] if op.inputs else op.outputs[0]
    return dtype_bytes(graph.tensors[tid].dtype)


def _loop_order(value: Any) -> int:
    """0: output tiles row-major over (m, n); 1: column-major. Accepts ints or 'mn'/'nm'."""
    if isinstance(value, str):
        return 1 if value.lower().lstrip("k").startswith("n") else 0
    return int(value)


@attrs.frozen
class _Runs:
    """Byte runs of one op, plus first-level hits taken out of the trace (shared tile reads)."""

    addr: np.ndarray
    nbytes: np.ndarray
    is_write: np.ndarray
    unit: np.ndarray
    hit_blocks: float = 0.0
    hit_bytes: float = 0.0
    hit_lines: float = 0.0


def _gemm_runs(graph: OpGraph, op: Op, mapping: Any, bases: np.ndarray, dtype: str,
               tile_major: bool, min_run_bytes: int, max_runs: int, scratch_base: int,
               shared_bytes: int = 0, granule: int = 0, line_bytes: int = 0) -> _Runs:
    """Runs of one (batched) GEMM from its tiles; see `accelsim.kernels.trace.gemm_runs`.

    Coalesced mode (`min_run_bytes` > 0) merges k-steps into runs of at least that size. Units
    of a wave that read the same A (or B) tile at the same k-step hit in a shared first level
    once one of them has fetched it, as long as one k-step of the wave fits in it
    (`shared_bytes` = its capacity, 0 when private). Then those repeated reads are taken out of
    the trace and counted as hits (`_Runs.hit_*`), which keeps that sharing exact when k-steps
    are merged; when a k-step does not fit, k-steps are merged only while they still fit.
    """
    e = _elem_bytes(graph, op, dtype)
    m, n, k = max(op.m, 1), max(op.n, 1), max(op.k, 1)
    tm = max(1, min(int(mapping.tile_m), m))
    tn = max(1, min(int(mapping.tile_n), n))
    tk = max(1, min(int(mapping.tile_k), k))
    units = max(1, int(mapping.units_used))
    order = _loop_order(getattr(mapping, "loop_order", 0))
    split_k = max(1, int(getattr(mapping, "split_k", 1) or 1))
    tiles_m, tiles_n = math.ceil(m / tm), math.ceil(n / tn)
    tiles = tiles_m * tiles_n
    dedup = False
    if min_run_bytes > 0:
        step_bytes = min(units, tiles) * (tm + tn) * tk * e  # one k-step of a wave
        dedup = tile_major and shared_bytes > 0 and 2 * step_bytes <= shared_bytes
        # merge k-steps until each A and B tile run spans `min_run_bytes`
        f = max(1, math.ceil(min_run_bytes / (min(tm, tn) * tk * e)))
        if not dedup and shared_bytes > 0:
            f = max(1, min(f, shared_bytes // max(1, 2 * step_bytes)))
        tk = min(k, tk * f)
        est = op.batch_count * tiles * (2 * math.ceil(k / tk) + 1)
        if est > max_runs:
            tk = min(k, max(tk, math.ceil(k * 2 * op.batch_count * tiles / max(1, max_runs - tiles))))
    a_id, b_id = op.inputs[0], op.inputs[1]
    c_id = op.outputs[0]
    a0, b0, c0 = int(bases[a_id]), int(bases[b_id]), int(bases[c_id])
    addr, nbytes, is_write, unit = gemm_runs(m, n, k, tm, tn, tk, e, a0, b0, c0, op.trans_a,
                                             op.trans_b, order, units, tile_major)
    hit_blocks = hit_bytes = hit_lines = 0.0
    if dedup:
        dup = _wave_duplicates(tiles_m, tiles_n, math.ceil(k / tk), min(units, tiles), order)
        if dup.shape[0] != addr.shape[0]:  # a run order the mask does not describe: keep all
            dup = np.zeros(addr.shape[0], bool)
        if dup.any():
            da, dn = addr[dup], nbytes[dup]
            hit_blocks = op.batch_count * float(_blocks(da, dn, granule))
            hit_lines = op.batch_count * float(_blocks(da, dn, line_bytes))
            hit_bytes = op.batch_count * float(dn.sum())
            keep = ~dup
            addr, nbytes, is_write, unit = addr[keep], nbytes[keep], is_write[keep], unit[keep]
    if op.batch_count > 1:
        strides = np.array([m * k * e, k * n * e, m * n * e], np.int64)
        which = np.where(addr >= c0, 2, 0)
        which = np.where((addr >= b0) & (addr < b0 + strides[1]), 1, which)
        which = np.where((addr >= a0) & (addr < a0 + strides[0]), 0, which)
        bidx = np.arange(op.batch_count, dtype=np.int64)[:, None]
        addr = (addr[None, :] + bidx * strides[which][None, :]).ravel()
        nbytes = np.tile(nbytes, op.batch_count)
        is_write = np.tile(is_write, op.batch_count)
        unit = ((unit[None, :].astype(np.int64) + bidx * tiles) % units).astype(np.int32).ravel()
    if op.accumulate:
        addr, nbytes, is_write, unit = _epilogue_reads(addr, nbytes, is_write, unit, c0,
                                                       int(bases[op.inputs[2]]))
    if split_k > 1:
        # each K slice writes its partial sums to a workspace that a reduction reads back (as
        # `timing` counts them); the tiles themselves are traced over the whole K
        c_bytes = op.batch_count * m * n * e
        extra = np.arange(split_k, dtype=np.int64) * _align(c_bytes, 4096) + scratch_base
        addr = np.concatenate([addr, extra, extra])
        nbytes = np.concatenate([nbytes, np.full(2 * split_k, c_bytes, np.int64)])
        is_write = np.concatenate([is_write, np.ones(split_k, np.uint8),
                                   np.zeros(split_k, np.uint8)])
        unit = np.concatenate([unit, (np.arange(2 * split_k) % units).astype(np.int32)])
    return _Runs(addr, nbytes, is_write, unit, hit_blocks, hit_bytes, hit_lines)


def _epilogue_reads(addr: np.ndarray, nbytes: np.ndarray, is_write: np.ndarray,
                    unit: np.ndarray, c_base: int, d_base: int) -> tuple[np.ndarray, ...]:
    """C = A@B + D: before each C-tile write the epilogue reads the same tile of D."""
    copies = np.where(is_write == 1, 2, 1)
    idx = np.repeat(np.arange(addr.shape[0]), copies)
    first = np.ones(idx.shape[0], bool)
    first[1:] = idx[1:] != idx[:-1]
    read_d = first & (is_write[idx] == 1)  # the first copy of a write becomes the D read
    new_addr = addr[idx].copy()
    new_addr[read_d] += d_base - c_base
    new_write = is_write[idx].copy()
    new_write[read_d] = 0
    return new_addr, nbytes[idx], new_write, unit[idx]


def _wave_duplicates(tiles_m: int, tiles_n: int, tiles_k: int, units: int,
                     order: int) -> np.ndarray:
    """Mask of the runs `gemm_runs` (tile-major) emits that re-read, in the same wave and
    k-step, an A or B tile another unit of the wave read before (see its run order: per wave,
    per k-step, each tile's A run then B run; then each tile's C run)."""
    n_tiles = tiles_m * tiles_n
    period = tiles_n if order == 0 else tiles_m  # the pattern depends on w0 modulo this
    memo: dict[tuple[int, int], np.ndarray] = {}
    parts = []
    for w0 in range(0, n_tiles, units):
        nt = min(units, n_tiles - w0)
        key = (w0 % period, nt)
        if key not in memo:
            t = np.arange(w0, w0 + nt)
            if order == 0:
                mi, ni = t // tiles_n, t % tiles_n
            else:
                ni, mi = t // tiles_m, t % tiles_m
            reads = np.empty(2 * nt, bool)
            reads[0::2] = _repeats_earlier(mi)
            reads[1::2] = _repeats_earlier(ni)
            memo[key] = np.concatenate([np.tile(reads, tiles_k), np.zeros(nt, bool)])
        parts.append(memo[key])
    return np.concatenate(parts) if parts else np.zeros(0, bool)


def _repeats_earlier(values: np.ndarray) -> np.ndarray:
    """True where the value already occurred earlier in the array."""
    _, first = np.unique(values, return_index=True)
    out = np.ones(values.shape[0], bool)
    out[first] = False
    return out


def _blocks(addr: np.ndarray, nbytes: np.ndarray, granule: int) -> int:
    """Granules of `granule` bytes the runs cover, counted per run."""
    if addr.shape[0] == 0 or granule <= 0:
        return 0
    shift = granule.bit_length() - 1
    return int(((addr + nbytes - 1) >> shift).sum() - (addr >> shift).sum() + addr.shape[0])


def _stream_runs(graph: OpGraph, op: Op, mapping: Any, bases: np.ndarray, chunk_bytes: int,
                 max_runs: int, granule: int, scratch_base: int = 0) -> _Runs:
    """Streaming op: chunk c of every input, then chunk c of every output, on unit c % units.

    Tensors of different sizes are cut into the same number of chunks (a broadcast bias is
    read piece by piece alongside its activation), so an op reads each input and writes each
    output exactly once, as `OpGraph.op_bytes` counts. Chunk boundaries fall on `granule`
    (line or block) multiples, so neighbouring chunks do not share a granule. A negative
    `Op.extra_bytes` (a gather reads only the rows it copies) shrinks the largest input to a
    sample spread evenly over it; a positive one is read from a workspace at `scratch_base`.
    """
    ids = [t for t in op.inputs] + [t for t in op.outputs]
    writes = [False] * len(op.inputs) + [True] * len(op.outputs)
    sizes = [graph.tensors[t].nbytes for t in ids]
    tb = [int(bases[t]) for t in ids]
    touch = list(sizes)
    extra = int(op.extra_bytes)
    if extra < 0 and op.inputs:
        big = max(range(len(op.inputs)), key=lambda k: sizes[k])
        touch[big] = max(0, sizes[big] + extra)
    elif extra > 0:
        sizes.append(extra)
        touch.append(extra)
        tb.append(int(scratch_base))
        writes.append(False)
    if not sizes or max(sizes) == 0:
        empty = np.zeros(0, np.int64)
        return _Runs(empty, empty, np.zeros(0, np.uint8), np.zeros(0, np.int32))
    size_a, touch_a = np.array(sizes, np.int64), np.array(touch, np.int64)
    units = max(1, int(getattr(mapping, "units_used", 1) or 1))
    chunk = max(1, int(chunk_bytes))
    n_chunks = max(1, math.ceil(int(size_a.max()) / chunk))
    n_chunks = min(n_chunks, max(1, max_runs // len(sizes)))
    c = np.arange(n_chunks + 1, dtype=np.int64)[:, None]
    bounds = c * size_a[None, :] // n_chunks // granule * granule  # [n_chunks+1, tensors]
    bounds[-1] = size_a
    seg = c * touch_a[None, :] // n_chunks // granule * granule
    seg[-1] = touch_a
    lo = bounds[:-1]
    length = np.minimum(np.diff(seg, axis=0), np.diff(bounds, axis=0))
    addr = (np.array(tb, np.int64)[None, :] + lo).ravel()
    nbytes = length.ravel()
    is_write = np.broadcast_to(np.array(writes, np.uint8)[None, :], lo.shape).ravel()
    unit = np.broadcast_to((np.arange(n_chunks) % units).astype(np.int32)[:, None],
                           lo.shape).ravel()
    keep = nbytes > 0
    return _Runs(addr[keep], nbytes[keep], np.ascontiguousarray(is_write[keep]),
                 np.ascontiguousarray(unit[keep]))


def iter_step_runs(graph: OpGraph, mappings: Sequence[Any], dtype: str, granule_bytes: int,
                   max_runs_per_op: int = 200_000) -> Iterator[_Runs]:
    """Each op's access runs in program order (tile-major layout, runs >= `granule_bytes`).

    For one-pass analyses of the step's address stream, such as the miss-ratio curve: no
    cache state, no steady-state shortcut. A generator, so a caller can reduce each op's
    runs (e.g. to granule ids) without holding the whole step's runs at once.
    """
    bases, top = allocate(graph, granule_bytes)
    scratch = _align(top, granule_bytes)
    for op, mp in zip(graph.ops, mappings, strict=True):
        if _is_gemm(op, mp):
            yield _gemm_runs(graph, op, mp, bases, dtype, tile_major=True,
                             min_run_bytes=granule_bytes, max_runs=max_runs_per_op,
                             scratch_base=scratch)
        else:
            chunk = max(int(getattr(mp, "chunk_bytes", 0) or 0), granule_bytes)
            yield _stream_runs(graph, op, mp, bases, chunk, max_runs_per_op, granule_bytes,
                               scratch)


def step_trace(graph: OpGraph, mappings: Sequence[Any], dtype: str, granule_bytes: int,
               max_runs_per_op: int = 200_000) -> Trace:
    """The whole step's runs as one `Trace` (see `iter_step_runs`)."""
    parts = list(iter_step_runs(graph, mappings, dtype, granule_bytes, max_runs_per_op))
    starts = np.zeros(len(parts) + 1, np.int64)
    starts[1:] = np.cumsum([r.addr.shape[0] for r in parts])
    return Trace(addr=np.concatenate([r.addr for r in parts]),
                 nbytes=np.concatenate([r.nbytes for r in parts]),
                 is_write=np.concatenate([r.is_write for r in parts]),
                 unit=np.concatenate([r.unit for r in parts]), op_start=starts)


def _is_gemm(op: Op, mapping: Any) -> bool:
    return op.kind == "gemm" and hasattr(mapping, "tile_m") and len(op.inputs) >= 2


def estimated_bytes(graph: OpGraph, mappings: Sequence[Any], dtype: str) -> np.ndarray:
    """Bytes each op's access stream will carry (tile re-reads included), without tracing."""
    out = np.empty(len(graph.ops), np.float64)
    for i, (op, mp) in enumerate(zip(graph.ops, mappings, strict=True)):
        if _is_gemm(op, mp):
            e = _elem_bytes(graph, op, dtype)
            tm, tn = max(1, min(int(mp.tile_m), op.m)), max(1, min(int(mp.tile_n), op.n))
            out[i] = op.batch_count * e * (op.m * op.k * math.ceil(op.n / tn)
                                     + op.k * op.n * math.ceil(op.m / tm) + op.m * op.n)
        else:
            out[i] = max(0, sum(graph.tensors[t].nbytes for t in (*op.inputs, *op.outputs))
                         + op.extra_bytes)
    return out


# --------------------------------------------------------------------------------------------
# periodic regions (repeated timesteps)
# --------------------------------------------------------------------------------------------
_DIGITS = re.compile(r"\d+")


def op_keys(graph: OpGraph) -> list[tuple]:
    """Key per op equal for the same computation at another timestep or layer index."""
    return [(_DIGITS.sub("#", op.name), op.signature) for op in graph.ops]


def periodic_regions(keys: Sequence[Any], min_repeats: int = MIN_REPEATS,
                     candidates: int = 8) -> list[tuple[int, int, int]]:
    """Maximal runs of a repeated block of op keys: (start, period, repeats), left to right.

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
            regions.append(best)
            i += best[1] * best[2]
        else:
            i += 1
    return regions


# --------------------------------------------------------------------------------------------
# the step
# --------------------------------------------------------------------------------------------
def step_traffic(hw: HardwareSpec, graph: OpGraph, mappings: Sequence[Any], dtype: str,
                 mode: str = "auto", *, steady_state: bool | None = None,
                 min_blocks: int = MIN_BLOCKS_PER_LEVEL,
                 max_accesses: float = MAX_COALESCED_ACCESSES,
                 layout: str | None = None,
                 refresh_last: bool = STEADY_REFRESH_LAST) -> StepTraffic:
    """Run every op of `graph` (mapped by `mappings`, one per op) through one cache hierarchy.

    `mode`: ``exact``, ``coalesced`` or ``auto`` (exact when the step's line accesses and the
    cache state are small, see `AUTO_EXACT_*`). `steady_state` (default: on in coalesced mode)
    reuses the counters of repeated timesteps once they repeat; `refresh_last` simulates the
    last repetition again. `min_blocks` and `max_accesses` bound the coalesced block size
    (`coarsening.step_block_bytes`). `layout` is ``tile_major`` (default) or ``row_major``.
    See docs/replay.md for what each shortcut approximates.
    """
    t0 = time.perf_counter()
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    if len(mappings) != len(graph.ops):
        raise ValueError(f"mappings: expected one per op ({len(graph.ops)}), got {len(mappings)}")
    if not hw.caches:
        raise ValueError("hw.caches: expected at least one cache level")
    levels = list(hw.caches)
    n_units = hw.compute.units
    est = estimated_bytes(graph, mappings, dtype)
    keys = op_keys(graph)
    shortcuts: list[str] = []
    if mode == "auto":
        lines = float(est.sum()) / levels[0].line_bytes
        state = state_bytes(levels, n_units)
        mode = ("exact" if lines <= AUTO_EXACT_MAX_LINE_ACCESSES
                and state <= AUTO_EXACT_MAX_STATE_BYTES else "coalesced")
        if mode == "coalesced":
            shortcuts.append(
                f"auto chose coalesced: ~{lines:.3g} line accesses (exact limit "
                f"{AUTO_EXACT_MAX_LINE_ACCESSES:.3g}), {state / 2**20:.0f} MiB line state "
                f"(limit {AUTO_EXACT_MAX_STATE_BYTES / 2**20:.0f} MiB)")
    exact = mode == "exact"
    if exact and float(est.sum()) / levels[0].line_bytes > EXACT_MAX_LINE_ACCESSES:
        raise ValueError(
            f"mode='exact' would simulate ~{float(est.sum()) / levels[0].line_bytes:.3g} line "
            f"accesses (limit {EXACT_MAX_LINE_ACCESSES:.3g}, hours of work and a trace larger "
            "than memory); use mode='coalesced' or 'auto'")
    if exact and state_bytes(levels, n_units) > EXACT_MAX_STATE_BYTES:
        raise ValueError(
            f"mode='exact' needs {state_bytes(levels, n_units) / 2**30:.1f} GiB of line state "
            f"for {[lv.name for lv in levels]} (limit {EXACT_MAX_STATE_BYTES / 2**30:.0f} GiB); "
            "use mode='coalesced' or 'auto'")
    if steady_state is None:
        steady_state = not exact
    regions = periodic_regions(keys) if steady_state else []
    if layout is None:
        layout = "tile_major"
    if layout not in ("row_major", "tile_major"):
        raise ValueError(f"layout: expected 'row_major' or 'tile_major', got {layout!r}")

    if exact:
        shortcuts.append(f"exact: line-granular caches, every op simulated; tensors stored "
                         f"{'tile by tile' if layout == 'tile_major' else 'row-major'}")
        sim_levels = levels
        granules = [lv.line_bytes for lv in levels]
        align = EXACT_ALIGN_BYTES
        min_run = 0
        max_runs = 1 << 62
    else:
        # bytes expected to be simulated: regions are assumed to settle after 3 instances + 1
        sim_est = est.copy()
        for s, p, reps in regions:
            sim_est[s + 4 * p:s + (reps - 1) * p] = 0.0
        granules = step_block_bytes(levels, float(sim_est.sum()), min_blocks, max_accesses,
                                         n_units)
        sim_levels = coarse_levels(levels, granules)
        align = max(EXACT_ALIGN_BYTES, granules[0])
        min_run = granules[0] * COALESCED_RUN_BLOCKS
        max_runs = 4_000_000
        desc = ", ".join(f"{lv.name} {_fmt_bytes(b)} ({sl.capacity_bytes // b} blocks, "
                         f"{'fully associative' if sl.ways == 0 else f'{sl.ways}-way'})"
                         for lv, b, sl in zip(levels, granules, sim_levels, strict=True))
        shortcuts.append(f"coalesced cache blocks: {desc}")
        few = [f"{sl.name} ({sl.capacity_bytes // b} blocks)"
               for sl, b in zip(sim_levels, granules, strict=True)
               if sl.capacity_bytes // b < min_blocks]
        if few:
            shortcuts.append(f"blocks forced coarse by the state limit: {', '.join(few)} keep "
                             f"fewer than {min_blocks} blocks; their hit rates are rough")
        shortcuts.append("tensors stored tile by tile; GEMM k-steps and stream chunks merged "
                         f"to runs of at least {_fmt_bytes(min_run)}")

    bases, top = allocate(graph, align)
    scratch = _align(top, align)
    hier = CacheHierarchy(sim_levels, n_units, max_threads=CACHE_THREADS)
    n_lv = len(levels)
    n_ops = len(graph.ops)
    counters = np.zeros((n_ops, n_lv + 1, N_COUNTERS), np.int64)
    req_bytes = np.zeros(n_ops, np.float64)
    line_touched = np.zeros(n_ops, np.float64)
    simulated = np.zeros(n_ops, bool)
    line0 = levels[0].line_bytes
    shared0 = sim_levels[0].capacity_bytes if sim_levels[0].sharing == "shared" else 0

    def runs_of(i: int) -> _Runs:
        op, mp = graph.ops[i], mappings[i]
        if _is_gemm(op, mp):
            return _gemm_runs(graph, op, mp, bases, dtype, tile_major=layout == "tile_major",
                              min_run_bytes=min_run, max_runs=max_runs, scratch_base=scratch,
                              shared_bytes=shared0, granule=granules[0], line_bytes=line0)
        chunk = int(getattr(mp, "chunk_bytes", 0) or 0) or 65536
        return _stream_runs(graph, op, mp, bases, max(chunk, min_run), max_runs, granules[0],
                            scratch)

    def simulate(lo: int, hi: int) -> None:
        rs = [runs_of(i) for i in range(lo, hi)]
        starts = np.zeros(hi - lo + 1, np.int64)
        starts[1:] = np.cumsum([r.addr.shape[0] for r in rs])
        trace = Trace(addr=np.concatenate([r.addr for r in rs]),
                      nbytes=np.concatenate([r.nbytes for r in rs]),
                      is_write=np.concatenate([r.is_write for r in rs]),
                      unit=np.concatenate([r.unit for r in rs]), op_start=starts)
        counters[lo:hi] = hier.run(trace).data
        hit_blocks = np.array([r.hit_blocks for r in rs], np.int64)
        counters[lo:hi, 0, ACCESSES] += hit_blocks
        counters[lo:hi, 0, HITS] += hit_blocks
        req_bytes[lo:hi] = [float(r.nbytes.sum()) + r.hit_bytes for r in rs]
        if not exact:
            line_touched[lo:hi] = [(_blocks(r.addr, r.nbytes, line0) + r.hit_lines) * line0
                                   for r in rs]
        simulated[lo:hi] = True

    batch_ops = 256
    skipped_total = 0
    region_notes = []
    region_log: list[tuple[int, int, int, int | None]] = []
    i = 0
    r_iter = iter(regions)
    region = next(r_iter, None)
    while i < n_ops:
        if region is not None and i == region[0]:
            s, p, reps = region
            settled_at = None
            done_upto = 0  # instances [0, done_upto) have been simulated
            copied = 0
            for j in range(reps):
                lo = s + j * p
                if (settled_at is not None and j >= done_upto
                        and (j < reps - 1 or not refresh_last)):
                    src = s + settled_at * p
                    counters[lo:lo + p] = counters[src:src + p]
                    req_bytes[lo:lo + p] = req_bytes[src:src + p]
                    line_touched[lo:lo + p] = line_touched[src:src + p]
                    copied += 1
                    continue
                if j >= done_upto:
                    # the first instances rarely repeat (cold cache): one kernel call for two
                    done_upto = min(reps, j + (FIRST_INSTANCES if j == 0 else 1))
                    simulate(lo, s + done_upto * p)
                if settled_at is None and j >= 1 and _repeats(counters[lo - p:lo],
                                                              counters[lo:lo + p]):
                    settled_at = j
            region_log.append((s, p, reps, settled_at))
            if copied:
                skipped_total += copied * p
                region_notes.append((graph.ops[s].name, p, reps, settled_at + 1, copied))
            i = s + p * reps
            region = next(r_iter, None)
            continue
        hi = min(n_ops, i + batch_ops, region[0] if region is not None else n_ops)
        # keep one call's trace bounded: at most CALL_MAX_GRANULES first-level granules
        stop = i + 1 + int(np.searchsorted(np.cumsum(est[i + 1:hi]),
                                           CALL_MAX_GRANULES * granules[0] - est[i],
                                           side="right"))
        hi = max(i + 1, min(hi, stop))
        simulate(i, hi)
        i = hi

    if skipped_total:
        big = max(region_notes, key=lambda r: r[1] * r[4])
        shortcuts.append(
            f"steady state: {skipped_total} of {n_ops} ops reuse the counters of an earlier "
            f"repetition ({len(region_notes)} periodic regions; the largest, {big[2]} x "
            f"{big[1]} ops from {big[0]!r}, settled after {big[3]}); their accesses are not "
            "applied to the cache state")

    if exact:
        rho = np.ones(n_ops)
    else:
        block_touched = counters[:, 0, ACCESSES] * float(granules[0])
        rho = np.divide(line_touched, block_touched, out=np.ones(n_ops),
                        where=block_touched > 0)
    level_bytes = _level_bytes(counters, req_bytes, rho)
    touched = {t for op in graph.ops for t in (*op.inputs, *op.outputs)}
    unique = int(sum(graph.tensors[t].nbytes for t in touched))
    return StepTraffic(
        mode_used=mode, level_names=(*[lv.name for lv in levels], MEMORY),
        granule_bytes=tuple(granules), counters=counters, level_bytes=level_bytes,
        simulated=simulated, shortcuts=tuple(shortcuts), unique_bytes=unique,
        regions=tuple(region_log),
        simulated_accesses=int(counters[simulated, 0, ACCESSES].sum()),
        wall_s=time.perf_counter() - t0)


def _repeats(prev: np.ndarray, cur: np.ndarray) -> bool:
    """Two instances of a block of ops agree.

    The first level's accesses, hits and misses must agree op by op within `STEADY_RTOL` of
    the op's accesses. Below it requests include write-backs, and which op of a timestep pays
    for a dirty eviction shifts from one timestep to the next, so lower levels (and memory)
    are compared on block totals, within `STEADY_BLOCK_RTOL` of the block's accesses.
    """
    sel = [ACCESSES, HITS, MISSES]
    acc0 = prev[:, 0, ACCESSES][:, None]
    if np.any(np.abs(cur[:, 0, sel] - prev[:, 0, sel]) > STEADY_RTOL * acc0 + STEADY_ATOL):
        return False
    sel = [ACCESSES, HITS, MISSES, WRITEBACKS]
    tp, tc = prev[:, 1:, sel].sum(axis=0), cur[:, 1:, sel].sum(axis=0)
    tol = STEADY_BLOCK_RTOL * tp[:, :1] + STEADY_ATOL
    return bool(np.all(np.abs(tc - tp) <= tol))


def _level_bytes(counters: np.ndarray, req_bytes: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Bytes each level serves: level 0 the op's requests; below, what the level above sent.

    `rho` (1 in exact mode) is the op's line-touched bytes over its block-touched bytes at the
    first level: a block used in part is fetched whole in coalesced mode, and scaling by
    `rho` gives back the bytes line-granular caches would move (the same hit pattern, applied
    to lines instead of blocks), so per-op bytes do not grow with the block size.
    """
    n_ops, n_rows, _ = counters.shape
    out = np.zeros((n_ops, n_rows), np.float64)
    out[:, 0] = req_bytes
    for lv in range(n_rows - 1):
        below = (counters[:, lv, BYTES_READ_FROM_BELOW]
                 + counters[:, lv, BYTES_WRITTEN_BELOW]).astype(np.float64)
        out[:, lv + 1] = below * rho
    return out


def _fmt_bytes(b: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if b >= scale:
            return f"{b / scale:g} {unit}"
    return f"{b:g} B"


__all__ = [
    "StepTraffic", "allocate",
    "estimated_bytes", "op_keys", "periodic_regions", "iter_step_runs", "step_trace", "step_traffic",
]
