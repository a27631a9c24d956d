"""`accelsim plan`: every way to split a workload over N chips, infeasible ones dropped, ranked.

Plans are enumerated from the divisors of the chip count: data x pipeline x tensor = N, at
most as many stages as the model has layers, a tensor degree that divides the model's hidden
size (and heads) and stays within `MAX_TENSOR` chips, with and without a sharded embedding
(the sharded variant only when the plain one does not fit: sharding moves rows to other
chips and adds collectives, it does not shorten the step). On a chip with a host link
(`interconnect.host_bandwidth`), a plan that does not fit is also tried with its optimizer
state, then its weights, offloaded to host memory. When no plan using all N chips fits, plans
that leave some idle are tried too (IDLE_CHIPS: pipeline x tensor not dividing N, as many
replicas as fit), and the idle chips are reported.
Each plan's stages are checked against memory before anything is timed; the feasible ones are
simulated with one replay per distinct stage graph (a stage graph does not depend on the data
degree, so plans that differ only in it reuse each other's replays).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from accelsim.errors import AccelsimError, LocatedError
from accelsim.fusion import fuse_gemm_accumulate
from accelsim.graph import OpGraph
from accelsim.hardware import HardwareSpec
from accelsim.models import build_graph
from accelsim.partition import embedding_tables, op_layers
from accelsim.plan import ParallelPlan, plan_violation
from accelsim.report import Report
from accelsim.workload import WorkloadSpec

#: Tensor parallelism beyond this many chips is not enumerated (its collectives sit on the
#: critical path of every layer; Megatron keeps it within a node of 8).
MAX_TENSOR = 8


#: IDLE_CHIPS: when no plan using all N chips fits, the planner also tries plans that leave
#: some idle (pp x tp not dividing N, data = N // (pp x tp)): a tensor degree that divides the
#: model but not N (the frontier NMT's hidden 22350 = 2 x 3 x 5^2 x 149 takes tp = 3, 5, 6 but
#: of the divisors of 64 only tp = 2), or a pipeline degree that does not divide N. The idle
#: chips are reported; an explicit plan must still use exactly `--chips` (issue 8, item 8).
#: Offload tried, in this order, for a plan that does not fit on a chip with a host link:
#: first the optimizer state (read once per step), then also the weights (streamed per layer).
OFFLOAD_STEPS = (("optimizer_state",), ("optimizer_state", "weights"))


def _fits(report: Report) -> bool:
    return bool(report.parallel is not None and report.parallel.fits)


def enumerate_plans(wl: WorkloadSpec, chips: int, *, n_layers: int,
                    has_embedding: bool, idle: bool = False) -> list[ParallelPlan]:
    """Every plan for exactly `chips` chips that the model can take.

    `idle`: instead, the plans that leave chips idle (IDLE_CHIPS): every pipeline x tensor
    that does not divide `chips`, with as many replicas as fit (data = chips // (pp x tp)).
    """
    plans = []
    for pp in range(1, min(n_layers, chips) + 1):
        if not idle and chips % pp:
            continue
        for tp in range(1, min(MAX_TENSOR, chips // pp) + 1):
            if (chips % (pp * tp) == 0) == idle:
                continue
            base = ParallelPlan(data=chips // (pp * tp), pipeline=pp, tensor=tp)
            if plan_violation(base, wl.model) is not None:
                continue
            plans.append(base)
            if has_embedding and pp * tp > 1:
                plans.append(attrs.evolve(base, shard_embedding=True))
    return plans


@attrs.frozen
class PlanOutcome:
    """One enumerated plan: its report (times absent when it does not fit)."""

    plan: ParallelPlan
    report: Report

    @property
    def fits(self) -> bool:
        return bool(self.report.parallel and self.report.parallel.fits)

    @property
    def time_to_train_s(self) -> float:
        p = self.report.parallel
        if p is None or not p.timed:
            return float("inf")
        if p.time_to_train_s is not None:
            return p.time_to_train_s
        # no dataset: rank by time per sample
        return self.report.summary.step_time_s / self.report.summary.samples_per_step


def search(hw: HardwareSpec, wl: WorkloadSpec, chip_counts: list[int], *, mode: str = "auto",
           on_plan: Callable[[PlanOutcome], None] | None = None) -> list[PlanOutcome]:
    """Enumerate, check capacity, simulate the feasible plans; best (fastest to train) first."""
    graph = build_graph(wl)
    executed, _ = fuse_gemm_accumulate(graph)
    layers, _ = op_layers(executed)
    has_embedding = bool(embedding_tables(executed))
    memo: dict = {}
    out: list[PlanOutcome] = []
    fitting: set[tuple] = set()
    for chips in chip_counts:
        found = len(fitting)
        _search_plans(hw, wl, enumerate_plans(wl, chips, n_layers=len(layers),
                                              has_embedding=has_embedding),
                      chips, graph, executed, mode, memo, fitting, out, on_plan)
        if len(fitting) == found:  # none fits on all N chips: leave some idle (IDLE_CHIPS)
            _search_plans(hw, wl, enumerate_plans(wl, chips, n_layers=len(layers),
                                                  has_embedding=has_embedding, idle=True),
                          chips, graph, executed, mode, memo, fitting, out, on_plan)
    out.sort(key=lambda o: (not o.fits, o.time_to_train_s,
                            max(s.footprint_bytes for s in o.report.parallel.stages)
                            if o.report.parallel else 0))
    return out


def _search_plans(hw: HardwareSpec, wl: WorkloadSpec, plans: list[ParallelPlan], chips: int,
                  graph: OpGraph, executed: OpGraph, mode: str, memo: dict,
                  fitting: set[tuple], out: list[PlanOutcome],
                  on_plan: Callable[[PlanOutcome], None] | None) -> None:
    """Capacity-check and simulate `plans` on a system of `chips` chips (appended to `out`)."""
    from accelsim.parallel import simulate_plan

    for plan in plans:
        degrees = (plan.data, plan.pipeline, plan.tensor)
        if plan.shard_embedding and degrees in fitting:
            # sharding moves embedding rows to other chips and adds collectives: it is
            # for plans that do not fit without it (SKIP_FITTING_SHARDS)
            continue
        try:
            report = simulate_plan(hw, wl, plan, mode=mode, graph=graph, cache=memo,
                                   system_chips=chips)
        except LocatedError:
            continue  # the plan cannot split this graph (e.g. more microbatches than examples)
        variants = [(plan, report)]
        if (not _fits(report) and hw.interconnect.host_bandwidth_bytes_per_s
                and not plan.shard_embedding):
            # a chip with a host link: offload what the plan cannot hold (OFFLOAD_STEPS)
            for roles in OFFLOAD_STEPS:
                offloaded = attrs.evolve(plan, offload=roles)
                again = simulate_plan(hw, wl, offloaded, mode=mode, graph=graph,
                                      cache=memo, system_chips=chips)
                variants.append((offloaded, again))
                if _fits(again):
                    break
        for variant, result in variants:
            if _fits(result):
                fitting.add(degrees)
            outcome = PlanOutcome(variant, result)
            if on_plan is not None:
                on_plan(outcome)
            out.append(outcome)


def best(hw: HardwareSpec, wl: WorkloadSpec, chips: int, *, mode: str = "auto") -> Report:
    """The report of the fastest feasible plan on `chips` chips; when none fits, the pure
    data-parallel plan's (not timed) report, which says by how much it does not fit."""
    outcomes = search(hw, wl, [chips], mode=mode)
    feasible = [o for o in outcomes if o.fits]
    if feasible:
        top = feasible[0]
        n = len(outcomes)
        dp_only = next((o for o in outcomes if o.plan.pipeline == 1 and o.plan.tensor == 1
                        and not o.plan.shard_embedding), None)
        idle = top.report.parallel.idle_chips if top.report.parallel else 0
        note = (f"best of {n} plans for {chips} chips ({len(feasible)} fit)"
                + (f"; no plan using all {chips} chips fits, so this one leaves {idle} idle"
                   if idle else "")
                + (f"; data parallel alone does not fit: {_verdict(dp_only)}"
                   if dp_only is not None and not dp_only.fits else ""))
        return attrs.evolve(top.report, notes=(note, *top.report.notes))
    closest = min(outcomes, key=_most_memory)
    dp_only = next((o for o in outcomes if o.plan.pipeline == 1 and o.plan.tensor == 1), None)
    note = (f"none of the {len(outcomes)} plans for {chips} chips fits in memory; the closest "
            f"is shown" + (f"; data parallel alone: {_verdict(dp_only)}"
                           if dp_only is not None and dp_only is not closest else ""))
    return attrs.evolve(closest.report, notes=(note, *closest.report.notes))


def _most_memory(outcome: PlanOutcome) -> int:
    par = outcome.report.parallel
    return max(st.footprint_bytes for st in par.stages) if par is not None else 0


def _verdict(outcome: PlanOutcome) -> str:
    par = outcome.report.parallel
    return par.verdict if par is not None else ""


def table(outcomes: list[PlanOutcome]) -> str:
    """Ranked plans: time to train, per-chip memory, utilization, bubble, exposed comm."""
    from accelsim.report import format_duration
    from accelsim.units import format_bytes, format_time

    head = (f"  {'#':>3} {'plan':<26} {'chips':>6} {'time to train':>14} {'step':>9} "
            f"{'max mem/chip':>12} {'util':>6} {'bubble':>7} {'exposed comm':>12}  fits")
    lines = [head]
    for i, o in enumerate(outcomes, 1):
        p = o.report.parallel
        assert p is not None
        mem = max(s.footprint_bytes for s in p.stages)
        used = f"{p.chips}/{p.chips + p.idle_chips}" if p.idle_chips else str(p.chips)
        if p.timed:
            lines.append(f"  {i:>3} {p.plan:<26} {used:>6} "
                         f"{format_duration(p.time_to_train_s):>14} "
                         f"{format_time(o.report.summary.step_time_s):>9} {format_bytes(mem):>12} "
                         f"{100 * o.report.summary.flop_utilization:>5.1f}% "
                         f"{100 * p.bubble_fraction:>6.1f}% {format_time(p.exposed_comm_s):>12}"
                         f"  {'yes' if p.fits else 'NO (forced)'}")
        else:
            short = max(s.shortfall_bytes for s in p.stages)
            lines.append(f"  {i:>3} {p.plan:<26} {used:>6} {'-':>14} {'-':>9} "
                         f"{format_bytes(mem):>12} {'-':>6} {'-':>7} {'-':>12}  "
                         f"no: {format_bytes(short)} short")
    return "\n".join(lines)


def chip_counts(chips: int, max_chips: int | None) -> list[int]:
    """`--chips N` alone: [N]; with `--max-chips M`: N, 2N, 4N, ... up to M."""
    if max_chips is None:
        return [chips]
    if max_chips < chips:
        raise AccelsimError(f"--max-chips: expected at least --chips ({chips}), got {max_chips}")
    out, n = [], chips
    while n <= max_chips:
        out.append(n)
        n *= 2
    return out
