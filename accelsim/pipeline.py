"""The simulation pipeline, one named stage per step of the data flow (docs/architecture.md):

    build -> fuse -> map -> trace -> time -> replay -> summarize

Every entry point (`api.simulate`, `api.miss_ratio_curve`, the benchmarks, sweeps through
`api`) runs these stages and nothing else prepares a step. Each stage takes and returns typed,
frozen records, so a stage can be inserted between two others: a partition pass that splits
the executed graph into one graph per chip goes between `fuse` and `map_step`, and each chip's
graph then runs through `simulate_step` (map -> trace -> time -> replay) unchanged.

numba and simpy load on the first call of `trace_step` and `replay_step`, not on import.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import attrs

from accelsim import progress
from accelsim.fusion import execute
from accelsim.graph import Op, OpGraph
from accelsim.hardware import HardwareSpec
from accelsim.mapping import GemmMapping, Mapping, padding_waste
from accelsim.models import build_graph, family_of
from accelsim.report import OpResult, Report, Summary
from accelsim.reuse import run_stage
from accelsim.timing import OpTiming, analytic_traffic, level_bandwidths, map_graph, op_timing
from accelsim.traffic import Traffic
from accelsim.workload import WorkloadSpec

if TYPE_CHECKING:
    from collections.abc import Sequence

    from accelsim.replay import Collective, OpRecord, StepResult
    from accelsim.trace import StepTraffic


#: What `progress.stage` is told as a step runs (the bar of `accelsim run`): the
#: command building the graph, then the stages here, in order.
STAGE_NAMES = ("build", "fuse", "map", "trace", "time", "replay", "summarize", "cost")


# --------------------------------------------------------------------------------------------
# records passed between stages
# --------------------------------------------------------------------------------------------
@attrs.frozen(kw_only=True, eq=False)
class PreparedStep:
    """`build` + `fuse`: the algorithmic graph (what the paper counts) and the executed graph
    (what a kernel library runs, what the chip's caches and memory see)."""

    workload: WorkloadSpec
    graph: OpGraph
    executed: OpGraph
    fused_accumulations: int
    #: per-timestep weight-gradient GEMMs removed by running each recurrent weight gradient as
    #: one GEMM over all timesteps (workload `recurrent_execution: library`)
    stacked_weight_gradients: int = 0
    #: recurrent layers whose input GEMMs run as one GEMM before the loop
    hoisted_input_gemms: int = 0

    @property
    def notes(self) -> tuple[str, ...]:
        notes = []
        stacked = [op for op in self.executed.ops if op.k_segments > 1]
        if stacked:
            notes.append(
                f"executed graph: recurrent layers as a kernel library runs them "
                f"(recurrent_execution: library): {len(stacked)} recurrent weight gradients "
                f"each run as one GEMM over all timesteps (cuDNN style), replacing "
                f"{self.stacked_weight_gradients + len(stacked)} per-timestep GEMMs; "
                f"{self.hoisted_input_gemms} recurrent layers' input GEMMs hoisted out of the "
                "loop (one GEMM over all timesteps; each timestep multiplies only the "
                "recurrent state)")
        elif self.workload.recurrent_execution == "framework":
            notes.append("executed graph: recurrent weight gradients accumulate per timestep "
                         "(recurrent_execution: framework)")
        if self.fused_accumulations:
            notes.append(f"executed graph: {self.fused_accumulations} gradient accumulations "
                         "run as GEMM epilogues (C += A@B, as cuBLAS/cuDNN do)")
        if notes:
            notes.append("FLOPs and bytes_accessed are the algorithmic (unfused) counts")
        return tuple(notes)


@attrs.frozen(kw_only=True, eq=False)
class StepMapping:
    """`map_step`: one mapping per op of the executed graph, in op order."""

    dtype: str
    mappings: tuple[Mapping, ...]


@attrs.frozen(kw_only=True, eq=False)
class TracedStep:
    """`trace_step`: what each op moves through each level (from the cache simulation, or the
    analytic model on a chip without cache levels)."""

    traffics: tuple[Traffic, ...]
    #: per op and cache level; NaN where the op never reached the level
    hit_rates: tuple[dict[str, float], ...]
    #: the cache simulation's counters (None without cache levels)
    cache: StepTraffic | None
    notes: tuple[str, ...]


@attrs.frozen(kw_only=True, eq=False)
class StepTiming:
    """`time_step`: each op's isolated timing (alone on the chip), in op order."""

    timings: tuple[OpTiming, ...]


@attrs.frozen(kw_only=True, eq=False)
class SimulatedStep:
    """`simulate_step`: one chip's step through map, trace, time and replay."""

    graph: OpGraph
    mapping: StepMapping
    traffic: TracedStep
    timing: StepTiming
    replayed: StepResult
    wall_s: dict[str, float]

    @property
    def ops(self) -> list[OpRecord]:
        return self.replayed.ops

    @property
    def step_time_s(self) -> float:
        return self.replayed.step_time_s

    @property
    def notes(self) -> tuple[str, ...]:
        """Shortcuts and assumptions behind the numbers, for the report."""
        return self.traffic.notes + self.replayed.notes


# --------------------------------------------------------------------------------------------
# stages
# --------------------------------------------------------------------------------------------
def build(wl: WorkloadSpec) -> OpGraph:
    """The algorithmic graph of one training step (forward, backward, update)."""
    return build_graph(wl)


def fuse(wl: WorkloadSpec, graph: OpGraph) -> PreparedStep:
    """The executed graph (`fusion.execute`): recurrent weight gradients as one GEMM over all
    timesteps and input GEMMs hoisted out of the loop (unless the workload asks for
    framework-style execution), then the remaining gradient accumulations folded into GEMM
    epilogues."""
    progress.stage("fuse")
    # sweep reuse: one executed graph per (graph, what `_execute` reads of wl)
    executed, removed = run_stage(_execute, wl, graph)
    return PreparedStep(workload=wl, graph=graph, executed=executed,
                        fused_accumulations=removed["fused_accumulations"],
                        stacked_weight_gradients=removed["stacked_weight_gradients"],
                        hoisted_input_gemms=removed["hoisted_input_gemms"])


def _execute(wl: WorkloadSpec, graph: OpGraph) -> tuple[OpGraph, dict[str, int]]:
    return execute(graph, wl.recurrent_execution)


def prepare(wl: WorkloadSpec, graph: OpGraph | None = None) -> PreparedStep:
    """`build` (unless `graph` is given) then `fuse`."""
    return fuse(wl, graph if graph is not None else build(wl))


def map_step(hw: HardwareSpec, graph: OpGraph, dtype: str) -> StepMapping:
    """Each op's tiling or chunking on `hw`, chosen by the timing model (`timing.map_op`)."""
    return StepMapping(dtype=dtype, mappings=tuple(map_graph(hw, graph, dtype)))


def trace_step(hw: HardwareSpec, graph: OpGraph, mapping: StepMapping, mode: str = "auto",
               **trace_options: Any) -> TracedStep:
    """Bytes per level of every op: the whole step through one cache state
    (`trace.step_traffic`; `mode` and `trace_options` go there), or the analytic model when
    the chip has no cache level."""
    dtype = mapping.dtype
    if hw.caches:
        from accelsim.trace import step_traffic  # loads numba

        cache = step_traffic(hw, graph, mapping.mappings, dtype, mode, **trace_options)
        names = cache.cache_names
        hit_rates = tuple({n: float(r[j]) for j, n in enumerate(names)}
                          for r in cache.hit_rates())
        return TracedStep(traffics=tuple(cache.traffics()), hit_rates=hit_rates, cache=cache,
                          notes=tuple(cache.shortcuts))
    traffics = tuple(analytic_traffic(hw, op, mp, dtype, nbytes=graph.op_bytes(op))
                     for op, mp in zip(graph.ops, mapping.mappings, strict=True))
    return TracedStep(traffics=traffics, hit_rates=tuple(dict(t.hit_rate) for t in traffics),
                      cache=None, notes=("no cache levels: analytic traffic",))


def time_step(hw: HardwareSpec, graph: OpGraph, mapping: StepMapping,
              traffic: TracedStep) -> StepTiming:
    """Each op's isolated time, computed once per (signature, bytes, traffic): repeated
    timesteps share one `OpTiming`."""
    memo: dict[tuple, OpTiming] = {}
    timings = []
    for op, mp, tr in zip(graph.ops, mapping.mappings, traffic.traffics, strict=True):
        key = (op.signature, graph.op_bytes(op), tuple(sorted(tr.level_bytes.items())))
        if key not in memo:
            memo[key] = op_timing(hw, op, mp, tr, mapping.dtype)
        timings.append(memo[key])
    return StepTiming(timings=tuple(timings))


def replay_step(hw: HardwareSpec, graph: OpGraph, timing: StepTiming, traffic: TracedStep,
                chips: int = 1, collectives: Sequence[Collective] = ()) -> StepResult:
    """The discrete-event replay of the timed ops and the chip's `collectives` (`replay.replay`;
    loads simpy). `chips` only labels the result: a plan's communication (data-parallel
    all-reduces included) is built by `accelsim.parallel` from the plan and passed here."""
    from accelsim.replay import replay

    return replay(hw, graph, timing.timings, collectives=collectives, chips=chips,
                  hit_rates=traffic.hit_rates)


def simulate_step(hw: HardwareSpec, graph: OpGraph, dtype: str, chips: int = 1,
                  mode: str = "auto", collectives: Sequence[Collective] = (),
                  **trace_options: Any) -> SimulatedStep:
    """map -> trace -> time -> replay of one chip's executed graph, with each stage's wall time
    (`chips`, `collectives`: as `replay_step`)."""
    walls: dict[str, float] = {}
    t0 = time.perf_counter()
    progress.stage("map")
    mapping = map_step(hw, graph, dtype)
    walls["mapping"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    progress.stage("trace")
    # --- sweep reuse: inside `reuse.reusing(memo)` (a sweep worker), a point whose
    # spec agrees with an earlier one on every field the trace stage read reuses its result
    traffic = run_stage(trace_step, hw, graph, mapping, mode, **trace_options)
    # --- end sweep reuse
    walls["trace"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    progress.stage("time")
    timing = time_step(hw, graph, mapping, traffic)
    walls["timing"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    progress.stage("replay")
    replayed = replay_step(hw, graph, timing, traffic, chips, collectives)
    walls["replay"] = time.perf_counter() - t0
    walls["total"] = sum(walls.values())
    return SimulatedStep(graph=graph, mapping=mapping, traffic=traffic, timing=timing,
                         replayed=replayed, wall_s=walls)


def summarize(hw: HardwareSpec, prepared: PreparedStep, step: SimulatedStep,
              chips: int) -> Report:
    """The report: each op as replayed, whole-step numbers, and every note behind them."""
    progress.stage("summarize")
    executed = prepared.executed
    ops = tuple(op_result(executed.ops[r.index], r, hw, step.mapping.mappings[r.index],
                          step.mapping.dtype) for r in step.ops)
    summary = step_summary(hw, prepared, ops, step.step_time_s, chips)
    notes = step.notes + prepared.notes + _precision_notes(hw, prepared.workload.precision)
    wl = prepared.workload
    return Report(hardware=hw.name, workload=wl.name, ops=ops, summary=summary, notes=notes)


def run(hw: HardwareSpec, wl: WorkloadSpec, *, chips: int = 1, mode: str = "auto",
        graph: OpGraph | None = None) -> Report:
    """All stages: build -> fuse -> map -> trace -> time -> replay -> summarize -> cost."""
    return run_prepared(hw, prepare(wl, graph), chips=chips, mode=mode)


def run_prepared(hw: HardwareSpec, prepared: PreparedStep, *, chips: int = 1,
                 mode: str = "auto") -> Report:
    """The stages after build + fuse: map -> trace -> time -> replay -> summarize -> cost."""
    wl = prepared.workload
    step = simulate_step(hw, prepared.executed, wl.precision, chips=chips, mode=mode)
    return estimate_cost(hw, wl, summarize(hw, prepared, step, chips))


def estimate_cost(hw: HardwareSpec, wl: WorkloadSpec, report: Report) -> Report:
    """Energy, die area and cost from the finished report and the spec's `technology`."""
    from accelsim.energy import with_estimate

    progress.stage("cost")
    return with_estimate(report, hw, wl.precision)


# --------------------------------------------------------------------------------------------
# summarize's parts
# --------------------------------------------------------------------------------------------
def _shape(op: Op) -> str:
    if op.kind == "gemm":
        batch = f"{op.batch_count}x" if op.batch_count > 1 else ""
        return f"{batch}[{op.m}x{op.k}]@[{op.k}x{op.n}]" + ("+C" if op.accumulate else "")
    return f"{op.flops:.3g} FLOP"


def op_result(op: Op, run: OpRecord, hw: HardwareSpec | None = None, mp: Mapping | None = None,
              dtype: str = "") -> OpResult:
    """The report's record of one replayed op; with the chip and the op's mapping, a GEMM's
    tile, loop order, split-K and padding waste too."""
    result = OpResult(name=op.name, kind=op.kind, phase=op.phase, shape=_shape(op),
                      flops=op.flops, start_s=run.start_s, end_s=run.end_s,
                      time_s=run.duration_s, bytes=dict(run.level_bytes),
                      hit_rate=dict(run.hit_rate), bound=run.bound, units=run.units)
    if hw is not None and isinstance(mp, GemmMapping):
        result = attrs.evolve(result, tile=f"{mp.tile_m}x{mp.tile_n}x{mp.tile_k}",
                              loop_order="rows" if mp.loop_order == 0 else "columns",
                              split_k=mp.split_k, padding_waste=padding_waste(hw, op, mp, dtype))
    return result


def _precision_notes(hw: HardwareSpec, dtype: str) -> tuple[str, ...]:
    """Say so when the chip has no matrix pipe for the workload's precision."""
    if dtype in hw.compute.matrix:
        return ()
    pipe = hw.compute.pipe(dtype)
    used = next(name for name, p in hw.compute.matrix.items() if p is pipe)
    return (f"{hw.name} has no {dtype} matrix pipe: GEMMs run on its {used} pipe "
            f"(peak {hw.compute.peak_flop_rate(dtype):.3g} FLOP/s)",)


def step_summary(hw: HardwareSpec, prepared: PreparedStep, ops: tuple[OpResult, ...],
                 step_time_s: float, chips: int) -> Summary:
    """Whole-step numbers: utilization, hit rates, footprint against capacity, epoch time.

    FLOPs and bytes are the algorithmic graph's (the paper's definitions); the footprint is
    the executed graph's, which is what the chip's memory must hold.
    """
    wl, graph = prepared.workload, prepared.graph
    peak = hw.compute.peak_flop_rate(wl.precision)
    level_bytes: dict[str, float] = {}
    bound_time: dict[str, float] = {}
    for op in ops:
        for lv, b in op.bytes.items():
            level_bytes[lv] = level_bytes.get(lv, 0.0) + b
        bound_time[op.bound] = bound_time.get(op.bound, 0.0) + op.time_s
    hit_rate = {}
    for lv in (c.name for c in hw.caches):
        # Each op's rate weighted by the bytes it asked of the level (as StepTraffic does).
        served = [(op.hit_rate.get(lv), op.bytes.get(lv, 0.0)) for op in ops]
        total = sum(b for r, b in served if r is not None and not math.isnan(r))
        hit_rate[lv] = (sum(r * b for r, b in served if r is not None and not math.isnan(r))
                        / total) if total > 0 else float("nan")
    by_role = prepared.executed.peak_footprint_by_role()
    footprint = sum(by_role.values())  # the peak is the sum of what is live at it
    capacity = hw.memory.capacity_bytes
    per_example = family_of(wl.model).samples_per_example(wl.model)
    samples_per_step = float(wl.subbatch * per_example * chips)
    steps = wl.dataset.samples / samples_per_step if wl.dataset is not None else None
    return Summary(
        params=graph.params, flops=graph.flops, bytes_accessed=float(graph.bytes_accessed),
        step_time_s=step_time_s, peak_flop_rate=peak,
        flop_utilization=graph.flops / (step_time_s * peak) if step_time_s > 0 else 0.0,
        hit_rate=hit_rate, level_bytes=level_bytes, bound_time_s=bound_time,
        footprint_bytes=footprint, footprint_by_role=by_role,
        algorithmic_footprint_bytes=graph.minimal_footprint_bytes(),
        capacity_bytes=capacity, shortfall_bytes=max(0, footprint - capacity),
        chips_needed=max(1, math.ceil(footprint / capacity)), chips=chips,
        samples_per_step=samples_per_step, steps_per_epoch=steps,
        epoch_time_s=steps * step_time_s if steps is not None else None,
        # the chip's limits and the dataset's unit, for the views (plots, timeline, text)
        compute_units=hw.compute.units,
        level_bandwidth_bytes_per_s=level_bandwidths(hw, hw.compute.units),
        sample_unit=wl.dataset.unit if wl.dataset is not None else "samples")


__all__ = [
    "PreparedStep", "SimulatedStep", "StepMapping", "StepTiming", "TracedStep", "build", "fuse",
    "map_step", "op_result", "prepare", "replay_step", "run", "run_prepared", "simulate_step", "step_summary", "summarize",
    "time_step", "trace_step",
]
