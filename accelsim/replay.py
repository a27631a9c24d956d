"""Discrete-event replay of one training step on a chip (and its data-parallel peers).

The only module that imports simpy. Resources: the chip's compute units (a pool; an op holds
`units_used` of them from launch to end), each cache level and HBM as bandwidth servers shared
fairly by the transfers in flight (max-min fair share, each transfer capped at the bandwidth its
op could use alone), and the chip's links for its collectives.

An op starts when its predecessors (`OpGraph.predecessors`) have finished and enough units are
free (greedy list scheduling in program order: a later ready op may start in units an earlier
op cannot use yet). It then runs exactly the structure of `accelsim.timing`:

    launch_s + latency_s, then per wave: wave_overhead_s, then compute overlapped with the
    transfer of the wave's bytes through every level

with waves batched into at most `max_wave_groups` groups (events stay per group, never per
cache line), so an op alone takes exactly its `OpTiming.isolated_time_s`, and concurrent ops slow each
other down only where they share a level or HBM.

Collectives (issue 8): each `Collective` the chip takes part in (a data-parallel gradient
all-reduce, a tensor-parallel gather, a pipeline send, priced by `accelsim.collectives`) starts
when the op it follows ends, waits its latency, then moves its bytes on the links and reads and
writes its HBM bytes at once: alone it takes exactly its alpha-beta time; beside compute it
shares HBM with the ops (and they with it), and collectives share the links. The ops it gates
(the weight's update, the consumers of a gathered tensor) wait for it.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import simpy

from accelsim.graph import OpGraph
from accelsim.hardware import HardwareSpec
from accelsim.timing import OpTiming, level_bandwidths
from accelsim.vocabulary import COMPUTE, LINKS, MEMORY

#: Waves of one op are simulated in at most this many groups (events scale with groups).
MAX_WAVE_GROUPS = 8
#: Transfers this close to done (seconds at their rate) count as done (float round-off).
_EPS_S = 1e-15


# --------------------------------------------------------------------------------------------
# bandwidth server
# --------------------------------------------------------------------------------------------
class FairShareServer:
    """A bandwidth shared max-min fairly by the transfers in flight.

    Each transfer has a cap (the rate its op reaches alone); the capacity left by capped
    transfers is split among the others. Rates are recomputed when a transfer starts or ends,
    so the number of events is proportional to transfers, not to bytes.
    """

    def __init__(self, env: simpy.Environment, name: str, rate_bytes_per_s: float) -> None:
        self.env = env
        self.name = name
        self.rate = float(rate_bytes_per_s)
        self._flows: dict[int, list[Any]] = {}  # id -> [remaining, cap, event, rate, nbytes]
        self._next_id = 0
        self._last = 0.0
        self._version = 0
        self.busy_s = 0.0
        self.bytes = 0.0

    def transfer(self, nbytes: float, cap_bytes_per_s: float | None = None) -> simpy.Event:
        """Event that fires when `nbytes` have moved at this transfer's share of the rate."""
        ev = self.env.event()
        cap = self.rate if cap_bytes_per_s is None else min(float(cap_bytes_per_s), self.rate)
        if nbytes <= 0:
            ev.succeed()
            return ev
        if cap <= 0:
            raise ValueError(f"{self.name}: transfer of {nbytes} B at zero bandwidth")
        self._advance()
        self.bytes += nbytes
        self._flows[self._next_id] = [float(nbytes), cap, ev, 0.0, float(nbytes)]
        self._next_id += 1
        self._reschedule()
        return ev

    def _advance(self) -> None:
        now = self.env.now
        dt = now - self._last
        if dt > 0 and self._flows:
            self.busy_s += dt
            for f in self._flows.values():
                f[0] -= f[3] * dt
        self._last = now

    def _reschedule(self) -> None:
        flows = sorted(self._flows.values(), key=lambda f: f[1])
        left = self.rate
        n = len(flows)
        for i, f in enumerate(flows):
            f[3] = min(f[1], left / (n - i))
            left -= f[3]
        self._version += 1
        if not flows:
            return
        dt = max(0.0, min(f[0] / f[3] for f in flows))
        version = self._version
        self.env.timeout(dt).callbacks.append(lambda _ev: self._wake(version))

    def _wake(self, version: int) -> None:
        if version != self._version:
            return
        self._advance()
        done = [k for k, f in self._flows.items()
                if f[0] <= max(1e-9 * f[4], f[3] * _EPS_S * max(1.0, self.env.now))]
        if not done:  # round-off left a sliver: finish the nearest
            done = [min(self._flows, key=lambda k: self._flows[k][0] / self._flows[k][3])]
        for k in done:
            self._flows.pop(k)[2].succeed()
        self._reschedule()


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------
@attrs.frozen
class OpRecord:
    """One op in the replayed timeline."""

    index: int
    name: str
    kind: str
    phase: str
    start_s: float
    end_s: float
    isolated_time_s: float  # alone on the chip (OpTiming); duration_s is the contended time
    ready_s: float  # when its predecessors (and all-reduce) were done
    bound: str
    units: int
    flops: float
    level_bytes: dict[str, float]
    hit_rate: dict[str, float] = attrs.field(factory=dict)  # NaN: the op never reached it

    @property
    def op_id(self) -> int:
        return self.index

    @property
    def duration_s(self) -> float:
        """Contended time: from start to end in the replayed step."""
        return self.end_s - self.start_s


