"""matplotlib views of reports (the only module importing matplotlib; imported lazily).

The report views (`roofline`, `breakdown`, `gantt`) take a `Report` and return a matplotlib
`Figure`, so a notebook shows them and tests can read what they draw; `report_figures` saves
all three as PNGs (`accelsim run --plot DIR`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from accelsim.report import OpResult, Report  # noqa: E402
from accelsim.units import format_bytes, format_rate, format_time  # noqa: E402
from accelsim.vocabulary import MEMORY  # noqa: E402

#: One colour per bound, the same in every figure (levels other than L1/L2/SRAM get grey).
BOUND_COLORS = {"compute": "tab:green", MEMORY: "tab:red", "latency": "tab:purple",
                "launch": "tab:gray", "L1": "tab:pink", "L2": "tab:blue", "SRAM": "tab:cyan",
                "exposed communication": "tab:orange", "idle": "lightgray"}


def bound_color(bound: str) -> str:
    """The colour of a bound (or a time category) in every figure."""
    return BOUND_COLORS.get(bound, "tab:olive")


def _time_unit(seconds: float) -> tuple[float, str]:
    """Scale and label for a time axis spanning `seconds`."""
    for scale, label in ((1.0, "s"), (1e3, "ms"), (1e6, "us")):
        if seconds * scale >= 1:
            return scale, label
    return 1e9, "ns"


def save(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write `fig` to `path` (PNG) and release it; returns the path."""
    out = Path(path)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


# --- report views -----------------------------------------------------------------------------
def roofline(report: Report) -> Figure:
    """One roofline panel per memory level: the compute ceiling (peak FLOP/s), the level's
    bandwidth ceiling, and each op with FLOPs and bytes there as a point at (FLOPs per byte of
    that level, achieved FLOP/s); point area grows with the op's time, colour is its bound."""
    s = report.summary
    levels = [lv for lv in report.level_names()
              if any(op.bytes.get(lv, 0) > 0 and op.flops > 0 for op in report.ops)]
    fig, axes = plt.subplots(1, max(1, len(levels)), figsize=(6.2 * max(1, len(levels)), 5.2),
                             squeeze=False)
    longest = max((op.time_s for op in report.ops), default=0.0) or 1.0
    for ax, lv in zip(axes[0], levels, strict=False):
        ops = [op for op in report.ops if op.bytes.get(lv, 0) > 0 and op.flops > 0
               and op.time_s > 0]
        x = [op.flops / op.bytes[lv] for op in ops]
        y = [op.achieved_flop_rate for op in ops]
        bounds = sorted({op.bound for op in ops})
        for b in bounds:  # one scatter per bound: a legend entry each
            sel = [i for i, op in enumerate(ops) if op.bound == b]
            ax.scatter([x[i] for i in sel], [y[i] for i in sel], alpha=0.6,
                       s=[6 + 400 * ops[i].time_s / longest for i in sel],
                       color=bound_color(b), edgecolors="none", label=f"bound: {b}")
        lo = min(x, default=1e-2) / 3
        hi = max(x, default=1e3) * 3
        peak = s.peak_flop_rate
        bw = s.level_bandwidth_bytes_per_s.get(lv)
        if bw:
            ridge = peak / bw
            lo, hi = min(lo, ridge / 10), max(hi, ridge * 10)
            ax.plot([lo, ridge, hi], [lo * bw, peak, peak], color="black", lw=1.5)
            ax.annotate(f"{lv} {format_rate(bw, 'B')}", (ridge / 30, ridge / 30 * bw),
                        xytext=(0, 6), textcoords="offset points", ha="right", fontsize=8)
        else:
            ax.axhline(peak, color="black", lw=1.5)
        ax.annotate(f"peak {format_rate(peak, 'FLOP')}", (hi, peak), xytext=(-4, 4),
                    textcoords="offset points", ha="right", fontsize=8)
        ax.set(xscale="log", yscale="log", xlim=(lo, hi),
               xlabel=f"arithmetic intensity (FLOP per {lv} byte)",
               ylabel="achieved FLOP/s", title=f"{lv}: {len(ops)} ops")
        ax.grid(True, which="major", alpha=0.3)
        legend = ax.legend(fontsize=7, loc="lower right")
        for handle in legend.legend_handles:  # one marker size in the key, whatever the time
            handle.set_sizes([30])
            handle.set_alpha(0.8)
    fig.suptitle(f"roofline: {report.workload} on {report.hardware} (area ~ op time)")
    fig.tight_layout()
    return fig


