"""Cache hierarchy: Python face of ``accelsim.kernels.cache`` (state, traces, counters).

The kernel only sees numpy arrays; this module turns level descriptions into the kernel's
configuration table, owns the persistent state (so a training step can be replayed op by op
with weights staying resident) and names the counters. Semantics: ``docs/cache.md``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np

from accelsim.hardware import CacheLevelSpec
from accelsim.kernels import cache as _k
from accelsim.kernels.cache import (
    ACCESSES,
    BYTES_READ_FROM_BELOW,
    BYTES_WRITTEN_BELOW,
    COUNTER_NAMES,
    EVICTIONS,
    FETCHES,
    HITS,
    INVALIDATIONS,
    MISSES,
    N_COUNTERS,
    WRITE_ACCESSES,
    WRITEBACKS,
    WRITES_BELOW,
)
from accelsim.vocabulary import (
    INCLUSION_POLICIES,
    MEMORY,
    PRIVATE,
    REPLACEMENT_POLICIES,
    SHARING_POLICIES,
    WRITE_POLICIES,
)

__all__ = [
    "ACCESSES", "BYTES_READ_FROM_BELOW", "BYTES_WRITTEN_BELOW", "COUNTER_NAMES", "EVICTIONS",
    "FETCHES", "HITS", "INVALIDATIONS", "MISSES", "N_COUNTERS", "WRITE_ACCESSES", "WRITEBACKS",
    "WRITES_BELOW", "POLICY_CODES", "CacheCounters", "CacheHierarchy", "Trace",
    "DEFAULT_MAX_THREADS", "PARALLEL_MIN_OVERLAP", "PARALLEL_MIN_RUNS", "PARALLEL_RETRY_CALLS",
    "THREADS_ENV", "default_threads", "partitions", "usable_cpus",
]

#: Environment variable: threads a `CacheHierarchy` may use (a number, or "auto" for every
#: CPU this process may run on); unset: `DEFAULT_MAX_THREADS` at most.
THREADS_ENV = "ACCELSIM_THREADS"
#: Threads by default when the process may run on that many CPUs. A split is work-conserving
#: (the partitions' CPU time sums to 1.03-1.11x the whole trace's on the headline's largest
#: traces) and bit-exact, so it pays whenever a second core is free and costs a few percent
#: when none is; more than two was never measured (benchmarks/RESULTS.md, issue 11).
DEFAULT_MAX_THREADS = 2
#: Traces of fewer runs than this run on one thread: measured on the headline's largest GEMM
#: trace, starting and joining a thread and the skipped granules cost ~0.5-0.7 ms per call,
#: as much as half the work of 8192 runs, ~10 % of 32768 runs' (benchmarks/RESULTS.md).
PARALLEL_MIN_RUNS = 32768
#: A split call whose threads' CPU time summed to less than this multiple of its wall time
#: did not get a second core (on a shared machine two threads, like two processes, may each
#: get half a CPU): the next `PARALLEL_RETRY_CALLS` long traces then run on one thread.
PARALLEL_MIN_OVERLAP = 1.3
PARALLEL_RETRY_CALLS = 8
#: A partition chunk spans up to 2^this lines of the largest line, so that each thread owns
#: runs of adjacent sets (fewer set boundaries shared between threads in the host's caches).
PARTITION_MAX_EXTRA_SHIFT = 2


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    """Threads for the cache simulation: ``$ACCELSIM_THREADS`` (a number, or ``auto`` for
    the usable CPUs), else the usable CPUs up to `DEFAULT_MAX_THREADS`."""
    env = os.environ.get(THREADS_ENV, "").strip()
    if env and env != "auto":
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"{THREADS_ENV}: expected a whole number >= 1, got {env!r}") from None
        if n < 1:
            raise ValueError(f"{THREADS_ENV}: expected a whole number >= 1, got {env!r}")
        return n
    if not env:
        return min(DEFAULT_MAX_THREADS, usable_cpus())
    return usable_cpus()


def partitions(cfg: np.ndarray, threads: int) -> tuple[int, int]:
    """(partitions, shift): the most set partitions (a power of two <= `threads`) such that
    partition ``(addr >> shift) % partitions`` is a function of the set index at every level.

    ``shift`` is at least the largest line's (so a line of any level lies in one partition
    chunk), and up to `PARTITION_MAX_EXTRA_SHIFT` more where the sets allow; level L's set
    index determines the partition iff ``partitions << (shift - shift_L)`` divides its set
    count. Fully associative levels, and the random policy (one RNG stream for all sets,
    so the order of draws matters), allow one partition only.
    """
    shift = int(cfg[:, _k.CFG_SHIFT].max())
    if (cfg[:, _k.CFG_POLICY] == _k.POLICY_RANDOM).any():
        return 1, shift
    n = 1
    while n * 2 <= threads:
        n *= 2
    while n > 1:
        for extra in range(PARTITION_MAX_EXTRA_SHIFT, -1, -1):
            if all(int(cfg[i, _k.CFG_SETS]) % (n << (shift + extra - int(cfg[i, _k.CFG_SHIFT])))
                   == 0 for i in range(cfg.shape[0])):
                return n, shift + extra
        n //= 2
    return 1, shift

#: Kernel code of each replacement policy (`vocabulary.REPLACEMENT_POLICIES` names them).
POLICY_CODES = {
    "lru": _k.POLICY_LRU,
    "fifo": _k.POLICY_FIFO,
    "mru": _k.POLICY_MRU,
    "random": _k.POLICY_RANDOM,
    "plru": _k.POLICY_PLRU,
    "lfu": _k.POLICY_LFU,
}
assert tuple(POLICY_CODES) == REPLACEMENT_POLICIES


def _is_pow2(x: int) -> bool:
    return x > 0 and x & (x - 1) == 0


def _level_geometry(level: CacheLevelSpec, line_bytes: int) -> tuple[int, int, int]:
    """(lines, sets, ways) of one instance, validating the level."""
    name = level.name
    if not _is_pow2(line_bytes):
        raise ValueError(f"{name}.line_bytes: expected a power of two, got {line_bytes}")
    lines = level.capacity_bytes // line_bytes
    if lines < 1:
        raise ValueError(f"{name}.capacity_bytes: expected at least one line of {line_bytes} B, "
                         f"got {level.capacity_bytes}")
    ways = lines if level.ways == 0 else level.ways
    if ways < 1 or lines % ways:
        raise ValueError(f"{name}.ways: expected 0 or a divisor of {lines} lines, got {level.ways}")
    if level.replacement not in POLICY_CODES:
        raise ValueError(f"{name}.replacement: expected one of {list(REPLACEMENT_POLICIES)}, "
                         f"got {level.replacement!r}")
    if level.replacement == "plru" and not _is_pow2(ways):
        raise ValueError(f"{name}.ways: plru needs a power-of-two associativity, got {ways}")
    if level.write_policy not in WRITE_POLICIES:
        raise ValueError(f"{name}.write_policy: expected one of {WRITE_POLICIES}, "
                         f"got {level.write_policy!r}")
    if level.inclusion not in INCLUSION_POLICIES:
        raise ValueError(f"{name}.inclusion: expected one of {INCLUSION_POLICIES}, "
                         f"got {level.inclusion!r}")
    if level.sharing not in SHARING_POLICIES:
        raise ValueError(f"{name}.sharing: expected one of {SHARING_POLICIES}, "
                         f"got {level.sharing!r}")
    return lines, lines // ways, ways


@attrs.frozen(kw_only=True, eq=False)
class Trace:
    """Byte runs of a sequence of ops: run ``r`` belongs to op ``o`` iff
    ``op_start[o] <= r < op_start[o + 1]``."""

    addr: np.ndarray = attrs.field(converter=lambda a: np.ascontiguousarray(a, np.int64))
    nbytes: np.ndarray = attrs.field(converter=lambda a: np.ascontiguousarray(a, np.int64))
    is_write: np.ndarray = attrs.field(converter=lambda a: np.ascontiguousarray(a, np.uint8))
    unit: np.ndarray = attrs.field(converter=lambda a: np.ascontiguousarray(a, np.int32))
    op_start: np.ndarray = attrs.field(converter=lambda a: np.ascontiguousarray(a, np.int64))

    def __attrs_post_init__(self) -> None:
        n = self.addr.shape[0]
        for name in ("nbytes", "is_write", "unit"):
            arr = getattr(self, name)
            if arr.ndim != 1 or arr.shape[0] != n:
                raise ValueError(f"{name}: expected shape ({n},), got {arr.shape}")
        s = self.op_start
        if s.ndim != 1 or s.shape[0] < 1 or s[0] != 0 or s[-1] != n or np.any(np.diff(s) < 0):
            raise ValueError("op_start: expected a non-decreasing CSR index from 0 to n_runs")
        if n and (self.addr.min() < 0 or self.unit.min() < 0):
            raise ValueError("addr and unit must be non-negative")

    @classmethod
    def single_op(cls, addr: np.ndarray, nbytes: np.ndarray, is_write: np.ndarray | None = None,
                  unit: np.ndarray | None = None) -> Trace:
        """One op holding all runs (reads on unit 0 unless given)."""
        addr = np.asarray(addr, np.int64)
        n = addr.shape[0]
        nbytes = np.asarray(nbytes, np.int64)
        if nbytes.ndim == 0:
            nbytes = np.full(n, nbytes, np.int64)
        return cls(addr=addr, nbytes=nbytes,
                   is_write=np.zeros(n, np.uint8) if is_write is None else is_write,
                   unit=np.zeros(n, np.int32) if unit is None else unit,
                   op_start=np.array([0, n], np.int64))

    @classmethod
    def from_runs(cls, runs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> Trace:
        """One op from an ``(addr, nbytes, is_write, unit)`` tuple as the trace kernels emit."""
        addr, nbytes, is_write, unit = runs
        return cls.single_op(addr, nbytes, is_write, unit)

    @classmethod
    def concat(cls, traces: Sequence[Trace]) -> Trace:
        """Ops of all traces, in order."""
        if not traces:
            return cls(addr=[], nbytes=[], is_write=[], unit=[], op_start=[0])
        starts = [np.zeros(1, np.int64)]
        offset = 0
        for t in traces:
            starts.append(t.op_start[1:] + offset)
            offset += t.n_runs
        return cls(addr=np.concatenate([t.addr for t in traces]),
                   nbytes=np.concatenate([t.nbytes for t in traces]),
                   is_write=np.concatenate([t.is_write for t in traces]),
                   unit=np.concatenate([t.unit for t in traces]),
                   op_start=np.concatenate(starts))

    @property
    def n_runs(self) -> int:
        return int(self.addr.shape[0])

    @property
    def n_ops(self) -> int:
        return int(self.op_start.shape[0] - 1)

    @property
    def total_bytes(self) -> int:
        return int(self.nbytes.sum())

    def line_accesses(self, line_bytes: int) -> int:
        """Number of line granules the runs touch (the level-0 access count)."""
        first = self.addr // line_bytes
        last = (self.addr + np.maximum(self.nbytes, 1) - 1) // line_bytes
        return int(np.where(self.nbytes > 0, last - first + 1, 0).sum())


class CacheCounters:
    """Per-op, per-level counters: ``data[op, level, counter]``; the last level is memory."""

    def __init__(self, data: np.ndarray, level_names: Sequence[str]) -> None:
        self.data = data
        self.level_names = tuple(level_names) + (MEMORY,)
        if data.ndim != 3 or data.shape[1:] != (len(self.level_names), N_COUNTERS):
            raise ValueError(f"data: expected (n_ops, {len(self.level_names)}, {N_COUNTERS}), "
                             f"got {data.shape}")

    @property
    def n_ops(self) -> int:
        return int(self.data.shape[0])

    def _lv(self, level: int | str) -> int:
        if isinstance(level, str):
            try:
                return self.level_names.index(level)
            except ValueError:
                raise KeyError(f"level {level!r} not in {self.level_names}") from None
        return int(level)

    def counter(self, level: int | str, counter: int) -> np.ndarray:
        """Per-op values of one counter (index constant from this module) at one level."""
        return self.data[:, self._lv(level), counter]

    def accesses(self, level: int | str) -> np.ndarray:
        return self.counter(level, ACCESSES)

    def hits(self, level: int | str) -> np.ndarray:
        return self.counter(level, HITS)

    def misses(self, level: int | str) -> np.ndarray:
        return self.counter(level, MISSES)

    def hit_rate(self, level: int | str) -> np.ndarray:
        """Per-op hits / accesses; NaN for ops that did not reach the level."""
        acc = self.accesses(level).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(acc > 0, self.hits(level) / acc, np.nan)

    def total_hit_rate(self, level: int | str) -> float:
        """Hits / accesses over all ops (NaN if the level saw no access)."""
        acc = int(self.accesses(level).sum())
        return float(self.hits(level).sum()) / acc if acc else float("nan")

    @property
    def bytes_from_memory(self) -> np.ndarray:
        """Per-op bytes read from memory."""
        return self.data[:, -1, BYTES_READ_FROM_BELOW]

    @property
    def bytes_to_memory(self) -> np.ndarray:
        """Per-op bytes written to memory."""
        return self.data[:, -1, BYTES_WRITTEN_BELOW]

    def total(self) -> CacheCounters:
        """All ops summed into a single op row."""
        return CacheCounters(self.data.sum(axis=0, keepdims=True), self.level_names[:-1])

    def as_dict(self) -> dict[str, dict[str, int]]:
        """Totals as {level: {counter name: value}} (for reports and debugging)."""
        tot = self.data.sum(axis=0)
        return {name: {c: int(tot[i, j]) for j, c in enumerate(COUNTER_NAMES)}
                for i, name in enumerate(self.level_names)}

    def __repr__(self) -> str:
        return f"CacheCounters(n_ops={self.n_ops}, levels={self.level_names})"


class CacheHierarchy:
    """Stateful multi-level cache; ``run`` can be called repeatedly (state persists).

    ``line_bytes_override`` replaces each level's line size (coalesced mode: one granule per
    block, capacity/block lines, the same ways when they still divide the lines, else fully
    associative). ``compat_pycachesim`` switches store semantics to pycachesim's (docs).
    ``threads`` (default `default_threads`) splits a long trace by set partition
    (`partitions`): each partition runs on its own Python thread in a GIL-free kernel, on the
    shared state, and the counters are summed -- identical to one thread (property-tested).
    numba's own thread pool never starts (its OpenMP layer breaks processes forked after it
    started, e.g. multiprocessing sweeps); a thread here lives for one `run` call only.
    """

    def __init__(self, levels: Sequence[CacheLevelSpec], n_units: int, seed: int = 0,
                 line_bytes_override: Sequence[int] | None = None,
                 compat_pycachesim: bool = False, threads: int | None = None) -> None:
        if not levels:
            raise ValueError("levels: expected at least one cache level")
        if n_units < 1:
            raise ValueError(f"n_units: expected >= 1, got {n_units}")
        if line_bytes_override is not None and len(line_bytes_override) != len(levels):
            raise ValueError("line_bytes_override: expected one line size per level")
        self.levels = tuple(levels)
        self.n_units = int(n_units)
        self.seed = int(seed)
        self.compat = 1 if compat_pycachesim else 0
        n = len(levels)
        cfg = np.zeros((n, _k.N_CFG), np.int64)
        offset = 0
        prev_line = 0
        prev_private = True
        self.line_bytes: list[int] = []
        self.lines_per_instance: list[int] = []
        for i, lvl in enumerate(levels):
            line_bytes = int(line_bytes_override[i] if line_bytes_override is not None
                             else lvl.line_bytes)
            if line_bytes_override is not None:
                lines = lvl.capacity_bytes // line_bytes
                ways = lvl.ways if lvl.ways and lines >= lvl.ways and lines % lvl.ways == 0 else 0
                lvl = attrs.evolve(lvl, line_bytes=line_bytes, ways=ways)
            lines, sets, ways = _level_geometry(lvl, line_bytes)
            if line_bytes < prev_line:
                raise ValueError(f"{lvl.name}.line_bytes: must be >= the level above "
                                 f"({prev_line}), got {line_bytes}")
            private = lvl.sharing == PRIVATE
            if private and not prev_private:
                raise ValueError(f"{lvl.name}.sharing: a private level below a shared one "
                                 "is not supported")
            prev_line, prev_private = line_bytes, private
            n_inst = self.n_units if private else 1
            cfg[i] = 0
            cfg[i, _k.CFG_SHIFT] = line_bytes.bit_length() - 1
            cfg[i, _k.CFG_SETS] = sets
            cfg[i, _k.CFG_WAYS] = ways
            cfg[i, _k.CFG_POLICY] = POLICY_CODES[lvl.replacement]
            cfg[i, _k.CFG_WRITE_BACK] = lvl.write_policy == "write_back"
            cfg[i, _k.CFG_WRITE_ALLOCATE] = bool(lvl.write_allocate)
            cfg[i, _k.CFG_INCLUSIVE] = lvl.inclusion == "inclusive"
            cfg[i, _k.CFG_PRIVATE] = private
            cfg[i, _k.CFG_TAG_OFFSET] = offset
            cfg[i, _k.CFG_SET_MASK] = sets - 1 if _is_pow2(sets) else -1
            offset += n_inst * lines
            self.line_bytes.append(line_bytes)
            self.lines_per_instance.append(lines)
        self.cfg = cfg
        self.recip = 1.0 / cfg[:, _k.CFG_SETS].astype(np.float64)
        self._n_slots = offset
        self._needs_meta = bool(np.isin(cfg[:, _k.CFG_POLICY],
                                        [_k.POLICY_PLRU, _k.POLICY_LFU]).any())
        self.level_names = tuple(lvl.name for lvl in levels)
        # read-only traces through LRU, non-inclusive levels take the stack-free kernel
        # (identical results) as long as no line is dirty
        self._lru_reads = bool((cfg[:, _k.CFG_POLICY] == _k.POLICY_LRU).all()
                               and (cfg[:, _k.CFG_INCLUSIVE] == 0).all())
        # ... and any trace when they are also write-back and write-allocate
        self._lru_wb = bool(self._lru_reads and self.compat == 0
                            and (cfg[:, _k.CFG_WRITE_BACK] == 1).all()
                            and (cfg[:, _k.CFG_WRITE_ALLOCATE] == 1).all())
        self.threads = default_threads() if threads is None else int(threads)
        if self.threads < 1:
            raise ValueError(f"threads: expected >= 1, got {threads}")
        self.n_partitions, self._part_shift = partitions(cfg, self.threads)
        self.parallel_min_runs = PARALLEL_MIN_RUNS
        self.parallel_retry_calls = PARALLEL_RETRY_CALLS
        self.serial_calls_left = 0  # long traces to run on one thread before splitting again
        self.last_overlap = float("nan")  # threads' CPU s / wall s of the last split call
        self.reset()

    @classmethod
    def with_block_bytes(cls, levels: Sequence[CacheLevelSpec], n_units: int,
                         block_bytes: int | Sequence[int], seed: int = 0) -> CacheHierarchy:
        """The same capacities simulated with block granules (coalesced mode); an int uses
        one block size for every level (recommended, see docs/cache.md)."""
        if isinstance(block_bytes, int):
            block_bytes = [block_bytes] * len(levels)
        return cls(levels, n_units, seed=seed, line_bytes_override=list(block_bytes))

    @property
    def state_bytes(self) -> int:
        """Memory held by the simulator state: 8 B per line, 16 B with plru or lfu."""
        return self.slots.nbytes + self.meta.nbytes

    def reset(self) -> None:
        """Empty every level and reseed the random policy."""
        # sets start on 64-byte boundaries, so that two threads never share a host cache line
        buf = np.full(self._n_slots + 8, -1, np.int64)
        skip = (-buf.ctypes.data % 64) // 8
        self.slots = buf[skip:skip + self._n_slots]
        self.meta = np.zeros(self._n_slots if self._needs_meta else 0, np.int64)
        # xorshift64 needs a non-zero state
        self.rng = np.array([(self.seed * 0x9E3779B97F4A7C15 + 0x2545F4914F6CDD1D) % 2**64 or 1],
                            np.uint64)
        self._clean = True  # no dirty line in the state (reads keep it so, flush restores it)

    def run(self, trace: Trace) -> CacheCounters:
        """Replay ``trace`` on the current state; counters per op and level."""
        if trace.n_runs and int(trace.unit.max()) >= self.n_units:
            raise ValueError(f"trace.unit: expected units < {self.n_units}, "
                             f"got {int(trace.unit.max())}")
        parts = 1
        if self.n_partitions > 1 and trace.n_runs >= self.parallel_min_runs:
            if self.serial_calls_left > 0:
                self.serial_calls_left -= 1
            else:
                parts = self.n_partitions
        reads_only = not trace.is_write.any()
        if self._lru_reads and self._clean and reads_only:
            # no write, no dirty victim, no back-invalidation: the stack-free kernel, which on
            # one thread beats the general kernel on two
            args: tuple[Any, ...] = (trace.addr, trace.nbytes, trace.unit, trace.op_start,
                                     self.cfg, self.recip, self.slots)
            if parts > 1:
                return self._in_partitions(_k.simulate_lru_reads_part, args, parts)
            return CacheCounters(_k.simulate_lru_reads(*args), self.level_names)
        self._clean = self._clean and reads_only
        if self._lru_wb:
            args = (trace.addr, trace.nbytes, trace.is_write, trace.unit, trace.op_start,
                    self.cfg, self.recip, self.slots)
            if parts > 1:
                return self._in_partitions(_k.simulate_lru_wb_part, args, parts)
            return CacheCounters(_k.simulate_lru_wb(*args), self.level_names)
        args = (trace.addr, trace.nbytes, trace.is_write, trace.unit, trace.op_start, self.cfg,
                self.recip, self.slots, self.meta, self.rng, self.n_units, self.compat)
        if parts > 1:
            return self._in_partitions(_k.simulate_part, args, parts)
        return CacheCounters(_k.simulate(*args), self.level_names)

    def _in_partitions(self, kernel: Callable[..., np.ndarray], args: tuple[Any, ...],
                       parts: int) -> CacheCounters:
        """`kernel` once per set partition, partitions 1.. on threads of their own (the
        kernels release the GIL), partition 0 on this one; counters summed. The threads' CPU
        time against the call's wall time tells whether a second core was there
        (`note_overlap`)."""
        results: list[np.ndarray | None] = [None] * parts
        cpu_s = [0.0] * parts
        errors: list[BaseException] = []

        def work(part: int) -> None:
            try:
                c0 = time.thread_time()
                results[part] = kernel(*args, self._part_shift, parts - 1, part)
                cpu_s[part] = time.thread_time() - c0
            except BaseException as exc:  # re-raised on the calling thread
                errors.append(exc)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=work, args=(p,), daemon=True)
                   for p in range(1, parts)]
        for t in threads:
            t.start()
        work(0)
        for t in threads:
            t.join()
        wall_s = time.perf_counter() - t0
        if errors:
            raise errors[0]
        self.note_overlap(sum(cpu_s), wall_s)
        out = results[0]
        assert out is not None
        for r in results[1:]:
            assert r is not None
            out += r
        return CacheCounters(out, self.level_names)

    def note_overlap(self, cpu_s: float, wall_s: float) -> None:
        """Record a split call's threads' CPU time and wall time; below `PARALLEL_MIN_OVERLAP`
        the threads took turns on one core, and the next `PARALLEL_RETRY_CALLS` long traces
        run on one thread (then splitting is tried again). Results never depend on it."""
        self.last_overlap = cpu_s / wall_s if wall_s > 0 else float("nan")
        if self.last_overlap < PARALLEL_MIN_OVERLAP:
            self.serial_calls_left = self.parallel_retry_calls

    def flush(self) -> CacheCounters:
        """Write all dirty lines back to memory (one op row); lines stay resident."""
        out = _k.flush(self.cfg, self.recip, self.slots, self.meta, self.rng, self.n_units,
                       self.compat)
        self._clean = True
        return CacheCounters(out, self.level_names)

    def _level_slots(self, i: int) -> np.ndarray:
        off = int(self.cfg[i, _k.CFG_TAG_OFFSET])
        n_inst = self.n_units if self.cfg[i, _k.CFG_PRIVATE] else 1
        return self.slots[off:off + n_inst * self.lines_per_instance[i]]

    def occupancy_lines(self) -> list[int]:
        """Valid lines per level, summed over private instances."""
        return [int((self._level_slots(i) >= 0).sum()) for i in range(len(self.levels))]

    def resident_lines(self, level: int, instance: int = 0) -> set[int]:
        """Line indices (address // line_bytes) held by one instance of a level."""
        slots = self._level_slots(level).reshape(-1, self.lines_per_instance[level])[instance]
        return {int(e) >> 1 for e in slots if e >= 0}

    def dirty_lines(self) -> list[int]:
        """Dirty lines per level, summed over instances."""
        return [int(((s >= 0) & (s & 1 == 1)).sum())
                for s in (self._level_slots(i) for i in range(len(self.levels)))]
