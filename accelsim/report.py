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
from accelsim.vocabulary import MEMORY

SCHEMA_VERSION = 2  # 2: summary.energy_area_cost (issue 14)


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
    time_s: float                # end_s - start_s: contended, as replayed (not isolated)
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
    energy_area_cost: EnergyAreaCost | None = None  # accelsim.energy; None without `technology`


@attrs.frozen(kw_only=True)
class Report:
    hardware: str
    workload: str
    ops: tuple[OpResult, ...]
    summary: Summary
    notes: tuple[str, ...] = ()        # shortcuts and assumptions the numbers rest on

    # --- data views ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        ops = []
        for op in self.ops:
            d = attrs.asdict(op)
            d["achieved_flop_rate"] = op.achieved_flop_rate
            ops.append(d)
        return {"schema_version": SCHEMA_VERSION, "hardware": self.hardware,
                "workload": self.workload, "notes": list(self.notes),
                "summary": _finite(attrs.asdict(self.summary)), "ops": _finite(ops)}

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
        cache_levels = [lv for lv in levels if lv != MEMORY]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["name", "kind", "phase", "shape", "flops", "start_s", "end_s", "time_s",
                    "achieved_flop_rate", "bound", "units",
                    *[f"bytes_{lv}" for lv in levels], *[f"hit_rate_{lv}" for lv in cache_levels],
                    *(["dynamic_energy_j"] if self.summary.energy_area_cost else [])])
        eac = self.summary.energy_area_cost
        for i, op in enumerate(self.ops):
            w.writerow([op.name, op.kind, op.phase, op.shape, op.flops, op.start_s, op.end_s,
                        op.time_s, op.achieved_flop_rate, op.bound, op.units,
                        *[op.bytes.get(lv, 0.0) for lv in levels],
                        *[op.hit_rate.get(lv, float("nan")) for lv in cache_levels],
                        *([eac.op_dynamic_energy_j[i]] if eac else [])])
        if path is not None:
            Path(path).write_text(buf.getvalue(), encoding="utf-8")
        return buf.getvalue()

    # --- text view ---------------------------------------------------------------------------
    def text(self, top_ops: int = 15) -> str:
        s = self.summary
        lines = [f"accelsim: {self.workload} on {self.hardware}"
                 + (f" x {s.chips} chips (data parallel)" if s.chips > 1 else ""), ""]
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


def comparison_table(reports: Sequence[Report]) -> str:
    """Several chips on one workload, side by side."""
    rows: list[tuple[str, list[str]]] = [
        ("step time", [format_time(r.summary.step_time_s) for r in reports]),
        ("FLOP utilization", [f"{100 * r.summary.flop_utilization:.1f} %" for r in reports]),
        ("speedup vs first", [f"{reports[0].summary.step_time_s / r.summary.step_time_s:.2f}x"
                              for r in reports]),
    ]
    levels: list[str] = []
    for r in reports:
        levels += [lv for lv in r.summary.hit_rate if lv not in levels]
    for lv in levels:
        rows.append((f"{lv} hit rate", [_pct(r.summary.hit_rate.get(lv)) for r in reports]))
    rows.append(("HBM bytes", [format_bytes(r.summary.level_bytes.get(MEMORY, 0)) for r in reports]))
    rows.append(("footprint", [format_bytes(r.summary.footprint_bytes) for r in reports]))
    rows.append(("capacity", [format_bytes(r.summary.capacity_bytes) for r in reports]))
    rows.append(("shortfall", [format_bytes(r.summary.shortfall_bytes) for r in reports]))
    rows.append(("chips to hold footprint", [str(r.summary.chips_needed) for r in reports]))
    rows.append(("time per epoch", [format_time(r.summary.epoch_time_s)
                                    if r.summary.epoch_time_s is not None else "-"
                                    for r in reports]))
    rows += energy_comparison_rows(reports)
    names = [r.hardware for r in reports]
    width = max(len(k) for k, _ in rows)
    col = max(12, *(len(n) for n in names))
    out = [f"accelsim compare: {reports[0].workload}", "",
           f"  {'':<{width}}  " + "  ".join(f"{n:>{col}}" for n in names)]
    out += [f"  {k:<{width}}  " + "  ".join(f"{v:>{col}}" for v in vals) for k, vals in rows]
    out += energy_comparison_notes(reports)
    return "\n".join(out)


# --- energy, area and cost (issue 14; computed by accelsim.energy) -------------------------
@attrs.frozen(kw_only=True)
class EnergyAreaCost:
    """What one chip of the design costs in energy, silicon and money (docs/energy.md).

    Plain numbers computed by `accelsim.energy.estimate` from the step's counters and the
    spec's `technology` section; `assumptions` lists every constant used, as printed.
    """

    node: str
    step_energy_j: dict[str, float]        # one chip, one step, by component
    total_step_energy_j: float
    static_power_w: dict[str, float]       # leakage and background power by component
    average_power_w: float                 # total_step_energy_j / step_time_s
    op_dynamic_energy_j: tuple[float, ...]  # per op of the report, static power excluded
    run_time_s: float | None               # training_epochs x epoch time (null: no dataset)
    run_energy_j: float | None             # all chips, whole run
    run_energy_kwh: float | None
    area_mm2: dict[str, float]             # die area by component
    die_area_mm2: float
    buildability: str                      # 'single die', 'multi-die' or 'wafer scale'
    dies: int                              # dies per chip (1 for a single die or a wafer)
    wafers: int                            # wafers per chip (wafer scale only, else 0)
    area_arithmetic: tuple[str, ...]       # the verdict's arithmetic, as printed
    dies_per_wafer: float | None           # gross dies per wafer (None for wafer scale)
    die_yield: float | None                # Murphy yield of one die (None for wafer scale)
    chip_cost_usd: dict[str, float]        # silicon and memory of one chip
    total_chip_cost_usd: float
    run_cost_usd: dict[str, float] | None  # amortized chips and energy of one training run
    total_run_cost_usd: float | None
    assumptions: dict[str, str]            # name -> value with unit and source

    def text_lines(self) -> list[str]:
        rows = [("energy per step (one chip)",
                 f"{_joules(self.total_step_energy_j)}  ("
                 + ", ".join(f"{k} {_joules(v)}" for k, v in self.step_energy_j.items() if v)
                 + ")"),
                ("average power (one chip)", f"{self.average_power_w:.4g} W  (static "
                 f"{sum(self.static_power_w.values()):.3g} W)")]
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
        row("average power", lambda c: f"{c.average_power_w:.4g} W"),
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