def breakdown(report: Report, top: int = 12) -> Figure:
    """Where the step's time goes: wall-clock time by category (summing to the step time),
    summed op time by phase stacked by kind, and the `top` slowest ops."""
    s = report.summary
    scale, unit = _time_unit(s.step_time_s)
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.2), gridspec_kw={"width_ratios": [1, 1, 1.6]})
    ax = axes[0]
    cats = report.time_by_category()
    names = list(cats)
    ax.barh(names, [cats[k] * scale for k in names], color=[bound_color(k) for k in names])
    for i, k in enumerate(names):
        ax.text(cats[k] * scale, i, f" {100 * cats[k] / s.step_time_s:.1f} %", va="center",
                fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(cats.values(), default=1.0) * scale * 1.25)
    ax.set(xlabel=f"wall-clock time ({unit})",
           title=f"step time {format_time(s.step_time_s)} by what bounds it")
    ax = axes[1]
    phases = sorted({op.phase for op in report.ops},
                    key=lambda p: ("forward", "backward", "update").index(p)
                    if p in ("forward", "backward", "update") else 9)
    kinds = sorted({op.kind for op in report.ops})
    left = [0.0] * len(phases)
    for kind in kinds:
        widths = [sum(op.time_s for op in report.ops if op.phase == p and op.kind == kind) * scale
                  for p in phases]
        ax.barh(phases, widths, left=left, label=kind)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    for i, total in enumerate(left):
        ax.text(total, i, f" {total:.3g} {unit}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(left, default=1.0) * 1.3)
    ax.legend(fontsize=7, title="kind", loc="lower right")
    ax.set(xlabel=f"summed op time ({unit}; overlapping ops counted each)",
           title="by phase and kind")
    ax = axes[2]
    ops = sorted(report.ops, key=lambda o: -o.time_s)[:top]
    labels = [_short(op.name, 38) for op in ops]
    ax.barh(labels, [op.time_s * scale for op in ops], color=[bound_color(op.bound) for op in ops])
    for i, op in enumerate(ops):
        ax.text(op.time_s * scale, i, f" {op.shape}  ({op.bound})", va="center", fontsize=7)
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)
    ax.set(xlabel=f"op time ({unit})", title=f"top {len(ops)} of {len(report.ops)} ops")
    ax.set_xlim(0, max((op.time_s for op in ops), default=1) * scale * 1.6)
    fig.suptitle(f"{report.workload} on {report.hardware}: one training step")
    fig.tight_layout()
    return fig


