"""A plan's training step: capacity per stage, one replay per distinct stage, composed step.

`simulate_plan` partitions the executed graph (`accelsim.partition`), checks each stage's
footprint against the chip's memory, replays each distinct stage graph once on one chip (the
single-chip pipeline: mapping, cache trace, timing, simpy replay), and composes the step:

- each stage's graph is replayed twice on one chip: alone (the comm-free step) and with the
  collectives its chips take part in (`replay.Collective`: tensor-parallel and embedding-shard
  collectives, data-parallel gradient all-reduces, pipeline sends), each priced on the
  topology (`collectives.alpha_beta_s`) and replayed beside the ops: on the links and through
  HBM at once (`collectives.hbm_bytes`), so it takes HBM bandwidth from compute and compute
  from it; a tensor collective's consumers wait for it (Megatron's layers do), a gradient's
  all-reduce starts when the op producing it ends and overlaps the rest of the backward pass,
  and the weight's update waits for it.
- pipeline, simulated: the timestep schedule (the paper's RNN layer parallelism) op by op,
  each stage's replayed time line shifted by the arrival of the tensors it receives
  (`retime_stages`); GPipe and 1F1B microbatch by microbatch, with each stage's time per
  microbatch replayed on a one-microbatch graph (`microbatch_schedule`); each stage's update
  (and what its all-reduces left exposed in its replay) runs after its backward.

Exposed communication is the step time minus the step composed from the replays without
collectives; hidden is the rest of the busiest chip's communication (docs/parallel.md).
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from accelsim import pipeline
from accelsim.collectives import alpha_beta_s, collective_time_s, hbm_bytes, topology_problem
from accelsim.errors import AccelsimError
from accelsim.graph import OpGraph
from accelsim.hardware import HardwareSpec
from accelsim.models import build_graph
from accelsim.partition import Partition, Stage, Transfer, layer_of_name, partition
from accelsim.plan import ParallelPlan
from accelsim.report import (
    OpResult,
    ParallelSummary,
    Report,
    StageSummary,
    format_duration,
)
from accelsim.workload import WorkloadSpec

COMM_BUFFER = "comm_buffer"


@attrs.frozen
class StageTimes:
    """One stage's step on one chip by phase: replayed with its collectives, and alone."""

    forward_s: float
    backward_s: float
    update_s: float          # after its last backward op: updates, exposed all-reduces
    bare_forward_s: float    # the same, replayed without collectives
    bare_backward_s: float
    bare_update_s: float
    comm_s: float            # its collectives and sends, each alone on the links
    comm_hbm_bytes: float    # what they read and write in HBM


def host_bytes(stage: Stage, part: Partition) -> dict[str, int]:
    """Bytes of one chip of `stage` that its plan keeps in host memory, by offloaded role.

    Optimizer state lives on the host entirely; offloaded weights are streamed a layer at a
    time, two layers' worth resident (one computing, one arriving); offloaded activations are
    swapped out after forward, two of the largest resident as buffers.
    """
    offload = part.plan.offload
    if not offload:
        return {}
    g = stage.graph
    peak = g.peak_footprint_by_role()
    out: dict[str, int] = {}
    if "optimizer_state" in offload:
        out["optimizer_state"] = int(peak.get("optimizer_state", 0))
    if "weights" in offload:
        per_layer: dict[str, int] = {}
        for t in g.tensors:
            if t.role == "weight" and g._used(t):
                key = layer_of_name(t.name)
                per_layer[key] = per_layer.get(key, 0) + t.nbytes
        resident = 2 * max(per_layer.values(), default=0)
        out["weight"] = max(0, int(peak.get("weight", 0)) - resident)
    if "activations" in offload:
        largest = max((t.nbytes for t in g.tensors if t.role == "activation"), default=0)
        out["activation"] = max(0, int(peak.get("activation", 0)) - 2 * largest)
    return out


