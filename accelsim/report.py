"""What a simulation found, and its views: text, JSON, CSV.

`Report` holds plain numbers; it runs nothing. `schema_version` changes whenever a field of
the JSON view is renamed or removed (docs/report-schema.md).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from accelsim.units import format_bytes, format_rate, format_time

SCHEMA_VERSION = 2  # 2: `parallel` (plans, per-stage capacity, communication; issue 8)


@attrs.frozen(kw_only=True)
class OpResult:
    """One op of the step as replayed on the chip."""

    name: str
    kind: str
    phase: str
    shape: str
    flops: float
    start_s: float
    end_s: float
    time_s: float
    bytes: dict[str, float]      # bytes moved through each cache level and "HBM"
    hit_rate: dict[str, float]   # per cache level
    bound: str                   # 'compute', a level name, 'HBM', 'latency' or 'launch'
    units: int

    @property
    def achieved_flop_rate(self) -> float:
        return self.flops / self.time_s if self.time_s > 0 else 0.0


@attrs.frozen(kw_only=True)
class Summary:
    """Whole-step results: time, utilization, memory system, footprint, time to train."""

    params: int
    flops: float                       # algorithmic FLOPs per step (per chip)
    bytes_accessed: float              # algorithmic bytes per step (sum of op inputs+outputs)
    step_time_s: float
    peak_flop_rate: float
    flop_utilization: float            # flops / (step_time * peak)
    hit_rate: dict[str, float]         # per cache level, over the whole step
    level_bytes: dict[str, float]      # bytes per level over the whole step, "HBM" included
    bound_time_s: dict[str, float]     # op time by what bounds it
    footprint_bytes: int               # minimal footprint (peak live bytes)
    footprint_by_role: dict[str, int]  # what the peak is made of
    algorithmic_footprint_bytes: int   # the paper's minimal footprint of the unfused graph
    capacity_bytes: int
    shortfall_bytes: int               # max(0, footprint - capacity)
    chips_needed: int                  # chips whose memory together holds the footprint
    chips: int                         # data-parallel chips simulated
    samples_per_step: float            # dataset units per step on all chips
    steps_per_epoch: float | None
    epoch_time_s: float | None


# --- parallel plans (issue 8) ----------------------------------------------------------------
@attrs.frozen(kw_only=True)
class StageSummary:
    """One pipeline stage of a plan: what each of its chips holds and does."""

    index: int
    layers: tuple[str, ...]
    chips: int                          # chips running this stage's graph (data x tensor)
    footprint_bytes: int                # peak live bytes + communication buffers, one chip
    footprint_by_role: dict[str, int]   # weight, weight_gradient, optimizer_state, ..., comm_buffer
    capacity_bytes: int
    shortfall_bytes: int
    flops: float                        # one chip's FLOPs per step
    compute_time_s: float               # one chip's busy time (its ops and tensor collectives)
    flop_utilization: float             # flops / (step time x peak)
    comm_time_s: float                  # its collectives and sends, each alone on the links
    host_bytes: int = 0                 # offloaded to host memory (plan `offload`)
    host_transfer_s: float = 0.0        # host-link time per step for the offloaded bytes


@attrs.frozen(kw_only=True)
class ParallelSummary:
    """A parallel plan's verdict, per-stage memory and time, and its communication."""

    plan: str                           # e.g. 'dp=512 pp=4 tp=1 +shard'
    data: int
    pipeline: int
    tensor: int
    shard_embedding: bool
    schedule: str                       # timestep, gpipe, 1f1b
    chunks: int                         # timesteps or microbatches pipelined
    chips: int
    fits: bool
    timed: bool                         # False: infeasible and not forced, no times below
    forced: bool                        # timed although it does not fit (--force)
    verdict: str
    stages: tuple[StageSummary, ...]
    bubble_fraction: float              # idle share of stage time from filling/draining
    comm_time_s: float                  # busiest chip's communication, each alone on the links
    exposed_comm_s: float               # step time the communication adds
    hidden_comm_s: float                # communication overlapped with compute
    total_flops: float                  # over every chip
    reference_flops: float              # one chip running the global batch
    overhead_flops: float               # total - reference: what the split adds
    time_to_train_s: float | None       # one epoch