def gantt(report: Report) -> Figure:
    """The step over time: ops on unit streams (coloured by bound), units busy, and each
    level's bandwidth utilization (the Chrome trace's tracks, as a picture)."""
    from accelsim import timeline

    s = report.summary
    scale, unit = _time_unit(s.step_time_s)
    levels = report.level_names()
    fig, axes = plt.subplots(2 + len(levels), 1, figsize=(14, 3.5 + 1.3 * (1 + len(levels))),
                             sharex=True, gridspec_kw={"height_ratios": [3] + [1] * (1 + len(levels))})
    ax = axes[0]
    lane = timeline.lanes(report.ops)
    by_bound: dict[str, list[tuple[int, OpResult]]] = {}
    for op, k in zip(report.ops, lane, strict=True):
        by_bound.setdefault(op.bound, []).append((k, op))
    for b, items in sorted(by_bound.items()):
        first = True
        for k in sorted({k for k, _ in items}):
            spans = [(op.start_s * scale, (op.end_s - op.start_s) * scale)
                     for kk, op in items if kk == k]
            ax.broken_barh(spans, (k - 0.4, 0.8), color=bound_color(b),
                           label=f"bound: {b}" if first else None)
            first = False
    if s.chips > 1:
        gaps = timeline.idle_intervals(report.ops, s.step_time_s)
        for t0, t1 in gaps:
            ax.axvspan(t0 * scale, t1 * scale, color=bound_color("exposed communication"),
                       alpha=0.3, label=None)
        if gaps:
            ax.plot([], [], color=bound_color("exposed communication"), lw=6, alpha=0.3,
                    label="waiting for all-reduce")
    n_lanes = max(lane, default=0) + 1
    ax.set_ylim(n_lanes - 0.5, -0.5)
    ax.set_yticks(range(n_lanes))
    ax.set_ylabel("unit stream")
    ax.legend(fontsize=7, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=4, frameon=False)
    ax.set_title(f"{report.workload} on {report.hardware}: {len(report.ops)} ops over "
                 f"{format_time(s.step_time_s)}", loc="left")
    def units_held(op: Any) -> float:
        return float(op.units)

    def level_rate(op: Any, level: str) -> float:
        return op.bytes.get(level, 0.0) / (op.end_s - op.start_s)

    series: list[tuple[str, Callable[[Any], float], float | None]] = [
        ("compute units", units_held, float(s.compute_units) or None)]
    series += [(lv, functools.partial(level_rate, level=lv), s.level_bandwidth_bytes_per_s.get(lv))
               for lv in levels]
    for ax, (name, weight, peak) in zip(axes[1:], series, strict=True):
        pts = timeline.step_function(report.ops, weight)
        xs = [t * scale for t, _ in pts] + [s.step_time_s * scale]
        if peak:
            ys = [100 * v / peak for _, v in pts]
            ax.set_ylim(0, 105)
            ax.set_ylabel(f"{name}\n% busy" if name == "compute units" else f"{name}\n% of peak",
                          fontsize=8)
        else:
            ys = [v for _, v in pts]
            ax.set_ylabel(name, fontsize=8)
        if pts:
            ax.stairs(ys, xs, fill=True, alpha=0.6,
                      color="tab:green" if name == "compute units" else bound_color(name))
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel(f"time in the step ({unit})")
    axes[-1].set_xlim(0, s.step_time_s * scale)
    fig.tight_layout()
    return fig