def stage_footprint(stage: Stage, part: Partition) -> dict[str, int]:
    """Peak live bytes by role on one chip of `stage`, plus its communication buffers.

    1F1B keeps at most `pipeline - s` microbatches' activations on stage s (GPipe and the
    timestep schedule keep them all); a tensor-parallel or shard all-gather needs the whole
    gathered buffer; offloaded bytes (`host_bytes`) are not on the chip.
    """
    by_role = dict(stage.graph.peak_footprint_by_role())
    for role, nbytes in host_bytes(stage, part).items():
        by_role[role] = by_role.get(role, 0) - nbytes
    pp = part.plan.pipeline
    if part.schedule == "1f1b" and pp > 1 and part.chunks > 1:
        keep = min(part.chunks, pp - stage.index) / part.chunks
        for role in ("activation", "gradient"):
            by_role[role] = int(by_role.get(role, 0) * keep)
    gathers = [t.nbytes for t in stage.transfers
               if t.group in ("tensor", "shard") and t.kind == "all_gather"]
    by_role[COMM_BUFFER] = int(max(gathers, default=0))
    return by_role


def _group_size(plan: ParallelPlan, group: str) -> tuple[int, int]:
    """(chips in the group, stride between them) with tensor innermost, then stages."""
    if group == "tensor":
        return plan.tensor, 1
    if group == "shard":
        return plan.pipeline * plan.tensor, 1
    if group == "pipeline":
        return 2, plan.tensor
    return plan.data or 1, plan.pipeline * plan.tensor


def _cost(hw: HardwareSpec, plan: ParallelPlan, t: Transfer, chunks: int = 1,
          system_chips: int | None = None) -> float:
    """One transfer alone on the links; the groups lie in a system of `system_chips` chips
    (default the plan's: the planner may leave some idle, IDLE_CHIPS in `planner`)."""
    size, stride = _group_size(plan, t.group)
    return collective_time_s(hw, t.kind, t.nbytes / chunks, size, stride=stride,
                             chips=max(plan.chips(), system_chips or 0))


def host_transfer_s(hw: HardwareSpec, host: dict[str, int]) -> dict[str, float]:
    """Seconds per phase on the host link for offloaded bytes (each phase alone).

    Optimizer state is read and written back by the update; offloaded weights are fetched for
    forward and again for backward and written back after the update; offloaded activations
    are written during forward and read back during backward.
    """
    if not host:
        return {"forward": 0.0, "backward": 0.0, "update": 0.0}
    bw = (hw.interconnect.host_bandwidth_bytes_per_s or 0.0) * hw.calibration.link_efficiency
    w, a, o = host.get("weight", 0), host.get("activation", 0), host.get("optimizer_state", 0)
    return {"forward": (w + a) / bw, "backward": (w + a) / bw, "update": (2 * o + w) / bw}


def stage_collectives(hw: HardwareSpec, plan: ParallelPlan, stage: Stage,
                      system_chips: int | None = None) -> tuple[Any, ...]:
    """The stage's transfers as `replay.Collective`s: priced on the topology, with the ops that
    wait for each (a gradient's update; the consumers of a tensor collective's op; the
    updates, for an embedding shard's row gradients)."""
    from accelsim.replay import Collective

    g = stage.graph
    total = max(plan.chips(), system_chips or 0)
    update_of = {g.tensors[grad].name: u for u, (_w, grad, _p) in g.weight_gradients().items()}
    updates = tuple(op.id for op in g.ops if op.kind == "update")
    succs: dict[int, list[int]] = {}
    for op in g.ops:
        for p in g.predecessors(op):
            succs.setdefault(p, []).append(op.id)
    out = []
    for t in stage.transfers:
        size, stride = _group_size(plan, t.group)
        latency, link = alpha_beta_s(hw, t.kind, t.nbytes, size, stride=stride, chips=total)
        hbm = hbm_bytes(t.kind, t.nbytes, size) if size > 1 else 0.0
        if latency + link <= 0 and hbm <= 0:
            continue  # a group of one chip
        if t.group == "data":
            gates: tuple[int, ...] = (update_of[t.what],) if t.what in update_of else updates
        elif t.group == "pipeline":
            gates = ()  # the receiving stage waits (the pipeline composition)
        elif t.after_op >= 0:
            gates = tuple(succs.get(t.after_op, ()))
        else:
            gates = updates if t.phase == "backward" else ()
        out.append(Collective(name=t.what, kind=t.kind, group=t.group, phase=t.phase,
                              after_op=t.after_op, gates=gates, latency_s=latency, link_s=link,
                              hbm_bytes=hbm))
    return tuple(out)


