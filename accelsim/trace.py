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

Tracing is split by concern: tensor addresses (`trace_layout`), each op's access runs
(`trace_runs`), periodic regions and their steady state (`trace_steady`), block sizes
(`coarsening`); this module runs the step through the cache and collects the counters.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
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
from accelsim.graph import OpGraph
from accelsim.hardware import CacheLevelSpec, HardwareSpec
from accelsim.mapping import GemmMapping, Mapping, StreamMapping
from accelsim.trace_layout import align_up, allocate
from accelsim.trace_runs import (
    OpRuns,
    RunTemplates,
    blocks_covered,
    estimated_bytes,
    gemm_op_runs,
    is_traced_gemm,
    stream_op_runs,
)
from accelsim.trace_steady import (
    FIRST_INSTANCES,
    STEADY_REFRESH_LAST,
    PeriodicRegion,
    RegionReuse,
    op_keys,
    periodic_regions,
    settled_cycle,
)
from accelsim.traffic import Traffic
from accelsim.vocabulary import MEMORY, MODES, SHARED

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
#: Coalesced mode merges GEMM k-steps and stream chunks into runs of this many first-level
#: blocks (fewer runs to generate; the cache kernel walks a run's blocks itself).
COALESCED_RUN_BLOCKS = 4
#: Alignment of tensor base addresses in exact mode (coalesced mode aligns to a block).
EXACT_ALIGN_BYTES = 4096
#: Chunk of a streaming op whose mapping gives none (a GEMM traced as a stream).
DEFAULT_CHUNK_BYTES = 65536
#: Ops outside periodic regions go to the cache kernel at most this many at a time.
CALL_MAX_OPS = 256
#: Coalesced mode: at most this many runs per op (k-steps are merged further beyond it).
COALESCED_MAX_RUNS_PER_OP = 4_000_000
LAYOUTS = ("tile_major", "row_major")


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------
@attrs.frozen(eq=False)
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
    regions: tuple[RegionReuse, ...] = ()

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
# the step
# --------------------------------------------------------------------------------------------
@attrs.frozen
class TraceGranularity:
    """How finely the step is simulated: the levels the kernel sees (lines or blocks), their
    granules, tensor alignment, and how far runs are merged."""

    sim_levels: tuple[CacheLevelSpec, ...]
    granules: tuple[int, ...]
    align_bytes: int
    min_run_bytes: int
    max_runs_per_op: int
    notes: tuple[str, ...]


def choose_mode(levels: Sequence[CacheLevelSpec], n_units: int, est_bytes: float,
                mode: str) -> tuple[str, tuple[str, ...]]:
    """The mode to run (``auto`` resolved) and the note saying why; refuses an ``exact`` step
    beyond `EXACT_MAX_LINE_ACCESSES` or `EXACT_MAX_STATE_BYTES`."""
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    notes: tuple[str, ...] = ()
    lines = est_bytes / levels[0].line_bytes
    state = state_bytes(levels, n_units)
    if mode == "auto":
        mode = ("exact" if lines <= AUTO_EXACT_MAX_LINE_ACCESSES
                and state <= AUTO_EXACT_MAX_STATE_BYTES else "coalesced")
        if mode == "coalesced":
            notes = (f"auto chose coalesced: ~{lines:.3g} line accesses (exact limit "
                     f"{AUTO_EXACT_MAX_LINE_ACCESSES:.3g}), {state / 2**20:.0f} MiB line state "
                     f"(limit {AUTO_EXACT_MAX_STATE_BYTES / 2**20:.0f} MiB)",)
    if mode == "exact" and lines > EXACT_MAX_LINE_ACCESSES:
        raise ValueError(
            f"mode='exact' would simulate ~{lines:.3g} line "
            f"accesses (limit {EXACT_MAX_LINE_ACCESSES:.3g}, hours of work and a trace larger "
            "than memory); use mode='coalesced' or 'auto'")
    if mode == "exact" and state > EXACT_MAX_STATE_BYTES:
        raise ValueError(
            f"mode='exact' needs {state / 2**30:.1f} GiB of line state "
            f"for {[lv.name for lv in levels]} (limit {EXACT_MAX_STATE_BYTES / 2**30:.0f} GiB); "
            "use mode='coalesced' or 'auto'")
    return mode, notes


