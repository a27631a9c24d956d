"""What a simulation found, and its views: text, JSON, CSV.

`Report` holds plain numbers; it runs nothing. `schema_version` changes whenever a field of
the JSON view is renamed or removed (docs/report-schema.md).
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from accelsim.errors import AccelsimError
from accelsim.units import format_bytes, format_rate, format_time
from accelsim.vocabulary import MEMORY

SCHEMA_VERSION = 2  # 2: summary.energy_area_cost (issue 14); `parallel` (plans, per-stage capacity, communication; issue 8)


def _doc(meaning: str, unit: str = "") -> dict[str, str]:
    """A report field's meaning and unit, kept on the field (attrs metadata) so that
    docs/report-schema.md is generated from the classes (docs/gen_report_schema.py)."""
    return {"doc": meaning, "unit": unit}


@attrs.frozen(kw_only=True)
class OpResult:
    """One op of the step as replayed on the chip."""

    name: str = attrs.field(metadata=_doc("op name (layer/timestep/function)"))
    kind: str = attrs.field(
        metadata=_doc("`gemm`, `elementwise`, `reduce`, `softmax`, `data`, `update`"))
    phase: str = attrs.field(metadata=_doc("`forward`, `backward`, `update`"))
    shape: str = attrs.field(
        metadata=_doc("`[MxK]@[KxN]` for GEMMs (prefixed `Bx` when batched, suffixed `+C` when "
                      "the epilogue accumulates into C), FLOPs otherwise"))
    flops: float = attrs.field(metadata=_doc("algorithmic FLOPs", "FLOP"))
    start_s: float = attrs.field(metadata=_doc("replayed start", "s"))
    end_s: float = attrs.field(metadata=_doc("replayed end", "s"))
    time_s: float = attrs.field(
        metadata=_doc("replayed duration (`time_s = end_s - start_s`: the op's time in the step, "
                      "slowed by the ops it shares levels, HBM and units with; not its isolated "
                      "time, which is internal: `OpTiming.isolated_time_s`)", "s"))
    bytes: dict[str, float] = attrs.field(
        metadata=_doc("bytes moved through each cache level and `HBM`", "{level: bytes}"))
    hit_rate: dict[str, float] = attrs.field(
        metadata=_doc("hits / accesses per cache level (null when the op made none)",
                      "{level: fraction}"))
    bound: str = attrs.field(
        metadata=_doc("what bounds the op: `compute`, a cache level, `HBM`, `latency` or `launch`"))
    units: int = attrs.field(metadata=_doc("compute units the op occupied", "count"))
    # --- issue 9: the GEMM's mapping (empty / 1 / 0 for other ops) ---
    tile: str = attrs.field(
        default="", metadata=_doc("GEMMs: the mapping's output tile and K stage, `tile_m x "
                                  "tile_n x tile_k` (empty for other ops)"))
    loop_order: str = attrs.field(
        default="", metadata=_doc("GEMMs: `rows` (output tiles walked row by row, N swept inside "
                                  "M) or `columns`"))
    split_k: int = attrs.field(
        default=1, metadata=_doc("GEMMs: K slices computed in parallel and reduced by a second "
                                 "kernel (1: none)", "count"))
    padding_waste: float = attrs.field(
        default=0.0, metadata=_doc("GEMMs: share of the tile work that pads beyond the shape "
                                   "rounded up to the pipe's granule (`min_tile`): oversized "
                                   "edge tiles and K padded to the stage depth", "fraction"))

    @property
    def achieved_flop_rate(self) -> float:
        """FLOPs per second of replayed time (0 for an instantaneous op)."""
        return self.flops / self.time_s if self.time_s > 0 else 0.0


@attrs.frozen(kw_only=True)
class Summary:
    """Whole-step results: time, utilization, memory system, footprint, time to train."""

    params: int = attrs.field(metadata=_doc("trainable parameters", "count"))
    flops: float = attrs.field(
        metadata=_doc("algorithmic FLOPs of one step on one chip (forward + backward + update)",
                      "FLOP"))
    bytes_accessed: float = attrs.field(
        metadata=_doc("algorithmic bytes of one step: each op's inputs plus outputs (the paper's "
                      "definition)", "bytes"))
    step_time_s: float = attrs.field(
        metadata=_doc("simulated time of one step (end of the last op); for a parallel plan the "
                      "composed step, its collectives replayed beside the ops", "s"))
    peak_flop_rate: float = attrs.field(
        metadata=_doc("the chip's peak matrix rate for the workload's precision", "FLOP/s"))
    flop_utilization: float = attrs.field(
        metadata=_doc("`flops / (step_time_s * peak_flop_rate)`", "fraction"))
    hit_rate: dict[str, float] = attrs.field(
        metadata=_doc("each level's hit rate over the step: per-op hit rates weighted by the "
                      "bytes each op asked of the level (so exact and coalesced runs compare)",
                      "{level: fraction}"))
    level_bytes: dict[str, float] = attrs.field(
        metadata=_doc("bytes moved through each cache level and `HBM` over the step",
                      "{level: bytes}"))
    bound_time_s: dict[str, float] = attrs.field(
        metadata=_doc("summed op time by what bounds each op (`compute`, a level, `HBM`, "
                      "`latency`, `launch`)", "{bound: s}"))
    footprint_bytes: int = attrs.field(
        metadata=_doc("minimal memory footprint of the executed graph (gradient accumulation "
                      "fused into GEMMs): peak live bytes in a topological walk", "bytes"))
    footprint_by_role: dict[str, int] = attrs.field(
        metadata=_doc("what the peak is made of (weight, weight_gradient, activation, gradient, "
                      "optimizer_state, input)", "{role: bytes}"))
    algorithmic_footprint_bytes: int = attrs.field(
        metadata=_doc("the paper's minimal footprint of the algorithmic (unfused) graph", "bytes"))
    capacity_bytes: int = attrs.field(metadata=_doc("the chip's memory capacity", "bytes"))
    shortfall_bytes: int = attrs.field(
        metadata=_doc("`max(0, footprint_bytes - capacity_bytes)`", "bytes"))
    chips_needed: int = attrs.field(
        metadata=_doc("`ceil(footprint_bytes / capacity_bytes)`: chips whose memory together "
                      "holds the footprint", "count"))
    chips: int = attrs.field(metadata=_doc("data-parallel chips simulated", "count"))
    samples_per_step: float = attrs.field(
        metadata=_doc("samples consumed per step on all chips", "dataset units"))
    steps_per_epoch: float | None = attrs.field(
        metadata=_doc("dataset size / samples per step (null without a `dataset`)", "count"))
    epoch_time_s: float | None = attrs.field(metadata=_doc("`steps_per_epoch * step_time_s`", "s"))
    energy_area_cost: EnergyAreaCost | None = attrs.field(
        default=None, metadata=_doc("energy, area and cost of one chip of the design "
                                    "([below](#summaryenergy_area_cost)); null when the hardware "
                                    "spec has no `technology` section", "object"))
    # --- the chip's limits and the dataset's unit, for views (plots, timeline, text) ---
    compute_units: int = attrs.field(
        default=0, metadata=_doc("compute units of one chip (the views' 100 % of units busy; 0: "
                                 "not recorded)", "count"))
    level_bandwidth_bytes_per_s: dict[str, float] = attrs.field(
        factory=dict, metadata=_doc("achievable bandwidth of each cache level and `HBM` with all "
                                    "units busy (calibration efficiencies applied): the "
                                    "roofline's ceilings and the timeline's 100 %",
                                    "{level: bytes/s}"))
    sample_unit: str = attrs.field(
        default="samples", metadata=_doc("what one sample is: the workload's `dataset.unit` "
                                         "(`word-pieces`, `characters`, `images`), `samples` "
                                         "without a dataset"))


# --- parallel plans (issue 8) ----------------------------------------------------------------
@attrs.frozen(kw_only=True)
class StageSummary:
    """One pipeline stage of a plan: what each of its chips holds and does."""

    index: int = attrs.field(metadata=_doc("the stage's position in the pipeline, from 0", "count"))
    layers: tuple[str, ...] = attrs.field(metadata=_doc("the layers the stage runs", "[text]"))
    chips: int = attrs.field(
        metadata=_doc("chips running this stage's graph (data x tensor)", "count"))
    footprint_bytes: int = attrs.field(
        metadata=_doc("peak live bytes plus communication buffers, one chip", "bytes"))
    footprint_by_role: dict[str, int] = attrs.field(
        metadata=_doc("what the peak is made of: roles as in `summary.footprint_by_role` plus "
                      "`comm_buffer`", "{role: bytes}"))
    capacity_bytes: int = attrs.field(metadata=_doc("the chip's memory capacity", "bytes"))
    shortfall_bytes: int = attrs.field(
        metadata=_doc("`max(0, footprint_bytes - capacity_bytes)`", "bytes"))
    flops: float = attrs.field(metadata=_doc("one chip's FLOPs per step", "FLOP"))
    compute_time_s: float = attrs.field(
        metadata=_doc("one chip's busy time: its ops and tensor collectives", "s"))
    flop_utilization: float = attrs.field(metadata=_doc("`flops / (step x peak)`", "fraction"))
    comm_time_s: float = attrs.field(
        metadata=_doc("its collectives and sends, each alone on the links", "s"))
    comm_hbm_bytes: float = attrs.field(
        default=0.0, metadata=_doc("what its collectives and sends read and write in one chip's "
                                   "HBM per step, beside the ops' traffic in the replay", "bytes"))
    host_bytes: int = attrs.field(
        default=0, metadata=_doc("kept in host memory by the plan's `offload`", "bytes"))
    host_transfer_s: float = attrs.field(
        default=0.0, metadata=_doc("host-link time per step for the offloaded bytes", "s"))


@attrs.frozen(kw_only=True)
class ParallelSummary:
    """A parallel plan's verdict, per-stage memory and time, and its communication."""

    plan: str = attrs.field(metadata=_doc("e.g. `dp=512 pp=4 tp=1 +shard`"))
    data: int = attrs.field(metadata=_doc("the plan's data-parallel degree", "count"))
    pipeline: int = attrs.field(metadata=_doc("the plan's pipeline degree (stages)", "count"))
    tensor: int = attrs.field(metadata=_doc("the plan's tensor-parallel degree", "count"))
    shard_embedding: bool = attrs.field(
        metadata=_doc("embedding rows split over the chips of a replica"))
    schedule: str = attrs.field(metadata=_doc("`timestep`, `gpipe` or `1f1b`"))
    chunks: int = attrs.field(
        metadata=_doc("timesteps or microbatches pipelined through the stages", "count"))
    chips: int = attrs.field(metadata=_doc("data x pipeline x tensor", "count"))
    idle_chips: int = attrs.field(
        default=0, metadata=_doc("chips of the system (`--chips`) the plan leaves idle: the "
                                 "planner uses fewer only when no plan using all of them fits",
                                 "count"))
    fits: bool = attrs.field(metadata=_doc("every stage's footprint within the chip's memory"))
    timed: bool = attrs.field(metadata=_doc("false: it does not fit and was not forced; no times"))
    forced: bool = attrs.field(metadata=_doc("timed although it does not fit (`--force`)"))
    verdict: str = attrs.field(
        metadata=_doc("the first line of the text report: fits / does not fit, plan, time to "
                      "train or shortfall"))
    stages: tuple[StageSummary, ...] = attrs.field(
        metadata=_doc("per pipeline stage ([`parallel.stages[]`](#parallelstages))", "[object]"))
    bubble_fraction: float = attrs.field(
        metadata=_doc("share of stage-time idle while the pipeline fills and drains", "fraction"))
    comm_time_s: float = attrs.field(
        metadata=_doc("the busiest chip's communication per step, each collective alone on the "
                      "links", "s"))
    exposed_comm_s: float = attrs.field(
        metadata=_doc("what communication adds to the step (the step minus the step with free "
                      "communication)", "s"))
    hidden_comm_s: float = attrs.field(
        metadata=_doc("`comm_time_s - exposed_comm_s`: overlapped with compute", "s"))
    total_flops: float = attrs.field(metadata=_doc("over every chip", "FLOP"))
    reference_flops: float = attrs.field(
        metadata=_doc("one chip running the global batch (its graph)", "FLOP"))
    overhead_flops: float = attrs.field(
        metadata=_doc("`total_flops - reference_flops`: what the split adds", "FLOP"))
    time_to_train_s: float | None = attrs.field(metadata=_doc("one epoch under the plan", "s"))