def _phase_times(step: Any) -> tuple[float, float, float]:
    """(forward, backward, update) of a replayed step: forward to its last forward op, the
    backward to its last backward op, the rest (updates, trailing collectives) after it."""
    fwd = max((r.end_s for r in step.ops if r.phase == "forward"), default=0.0)
    bwd_end = max((r.end_s for r in step.ops if r.phase == "backward"), default=fwd)
    return fwd, max(0.0, bwd_end - fwd), max(0.0, step.step_time_s - bwd_end)


def _stage_times(hw: HardwareSpec, stage: Stage, replayed: Any, bare: Any,
                 collectives: tuple[Any, ...], host: dict[str, int] | None = None) -> StageTimes:
    # offload: prefetch and swap-out overlap their phase's compute; the update's do not
    link = host_transfer_s(hw, host or {})
    f, b, u = _phase_times(replayed)
    bf, bb, bu = _phase_times(bare)
    return StageTimes(
        forward_s=max(f, link["forward"]), backward_s=max(b, link["backward"]),
        update_s=u + link["update"], bare_forward_s=max(bf, link["forward"]),
        bare_backward_s=max(bb, link["backward"]), bare_update_s=bu + link["update"],
        comm_s=sum(c.alone_s for c in collectives),
        comm_hbm_bytes=sum(c.hbm_bytes for c in collectives))


@attrs.frozen
class PipelineSend:
    """A tensor one stage sends another: op `after_op` of stage `from_stage` produces it, the
    ops `readers` of stage `to_stage` read it, `send_s` on the sender's link (FIFO)."""

    from_stage: int
    after_op: int
    to_stage: int
    send_s: float
    readers: tuple[int, ...]


def retime_stages(spans: list[list[tuple[float, float]]], preds: list[list[list[int]]],
                  sends: list[PipelineSend]) -> list[list[tuple[float, float]]]:
    """Each stage's replayed timeline, shifted so that every op that reads a tensor from
    another stage starts after it arrived: the pipeline schedule the graph's data flow allows
    (the paper's layer parallelism: stage s runs timestep t once stage s-1 sent it).

    `spans[s][i]`: op i's (start, end) in stage s's own replay; `preds[s][i]`: its
    predecessors in stage s. An op keeps its replayed duration and its replayed start, unless
    a predecessor now ends later (then it starts that much later plus the slack it had after
    its last predecessor in the replay: a collective it waited for, units it waited for) or a
    tensor it reads from another stage arrives later. A send leaves when its producer ends and
    the sending stage's link is free (one stage's sends go one at a time).
    """
    import heapq

    n_stages = len(spans)
    succs: list[dict[int, list[int]]] = [{} for _ in spans]
    pending: dict[tuple[int, int], int] = {}
    slack: list[list[float]] = []
    for s, ps in enumerate(preds):
        slack.append([max(0.0, spans[s][i][0] - max((spans[s][q][1] for q in pl),
                                                    default=spans[s][i][0]))
                      for i, pl in enumerate(ps)])
        for i, pl in enumerate(ps):
            for q in pl:
                succs[s].setdefault(q, []).append(i)
            pending[(s, i)] = len(pl)
    out_sends: dict[tuple[int, int], list[PipelineSend]] = {}
    for snd in sends:
        out_sends.setdefault((snd.from_stage, snd.after_op), []).append(snd)
        for r in set(snd.readers):
            pending[(snd.to_stage, r)] += 1
    earliest: dict[tuple[int, int], float] = {}
    heap: list[tuple[float, int, int]] = []
    for s in range(n_stages):
        for i in range(len(spans[s])):
            if pending[(s, i)] == 0:
                heapq.heappush(heap, (spans[s][i][0], s, i))
    new = [[(0.0, 0.0)] * len(sp) for sp in spans]
    link_free = [0.0] * n_stages
    done = 0

    def offer(node: tuple[int, int], t: float) -> None:
        earliest[node] = max(earliest.get(node, 0.0), t)
        pending[node] -= 1
        if pending[node] == 0:
            heapq.heappush(heap, (max(earliest[node], spans[node[0]][node[1]][0]), *node))

    while heap:
        t0, s, i = heapq.heappop(heap)
        start, end = spans[s][i]
        new[s][i] = (t0, t0 + (end - start))
        done += 1
        for j in succs[s].get(i, ()):
            offer((s, j), new[s][i][1] + slack[s][j])
        for snd in out_sends.get((s, i), ()):
            leave = max(new[s][i][1], link_free[s])
            link_free[s] = leave + snd.send_s
            for r in set(snd.readers):
                offer((snd.to_stage, r), leave + snd.send_s)
    if done != sum(len(sp) for sp in spans):
        raise RuntimeError("pipeline: the stages' sends form a cycle; ops never scheduled")
    return new