@attrs.frozen
class Collective:
    """One collective (or pipeline send) a chip takes part in, priced before the replay.

    It starts when op `after_op` ends (-1: when the first op of `phase` starts), waits
    `latency_s`, then moves `link_s` worth of its links' bandwidth and `hbm_bytes` through HBM
    at once (alone: `latency_s + link_s`); the ops in `gates` wait for it.
    """

    name: str
    kind: str            # all_reduce, reduce_scatter, all_gather, send
    group: str           # data, tensor, shard, pipeline
    phase: str           # forward, backward
    after_op: int
    gates: tuple[int, ...]
    latency_s: float
    link_s: float        # the bandwidth term alone on the links
    hbm_bytes: float     # read and written in this chip's HBM

    @property
    def alone_s(self) -> float:
        """Its time with the links and HBM to itself."""
        return self.latency_s + self.link_s


@attrs.frozen
class CollectiveRecord:
    """One collective in the replayed timeline."""

    name: str
    kind: str
    group: str
    phase: str
    start_s: float
    end_s: float
    alone_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@attrs.frozen(eq=False)
class StepResult:
    """Replayed training step: timeline, step time, resource use, critical path."""

    ops: list[OpRecord]
    step_time_s: float
    chips: int
    busy_s: dict[str, float]
    utilization: dict[str, float]
    bytes_moved: dict[str, float]
    critical_path: list[int]
    collectives: list[CollectiveRecord] = attrs.field(factory=list)
    timings: list[OpTiming] = attrs.field(factory=list)
    wall_s: dict[str, float] = attrs.field(factory=dict)

    @property
    def notes(self) -> tuple[str, ...]:
        """Assumptions of the replay behind the numbers, for the report."""
        if self.collectives:
            groups = sorted({c.group for c in self.collectives})
            return (f"{len(self.collectives)} collectives ({', '.join(groups)}) replayed beside "
                    "the ops: each on the links and through HBM at once, sharing HBM with "
                    "compute; the ops that need their result wait for them",)
        return ()

    @property
    def critical_path_s(self) -> float:
        """Sum of the contended durations of the ops on the critical path."""
        return float(sum(self.ops[i].duration_s for i in self.critical_path))

    def summary(self) -> dict[str, Any]:
        return {"step_time_s": self.step_time_s, "chips": self.chips,
                "utilization": dict(self.utilization), "busy_s": dict(self.busy_s),
                "bytes": dict(self.bytes_moved), "critical_path_ops": len(self.critical_path),
                "wall_s": dict(self.wall_s)}


# --------------------------------------------------------------------------------------------
# replay
# --------------------------------------------------------------------------------------------
def _wave_groups(waves: int, max_groups: int) -> list[int]:
    g = max(1, min(waves, max_groups))
    base, extra = divmod(waves, g)
    return [base + (1 if i < extra else 0) for i in range(g)]


def link_rate_bytes_per_s(hw: HardwareSpec) -> float:
    """Bandwidth all of a chip's links achieve together (efficiency included)."""
    return hw.interconnect.bandwidth_bytes_per_s * hw.calibration.link_efficiency