@attrs.frozen(kw_only=True)
class Report:
    """One training step of a workload on a chip: every op as replayed, the whole-step summary,
    and the notes on the shortcuts the numbers rest on. Views: `text()`, `to_dict()` /
    `to_json()`, `to_csv()`, `to_timeline()`, `to_dataframe()`, `summary_frame()`, and an HTML
    summary in notebooks."""

    hardware: str = attrs.field(metadata=_doc("`HardwareSpec.name`"))
    workload: str = attrs.field(metadata=_doc("`WorkloadSpec.name`"))
    ops: tuple[OpResult, ...] = attrs.field(
        metadata=_doc("every op of the step, in program order ([`ops[]`](#ops))", "[object]"))
    summary: Summary = attrs.field(
        metadata=_doc("the whole step ([`summary`](#summary))", "object"))
    notes: tuple[str, ...] = attrs.field(
        default=(), metadata=_doc("shortcuts and assumptions the numbers rest on", "[text]"))
    parallel: ParallelSummary | None = attrs.field(
        default=None, metadata=_doc("the plan, its capacity verdict and communication "
                                    "([`parallel`](#parallel)); null for a single chip without a "
                                    "plan", "object"))

    # --- data views ------------------------------------------------------------------------
    def __repr__(self) -> str:
        s = self.summary
        return (f"<Report {self.workload} on {self.hardware}: {len(self.ops)} ops, step "
                f"{format_time(s.step_time_s)}, {100 * s.flop_utilization:.1f} % FLOP "
                f"utilization, footprint {format_bytes(s.footprint_bytes)} of "
                f"{format_bytes(s.capacity_bytes)}>")

    def to_dict(self) -> dict[str, Any]:
        """The JSON view (docs/report-schema.md): plain dicts and lists, NaN as None."""
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
        """`to_dict()` as JSON text, also written to `path` when given."""
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def level_names(self) -> list[str]:
        """Memory levels the ops moved bytes through, nearest first ("HBM" last)."""
        names: list[str] = []
        for op in self.ops:
            for k in op.bytes:
                if k not in names:
                    names.append(k)
        return names

    def to_timeline(self, path: str | Path | None = None) -> dict[str, Any]:
        """The step as Chrome trace-event JSON (ui.perfetto.dev, chrome://tracing): ops as
        slices on unit streams, bandwidth per level as counters (`accelsim.timeline`). Written
        to `path` when given; the trace object is returned either way."""
        from accelsim import timeline

        trace = timeline.trace_events(self)
        if path is not None:
            timeline.save(trace, path)
        return trace

    def to_csv(self, path: str | Path | None = None) -> str:
        """One row per op; per-level columns `bytes_<level>` and `hit_rate_<level>`."""
        columns, rows = self._op_rows()
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns)
        w.writerows(rows)
        if path is not None:
            Path(path).write_text(buf.getvalue(), encoding="utf-8")
        return buf.getvalue()

    def _op_rows(self) -> tuple[list[str], list[list[Any]]]:
        """Column names and one row per op: the table of `to_csv` and `to_dataframe`."""
        levels = self.level_names()
        cache_levels = [lv for lv in levels if lv != MEMORY]
        columns = ["name", "kind", "phase", "shape", "flops", "start_s", "end_s", "time_s",
                   "achieved_flop_rate", "bound", "units",
                   "tile", "loop_order", "split_k", "padding_waste",
                   *[f"bytes_{lv}" for lv in levels], *[f"hit_rate_{lv}" for lv in cache_levels],
                   *(["dynamic_energy_j"] if self.summary.energy_area_cost else [])]
        eac = self.summary.energy_area_cost
        rows = [[op.name, op.kind, op.phase, op.shape, op.flops, op.start_s, op.end_s,
                 op.time_s, op.achieved_flop_rate, op.bound, op.units,
                 op.tile, op.loop_order, op.split_k, op.padding_waste,
                 *[op.bytes.get(lv, 0.0) for lv in levels],
                 *[op.hit_rate.get(lv, float("nan")) for lv in cache_levels],
                 *([eac.op_dynamic_energy_j[i]] if eac else [])]
                for i, op in enumerate(self.ops)]
        return columns, rows

    # --- notebook views (pandas is the optional `pandas` extra) --------------------------------
    def to_dataframe(self) -> Any:
        """The ops as a pandas DataFrame, one row per op, the columns of `to_csv`."""
        pd = _pandas()
        columns, rows = self._op_rows()
        return pd.DataFrame(rows, columns=columns)

    def summary_frame(self) -> Any:
        """The summary as a one-row pandas DataFrame indexed by hardware name; per-level and
        per-role dicts become columns such as `hit_rate_L2`, `footprint_by_role_weight`.
        `pandas.concat` of several reports' frames compares designs."""
        pd = _pandas()
        row: dict[str, Any] = {"workload": self.workload}
        for key, value in attrs.asdict(self.summary).items():
            if isinstance(value, dict):
                row.update({f"{key}_{k}": v for k, v in value.items()})
            else:
                row[key] = value
        return pd.DataFrame([row], index=pd.Index([self.hardware], name="hardware"))

    def _repr_html_(self) -> str:
        """Jupyter's view: verdict, key numbers, time by bound and the slowest ops."""
        s = self.summary
        rows = [("step time", format_time(s.step_time_s)),
                ("FLOP utilization", f"{100 * s.flop_utilization:.1f} % of "
                                     f"{format_rate(s.peak_flop_rate, 'FLOP')}"),
                *[(f"{lv} hit rate", _pct(r)) for lv, r in s.hit_rate.items()],
                *[(f"bytes through {lv}", format_bytes(b)) for lv, b in s.level_bytes.items()],
                ("step time by bound", ", ".join(
                    f"{k} {100 * v / (s.step_time_s or 1):.1f} %"
                    for k, v in self.time_by_category().items())),
                ("footprint / capacity", f"{format_bytes(s.footprint_bytes)} / "
                                         f"{format_bytes(s.capacity_bytes)}"),
                ("shortfall", format_bytes(s.shortfall_bytes))]
        if s.epoch_time_s is not None:
            rows.append((f"time per epoch on {s.chips} chip{'s' * (s.chips > 1)}",
                         format_duration(s.epoch_time_s)))
        top = sorted(self.ops, key=lambda o: -o.time_s)[:10]
        ops = [(op.name, op.kind, op.shape, format_time(op.time_s), op.bound) for op in top]
        return (f"<div><b>{_esc(self.workload)} on {_esc(self.hardware)}</b>"
                f"{' x ' + str(s.chips) + ' chips' if s.chips > 1 else ''}"
                f"<p>{_esc(self.verdict())}</p>"
                + _html_table(("", "value"), rows)
                + f"<p>top {len(top)} of {len(self.ops)} ops by time</p>"
                + _html_table(("op", "kind", "shape", "time", "bound"), ops) + "</div>")

    def time_by_category(self) -> dict[str, float]:
        """Every second of the step attributed to one category; the values sum to the step time.

        At each instant the running ops share the time in proportion to the compute units they
        hold, and each op's share goes to what bounds it (`compute`, a cache level, `HBM`,
        `latency`, `launch`). Instants when no op runs are `exposed communication` with
        data-parallel chips (the update ops wait for a gradient all-reduce) and `idle`
        otherwise. Unlike `Summary.bound_time_s`, overlapping ops are not counted twice.
        """
        events: list[tuple[float, int, OpResult | None]] = []
        for op in self.ops:
            if op.end_s > op.start_s:
                events += [(op.start_s, 1, op), (op.end_s, -1, op)]
        events.sort(key=lambda e: (e[0], e[1]))
        out: dict[str, float] = {}
        running: dict[str, float] = {}  # bound -> units held by running ops
        held = 0.0
        t = 0.0
        gap = "exposed communication" if self.summary.chips > 1 else "idle"
        for when, sign, item in events + [(self.summary.step_time_s, 0, None)]:
            dt = when - t
            if dt > 0:
                if held > 0:
                    for bound, units in running.items():
                        if units > 0:
                            out[bound] = out.get(bound, 0.0) + dt * units / held
                else:
                    out[gap] = out.get(gap, 0.0) + dt
                t = when
            if item is not None:
                units = float(max(item.units, 1))
                running[item.bound] = running.get(item.bound, 0.0) + sign * units
                held += sign * units
                if held < 0.5:  # all units returned (whole numbers): clear round-off
                    held = 0.0
                    running = dict.fromkeys(running, 0.0)
        return {k: v for k, v in sorted(out.items(), key=lambda kv: -kv[1]) if v > 0}

    # --- text view ---------------------------------------------------------------------------
    def verdict(self) -> str:
        """One line: what bounds the step, whether the footprint fits, the time to train."""
        s = self.summary
        if self.parallel is not None and not self.parallel.timed:
            return self.parallel.verdict
        cats = self.time_by_category()
        parts = []
        if cats and s.step_time_s > 0:
            top, top_s = next(iter(cats.items()))
            parts.append(f"{_bound_phrase(top)} ({100 * top_s / s.step_time_s:.0f} % of the "
                         f"{format_time(s.step_time_s)} step)")
        if self.parallel is not None:  # the plan's verdict says fit and time to train
            return "; ".join([*parts, self.parallel.verdict])
        if s.shortfall_bytes > 0:
            parts.append(f"does NOT fit: {format_bytes(s.footprint_bytes)} footprint in "
                         f"{format_bytes(s.capacity_bytes)} of memory ({s.chips_needed} chips' "
                         "memory would hold it)")
        else:
            parts.append(f"fits in memory ({format_bytes(s.footprint_bytes)} of "
                         f"{format_bytes(s.capacity_bytes)})")
        if s.epoch_time_s is not None:
            parts.append(f"one epoch takes {format_duration(s.epoch_time_s)} on {s.chips} "
                         f"chip{'s' * (s.chips > 1)}")
        return "; ".join(parts)

    def text(self, top_ops: int = 15) -> str:
        """The report for a terminal: verdict, summary, where the time goes, per-phase and
        slowest-op tables, notes. A plan that was not timed (it does not fit) shows its
        verdict, its stages' memory and the notes only."""
        s = self.summary
        if self.parallel is not None and not self.parallel.timed:
            return "\n".join([f"accelsim: {self.workload} on {self.hardware} x {_chips(s.chips)} "
                              f"(plan {self.parallel.plan})", f"verdict: {self.verdict()}", "",
                              *parallel_text(self),
                              *(["", *s.energy_area_cost.text_lines()]
                                if s.energy_area_cost is not None else []),
                              "", "notes:", *[f"  - {n}" for n in self.notes]])
        unit = s.sample_unit.replace("_", " ")
        lines = [f"accelsim: {self.workload} on {self.hardware}"
                 + (f" x {_chips(s.chips)} (plan {self.parallel.plan})" if self.parallel else
                    f" x {s.chips} chips (data parallel)" if s.chips > 1 else ""),
                 f"verdict: {self.verdict()}", ""]
        if self.parallel is not None:  # parallel plans (issue 8): the stages under the verdict
            lines += [*parallel_text(self), ""]
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
        cats = self.time_by_category()
        step = s.step_time_s or 1.0
        rows.append(("step time by bound", ", ".join(
            f"{k} {format_time(v)} ({100 * v / step:.1f} %)" for k, v in cats.items())))
        rows.append(("", "(wall clock: running ops share each instant by the units they hold; "
                         "sums to the step time)"))
        roles = {k: v for k, v in sorted(s.footprint_by_role.items(), key=lambda kv: -kv[1]) if v}
        rows.append(("memory footprint (minimal)", format_bytes(s.footprint_bytes)
                     + " live at the peak of the step, made of:"))
        role_width = max((len(k) for k in roles), default=0)
        weights = s.footprint_by_role.get("weight", 0)
        for role, nbytes in roles.items():
            rows.append(("", f"  {role.replace('_', ' '):<{role_width}}  "
                             f"{format_bytes(nbytes):>9}  {ROLE_MEANINGS.get(role, '')}"))
            if role == "weight_gradient" and weights and nbytes > weights:
                rows.append(("", f"  {'':<{role_width}}  {'':>9}  ({nbytes / weights:.2f}x the "
                                 "weights: some weights' gradient contributions are still held "
                                 "apart at the peak, before they are summed)"))
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
        rows.append((f"{unit} per step", f"{s.samples_per_step:.4g}"
                     + (f" (on all {s.chips} chips)" if s.chips > 1 else "")))
        if s.epoch_time_s is not None and s.steps_per_epoch is not None:
            rows.append(("steps per epoch", f"{s.steps_per_epoch:.4g} "
                                            f"({s.steps_per_epoch * s.samples_per_step:.4g} "
                                            f"{unit} per epoch)"))
            rows.append((f"time per epoch on {s.chips} chip{'s' * (s.chips > 1)}",
                         format_duration(s.epoch_time_s)))
        width = max(len(r[0]) for r in rows)
        lines += [f"  {k:<{width}}  {v}" for k, v in rows]
        if s.energy_area_cost is not None:
            lines += ["", *s.energy_area_cost.text_lines()]
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
        cache_levels = [lv for lv in levels if lv != MEMORY]
        ops = sorted(self.ops, key=lambda o: -o.time_s)[: top if top > 0 else None]
        title = (f"top {len(ops)} of {len(self.ops)} ops by time" if len(ops) < len(self.ops)
                 else f"all {len(ops)} ops")
        head = (f"  {'op':<44} {'kind':<11} {'shape':<26} {'mapping':<20} {'time':>9} "
                f"{'TFLOP/s':>8} "
                + " ".join(f"{lv + ' hit':>8}" for lv in cache_levels)
                + " " + " ".join(f"{lv + ' B':>10}" for lv in levels) + f" {'bound':>8}")
        out = [f"{title} (--ops N to show more; --json/--csv for all):", head]
        for op in ops:
            out.append(
                f"  {_clip(op.name, 44):<44} {op.kind:<11} {_clip(op.shape, 26):<26} "
                f"{_clip(_mapping_text(op), 20):<20} {format_time(op.time_s):>9} {op.achieved_flop_rate / 1e12:>8.2f} "
                + " ".join(f"{_pct(op.hit_rate.get(lv)):>8}" for lv in cache_levels)
                + " " + " ".join(f"{format_bytes(op.bytes.get(lv, 0)):>10}" for lv in levels)
                + f" {op.bound:>8}")
        return out