def pipeline_sends(hw: HardwareSpec, part: Partition, *, with_comm: bool = True,
                   system_chips: int | None = None) -> list[PipelineSend]:
    """The executed graph's dependencies between stages (`Partition.edges`) as sends: one per
    produced tensor and receiving stage, read by every op of that stage that depends on it
    (an order dependency sends nothing and costs nothing)."""
    groups: dict[tuple[int, int, int, str], list[int]] = {}
    nbytes: dict[tuple[int, int, int, str], float] = {}
    for e in part.edges:
        key = (e.from_stage, e.from_op, e.to_stage, e.what)
        groups.setdefault(key, []).append(e.to_op)
        nbytes[key] = e.nbytes
    out = []
    total = max(part.plan.chips(), system_chips or 0)
    for key, readers in groups.items():
        cost = (collective_time_s(hw, "send", nbytes[key], 2, stride=part.plan.tensor,
                                  chips=total) if with_comm and nbytes[key] > 0 else 0.0)
        out.append(PipelineSend(key[0], key[1], key[2], cost, tuple(readers)))
    return out


def _retimed_finish(part: Partition, steps: list[Any], sends: list[PipelineSend],
                    host: list[dict[str, float]]) -> list[float]:
    """Each stage's end in the retimed pipeline: its last op, what its replay ran after its
    last op (trailing collectives), host-link time its phases could not hide."""
    spans = [[(r.start_s, r.end_s) for r in step.ops] for step in steps]
    preds = [[st.graph.predecessors(op) for op in st.graph.ops] for st in part.stages]
    new = retime_stages(spans, preds, sends)
    finish = []
    for s, step in enumerate(steps):
        ops = step.ops
        last = max((e for _b, e in new[s]), default=0.0)
        tail = max(0.0, step.step_time_s - max((r.end_s for r in ops), default=0.0))
        f, b, _u = _phase_times(step)
        link = host[s]
        unhidden = max(0.0, link["forward"] - f) + max(0.0, link["backward"] - b)
        finish.append(last + tail + unhidden + link["update"])
    return finish


def microbatch_schedule(f: list[float], b: list[float], send_f: list[float],
                        send_b: list[float], m: int, schedule: str) -> list[float]:
    """Each stage's end of its last backward microbatch under GPipe or 1F1B, simulated task by
    task: stage s runs its tasks in the schedule's order, forward k after stage s-1's forward k
    arrived (`send_f[s-1]`), backward k after stage s+1's backward k arrived (`send_b[s]`;
    the last stage after its own forward k).

    GPipe (Huang et al. 2019): all M forwards, then the backwards, last microbatch first.
    1F1B (PipeDream-Flush, Narayanan et al. 2021): stage s runs min(S-s-1, M) forwards, then
    alternates one forward and one backward, then the remaining backwards.
    """
    n = len(f)
    orders = []
    for s in range(n):
        if schedule == "1f1b":
            w = min(n - s - 1, m)
            order = [("F", k) for k in range(w)]
            for i in range(m - w):
                order += [("F", w + i), ("B", i)]
            order += [("B", k) for k in range(m - w, m)]
        else:
            order = [("F", k) for k in range(m)] + [("B", k) for k in reversed(range(m))]
        orders.append(order)
    end: dict[tuple[str, int, int], float] = {}
    pos = [0] * n
    free = [0.0] * n
    left = sum(len(o) for o in orders)
    while left:
        progressed = False
        for s in range(n):
            while pos[s] < len(orders[s]):
                kind, k = orders[s][pos[s]]
                if kind == "F":
                    dep = 0.0 if s == 0 else end.get(("F", s - 1, k))
                    ready = None if dep is None else dep + (send_f[s - 1] if s else 0.0)
                else:
                    dep = end.get(("F", s, k)) if s == n - 1 else end.get(("B", s + 1, k))
                    ready = None if dep is None else dep + (send_b[s] if s < n - 1 else 0.0)
                if ready is None:
                    break
                start = max(free[s], ready)
                free[s] = end[(kind, s, k)] = start + (f[s] if kind == "F" else b[s])
                pos[s] += 1
                left -= 1
                progressed = True
        if not progressed:
            raise RuntimeError(f"pipeline schedule {schedule}: stages wait on each other")
    return free


