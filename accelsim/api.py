"""The simulation pipeline behind `accelsim.simulate`: graph, replay, footprint, time to train."""

from __future__ import annotations

import math

import attrs
import numpy as np

from accelsim.errors import AccelsimError
from accelsim.estimate import WorkLimits, check_arguments
from accelsim.fusion import fuse_gemm_accumulate
from accelsim.graph import Op, OpGraph
from accelsim.hardware import HardwareSpec
from accelsim.report import OpResult, Report, Summary
from accelsim.workload import WorkloadSpec

MODES = ("auto", "exact", "coalesced")


def simulate(hw: HardwareSpec, wl: WorkloadSpec, *, chips: int = 1, mode: str = "auto",
             graph: OpGraph | None = None, limits: WorkLimits | None = None) -> Report:
    """Replay one training step of `wl` on `chips` data-parallel copies of `hw`.

    Refuses (`WorkTooLarge`) before any work beyond `limits` (see `accelsim.estimate`)."""
    graph = check_arguments(hw, wl, chips=chips, mode=mode, limits=limits, graph=graph)
    from accelsim.replay import simulate_step

    executed, n_fused = fuse_gemm_accumulate(graph)
    step = simulate_step(hw, executed, wl.precision, chips=chips, mode=mode)
    ops = tuple(_op_result(executed.ops[r.op_id], r) for r in step.ops)
    summary = summarize(hw, wl, graph, executed, ops, step.step_time_s, chips)
    notes = tuple(step.notes)
    if n_fused:
        notes += (f"executed graph: {n_fused} gradient accumulations run as GEMM epilogues "
                  "(C += A@B, as cuBLAS/cuDNN do); FLOPs and bytes_accessed are the "
                  "algorithmic (unfused) counts",)
    return Report(hardware=hw.name, workload=wl.name, ops=ops, summary=summary, notes=notes)


def _shape(op: Op) -> str:
    if op.kind == "gemm":
        batch = f"{op.batch}x" if op.batch > 1 else ""
        return f"{batch}[{op.m}x{op.k}]@[{op.k}x{op.n}]" + ("+C" if op.accumulate else "")
    return f"{op.flops:.3g} FLOP"


def _op_result(op: Op, run) -> OpResult:
    return OpResult(name=op.name, kind=op.kind, phase=op.phase, shape=_shape(op), flops=op.flops,
                    start_s=run.start_s, end_s=run.end_s, time_s=run.end_s - run.start_s,
                    bytes=dict(run.level_bytes), hit_rate=dict(run.hit_rate), bound=run.bound,
                    units=run.units)


def summarize(hw: HardwareSpec, wl: WorkloadSpec, graph: OpGraph, executed: OpGraph,
              ops: tuple[OpResult, ...], step_time_s: float, chips: int) -> Summary:
    """Whole-step numbers: utilization, hit rates, footprint against capacity, epoch time.

    FLOPs and bytes are the algorithmic graph's (the paper's definitions); the footprint is
    the executed graph's, which is what the chip's memory must hold.
    """
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
    by_role = executed.peak_footprint_by_role()
    footprint = sum(by_role.values())  # the peak is the sum of what is live at it
    capacity = hw.memory.capacity_bytes
    per_example = getattr(wl.model, "samples_per_example", lambda: 1)()
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
        epoch_time_s=steps * step_time_s if steps is not None else None)


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


def miss_ratio_curve(hw: HardwareSpec, wl: WorkloadSpec, *, granule_bytes: int | None = None,
                     limits: WorkLimits | None = None) -> MissRatioCurve:
    """One pass over the executed step's address stream: hit rate at every cache size.

    The stream is what the caches see from the compute units (tiles as `mapping` chooses them
    for `hw`), at granules of `granule_bytes` (default: the largest of the chip's line size
    and the power of two that keeps the pass under `MRC_MAX_ACCESSES` accesses).
    """
    from accelsim.kernels.trace import expand_lines
    from accelsim.mapping import map_graph
    from accelsim.mrc import curve_from_line_ids
    from accelsim.trace import estimated_bytes, iter_step_runs

    graph, _ = fuse_gemm_accumulate(check_arguments(hw, wl, mode="coalesced", limits=limits))
    mappings = map_graph(hw, graph, wl.precision)
    line = hw.caches[0].line_bytes if hw.caches else 128
    if granule_bytes is None:
        total = float(np.sum(estimated_bytes(graph, mappings, wl.precision)))
        granule_bytes = max(line, 1 << max(0, math.ceil(math.log2(max(1.0, total / MRC_MAX_ACCESSES)))))
    elif (isinstance(granule_bytes, bool) or not isinstance(granule_bytes, int)
          or granule_bytes < 1 or granule_bytes & (granule_bytes - 1)):
        raise AccelsimError(f"granule: expected a power of two number of bytes, got {granule_bytes}")
    ids = np.concatenate([expand_lines(r.addr, r.nbytes, granule_bytes) for r in
                          iter_step_runs(graph, mappings, wl.precision, granule_bytes)])
    capacity, hit = curve_from_line_ids(ids, granule_bytes)
    return MissRatioCurve(workload=wl.name, hardware=hw.name, granule_bytes=granule_bytes,
                          accesses=int(ids.shape[0]), capacity_bytes=capacity, hit_rate=hit)