def _mapping_text(op: OpResult) -> str:
    """A GEMM's tile, loop order, split-K and padding waste in a few characters."""
    if not op.tile:
        return ""
    text = f"{op.tile} {op.loop_order[:3]}"
    if op.split_k > 1:
        text += f" k/{op.split_k}"
    if op.padding_waste >= 0.005:
        text += f" pad{100 * op.padding_waste:.0f}%"
    return text


#: What each tensor role of the footprint holds (roles of `accelsim.graph.TENSOR_ROLES`).
ROLE_MEANINGS = {
    "weight": "the parameters",
    "optimizer_state": "momentum / Adam moments, per parameter",
    "input": "the step's input data (ids, images, features)",
    "activation": "forward outputs kept for the backward pass",
    "gradient": "gradients of activations, in flight during the backward pass",
    "weight_gradient": "gradients of the parameters, summed over timesteps and examples",
}

_YEAR_S = 365.25 * 86400


def format_duration(seconds: float | None) -> str:
    """A duration in the largest unit that is at least 1 ("28 years", "6.2 days",
    "3.5 hours"); under an hour as `format_time` writes it; "-" for none."""
    if seconds is None:
        return "-"
    s = float(seconds)
    if not math.isfinite(s):
        return "forever" if s > 0 else "-"
    if s < 3600:
        return format_time(s)
    for scale, unit in ((_YEAR_S, "year"), (86400.0, "day"), (3600.0, "hour")):
        if s >= scale:
            v = s / scale
            text = f"{v:,.0f}" if v >= 10 else f"{v:.2g}"
            return f"{text} {unit}{'' if text == '1' else 's'}"
    return format_time(s)  # unreachable: s >= 3600 here