def report_figures(report: Report, out_dir: str | Path) -> list[Path]:
    """Save `roofline.png`, `breakdown.png` and `gantt.png` of `report` in `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw in (("roofline", roofline), ("breakdown", breakdown), ("gantt", gantt)):
        fig = draw(report)
        path = out / f"{name}.png"
        paths.append(save(fig, path))
    return paths


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]


def comparison(reports: Sequence[Report], path: str | Path) -> Path:
    """Save `comparison_figure(reports)` to `path` (PNG); returns the path."""
    fig = comparison_figure(reports)
    return save(fig, path)


def comparison_figure(reports: Sequence[Report]) -> Figure:
    """Five panels, one bar per design, values labelled: step time, FLOP utilization, hit rates,
    HBM traffic, footprint against capacity."""
    names = [r.hardware for r in reports]
    fig, axes = plt.subplots(1, 5, figsize=(21, 4.6))
    s = [r.summary for r in reports]
    scale, unit = _time_unit(max((x.step_time_s for x in s), default=1.0))
    bars = axes[0].bar(names, [x.step_time_s * scale for x in s], color="tab:blue")
    axes[0].bar_label(bars, fmt="%.3g", fontsize=8)
    axes[0].set(ylabel=f"step time ({unit})", title="step time")
    bars = axes[1].bar(names, [100 * x.flop_utilization for x in s], color="tab:green")
    axes[1].bar_label(bars, fmt="%.1f %%", fontsize=8)
    axes[1].set(ylabel="FLOP utilization (%)", title="FLOP utilization", ylim=(0, 105))
    levels: list[str] = []
    for x in s:
        levels += [lv for lv in x.hit_rate if lv not in levels]
    width = 0.8 / max(1, len(levels))
    for i, lv in enumerate(levels):
        bars = axes[2].bar([j + i * width for j in range(len(names))],
                           [100 * x.hit_rate.get(lv, 0.0) for x in s], width=width, label=lv)
        axes[2].bar_label(bars, fmt="%.0f", fontsize=7)
    axes[2].set_xticks([j + width * (len(levels) - 1) / 2 for j in range(len(names))], names)
    axes[2].set(ylabel="hit rate (%)", title="hit rate per cache level", ylim=(0, 110))
    axes[2].legend(fontsize=8)
    bars = axes[3].bar(names, [x.level_bytes.get(MEMORY, 0.0) / 1e12 for x in s],
                       color="tab:purple")
    axes[3].bar_label(bars, fmt="%.3g", fontsize=8)
    axes[3].set(ylabel="HBM traffic per step (TB)", title="HBM traffic")
    bars = axes[4].bar(names, [x.footprint_bytes / 1e9 for x in s], color="tab:red",
                       label="footprint")
    axes[4].bar_label(bars, fmt="%.3g", fontsize=8)
    axes[4].scatter(names, [x.capacity_bytes / 1e9 for x in s], color="black", marker="_",
                    s=800, label="capacity", zorder=3)
    axes[4].set_yscale("log")
    low = min([x.capacity_bytes for x in s] + [x.footprint_bytes for x in s], default=1) / 1e9
    top = max([x.capacity_bytes for x in s] + [x.footprint_bytes for x in s], default=1) / 1e9
    axes[4].set_ylim(low / 4, top * 3)
    axes[4].set(ylabel="GB", title="footprint vs memory capacity")
    axes[4].legend(fontsize=8)
    for ax in axes:
        ax.tick_params(axis="x", rotation=20)
    fig.suptitle(f"{reports[0].workload}: one training step per design")
    fig.tight_layout()
    return fig


def miss_ratio_curve(capacity_bytes, hit_rate, path: str | Path, *, title: str,
                     marks: Sequence[tuple[str, float]] = (),
                     footprint_bytes: float | None = None) -> Path:
    """Hit rate against cache capacity (log x), with the designs' capacities marked. With
    `footprint_bytes` the x-axis stops at the step's footprint (a cache that size holds all
    live data; the curve beyond it only counts addresses that are never live together)."""
    fig = mrc_figure(capacity_bytes, hit_rate, title=title, marks=marks,
                     footprint_bytes=footprint_bytes)
    return save(fig, path)


def mrc_figure(capacity_bytes, hit_rate, *, title: str, marks: Sequence[tuple[str, float]] = (),
               footprint_bytes: float | None = None) -> Figure:
    """The figure of `miss_ratio_curve`, returned instead of saved."""
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(capacity_bytes, [100 * h for h in hit_rate], color="tab:blue", lw=2)
    for label, cap in marks:
        ax.axvline(cap, color="gray", linestyle="--")
        ax.text(cap, 2, label, rotation=90, va="bottom", ha="right", fontsize=8)
    ax.set_xscale("log")
    lo = float(capacity_bytes[0]) if len(capacity_bytes) else 1.0
    hi = float(capacity_bytes[-1]) if len(capacity_bytes) else 2.0
    if footprint_bytes:
        ax.axvline(footprint_bytes, color="tab:red", lw=1)
        ax.text(footprint_bytes, 98, f" footprint {format_bytes(footprint_bytes)}", va="top",
                ha="right", rotation=90, fontsize=8, color="tab:red")
        hi = footprint_bytes * 1.05
    ax.set_xlim(lo, max(hi, lo * 2))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: format_bytes(x)))
    ax.set_xlabel("cache capacity")
    ax.set_ylabel("hit rate (%)")
    ax.set_ylim(0, 100)
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(title)
    fig.tight_layout()
    return fig


#: The paper's Figures 7-10: quantity key, y label, file name.
_SCALING_FIGURES = (
    ("flops_per_sample", "FLOPs per training sample", "fig7_flops_per_sample.png"),
    ("bytes_per_step", "bytes accessed per step", "fig8_bytes_per_step.png"),
    ("operational_intensity", "operational intensity (FLOP/byte)",
     "fig9_operational_intensity.png"),
    ("min_footprint_bytes", "minimal memory footprint (bytes)", "fig10_min_footprint.png"),
)


def scaling_figures(series: dict[str, dict[str, Sequence[float]]],
                    out_dir: str | Path,
                    paper: Mapping[str, Mapping[str, Sequence[float]]] | None = None) -> list[Path]:
    """Save `scaling_figure` for each of the paper's Figures 7-10 in `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for key, _ylabel, filename in _SCALING_FIGURES:
        fig = scaling_figure(series, key, paper)
        path = out / filename
        paths.append(save(fig, path))
    return paths