def replay(hw: HardwareSpec, graph: OpGraph, timings: Sequence[OpTiming], *,
           collectives: Sequence[Collective] = (), chips: int = 1,
           max_wave_groups: int = MAX_WAVE_GROUPS,
           hit_rates: Sequence[dict[str, float]] | None = None) -> StepResult:
    """Replay the ops of `graph` with their isolated timings (`accelsim.timing.OpTiming`) and
    the `collectives` the chip takes part in.

    `chips` only labels the result (the chips the step's collectives span); `hit_rates` (one
    dict per op) are only carried into the records for the report.
    """
    t_wall = time.perf_counter()
    if len(timings) != len(graph.ops):
        raise ValueError(f"timings: expected one per op ({len(graph.ops)}), got {len(timings)}")
    if chips < 1:
        raise ValueError(f"chips: expected >= 1, got {chips}")
    n_ops = len(graph.ops)
    for c in collectives:
        if not -1 <= c.after_op < n_ops or any(not 0 <= g < n_ops for g in c.gates):
            raise ValueError(f"collective {c.name}: op indices outside the graph's {n_ops} ops")
    env = simpy.Environment()
    n = len(graph.ops)
    total_units = hw.compute.units
    # one server per level at the bandwidth all units together reach; an op's own cap is the
    # bandwidth its timing used (its share of the ports)
    rates: dict[str, float] = {}
    for t in timings:
        for name, bw in t.level_bandwidth.items():
            rates[name] = max(rates.get(name, 0.0), float(bw))
    if collectives and MEMORY not in rates:
        rates[MEMORY] = level_bandwidths(hw, hw.compute.units)[MEMORY]
    servers = {name: FairShareServer(env, name, r) for name, r in rates.items()}
    links = FairShareServer(env, LINKS, link_rate_bytes_per_s(hw)) if collectives else None

    preds = [graph.predecessors(op) for op in graph.ops]
    after: dict[int, list[int]] = {}       # op -> collectives that start when it ends
    at_phase: dict[str, list[int]] = {}    # phase -> collectives that start with it
    phases = {op.phase for op in graph.ops}
    pending = [len(p) for p in preds]
    for k, c in enumerate(collectives):
        if c.after_op >= 0:
            after.setdefault(c.after_op, []).append(k)
        elif c.phase in phases:
            at_phase.setdefault(c.phase, []).append(k)
        else:
            at_phase.setdefault("", []).append(k)  # no op of its phase: from the start
        for g in c.gates:
            pending[g] += 1
    succs: list[list[int]] = [[] for _ in range(n)]
    for i, ps in enumerate(preds):
        for p in ps:
            succs[p].append(i)
    need = [min(total_units, max(1, int(t.units_used))) for t in timings]
    ready_at = np.zeros(n)
    start = np.full(n, np.nan)
    end = np.full(n, np.nan)
    ready: list[int] = []
    free = [total_units]
    unit_busy = [0.0]  # unit-seconds
    records: list[CollectiveRecord] = []
    coll_end: dict[int, float] = {}
    cause = np.full(n, -1, np.int64)  # what the op waited for last (an op index, -1: none)

    def run_op(i: int) -> Any:
        t = timings[i]
        start[i] = env.now
        for k in at_phase.pop(graph.ops[i].phase, ()):
            env.process(run_collective(k, i))
        fixed = t.launch_s + t.latency_s
        if fixed > 0:
            yield env.timeout(fixed)
        waves = max(1, int(t.waves))
        overhead = t.wave_overhead_s
        for g in _wave_groups(waves, max_wave_groups):
            if overhead > 0:
                yield env.timeout(g * overhead)
            evs = [env.timeout(g * t.wave_compute_s)]
            for name, nbytes in t.transfer_bytes.items():
                if nbytes > 0:
                    evs.append(servers[name].transfer(nbytes * g / waves,
                                                      t.level_bandwidth[name]))
            yield simpy.AllOf(env, evs)
        end[i] = env.now
        free[0] += need[i]
        unit_busy[0] += need[i] * (end[i] - start[i])
        for s in succs[i]:
            _satisfy(s, i)
        for k in after.get(i, ()):
            env.process(run_collective(k, i))
        _dispatch(i)

    def run_collective(k: int, by: int) -> Any:
        c = collectives[k]
        t0 = env.now
        if c.latency_s > 0:
            yield env.timeout(c.latency_s)
        assert links is not None
        evs = []
        if c.link_s > 0:  # its share of the links, as bytes at the links' rate
            evs.append(links.transfer(c.link_s * links.rate, links.rate))
        if c.hbm_bytes > 0:  # alone, at the pace of its link transfer
            cap = c.hbm_bytes / c.link_s if c.link_s > 0 else None
            evs.append(servers[MEMORY].transfer(c.hbm_bytes, cap))
        if evs:
            yield simpy.AllOf(env, evs)
        records.append(CollectiveRecord(c.name, c.kind, c.group, c.phase, t0, env.now,
                                        c.alone_s))
        coll_end[k] = env.now
        for g in c.gates:
            _satisfy(g, by)
        if c.gates:
            _dispatch(by)

    def _satisfy(i: int, by: int) -> None:
        pending[i] -= 1
        if pending[i] == 0:
            ready_at[i] = env.now
            cause[i] = by  # the last dependency to finish
            heapq.heappush(ready, i)

    def _dispatch(by: int) -> None:
        if not ready or free[0] <= 0:
            return
        skipped = []
        while ready and free[0] > 0:
            i = heapq.heappop(ready)
            if need[i] <= free[0]:
                free[0] -= need[i]
                if env.now > ready_at[i]:
                    cause[i] = by  # waited for units: the op that freed them
                env.process(run_op(i))
            else:
                skipped.append(i)
        for i in skipped:
            heapq.heappush(ready, i)

    for i in range(n):
        if pending[i] == 0:
            heapq.heappush(ready, i)
    for k in at_phase.pop("", ()):
        env.process(run_collective(k, -1))
    _dispatch(-1)
    env.run()
    if np.isnan(end).any():
        stuck = [graph.ops[i].name for i in np.nonzero(np.isnan(end))[0][:5]]
        raise RuntimeError(f"replay deadlocked; ops never ran: {stuck}")

    step = float(max(end.max(initial=0.0), max(coll_end.values(), default=0.0)))
    ops = []
    for i, (op, t) in enumerate(zip(graph.ops, timings, strict=True)):
        ops.append(OpRecord(index=i, name=op.name, kind=op.kind, phase=op.phase,
                            start_s=float(start[i]), end_s=float(end[i]), isolated_time_s=float(t.isolated_time_s),
                            ready_s=float(ready_at[i]), bound=str(t.bound), units=need[i],
                            flops=float(op.flops), level_bytes=dict(t.level_bytes),
                            hit_rate=dict(hit_rates[i]) if hit_rates is not None else {}))
    busy = {COMPUTE: float(unit_busy[0] / total_units)}
    util = {COMPUTE: float(unit_busy[0] / total_units / step) if step > 0 else 0.0}
    moved = {}
    for name, srv in servers.items():
        busy[name] = srv.busy_s
        util[name] = srv.bytes / (srv.rate * step) if step > 0 and srv.rate > 0 else 0.0
        moved[name] = srv.bytes
    if links is not None:
        busy[LINKS] = links.busy_s
        util[LINKS] = links.bytes / (links.rate * step) if step > 0 else 0.0
        moved[LINKS] = links.bytes
    path = _critical_path(ops, cause)
    return StepResult(ops=ops, step_time_s=step, chips=chips, busy_s=busy, utilization=util,
                      bytes_moved=moved, critical_path=path,
                      collectives=sorted(records, key=lambda a: a.start_s),
                      timings=list(timings), wall_s={"replay": time.perf_counter() - t_wall})