def _bound_phrase(category: str) -> str:
    if category in ("exposed communication", "idle"):
        return f"mostly {category}"
    if category in ("compute", "latency", "launch"):
        return f"{category} bound"
    return f"{category} bandwidth bound"


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise AccelsimError("DataFrames need pandas: pip install 'accelsim[pandas]'") from None
    return pandas


def _esc(text: Any) -> str:
    return html.escape(str(text))


def _html_table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    return ("<table><thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in head)
            + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in r) + "</tr>" for r in rows)
            + "</tbody></table>")


def _chips(n: int) -> str:
    return f"{n} chip{'s' * (n != 1)}"


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


@attrs.frozen
class Comparison:
    """Several designs on one workload: `text()` (the `accelsim compare` table), an HTML table
    in notebooks, and `summary_frame()` (one row per design)."""

    reports: tuple[Report, ...] = attrs.field(converter=tuple)

    def __repr__(self) -> str:
        names = ", ".join(r.hardware for r in self.reports)
        return f"<Comparison of {len(self.reports)} designs ({names})>"

    def text(self) -> str:
        """The side-by-side table of `accelsim compare`."""
        return comparison_table(self.reports)

    def summary_frame(self) -> Any:
        """One row per design: the reports' `summary_frame()`s stacked."""
        pd = _pandas()
        return pd.concat([r.summary_frame() for r in self.reports])

    def _repr_html_(self) -> str:
        head = ("", *(r.hardware for r in self.reports))
        rows = [(k, *vals) for k, vals in _comparison_rows(self.reports)]
        verdicts = "".join(f"<li><b>{_esc(r.hardware)}</b>: {_esc(r.verdict())}</li>"
                           for r in self.reports)
        return (f"<div><b>{_esc(self.reports[0].workload if self.reports else '')}</b>"
                f"<ul>{verdicts}</ul>" + _html_table(head, rows) + "</div>")