def scaling_figure(series: dict[str, dict[str, Sequence[float]]], key: str,
                   paper: Mapping[str, Mapping[str, Sequence[float]]] | None = None) -> Figure:
    """One log-log figure of quantity `key` against parameter count, one line per domain
    (accelsim's graphs); with `paper`, each domain's values from the paper in the same colour:
    its Table 2 formula as a dashed line and its Table 3 frontier point as a star."""
    ylabel = next(label for k, label, _ in _SCALING_FIGURES if k == key)
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    for domain, data in series.items():
        (line,) = ax.plot(data["params"], data[key], marker="o", markersize=3, label=domain)
        theirs = (paper or {}).get(domain)
        if theirs and theirs.get(key):
            ax.plot(theirs["params"], theirs[key], ls="--", lw=1, color=line.get_color())
            ax.plot(theirs["frontier_params"], theirs[f"frontier_{key}"], marker="*",
                    markersize=11, ls="none", color=line.get_color(),
                    markeredgecolor="black", markeredgewidth=0.5)
    if paper:
        ax.plot([], [], ls="--", lw=1, color="gray", label="paper, Table 2 formula")
        ax.plot([], [], marker="*", ls="none", color="gray", markersize=10,
                label="paper, Table 3 frontier")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("model parameters")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{ylabel} against model size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def validation_scatter(rows: Sequence, path: str | Path, title: str) -> None:
    """Log-log scatter of predicted against measured time with the y = x line: one panel for
    GEMMs, one for RNN layers (when present)."""
    panels = [("GEMM", [r for r in rows if r.table == "gemm"]),
              ("RNN layers", [r for r in rows if r.table != "gemm"])]
    panels = [(name, sel) for name, sel in panels if sel]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 5.8), squeeze=False)
    markers = {"fp32": "o", "fp16_mixed": "^", "fp16_pseudo": "s"}
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (name, sel) in zip(axes[0], panels, strict=True):
        groups = sorted({(r.table, r.precision) for r in sel})
        for i, (table, prec) in enumerate(groups):
            g = [r for r in sel if (r.table, r.precision) == (table, prec)]
            ax.scatter([r.measured_s * 1e3 for r in g], [r.predicted_s * 1e3 for r in g], s=14,
                       alpha=0.75, marker=markers.get(prec, "D"), color=palette[i % len(palette)],
                       label=f"{table} {prec} ({len(g)})")
        lo = min(min(r.measured_s, r.predicted_s) for r in sel) * 1e3 / 1.5
        hi = max(max(r.measured_s, r.predicted_s) for r in sel) * 1e3 * 1.5
        ax.plot([lo, hi], [lo, hi], color="black", lw=1, label="y = x")
        ax.plot([lo, hi], [lo * 1.2, hi * 1.2], color="grey", lw=0.6, ls="--", label="±20 %")
        ax.plot([lo, hi], [lo / 1.2, hi / 1.2], color="grey", lw=0.6, ls="--")
        ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi),
               xlabel="measured (ms)", ylabel="predicted (ms)", title=f"{title}: {name}")
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(True, which="both", alpha=0.2)
    fig.tight_layout()
    save(fig, path)