# --- end parallel plans ----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Report:
    hardware: str
    workload: str
    ops: tuple[OpResult, ...]
    summary: Summary
    notes: tuple[str, ...] = ()        # shortcuts and assumptions the numbers rest on
    parallel: ParallelSummary | None = None  # the plan, its capacity verdict and communication

    # --- data views ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        ops = []
        for op in self.ops:
            d = attrs.asdict(op)
            d["achieved_flop_rate"] = op.achieved_flop_rate
            ops.append(d)
        return {"schema_version": SCHEMA_VERSION, "hardware": self.hardware,
                "workload": self.workload, "notes": list(self.notes),
                "summary": _finite(attrs.asdict(self.summary)), "ops": _finite(ops),
                "parallel": _finite(attrs.asdict(self.parallel)) if self.parallel else None}

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def level_names(self) -> list[str]:
        names: list[str] = []
        for op in self.ops:
            for k in op.bytes:
                if k not in names:
                    names.append(k)
        return names

    def to_csv(self, path: str | Path | None = None) -> str:
        """One row per op; per-level columns `bytes_<level>` and `hit_rate_<level>`."""
        levels = self.level_names()
        cache_levels = [lv for lv in levels if lv != "HBM"]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["name", "kind", "phase", "shape", "flops", "start_s", "end_s", "time_s",
                    "achieved_flop_rate", "bound", "units",
                    *[f"bytes_{lv}" for lv in levels], *[f"hit_rate_{lv}" for lv in cache_levels]])
        for op in self.ops:
            w.writerow([op.name, op.kind, op.phase, op.shape, op.flops, op.start_s, op.end_s,
                        op.time_s, op.achieved_flop_rate, op.bound, op.units,
                        *[op.bytes.get(lv, 0.0) for lv in levels],
                        *[op.hit_rate.get(lv, float("nan")) for lv in cache_levels]])
        if path is not None:
            Path(path).write_text(buf.getvalue(), encoding="utf-8")
        return buf.getvalue()

    # --- text view ---------------------------------------------------------------------------
    def text(self, top_ops: int = 15) -> str:
        if self.parallel is not None:  # parallel plans (issue 8): verdict first
            head = parallel_text(self)
            if not self.parallel.timed:
                return "\n".join(head + ["", "notes:"] + [f"  - {n}" for n in self.notes])
            return "\n".join(head) + "\n\n" + self._single_text(top_ops)
        return self._single_text(top_ops)

    def _single_text(self, top_ops: int) -> str:
        s = self.summary
        lines = [f"accelsim: {self.workload} on {self.hardware}"
                 + (f" x {s.chips} chips (plan {self.parallel.plan})" if self.parallel else
                    f" x {s.chips} chips (data parallel)" if s.chips > 1 else ""), ""]
        rows = [
            ("parameters", f"{s.params / 1e9:.3g} B"),
            ("FLOPs per step (per chip)", f"{s.flops / 1e12:.4g} TFLOP"),
            ("bytes accessed per step", f"{s.bytes_accessed / 1e12:.4g} TB (algorithmic)"),
            ("step time", format_time(s.step_time_s)),
            ("FLOP utilization", f"{100 * s.flop_utilization:.1f} % of "
                                 f"{format_rate(s.peak_flop_rate, 'FLOP')}"),
        ]
        for lv, rate in s.hit_rate.items():
            rows.append((f"{lv} hit rate", f"{100 * rate:.1f} %"))
        for lv, nbytes in s.level_bytes.items():
            rows.append((f"bytes through {lv}", format_bytes(nbytes)))
        total_bound = sum(s.bound_time_s.values()) or 1.0
        rows.append(("time by bound", ", ".join(
            f"{k} {100 * v / total_bound:.0f} %" for k, v in
            sorted(s.bound_time_s.items(), key=lambda kv: -kv[1]))))
        rows.append(("memory footprint (minimal)", format_bytes(s.footprint_bytes) + "  ("
                     + ", ".join(f"{k.replace('_', ' ')} {format_bytes(v)}"
                                 for k, v in s.footprint_by_role.items() if v) + ")"))
        if s.algorithmic_footprint_bytes != s.footprint_bytes:
            rows.append(("  of the algorithmic graph", format_bytes(s.algorithmic_footprint_bytes)
                         + " (the paper's definition: no fused epilogues)"))
        rows.append(("memory capacity", format_bytes(s.capacity_bytes)))
        if s.shortfall_bytes > 0:
            rows.append(("SHORTFALL", f"{format_bytes(s.shortfall_bytes)}: footprint is "
                         f"{s.footprint_bytes / s.capacity_bytes:.1f}x capacity; "
                         f"{s.chips_needed} chips' memory would hold it"))
        else:
            rows.append(("shortfall", f"none ({format_bytes(s.capacity_bytes - s.footprint_bytes)}"
                         " to spare)"))
        if s.epoch_time_s is not None and s.steps_per_epoch is not None:
            rows.append(("steps per epoch", f"{s.steps_per_epoch:.4g} "
                                            f"({s.samples_per_step:.4g} samples per step)"))
            rows.append((f"time per epoch on {s.chips} chip{'s' * (s.chips > 1)}",
                         format_time(s.epoch_time_s)))
        width = max(len(r[0]) for r in rows)
        lines += [f"  {k:<{width}}  {v}" for k, v in rows]
        lines += ["", *self._phase_table(), "", *self._op_table(top_ops)]
        if self.notes:
            lines += ["", "notes:"] + [f"  - {n}" for n in self.notes]
        return "\n".join(lines)

    def _phase_table(self) -> list[str]:
        levels = self.level_names()
        groups: dict[tuple[str, str], list[OpResult]] = {}
        for op in self.ops:
            groups.setdefault((op.phase, op.kind), []).append(op)
        head = (f"  {'phase':<9} {'kind':<12} {'ops':>6} {'time':>10} {'TFLOP':>10} "
                + " ".join(f"{lv + ' bytes':>12}" for lv in levels))
        out = ["by phase and kind (summed op time; overlapping ops counted each):", head]
        for (phase, kind), ops in sorted(groups.items(), key=lambda kv: -sum(o.time_s for o in kv[1])):
            out.append(f"  {phase:<9} {kind:<12} {len(ops):>6} "
                       f"{format_time(sum(o.time_s for o in ops)):>10} "
                       f"{sum(o.flops for o in ops) / 1e12:>10.4g} "
                       + " ".join(f"{format_bytes(sum(o.bytes.get(lv, 0) for o in ops)):>12}"
                                  for lv in levels))
        return out

    def _op_table(self, top: int) -> list[str]:
        levels = self.level_names()
        cache_levels = [lv for lv in levels if lv != "HBM"]
        ops = sorted(self.ops, key=lambda o: -o.time_s)[: top if top > 0 else None]
        title = (f"top {len(ops)} of {len(self.ops)} ops by time" if len(ops) < len(self.ops)
                 else f"all {len(ops)} ops")
        head = (f"  {'op':<44} {'kind':<11} {'shape':<26} {'time':>9} {'TFLOP/s':>8} "
                + " ".join(f"{lv + ' hit':>8}" for lv in cache_levels)
                + " " + " ".join(f"{lv + ' B':>10}" for lv in levels) + f" {'bound':>8}")
        out = [f"{title} (--ops N to show more; --json/--csv for all):", head]
        for op in ops:
            out.append(
                f"  {_clip(op.name, 44):<44} {op.kind:<11} {_clip(op.shape, 26):<26} "
                f"{format_time(op.time_s):>9} {op.achieved_flop_rate / 1e12:>8.2f} "
                + " ".join(f"{_pct(op.hit_rate.get(lv)):>8}" for lv in cache_levels)
                + " " + " ".join(f"{format_bytes(op.bytes.get(lv, 0)):>10}" for lv in levels)
                + f" {op.bound:>8}")
        return out


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]


