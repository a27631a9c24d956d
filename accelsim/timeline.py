"""The replayed step as a Chrome trace-event file (opens in ui.perfetto.dev and chrome://tracing).

Built from a `Report` alone, so it shows exactly what the report says:

- process "compute units": the ops as complete ("X") slices. Ops that overlap in time are
  packed into lanes ("unit streams", greedy interval partitioning in start order), so every
  lane's slices are disjoint; each slice's args give the units it held, its shape, FLOPs,
  bytes per level, hit rates and bound. A counter track gives the units busy (and their share
  of the chip's units).
- one process per cache level and one for HBM: a counter track of the bandwidth the running
  ops draw from that level (each op's bytes spread evenly over its duration) and, where the
  report records the level's achievable bandwidth, its utilization in percent.
- with data-parallel chips, a "links" process: the stretches of the step when no op runs
  because the ops wait for a gradient all-reduce (exposed communication). The report does not
  record the all-reduces that overlap computation, so they are not drawn.

Times are microseconds (`ts`, `dur`), as the format requires. Waves are not drawn: the report
keeps one record per op, not per wave.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from accelsim.vocabulary import MEMORY


class _OpView(Protocol):
    """What the timeline reads of an op (an `accelsim.report.OpResult`).

    A protocol, not an import: `Report.to_timeline` calls this module, so importing the report
    here would close an import cycle.
    """

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def phase(self) -> str: ...
    @property
    def shape(self) -> str: ...
    @property
    def flops(self) -> float: ...
    @property
    def start_s(self) -> float: ...
    @property
    def end_s(self) -> float: ...
    @property
    def bytes(self) -> dict[str, float]: ...
    @property
    def hit_rate(self) -> dict[str, float]: ...
    @property
    def bound(self) -> str: ...
    @property
    def units(self) -> int: ...


class _ReportView(Protocol):
    """What the timeline reads of a report (an `accelsim.report.Report`)."""

    @property
    def hardware(self) -> str: ...
    @property
    def workload(self) -> str: ...
    @property
    def ops(self) -> Sequence[Any]: ...
    @property
    def summary(self) -> Any: ...

    def level_names(self) -> list[str]:
        """Memory levels the ops moved bytes through, nearest first."""
        ...

#: Seconds -> trace-event time unit (microseconds).
US_PER_S = 1e6
#: Ops starting this close after a lane's last end (in seconds) may share the lane.
_TOUCH_S = 1e-15

PID_UNITS = 1
PID_FIRST_LEVEL = 2


def lanes(ops: Sequence[_OpView]) -> list[int]:
    """Lane of each op such that the ops of a lane never overlap in time (fewest lanes)."""
    order = sorted(range(len(ops)), key=lambda i: (ops[i].start_s, ops[i].end_s))
    lane_end: list[float] = []
    out = [0] * len(ops)
    for i in order:
        op = ops[i]
        for k, end in enumerate(lane_end):  # first lane free at the op's start
            if end <= op.start_s + _TOUCH_S:
                lane_end[k] = op.end_s
                out[i] = k
                break
        else:
            out[i] = len(lane_end)
            lane_end.append(op.end_s)
    return out


def idle_intervals(ops: Sequence[_OpView], step_time_s: float) -> list[tuple[float, float]]:
    """Stretches of [0, step_time_s] in which no op runs (merged, in time order)."""
    gaps = []
    t = 0.0
    for op in sorted(ops, key=lambda o: o.start_s):
        if op.start_s > t + _TOUCH_S:
            gaps.append((t, op.start_s))
        t = max(t, op.end_s)
    if step_time_s > t + _TOUCH_S:
        gaps.append((t, step_time_s))
    return gaps


def step_function(ops: Sequence[_OpView], weight: Callable[[_OpView], float]
                  ) -> list[tuple[float, float]]:
    """(time, value) points of sum(weight(op)) over the ops running at each time; an op counts
    from its start (inclusive) to its end (exclusive). Zero-length ops are left out."""
    deltas: dict[float, float] = {}
    scale = 0.0
    for op in ops:
        if op.end_s <= op.start_s:
            continue
        w = weight(op)
        if w == 0:
            continue
        scale = max(scale, abs(w))
        deltas[op.start_s] = deltas.get(op.start_s, 0.0) + w
        deltas[op.end_s] = deltas.get(op.end_s, 0.0) - w
    points, value = [], 0.0
    for t in sorted(deltas):
        value += deltas[t]
        if abs(value) < 1e-9 * scale:  # the running sum's round-off when all ops have ended
            value = 0.0
        points.append((t, value))
    return points


def _metadata(pid: int, tid: int, process: str, thread: str, sort: int) -> list[dict]:
    return [
        {"name": "process_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": process}},
        {"name": "process_sort_index", "ph": "M", "pid": pid, "tid": tid,
         "args": {"sort_index": sort}},
        {"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": thread}},
    ]


def _counter(pid: int, name: str, points: list[tuple[float, float]], key: str,
             scale: float = 1.0) -> list[dict]:
    return [{"name": name, "ph": "C", "ts": t * US_PER_S, "pid": pid, "tid": 0,
             "args": {key: v * scale}} for t, v in points]


def _op_args(op: _OpView) -> dict[str, Any]:
    return {"shape": op.shape, "kind": op.kind, "phase": op.phase, "bound": op.bound,
            "units": op.units, "flops": op.flops,
            "bytes": dict(op.bytes),
            "hit_rate": {k: (v if math.isfinite(v) else None) for k, v in op.hit_rate.items()}}


def trace_events(report: _ReportView) -> dict[str, Any]:
    """The report as a trace-event JSON object: {"traceEvents": [...], "displayTimeUnit": ...}."""
    s = report.summary
    events: list[dict] = []
    lane_of = lanes(report.ops)
    n_lanes = max(lane_of, default=-1) + 1
    chip = f"{report.hardware}: compute units"
    if s.compute_units:
        chip += f" ({s.compute_units})"
    events += _metadata(PID_UNITS, 0, chip, "units busy", 0)
    for k in range(n_lanes):
        events.append({"name": "thread_name", "ph": "M", "pid": PID_UNITS, "tid": k + 1,
                       "args": {"name": f"unit stream {k}"}})
        events.append({"name": "thread_sort_index", "ph": "M", "pid": PID_UNITS, "tid": k + 1,
                       "args": {"sort_index": k + 1}})
    for op, lane in zip(report.ops, lane_of, strict=True):
        events.append({"name": op.name, "cat": f"{op.phase},{op.kind}", "ph": "X",
                       "ts": op.start_s * US_PER_S, "dur": (op.end_s - op.start_s) * US_PER_S,
                       "pid": PID_UNITS, "tid": lane + 1, "args": _op_args(op)})
    busy = step_function(report.ops, lambda o: float(o.units))
    events += _counter(PID_UNITS, "units busy", busy, "units")
    if s.compute_units:
        events += _counter(PID_UNITS, "units busy (%)", busy, "%", 100.0 / s.compute_units)

    levels = report.level_names()
    for j, lv in enumerate(levels):
        pid = PID_FIRST_LEVEL + j
        what = "off-chip memory" if lv == MEMORY else "cache level"
        events += _metadata(pid, 0, f"{lv} ({what})", f"{lv} bandwidth", pid)
        rate = step_function(report.ops, functools.partial(_level_rate, level=lv))
        events += _counter(pid, f"{lv} bandwidth (GB/s)", rate, "GB/s", 1e-9)
        peak = s.level_bandwidth_bytes_per_s.get(lv)
        if peak:
            events += _counter(pid, f"{lv} utilization (%)", rate, "%", 100.0 / peak)

    if s.chips > 1:
        pid = PID_FIRST_LEVEL + len(levels)
        events += _metadata(pid, 1, f"links ({s.chips} chips, data parallel)",
                            "exposed all-reduce", pid)
        for t0, t1 in idle_intervals(report.ops, s.step_time_s):
            events.append({"name": "waiting for gradient all-reduce", "cat": "communication",
                           "ph": "X", "ts": t0 * US_PER_S, "dur": (t1 - t0) * US_PER_S,
                           "pid": pid, "tid": 1, "args": {"exposed_s": t1 - t0}})
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"hardware": report.hardware, "workload": report.workload,
                          "step_time_s": s.step_time_s, "chips": s.chips,
                          "generator": "accelsim"}}


def _level_rate(op: _OpView, level: str) -> float:
    return op.bytes.get(level, 0.0) / (op.end_s - op.start_s)


def save(trace: dict[str, Any], path: str | Path) -> Path:
    """Write a trace-event object (from `trace_events`) as compact JSON; returns the path."""
    out = Path(path)
    out.write_text(json.dumps(trace, separators=(",", ":")) + "\n", encoding="utf-8")
    return out


def write_trace(report: _ReportView, path: str | Path) -> Path:
    """Write the report's trace-event JSON to `path`; returns the path."""
    return save(trace_events(report), path)