# --- sweep Pareto plot (issue 14) -------------------------------------------------------------
def sweep_pareto(labels: Sequence[str], values: Sequence[tuple[float, float] | None],
                 front: Sequence[bool], path: str | Path, *, x_label: str, y_label: str,
                 title: str) -> Path:
    """Every design point of a sweep on two axes (log-log), its Pareto front joined."""
    fig, ax = plt.subplots(figsize=(7, 5))
    shown = [(lab, v, f) for lab, v, f in zip(labels, values, front, strict=True) if v is not None]
    ax.scatter([v[0] for _l, v, _f in shown], [v[1] for _l, v, _f in shown], color="tab:gray",
               label="design points")
    best = sorted(v for _l, v, f in shown if f)
    if best:
        ax.plot([v[0] for v in best], [v[1] for v in best], "o-", color="tab:red",
                label="Pareto front")
    for lab, v, _f in shown:
        ax.annotate(lab, v, fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return save(fig, path, dpi=120)
# --- end sweep Pareto plot --------------------------------------------------------------------



# --- sweep views (dse: `accelsim sweep --plot`) ------------------------------------------------
def pareto_front(x: Sequence[float], y: Sequence[float]) -> list[int]:
    """Indices of the points no other point beats on both less x (resource) and less y (time),
    by increasing x."""
    order = sorted(range(len(x)), key=lambda i: (x[i], y[i]))
    front, best = [], float("inf")
    for i in order:
        if y[i] < best:
            front.append(i)
            best = y[i]
    return front


def sweep_views(path: str | Path, *, front: dict | None, heat: dict | None,
                title: str = "") -> Path:
    """Pareto front of time against a resource axis (all points, coloured by the other axes,
    front as a line) and a heat map of time over two axes; either panel may be absent.

    `front`: x, y, groups (one label per point), x_label, y_label. `heat`: rows, cols (value
    labels), values (rows x cols), row_label, col_label, value_label.
    """
    import numpy as np

    panels = [p for p in (front, heat) if p is not None]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8), squeeze=False)
    ax_iter = iter(axes[0])
    if front is not None:
        ax = next(ax_iter)
        x, y, groups = front["x"], front["y"], front["groups"]
        distinct = list(dict.fromkeys(groups))
        for g in distinct:  # one colour per combination of the other axes; legend if readable
            sel = [i for i, gi in enumerate(groups) if gi == g]
            ax.scatter([x[i] for i in sel], [y[i] for i in sel], s=28, zorder=3,
                       label=g if g and len(distinct) <= 12 else None)
        idx = pareto_front(x, y)
        ax.plot([x[i] for i in idx], [y[i] for i in idx], color="black", lw=1.2,
                drawstyle="steps-post", marker="o", markersize=11, markerfacecolor="none",
                label="Pareto front", zorder=4)
        if min(x) > 0 and max(x) / min(x) > 10:
            ax.set_xscale("log")
        ax.set(xlabel=front["x_label"], ylabel=front["y_label"],
               title="time against resource: Pareto front")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    if heat is not None:
        ax = next(ax_iter)
        values = np.array(heat["values"], dtype=float)
        im = ax.imshow(values, cmap="viridis_r", aspect="auto")
        ax.set_xticks(range(len(heat["cols"])), heat["cols"], rotation=20)
        ax.set_yticks(range(len(heat["rows"])), heat["rows"])
        ax.set(xlabel=heat["col_label"], ylabel=heat["row_label"], title=heat["value_label"])
        finite = values[np.isfinite(values)]
        middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
        for (r, c), v in np.ndenumerate(values):
            if np.isfinite(v):  # viridis_r: light for small values, dark for large
                ax.text(c, r, f"{v:.3g}", ha="center", va="center", fontsize=8,
                        color="white" if v > middle else "black")
        fig.colorbar(im, ax=ax, label=heat["value_label"])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)
# --- end of sweep views ---------------------------------------------------------------------------