def granularity(levels: Sequence[CacheLevelSpec], n_units: int, exact: bool, layout: str,
                est: np.ndarray, regions: Sequence[PeriodicRegion], min_blocks: int,
                max_accesses: float) -> TraceGranularity:
    """Lines in exact mode; in coalesced mode blocks sized for the bytes expected to be
    simulated (`coarsening.step_block_bytes`)."""
    if exact:
        return TraceGranularity(
            sim_levels=tuple(levels), granules=tuple(lv.line_bytes for lv in levels),
            align_bytes=EXACT_ALIGN_BYTES, min_run_bytes=0, max_runs_per_op=1 << 62,
            notes=(f"exact: line-granular caches, every op simulated; tensors stored "
                   f"{'tile by tile' if layout == 'tile_major' else 'row-major'}",))
    # bytes expected to be simulated: regions are assumed to settle after 3 instances + 1
    sim_est = est.copy()
    for r in regions:
        sim_est[r.start + 4 * r.period:r.start + (r.repeats - 1) * r.period] = 0.0
    granules = step_block_bytes(levels, float(sim_est.sum()), min_blocks, max_accesses, n_units)
    sim_levels = coarse_levels(levels, granules)
    min_run = granules[0] * COALESCED_RUN_BLOCKS
    desc = ", ".join(f"{lv.name} {_fmt_bytes(b)} ({sl.capacity_bytes // b} blocks, "
                     f"{'fully associative' if sl.ways == 0 else f'{sl.ways}-way'})"
                     for lv, b, sl in zip(levels, granules, sim_levels, strict=True))
    notes = [f"coalesced cache blocks: {desc}"]
    few = [f"{sl.name} ({sl.capacity_bytes // b} blocks)"
           for sl, b in zip(sim_levels, granules, strict=True)
           if sl.capacity_bytes // b < min_blocks]
    if few:
        notes.append(f"blocks forced coarse by the state limit: {', '.join(few)} keep "
                     f"fewer than {min_blocks} blocks; their hit rates are rough")
    notes.append("tensors stored tile by tile; GEMM k-steps and stream chunks merged "
                 f"to runs of at least {_fmt_bytes(min_run)}")
    return TraceGranularity(
        sim_levels=tuple(sim_levels), granules=tuple(granules),
        align_bytes=max(EXACT_ALIGN_BYTES, granules[0]), min_run_bytes=min_run,
        max_runs_per_op=COALESCED_MAX_RUNS_PER_OP, notes=tuple(notes))


class _StepCounters:
    """The cache state of one step and the per-op results it fills in, op range by op range."""

    def __init__(self, hw: HardwareSpec, graph: OpGraph, mappings: Sequence[Mapping],
                 gran: TraceGranularity, layout: str, exact: bool) -> None:
        levels = hw.caches
        self.graph, self.mappings, self.gran, self.exact = graph, mappings, gran, exact
        self.tile_major = layout == "tile_major"
        tensor_layout = allocate(graph, gran.align_bytes)
        self.bases = tensor_layout.bases
        self.scratch = align_up(tensor_layout.size_bytes, gran.align_bytes)
        self.hier = CacheHierarchy(gran.sim_levels, hw.compute.units)
        n_ops = len(graph.ops)
        self.counters = np.zeros((n_ops, len(levels) + 1, N_COUNTERS), np.int64)
        self.req_bytes = np.zeros(n_ops, np.float64)
        self.line_touched = np.zeros(n_ops, np.float64)
        self.simulated = np.zeros(n_ops, bool)
        self.line0 = levels[0].line_bytes
        sim0 = gran.sim_levels[0]
        self.shared0 = sim0.capacity_bytes if sim0.sharing == SHARED else 0
        self.templates = RunTemplates()  # tile runs of GEMMs seen, for the same shapes again

    def runs_of(self, i: int) -> OpRuns:
        op, mp = self.graph.ops[i], self.mappings[i]
        g = self.gran
        if isinstance(mp, GemmMapping) and is_traced_gemm(op, mp):
            return gemm_op_runs(self.graph, op, mp, self.bases, tile_major=self.tile_major,
                                min_run_bytes=g.min_run_bytes, max_runs=g.max_runs_per_op,
                                scratch_base=self.scratch, shared_bytes=self.shared0,
                                granule=g.granules[0], line_bytes=self.line0,
                                templates=self.templates)
        chunk = (mp.chunk_bytes if isinstance(mp, StreamMapping) else 0) or DEFAULT_CHUNK_BYTES
        return stream_op_runs(self.graph, op, mp, self.bases, max(chunk, g.min_run_bytes),
                              g.max_runs_per_op, g.granules[0], self.scratch)

    def simulate(self, lo: int, hi: int) -> None:
        """Ops [lo, hi) through the cache state, in one kernel call."""
        rs = [self.runs_of(i) for i in range(lo, hi)]
        starts = np.zeros(hi - lo + 1, np.int64)
        starts[1:] = np.cumsum([r.addr.shape[0] for r in rs])
        trace = Trace(addr=np.concatenate([r.addr for r in rs]),
                      nbytes=np.concatenate([r.nbytes for r in rs]),
                      is_write=np.concatenate([r.is_write for r in rs]),
                      unit=np.concatenate([r.unit for r in rs]), op_start=starts)
        c = self.counters
        c[lo:hi] = self.hier.run(trace).data
        hit_blocks = np.array([r.hit_blocks for r in rs], np.int64)
        c[lo:hi, 0, ACCESSES] += hit_blocks
        c[lo:hi, 0, HITS] += hit_blocks
        self.req_bytes[lo:hi] = [float(r.nbytes.sum()) + r.hit_bytes for r in rs]
        if not self.exact:
            line0 = self.line0
            self.line_touched[lo:hi] = [
                (blocks_covered(r.addr, r.nbytes, line0) + r.hit_lines) * line0 for r in rs]
        self.simulated[lo:hi] = True

    def reuse(self, lo: int, src: int, n: int) -> None:
        """Ops [lo, lo + n) take the results of ops [src, src + n) (a settled instance)."""
        for arr in (self.counters, self.req_bytes, self.line_touched):
            arr[lo:lo + n] = arr[src:src + n]

    def run_region(self, r: PeriodicRegion, refresh_last: bool) -> RegionReuse:
        """Instances of a periodic region until they repeat (`settled_cycle`: the last one
        agrees with the one before, or with the one before that in a cycle of two); later
        instances reuse the counters of the settled instance of their phase (the last one is
        simulated again if `refresh_last`)."""
        s, p, reps = r.start, r.period, r.repeats
        settled: RegionReuse | None = None
        done_upto = 0  # instances [0, done_upto) have been simulated
        copied = 0
        for j in range(reps):
            lo = s + j * p
            if settled is not None and j >= done_upto and (j < reps - 1 or not refresh_last):
                self.reuse(lo, s + settled.source(j) * p, p)
                copied += 1
                continue
            if j >= done_upto:
                # the first instances rarely repeat (cold cache): one kernel call for two
                done_upto = min(reps, j + (FIRST_INSTANCES if j == 0 else 1))
                self.simulate(lo, s + done_upto * p)
            if settled is None and j >= 1:
                q = settled_cycle(self.counters, s, p, j)
                if q:
                    settled = RegionReuse(region=r, settled_at=j, reused_instances=0, cycle=q)
        if settled is None:
            return RegionReuse(region=r, settled_at=None, reused_instances=copied)
        return attrs.evolve(settled, reused_instances=copied)


def step_traffic(hw: HardwareSpec, graph: OpGraph, mappings: Sequence[Mapping], dtype: str,
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
    if len(mappings) != len(graph.ops):
        raise ValueError(f"mappings: expected one per op ({len(graph.ops)}), got {len(mappings)}")
    if not hw.caches:
        raise ValueError("hw.caches: expected at least one cache level")
    levels = list(hw.caches)
    n_units = hw.compute.units
    est = estimated_bytes(graph, mappings, dtype)
    mode, mode_notes = choose_mode(levels, n_units, float(est.sum()), mode)
    exact = mode == "exact"
    if steady_state is None:
        steady_state = not exact
    regions = periodic_regions(op_keys(graph)) if steady_state else []
    if layout is None:
        layout = "tile_major"
    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected 'row_major' or 'tile_major', got {layout!r}")
    gran = granularity(levels, n_units, exact, layout, est, regions, min_blocks, max_accesses)
    shortcuts = [*mode_notes, *gran.notes]

    state = _StepCounters(hw, graph, mappings, gran, layout, exact)
    n_ops = len(graph.ops)
    reuses: list[RegionReuse] = []
    i = 0
    r_iter = iter(regions)
    region = next(r_iter, None)
    while i < n_ops:
        if region is not None and i == region.start:
            reuses.append(state.run_region(region, refresh_last))
            i = region.stop
            region = next(r_iter, None)
            continue
        hi = min(n_ops, i + CALL_MAX_OPS, region.start if region is not None else n_ops)
        # keep one call's trace bounded: at most CALL_MAX_GRANULES first-level granules
        stop = i + 1 + int(np.searchsorted(np.cumsum(est[i + 1:hi]),
                                           CALL_MAX_GRANULES * gran.granules[0] - est[i],
                                           side="right"))
        hi = max(i + 1, min(hi, stop))
        state.simulate(i, hi)
        i = hi

    reused = [r for r in reuses if r.reused_instances]
    skipped_total = sum(r.reused_instances * r.region.period for r in reused)
    if skipped_total:
        big = max(reused, key=lambda r: r.region.period * r.reused_instances)
        assert big.settled_at is not None
        shortcuts.append(
            f"steady state: {skipped_total} of {n_ops} ops reuse the counters of an earlier "
            f"repetition ({len(reused)} periodic regions; the largest, {big.region.repeats} x "
            f"{big.region.period} ops from {graph.ops[big.region.start].name!r}, settled after "
            f"{big.settled_at + 1}"
            + (f" in a cycle of {big.cycle}" if big.cycle > 1 else "")
            + "); their accesses are not applied to the cache state")

    counters = state.counters
    if exact:
        rho = np.ones(n_ops)
    else:
        block_touched = counters[:, 0, ACCESSES] * float(gran.granules[0])
        rho = np.divide(state.line_touched, block_touched, out=np.ones(n_ops),
                        where=block_touched > 0)
    level_bytes = _level_bytes(counters, state.req_bytes, rho)
    touched = {t for op in graph.ops for t in (*op.inputs, *op.outputs)}
    unique = int(sum(graph.tensors[t].nbytes for t in touched))
    return StepTraffic(
        mode_used=mode, level_names=(*[lv.name for lv in levels], MEMORY),
        granule_bytes=tuple(gran.granules), counters=counters, level_bytes=level_bytes,
        simulated=state.simulated, shortcuts=tuple(shortcuts), unique_bytes=unique,
        regions=tuple(reuses),
        simulated_accesses=int(counters[state.simulated, 0, ACCESSES].sum()),
        wall_s=time.perf_counter() - t0)


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
    "LAYOUTS", "StepTraffic", "TraceGranularity", "choose_mode", "granularity", "step_traffic",
]