# --- parallel plans (issue 8) ----------------------------------------------------------------
def parallel_text(report: Report) -> list[str]:
    """Per-stage footprint, utilization and communication of the report's plan."""
    p = report.parallel
    assert p is not None
    out: list[str] = []
    head = (f"  {'stage':<5} {'layers':<28} {'chips':>6} {'footprint':>10} {'capacity':>10} "
            f"{'shortfall':>10} {'busy':>9} {'util':>6} {'comm':>9}")
    idle = f" of {p.chips + p.idle_chips}, {p.idle_chips} idle" if p.idle_chips else ""
    out += [f"plan {p.plan} ({_chips(p.chips)}{idle}; schedule {p.schedule}, "
            f"{p.chunks} chunk{'s' * (p.chunks != 1)}):", head]
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
                   "hidden behind compute"
                   + (f"; collectives read and write {format_bytes(max(st.comm_hbm_bytes for st in p.stages))}"
                      " of the busiest chip's HBM beside its ops"
                      if any(st.comm_hbm_bytes for st in p.stages) else ""))
        out.append(f"  FLOPs over all chips {p.total_flops:.4g} = one chip's {p.reference_flops:.4g}"
                   f" + split overhead {p.overhead_flops:.3g}")
    return out


def comparison_table(reports: Sequence[Report]) -> str:
    """Several chips on one workload, side by side."""
    rows = _comparison_rows(reports)
    names = [r.hardware for r in reports]
    width = max(len(k) for k, _ in rows)
    col = max(12, *(len(n) for n in names))
    out = [f"accelsim compare: {reports[0].workload}", "",
           f"  {'':<{width}}  " + "  ".join(f"{n:>{col}}" for n in names)]
    out += [f"  {k:<{width}}  " + "  ".join(f"{v:>{col}}" for v in vals) for k, vals in rows]
    out += energy_comparison_notes(reports)
    return "\n".join(out)