# --- the memory-argument study (`accelsim study --plot DIR`) ---------------------------
def _series(points: Sequence[Any], key: Callable[[Any], str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for p in points:
        out.setdefault(key(p), []).append(p)
    return out


def study_subbatch(points: Sequence[Any], path: str | Path) -> Path:
    """Step time (with each design's roofline floor dashed) and algorithmic FLOP utilization
    against subbatch, one column per workload, one colour per design; hollow markers: the
    footprint does not fit the design's memory (timed anyway). `points`: `study.StudyPoint`s."""
    fig = study_subbatch_figure(points)
    return save(fig, path)


def study_subbatch_figure(points: Sequence[Any]) -> Figure:
    """The figure of `study_subbatch`, returned instead of saved."""
    workloads = _series(points, lambda p: p.workload)
    fig, axes = plt.subplots(2, max(1, len(workloads)), figsize=(6.2 * max(1, len(workloads)), 8),
                             squeeze=False)
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    designs = list(dict.fromkeys(p.design for p in points))
    for col, (wl, pts) in enumerate(workloads.items()):
        top, bottom = axes[0][col], axes[1][col]
        for design, dp in _series(pts, lambda p: p.design).items():
            color = palette[designs.index(design) % len(palette)]
            dp = sorted(dp, key=lambda p: p.subbatch)
            x = [p.subbatch for p in dp]
            reused = all(p.reused_from for p in dp)
            # a design that reuses another's simulation lies on it: a wide pale band beneath
            style: dict[str, Any] = (dict(color=color, lw=6, alpha=0.35, zorder=1) if reused
                                     else dict(color=color, lw=1.6, zorder=2))
            label = f"{design} (= {dp[0].reused_from} but memory)" if reused else design
            top.plot(x, [p.step_time_s for p in dp], label=label, **style)
            bottom.plot(x, [100 * p.flop_utilization for p in dp], label=label, **style)
            if not reused:
                top.plot(x, [p.floor_s for p in dp], color=color, lw=0.9, ls="--",
                         label=f"{design} roofline floor")
                top.plot(x, [p.padded_floor_s for p in dp], color=color, lw=0.9, ls=":",
                         label=f"{design} floor of the chosen tiles")
            for ax, ys in ((top, [p.step_time_s for p in dp]),
                           (bottom, [100 * p.flop_utilization for p in dp])):
                ax.scatter(x, ys, s=30, zorder=3, color=[color if p.fits else "white"
                                                         for p in dp], edgecolors=color)
        ticks = sorted({p.subbatch for p in pts})
        for ax in (top, bottom):
            ax.set_xscale("log", base=2)
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.minorticks_off()
            ax.set_xlabel("subbatch")
            ax.grid(True, which="both", alpha=0.3)
        top.set_yscale("log")
        top.set_ylabel("step time (s)")
        top.set_title(f"{wl}: step time and its floors")
        bottom.set_ylabel("algorithmic FLOP utilization (%)")
        bottom.set_ylim(0, 100)
        bottom.set_title(f"{wl}: utilization (hollow: does not fit, timed anyway)")
        top.legend(fontsize=7)
        bottom.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _binary_bytes(nbytes: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:g} {unit}"
    return f"{nbytes:g} B"


def study_cache_size(points: Sequence[Any], path: str | Path) -> Path:
    """Algorithmic FLOP utilization and HBM bytes per step against the last cache level's
    capacity, one line per workload and subbatch. `points`: `study.StudyPoint`s."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12.4, 4.8))
    for label, pts in _series(points, lambda p: f"{p.workload}, subbatch {p.subbatch}").items():
        pts = sorted(pts, key=lambda p: p.llc_bytes)
        x = [p.llc_bytes for p in pts]
        (line,) = left.plot(x, [100 * p.flop_utilization for p in pts], marker="o", label=label)
        right.plot(x, [p.hbm_bytes / 1e12 for p in pts], marker="o", color=line.get_color(),
                   label=label)
    sizes = sorted({p.llc_bytes for p in points})
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xticks(sizes, [_binary_bytes(v) for v in sizes])
        ax.minorticks_off()
        ax.set_xlabel("last-level cache capacity")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    left.set_ylabel("algorithmic FLOP utilization (%)")
    left.set_ylim(0, 100)
    left.set_title("utilization against cache size")
    right.set_yscale("log")
    right.set_ylabel("HBM bytes per step (TB)")
    right.set_title("HBM traffic against cache size")
    fig.tight_layout()
    return save(fig, path)
# --- end of the memory-argument study -----------------------------------------------------------