def _pct(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{100 * x:.1f}%"


def _finite(obj: Any) -> Any:
    """JSON has no NaN/inf: write them as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


# --- parallel plans (issue 8) ----------------------------------------------------------------
def format_duration(seconds: float | None) -> str:
    """Time to train in the unit people say: '6.2 days', '28 years', '3.1 h'."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds >= 2 * 365.25 * 86400:
        return f"{seconds / (365.25 * 86400):.3g} years"
    return format_time(seconds)


def parallel_text(report: Report) -> list[str]:
    """The verdict line, then per-stage footprint, utilization and communication."""
    p = report.parallel
    assert p is not None
    out = [f"verdict: {p.verdict}", ""]
    head = (f"  {'stage':<5} {'layers':<28} {'chips':>6} {'footprint':>10} {'capacity':>10} "
            f"{'shortfall':>10} {'busy':>9} {'util':>6} {'comm':>9}")
    out += [f"plan {p.plan} ({p.chips} chips; schedule {p.schedule}, {p.chunks} chunks):", head]
    for st in p.stages:
        out.append(f"  {st.index:<5} {_clip(','.join(st.layers), 28):<28} {st.chips:>6} "
                   f"{format_bytes(st.footprint_bytes):>10} {format_bytes(st.capacity_bytes):>10} "
                   f"{format_bytes(st.shortfall_bytes) if st.shortfall_bytes else '-':>10} "
                   + (f"{format_time(st.compute_time_s):>9} {100 * st.flop_utilization:>5.1f}% "
                      f"{format_time(st.comm_time_s):>9}" if p.timed else ""))
    if any(st.host_bytes for st in p.stages):
        out.append("  offloaded to host memory per chip: " + ", ".join(
            f"stage {st.index} {format_bytes(st.host_bytes)} ({format_time(st.host_transfer_s)}"
            " on the host link per step)" for st in p.stages))
    if p.timed:
        out.append(f"  pipeline bubble {100 * p.bubble_fraction:.1f} %; communication "
                   f"{format_time(p.comm_time_s)} per step on the busiest chip: "
                   f"{format_time(p.exposed_comm_s)} exposed, {format_time(p.hidden_comm_s)} "
                   "hidden behind compute")
        out.append(f"  FLOPs over all chips {p.total_flops:.4g} = one chip's {p.reference_flops:.4g}"
                   f" + split overhead {p.overhead_flops:.3g}")
    return out


def comparison_table(reports: Sequence[Report]) -> str:
    """Several chips on one workload, side by side."""
    rows: list[tuple[str, list[str]]] = [
        ("step time", [format_time(r.summary.step_time_s)
                       if math.isfinite(r.summary.step_time_s) else "not timed" for r in reports]),
        ("FLOP utilization", [f"{100 * r.summary.flop_utilization:.1f} %" for r in reports]),
        ("speedup vs first", [f"{reports[0].summary.step_time_s / r.summary.step_time_s:.2f}x"
                              if r.summary.step_time_s > 0
                              and math.isfinite(reports[0].summary.step_time_s) else "-"
                              for r in reports]),
    ]
    levels: list[str] = []
    for r in reports:
        levels += [lv for lv in r.summary.hit_rate if lv not in levels]
    for lv in levels:
        rows.append((f"{lv} hit rate", [_pct(r.summary.hit_rate.get(lv)) for r in reports]))
    rows.append(("HBM bytes", [format_bytes(r.summary.level_bytes.get("HBM", 0))
                               if math.isfinite(r.summary.step_time_s) else "-" for r in reports]))
    rows.append(("footprint", [format_bytes(r.summary.footprint_bytes) for r in reports]))
    rows.append(("capacity", [format_bytes(r.summary.capacity_bytes) for r in reports]))
    rows.append(("shortfall", [format_bytes(r.summary.shortfall_bytes) for r in reports]))
    rows.append(("chips to hold footprint", [str(r.summary.chips_needed) for r in reports]))
    rows.append(("time per epoch", [format_time(r.summary.epoch_time_s)
                                    if r.summary.epoch_time_s is not None else "-"
                                    for r in reports]))
    if any(r.parallel is not None for r in reports):  # parallel plans (issue 8)
        rows.append(("plan", [r.parallel.plan if r.parallel else "1 chip" for r in reports]))
        rows.append(("fits", [("yes" if r.parallel.fits else "NO") if r.parallel else
                              ("yes" if r.summary.shortfall_bytes == 0 else "NO")
                              for r in reports]))
        rows.append(("max memory per chip", [format_bytes(max(s.footprint_bytes
                                                              for s in r.parallel.stages))
                                             if r.parallel else format_bytes(
                                                 r.summary.footprint_bytes)
                                             for r in reports]))
        rows.append(("time to train", [format_duration(r.parallel.time_to_train_s)
                                       if r.parallel else format_duration(r.summary.epoch_time_s)
                                       for r in reports]))
    names = [r.hardware for r in reports]
    width = max(len(k) for k, _ in rows)
    col = max(12, *(len(n) for n in names))
    out = [f"accelsim compare: {reports[0].workload}", "",
           f"  {'':<{width}}  " + "  ".join(f"{n:>{col}}" for n in names)]
    out += [f"  {k:<{width}}  " + "  ".join(f"{v:>{col}}" for v in vals) for k, vals in rows]
    return "\n".join(out)