def _comparison_rows(reports: Sequence[Report]) -> list[tuple[str, list[str]]]:
    """(label, one value per report) rows of the comparison views."""
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
    rows.append(("HBM bytes", [format_bytes(r.summary.level_bytes.get(MEMORY, 0))
                               if math.isfinite(r.summary.step_time_s) else "-" for r in reports]))
    rows.append(("footprint", [format_bytes(r.summary.footprint_bytes) for r in reports]))
    rows.append(("capacity", [format_bytes(r.summary.capacity_bytes) for r in reports]))
    rows.append(("shortfall", [format_bytes(r.summary.shortfall_bytes) for r in reports]))
    rows.append(("chips to hold footprint", [str(r.summary.chips_needed) for r in reports]))
    rows.append(("time per epoch", [format_duration(r.summary.epoch_time_s)
                                    if r.summary.epoch_time_s is not None else "-"
                                    for r in reports]))
    if any(r.parallel is not None for r in reports):  # parallel plans (issue 8)
        rows.append(("plan", [r.parallel.plan if r.parallel else "1 chip" for r in reports]))
        if any(r.parallel is not None and r.parallel.idle_chips for r in reports):
            rows.append(("chips used", [f"{r.parallel.chips} of "
                                        f"{r.parallel.chips + r.parallel.idle_chips}"
                                        if r.parallel else "1" for r in reports]))
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
    rows += energy_comparison_rows(reports)
    return rows