def compose(hw: HardwareSpec, part: Partition, times: list[StageTimes], *,
            with_comm: bool = True, system_chips: int | None = None,
            timelines: list[Any] | None = None, host: list[dict[str, float]] | None = None,
            microbatch: dict[str, list[float]] | None = None
            ) -> tuple[float, list[float], list[float]]:
    """Step time, each stage's finish time and each stage's communication time (alone).

    The timestep schedule with `timelines` (each stage's replayed step) is simulated op by op
    (`retime_stages`); GPipe and 1F1B microbatch by microbatch (`microbatch_schedule`) from
    `microbatch` (`_microbatch_times`); one stage is its replayed step."""
    k, pp = part.chunks, part.plan.pipeline
    if timelines is not None and part.schedule == "timestep" and pp > 1:
        sends = pipeline_sends(hw, part, with_comm=with_comm, system_chips=system_chips)
        finish = _retimed_finish(part, timelines, sends,
                                 host or [host_transfer_s(hw, {})] * len(timelines))
        return max(finish, default=0.0), finish, [t.comm_s for t in times]
    if microbatch is not None and part.schedule in ("gpipe", "1f1b") and pp > 1:
        mb = microbatch
        fwd, bwd = (mb["forward"], mb["backward"]) if with_comm else (mb["bare_forward"],
                                                                      mb["bare_backward"])
        zeros = [0.0] * (pp - 1)
        ends = microbatch_schedule(fwd, bwd, mb["send_forward"] if with_comm else zeros,
                                   mb["send_backward"] if with_comm else zeros, k,
                                   part.schedule)
        finish = [e + (t.update_s if with_comm else t.bare_update_s)
                  for e, t in zip(ends, times, strict=True)]
        return max(finish, default=0.0), finish, [t.comm_s for t in times]
    if pp > 1:
        raise ValueError(f"compose: a {pp}-stage {part.schedule} pipeline needs the stages' "
                         "timelines (timestep) or per-microbatch times (gpipe, 1f1b)")
    finish = [(t.forward_s + t.backward_s + t.update_s) if with_comm
              else (t.bare_forward_s + t.bare_backward_s + t.bare_update_s) for t in times]
    return max(finish, default=0.0), finish, [t.comm_s for t in times]