def _critical_path(ops: Sequence[OpRecord], cause: np.ndarray) -> list[int]:
    """Ops from the first to the last to finish, each the one the next waited for last (a
    predecessor, the producer of an all-reduced gradient, or the op that freed its units)."""
    if not ops:
        return []
    i = max(range(len(ops)), key=lambda k: ops[k].end_s)
    path = [i]
    seen = {i}
    while cause[i] >= 0 and int(cause[i]) not in seen:
        i = int(cause[i])
        seen.add(i)
        path.append(i)
    return path[::-1]


def lower_bound_step_s(hw: HardwareSpec, graph: OpGraph, dtype: str) -> float:
    """No schedule beats max(FLOPs / peak, compulsory HBM bytes / peak bandwidth) of the step:
    GEMM FLOPs at the matrix peak plus other FLOPs at the vector peak, and every byte of a
    weight or input read once."""
    gemm = sum(op.flops for op in graph.ops if op.kind == "gemm")
    other = sum(op.flops for op in graph.ops if op.kind != "gemm")
    compute_s = (gemm / hw.compute.peak_flop_rate(dtype)
                 + other / hw.compute.vector_flop_rate)
    first = set()
    written: set[int] = set()
    for op in graph.ops:
        first |= {t for t in op.inputs if t not in written}
        written |= set(op.outputs)
    mem_s = sum(graph.tensors[t].nbytes for t in first) / hw.memory.bandwidth_bytes_per_s
    return max(compute_s, mem_s) if math.isfinite(compute_s) else mem_s


__all__ = [
    "Collective", "CollectiveRecord", "FairShareServer", "OpRecord", "StepResult",
    "link_rate_bytes_per_s", "lower_bound_step_s", "replay",
]