# --- energy, area and cost (issue 14; computed by accelsim.energy) -------------------------
@attrs.frozen(kw_only=True)
class EnergyAreaCost:
    """What one chip of the design costs in energy, silicon and money (docs/energy.md).

    Plain numbers computed by `accelsim.energy.estimate` from the step's counters and the
    spec's `technology` section; `assumptions` lists every constant used, as printed.
    """

    node: str = attrs.field(
        metadata=_doc("process node (a row of `accelsim/data/technology_nodes.yaml`)"))
    step_energy_j: dict[str, float] = attrs.field(
        metadata=_doc("one chip, one step: `matrix`, `vector`, each cache level, `HBM`, `links`, "
                      "`static`", "{component: J}"))
    total_step_energy_j: float = attrs.field(metadata=_doc("sum of `step_energy_j`", "J"))
    static_power_w: dict[str, float] = attrs.field(
        metadata=_doc("leakage and background power: `logic`, `SRAM`, `HBM`", "{component: W}"))
    average_power_w: float = attrs.field(metadata=_doc("`total_step_energy_j / step_time_s`", "W"))
    op_dynamic_energy_j: tuple[float, ...] = attrs.field(
        metadata=_doc("each op's dynamic energy (static excluded), in the order of `ops`", "[J]"))
    run_time_s: float | None = attrs.field(
        metadata=_doc("`training_epochs` x `epoch_time_s` (null without a dataset)", "s"))
    run_energy_j: float | None = attrs.field(metadata=_doc("all chips, whole training run", "J"))
    run_energy_kwh: float | None = attrs.field(
        metadata=_doc("all chips, whole training run", "kWh"))
    area_mm2: dict[str, float] = attrs.field(
        metadata=_doc("die area: `compute logic`, `unit SRAM`, each cache level, `HBM PHY`, "
                      "`link PHY`", "{component: mm^2}"))
    die_area_mm2: float = attrs.field(metadata=_doc("sum of `area_mm2`", "mm^2"))
    buildability: str = attrs.field(metadata=_doc("`single die`, `multi-die` or `wafer scale`"))
    dies: int = attrs.field(metadata=_doc("dies per chip (1 unless multi-die)", "count"))
    wafers: int = attrs.field(metadata=_doc("wafers per chip (wafer scale only, else 0)", "count"))
    area_arithmetic: tuple[str, ...] = attrs.field(
        metadata=_doc("the verdict's and the silicon cost's arithmetic, as printed", "[text]"))
    dies_per_wafer: float | None = attrs.field(
        metadata=_doc("gross dies per wafer (null for wafer scale)", "count"))
    die_yield: float | None = attrs.field(
        metadata=_doc("Murphy yield of one die (null for wafer scale)", "fraction"))
    chip_cost_usd: dict[str, float] = attrs.field(
        metadata=_doc("`silicon` and `memory` of one chip", "{part: USD}"))
    total_chip_cost_usd: float = attrs.field(metadata=_doc("sum of `chip_cost_usd`", "USD"))
    run_cost_usd: dict[str, float] | None = attrs.field(
        metadata=_doc("one training run: `chips` (amortized chip time) and `energy`",
                      "{part: USD}"))
    total_run_cost_usd: float | None = attrs.field(metadata=_doc("cost per trained model", "USD"))
    assumptions: dict[str, str] = attrs.field(
        metadata=_doc("every constant used, with its unit, as printed", "{name: text}"))

    def text_lines(self) -> list[str]:
        """The energy, area and cost block of the text report, assumptions last."""
        static_w = sum(self.static_power_w.values())
        if math.isfinite(self.total_step_energy_j):
            rows = [("energy per step (one chip)",
                     f"{_joules(self.total_step_energy_j)}  ("
                     + ", ".join(f"{k} {_joules(v)}" for k, v in self.step_energy_j.items() if v)
                     + ")"),
                    ("average power (one chip)", f"{self.average_power_w:.4g} W  (static "
                     f"{static_w:.3g} W)")]
        else:  # not timed: no step energy; the chip's static power and its silicon still are
            rows = [("energy per step (one chip)", "- (the step was not timed)"),
                    ("static power (one chip)", f"{static_w:.3g} W")]
        if self.run_energy_j is not None and self.run_energy_kwh is not None:
            rows.append(("energy per training run", f"{self.run_energy_j:.4g} J = "
                         f"{self.run_energy_kwh:.4g} kWh (all chips)"))
        rows.append(("die area", f"{self.die_area_mm2:,.0f} mm^2 at {self.node}  ("
                     + ", ".join(f"{k} {v:,.0f}" for k, v in self.area_mm2.items() if v) + ")"))
        rows.append(("buildability", self.buildability))
        rows += [("", line) for line in self.area_arithmetic]
        rows.append(("cost per chip", f"${self.total_chip_cost_usd:,.0f}  ("
                     + ", ".join(f"{k} ${v:,.0f}" for k, v in self.chip_cost_usd.items()) + ")"))
        if self.run_cost_usd is not None and self.total_run_cost_usd is not None:
            rows.append(("cost per trained model", f"${self.total_run_cost_usd:,.4g}  ("
                         + ", ".join(f"{k} ${v:,.4g}" for k, v in self.run_cost_usd.items())
                         + ")"))
        width = max(len(k) for k, _ in rows)
        out = ["energy, area and cost (docs/energy.md; estimates, not measurements):"]
        out += [f"  {k:<{width}}  {v}" for k, v in rows]
        out.append("  assumptions: " + "; ".join(f"{k} {v}" for k, v in self.assumptions.items()))
        return out


