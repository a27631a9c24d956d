"""The public entry points: `simulate(hw, wl)` and `miss_ratio_curve(hw, wl)`.

Both run the stages of `accelsim.pipeline`; this module checks arguments and shapes results.
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from accelsim import pipeline, progress
from accelsim.errors import AccelsimError
from accelsim.estimate import WorkLimits, check_arguments
from accelsim.graph import OpGraph
from accelsim.hardware import HardwareSpec
from accelsim.plan import ParallelPlan, data_parallel, plan_violation
from accelsim.report import Report
from accelsim.workload import WorkloadSpec


def simulate(hw: HardwareSpec, wl: WorkloadSpec, *, chips: int = 1, mode: str = "auto",
             graph: OpGraph | None = None, plan: ParallelPlan | str | None = None,
             force: bool = False, limits: WorkLimits | None = None) -> Report:
    """Replay one training step of `wl` on `chips` data-parallel copies of `hw`.

    A step whose footprint exceeds the chip's memory is reported with its shortfall and not
    timed, unless `force`. With a `plan` (a `ParallelPlan`, or text such as "dp=512,pp=4"),
    or the workload's `parallel:` section, or `chips` > 1, the step is partitioned over the chips and each
    distinct stage replayed; a plan whose stages do not fit in memory is not timed unless
    `force` (accelsim.parallel). Refuses (`WorkTooLarge`) before any work beyond `limits`
    (see `accelsim.estimate`).
    """
    graph = check_arguments(hw, wl, chips=chips, mode=mode, limits=limits, graph=graph)
    # a plan (or chips > 1): partition, replay each distinct stage graph, compose
    resolved = resolve_plan(wl, chips, plan)
    if resolved is not None:
        from accelsim.parallel import simulate_plan

        report = simulate_plan(hw, wl, resolved, mode=mode, force=force, graph=graph)
        return pipeline.estimate_cost(hw, wl, report)
    prepared = pipeline.prepare(wl, graph)
    overfull = sum(prepared.executed.peak_footprint_by_role().values()) > hw.memory.capacity_bytes
    if overfull and not force:  # capacity enforced: reported with its shortfall, not timed
        from accelsim.parallel import simulate_plan

        return pipeline.estimate_cost(hw, wl, simulate_plan(hw, wl, ParallelPlan(data=1), mode=mode,
                                                            graph=prepared.graph))
    report = pipeline.run_prepared(hw, prepared, chips=chips, mode=mode)
    if overfull:  # forced past the capacity check
        report = attrs.evolve(report, notes=(
            "DOES NOT FIT in memory: timed anyway (--force / force=True); this step cannot run "
            "on one chip",) + report.notes)
    return report


def resolve_plan(wl: WorkloadSpec, chips: int, plan: ParallelPlan | str | None,
                 source: str = "plan") -> ParallelPlan | None:
    """The plan to run (data degree filled in from `chips`), or None for one plain chip."""
    if isinstance(plan, str):
        from accelsim.spec import plan_from_option

        source = f"--plan {plan}"
        plan = plan_from_option(plan)
    elif plan is not None and not isinstance(plan, ParallelPlan):
        raise AccelsimError(f"plan: expected a ParallelPlan or text such as 'dp=4,pp=2', "
                            f"got {type(plan).__name__}")
    if plan is None and wl.parallel is not None:
        plan, source = wl.parallel, f"{wl.name}: parallel"
    if plan is None:
        return data_parallel(chips) if chips > 1 else None
    explicit = chips if chips > 1 else None  # 1 is the default: the plan says how many
    resolved = plan.resolve(explicit, source)
    violation = plan_violation(resolved, wl.model)
    if violation is not None:
        raise AccelsimError(f"{source}: {violation.path().removeprefix('parallel.')}: expected "
                            f"{violation.expected}, got {violation.got}")
    return resolved


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
    from accelsim.mrc import curve_from_line_ids
    from accelsim.trace_runs import estimated_bytes, iter_step_runs

    graph = pipeline.prepare(wl, check_arguments(hw, wl, mode="coalesced", limits=limits)).executed
    progress.stage("map")  # the bar of `accelsim mrc`
    mappings = pipeline.map_step(hw, graph, wl.precision).mappings
    line = hw.caches[0].line_bytes if hw.caches else 128
    if granule_bytes is None:
        total = float(np.sum(estimated_bytes(graph, mappings, wl.precision)))
        granule_bytes = max(line, 1 << max(0, math.ceil(math.log2(max(1.0, total / MRC_MAX_ACCESSES)))))
    elif (isinstance(granule_bytes, bool) or not isinstance(granule_bytes, int)
          or granule_bytes < 1 or granule_bytes & (granule_bytes - 1)):
        raise AccelsimError(f"granule: expected a power of two number of bytes, got {granule_bytes}")
    progress.stage("addresses")
    ids = np.concatenate([expand_lines(r.addr, r.nbytes, granule_bytes) for r in
                          iter_step_runs(graph, mappings, wl.precision, granule_bytes)])
    progress.stage("curve")
    capacity, hit = curve_from_line_ids(ids, granule_bytes)
    return MissRatioCurve(workload=wl.name, hardware=hw.name, granule_bytes=granule_bytes,
                          accesses=int(ids.shape[0]), capacity_bytes=capacity, hit_rate=hit)