def _microbatch_times(hw: HardwareSpec, wl: WorkloadSpec, plan: ParallelPlan, part: Partition,
                      mode: str, memo: dict, system: int) -> dict[str, list[float]]:
    """Per-microbatch forward and backward time of each stage, replayed on a graph of one
    microbatch (ceil(subbatch / M) examples; a small microbatch runs less efficiently than
    1/M of the whole subbatch would), with and without its tensor collectives, and the
    per-microbatch send time across each stage boundary."""
    from accelsim.replay import replay

    size = -(-wl.subbatch // part.chunks)
    executed = pipeline.prepare(attrs.evolve(wl, subbatch=size)).executed
    mb_plan = attrs.evolve(plan, microbatches=1, schedule=part.schedule,
                           stages=tuple(len(st.layers) for st in part.stages))
    mb_part = partition(executed, mb_plan, subbatch=size)
    out: dict[str, list[float]] = {"forward": [], "backward": [], "bare_forward": [],
                                   "bare_backward": []}
    for st in mb_part.stages:
        key = (id(hw), wl.precision, mode, st.key())
        if key not in memo:
            memo[key] = pipeline.simulate_step(hw, st.graph, wl.precision, mode=mode)
        bare = memo[key]
        colls = tuple(c for c in stage_collectives(hw, mb_plan, st, system)
                      if c.group in ("tensor", "shard"))  # all-reduces: once per step
        ckey = (*key, colls)
        if colls and ckey not in memo:
            memo[ckey] = replay(hw, st.graph, bare.timing.timings, collectives=colls,
                                chips=st.chips, hit_rates=bare.traffic.hit_rates)
        replayed = memo[ckey] if colls else bare.replayed
        f, b, _u = _phase_times(replayed)
        bf, bb, _ = _phase_times(bare.replayed)
        out["forward"].append(f)
        out["backward"].append(b)
        out["bare_forward"].append(bf)
        out["bare_backward"].append(bb)
    send_f = [0.0] * max(0, plan.pipeline - 1)
    send_b = [0.0] * max(0, plan.pipeline - 1)
    for st in mb_part.stages:
        for tr in st.transfers:
            if tr.group == "pipeline":
                lo, hi = sorted((st.index, tr.to_stage))
                for bnd in range(lo, hi):
                    (send_f if tr.phase == "forward" else send_b)[bnd] += _cost(
                        hw, plan, tr, 1, system)
    out["send_forward"], out["send_backward"] = send_f, send_b
    return out


def simulate_plan(hw: HardwareSpec, wl: WorkloadSpec, plan: ParallelPlan, *, mode: str = "auto",
                  force: bool = False, graph: OpGraph | None = None,
                  cache: dict | None = None, system_chips: int | None = None) -> Report:
    """One training step of `wl` under `plan` (its data degree resolved) on chips like `hw`.

    `system_chips`: the chips of the system when the plan leaves some idle (the planner's
    IDLE_CHIPS); the topology holds them all, the plan's groups lie in it.
    """
    chips = plan.chips()
    system = max(chips, system_chips or chips)
    idle = system - chips
    problem = topology_problem(hw, system)
    if problem:
        raise AccelsimError(f"{hw.name}: {problem}")
    memo = cache if cache is not None else {}
    pkey = ("prepared", id(wl), id(graph))  # the planner passes one graph for all its plans
    prepared = memo.get(pkey) if graph is not None else None
    if prepared is None or prepared.workload is not wl:
        prepared = pipeline.prepare(wl, graph)
        if graph is not None:
            memo[pkey] = prepared
    executed = prepared.executed
    rkey = ("reference_flops", id(prepared), plan.data or 1)
    if rkey not in memo:
        memo[rkey] = (build_graph(attrs.evolve(wl, subbatch=wl.subbatch * (plan.data or 1))).flops
                      if (plan.data or 1) > 1 else executed.flops)
    reference = memo[rkey]
    part = partition(executed, plan, subbatch=wl.subbatch, reference_flops=reference)
    capacity = hw.memory.capacity_bytes
    footprints = [stage_footprint(st, part) for st in part.stages]
    hosts = [host_bytes(st, part) for st in part.stages]
    if plan.offload and not hw.interconnect.host_bandwidth_bytes_per_s:
        raise AccelsimError(f"{hw.name}: interconnect.host_bandwidth: expected a bandwidth for a "
                            f"plan that offloads {list(plan.offload)}, got nothing")
    host_cap = hw.interconnect.host_memory_bytes
    fits = all(sum(f.values()) <= capacity for f in footprints) and (
        host_cap is None or all(sum(h.values()) <= host_cap for h in hosts))
    timed = fits or force
    notes: list[str] = []
    steps: dict[int, Any] = {}      # each stage's step alone (the comm-free replay)
    replays: dict[int, Any] = {}    # and replayed with its collectives
    times: list[StageTimes] = []
    micro: dict[str, list[float]] | None = None
    if timed:
        from accelsim.replay import replay

        for st in part.stages:
            key = (id(hw), wl.precision, mode, st.key())
            if key not in memo:
                memo[key] = pipeline.simulate_step(hw, st.graph, wl.precision, mode=mode)
            steps[st.index] = memo[key]
            colls = stage_collectives(hw, plan, st, system)
            ckey = (*key, colls)
            if not colls:
                replays[st.index] = steps[st.index].replayed
            elif ckey in memo:
                replays[st.index] = memo[ckey]
            else:
                bare = steps[st.index]
                replays[st.index] = memo[ckey] = replay(
                    hw, st.graph, bare.timing.timings, collectives=colls, chips=st.chips,
                    hit_rates=bare.traffic.hit_rates)
            times.append(_stage_times(hw, st, replays[st.index], steps[st.index].replayed,
                                      colls, hosts[st.index]))
    if timed:
        links = [host_transfer_s(hw, h) for h in hosts]
        micro = (_microbatch_times(hw, wl, plan, part, mode, memo, system)
                 if part.schedule in ("gpipe", "1f1b") and plan.pipeline > 1 else None)
        step_s, _finish, comm = compose(
            hw, part, times, system_chips=system, host=links, microbatch=micro,
            timelines=[replays[st.index] for st in part.stages])
        bare_s, _, _ = compose(
            hw, part, times, with_comm=False, system_chips=system, host=links,
            microbatch=micro, timelines=[steps[st.index].replayed for st in part.stages])
    else:
        step_s, comm, bare_s = float("nan"), [0.0] * len(part.stages), float("nan")
    peak = hw.compute.peak_flop_rate(wl.precision)
    stage_rows = []
    for st, fp, i in zip(part.stages, footprints, range(len(part.stages)), strict=True):
        total_fp = int(sum(fp.values()))
        busy = (times[i].forward_s + times[i].backward_s + times[i].update_s
                if timed else float("nan"))
        stage_rows.append(StageSummary(
            index=st.index, layers=st.layers, chips=st.chips, footprint_bytes=total_fp,
            footprint_by_role=fp, capacity_bytes=capacity,
            shortfall_bytes=max(0, total_fp - capacity), flops=st.graph.flops,
            compute_time_s=busy,
            flop_utilization=st.graph.flops / (step_s * peak) if timed and step_s > 0 else 0.0,
            comm_time_s=comm[i], comm_hbm_bytes=times[i].comm_hbm_bytes if timed else 0.0,
            host_bytes=int(sum(hosts[i].values())),
            host_transfer_s=sum(host_transfer_s(hw, hosts[i]).values())))
    # pipeline bubble: the share of stage-time the stages sit idle in the comm-free step
    if timed and bare_s > 0:
        work = sum(t.bare_forward_s + t.bare_backward_s + t.bare_update_s for t in times)
        if micro is not None:  # the stages' work is M microbatches each
            work = sum(part.chunks * (f + b) + t.bare_update_s for f, b, t in zip(
                micro["bare_forward"], micro["bare_backward"], times, strict=True))
        bubble = max(0.0, 1.0 - work / (len(times) * bare_s))
    else:
        bubble = float("nan")
    comm_max = max(comm, default=0.0)
    exposed = max(0.0, step_s - bare_s) if timed else float("nan")
    per_example = wl.model.samples_per_example()
    dp = plan.data or 1
    samples = float(wl.subbatch * per_example * dp)
    epoch = (wl.dataset.samples / samples * step_s
             if wl.dataset is not None and timed else None)
    worst = max(range(len(stage_rows)),
                key=lambda i: (stage_rows[i].shortfall_bytes, stage_rows[i].footprint_bytes))
    on = f"{chips} chip{'s' * (chips > 1)} of {hw.name}"
    if idle:  # the planner's IDLE_CHIPS: no plan using all of them fits
        on = f"{chips} of {system} chips of {hw.name} ({idle} idle)"
    if fits:
        verdict = (f"fits: {plan.label()} on {on}; "
                   + (f"time to train {format_duration(epoch)} per epoch"
                      if epoch is not None else f"step {step_s:.4g} s"))
    elif stage_rows[worst].shortfall_bytes == 0:  # on the chips it fits; the host does not
        most = max(sum(h.values()) for h in hosts)
        verdict = (f"does not fit: {plan.label()} on {on}: {most / 1e9:.4g} GB offloaded per "
                   f"chip, host memory {(host_cap or 0) / 1e9:.4g} GB"
                   + ("; TIMED ANYWAY (--force): these times are not achievable"
                      if force else "; not timed (--force times it anyway)"))
    else:
        short = stage_rows[worst]
        hint = (f"; {math.ceil(short.footprint_bytes / capacity)} chips' memory would hold "
                "it: try `accelsim plan HW WL --chips N`" if chips == 1 else "")
        verdict = (f"does not fit: {plan.label()} on {on}: stage "
                   f"{short.index} ({','.join(short.layers)}) needs "
                   f"{short.footprint_bytes / 1e9:.4g} GB of {capacity / 1e9:.4g} GB "
                   f"(short {short.shortfall_bytes / 1e9:.4g} GB{hint})"
                   + ("; TIMED ANYWAY (--force): these times are not achievable"
                      if force else "; not timed (--force times it anyway)"))
    par = ParallelSummary(
        plan=plan.label(), data=dp, pipeline=plan.pipeline, tensor=plan.tensor,
        shard_embedding=plan.shard_embedding, schedule=part.schedule, chunks=part.chunks,
        chips=chips, idle_chips=idle, fits=fits, timed=timed, forced=timed and not fits,
        verdict=verdict,
        stages=tuple(stage_rows), bubble_fraction=bubble, comm_time_s=comm_max,
        exposed_comm_s=exposed, hidden_comm_s=max(0.0, comm_max - exposed) if timed else 0.0,
        total_flops=part.total_flops, reference_flops=part.reference_flops,
        overhead_flops=part.overhead_flops, time_to_train_s=epoch)
    ops: tuple[OpResult, ...] = ()
    if timed:
        results = []
        for st in part.stages:
            prefix = f"s{st.index}:" if plan.pipeline > 1 else ""
            for r in replays[st.index].ops:
                res = pipeline.op_result(st.graph.ops[r.index], r, hw,
                                         steps[st.index].mapping.mappings[r.index],
                                         steps[st.index].mapping.dtype)
                results.append(attrs.evolve(res, name=prefix + res.name))
        ops = tuple(results)
    worst_fp = footprints[worst]
    base = pipeline.step_summary(hw, prepared, ops, step_s if timed else 0.0, dp)
    summary = attrs.evolve(
        base, flops=part.reference_flops / chips,
        flop_utilization=(part.reference_flops / (chips * step_s * peak)
                          if timed and step_s > 0 else 0.0),
        step_time_s=step_s, footprint_bytes=stage_rows[worst].footprint_bytes,
        footprint_by_role=worst_fp, shortfall_bytes=stage_rows[worst].shortfall_bytes,
        chips=chips, samples_per_step=samples,
        steps_per_epoch=wl.dataset.samples / samples if wl.dataset is not None else None,
        epoch_time_s=epoch)
    notes += prepared.notes
    notes.append(f"plan {plan.label()}: {len(part.stages)} stage graph(s), "
                 f"{len({st.key() for st in part.stages})} distinct, each replayed on one chip; "
                 f"schedule {part.schedule} over {part.chunks} chunk(s); collectives on the "
                 f"{hw.interconnect.topology} topology (alpha-beta, docs/parallel.md), "
                 "replayed beside each stage's ops (links and HBM shared with compute); "
                 + ("pipeline simulated op by op (each stage's replay shifted by the arrival "
                    "of what it receives)" if part.schedule == "timestep" else
                    "pipeline simulated microbatch by microbatch (a stage's time per "
                    "microbatch replayed on a one-microbatch graph)"))
    if timed:
        for st in part.stages:
            notes += [n for n in (*steps[st.index].notes, *replays[st.index].notes)
                      if n not in notes]
    return Report(hardware=hw.name, workload=wl.name, ops=ops, summary=summary,
                  notes=tuple(notes), parallel=par)


def check_plan(wl: WorkloadSpec, plan: ParallelPlan | None = None,
               graph: OpGraph | None = None) -> None:
    """Raise AccelsimError if `plan` (default: the workload's `parallel:`) cannot split `wl`'s
    graph (more stages than layers, stage sizes, microbatches): what `accelsim check` runs."""
    plan = plan if plan is not None else wl.parallel
    if plan is None:
        return
    executed = pipeline.prepare(wl, graph).executed
    partition(executed, plan.resolve(None), subbatch=wl.subbatch)


def stage_summaries_fit(report: Report) -> bool:
    """Every stage of the report's plan fits in memory (True for single-chip reports that fit)."""
    if report.parallel is not None:
        return report.parallel.fits
    return report.summary.shortfall_bytes == 0


__all__ = ["COMM_BUFFER", "StageTimes", "check_plan", "compose", "simulate_plan",
           "stage_footprint",
           "stage_summaries_fit"]