def _joules(j: float) -> str:
    if not math.isfinite(j):
        return "-"
    for scale, unit in ((1e6, "MJ"), (1e3, "kJ"), (1.0, "J"), (1e-3, "mJ"), (1e-6, "uJ")):
        if abs(j) >= scale:
            return f"{j / scale:.4g} {unit}"
    return f"{j / 1e-9:.4g} nJ"


def energy_comparison_rows(reports: Sequence[Report]) -> list[tuple[str, list[str]]]:
    """Energy, power, area, buildability and cost rows of `comparison_table` ('-' if unknown)."""
    costs = [r.summary.energy_area_cost for r in reports]
    if all(c is None for c in costs):
        return []

    def row(name: str, fmt: Any) -> tuple[str, list[str]]:
        return name, [fmt(c) if c is not None else "-" for c in costs]

    return [
        row("energy per step", lambda c: _joules(c.total_step_energy_j)),
        row("average power", lambda c: f"{c.average_power_w:.4g} W"
            if math.isfinite(c.average_power_w) else "-"),
        row("energy per run", lambda c: f"{c.run_energy_kwh:.4g} kWh"
            if c.run_energy_kwh is not None else "-"),
        row("die area", lambda c: f"{c.die_area_mm2:,.0f} mm^2"),
        row("buildability", lambda c: c.buildability),
        row("  built as", lambda c: f"{c.wafers} wafer{'s' * (c.wafers > 1)}" if c.wafers
            else f"{c.dies} die{'s' * (c.dies > 1)}"),
        row("cost per chip", lambda c: f"${c.total_chip_cost_usd:,.0f}"),
        row("cost per trained model", lambda c: f"${c.total_run_cost_usd:,.4g}"
            if c.total_run_cost_usd is not None else "-"),
    ]
def energy_comparison_notes(reports: Sequence[Report]) -> list[str]:
    """Each design's area arithmetic and the assumptions behind the energy and cost rows."""
    out: list[str] = []
    for r in reports:
        c = r.summary.energy_area_cost
        if c is None:
            continue
        if not out:
            out += ["", "area and cost arithmetic (docs/energy.md):"]
        out.append(f"  {r.hardware}: " + ", ".join(f"{k} {v:,.0f}" for k, v in c.area_mm2.items())
                   + f" = {c.die_area_mm2:,.0f} mm^2 at {c.node}")
        out += [f"    {line}" for line in c.area_arithmetic]
        out.append("    assumptions: " + "; ".join(f"{k} {v}" for k, v in c.assumptions.items()))
    return out


# --- end energy, area and cost ----------------------------------------------------------------

