"""matplotlib views of reports (the only module importing matplotlib; imported lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from accelsim.report import Report  # noqa: E402


def comparison(reports: Sequence[Report], path: str | Path) -> Path:
    """Five panels: step time, FLOP utilization, hit rates, HBM traffic, footprint vs capacity."""
    names = [r.hardware for r in reports]
    fig, axes = plt.subplots(1, 5, figsize=(20, 4))
    s = [r.summary for r in reports]
    axes[0].bar(names, [x.step_time_s for x in s], color="tab:blue")
    axes[0].set_ylabel("step time (s)")
    axes[1].bar(names, [100 * x.flop_utilization for x in s], color="tab:green")
    axes[1].set_ylabel("FLOP utilization (%)")
    levels: list[str] = []
    for x in s:
        levels += [lv for lv in x.hit_rate if lv not in levels]
    width = 0.8 / max(1, len(levels))
    for i, lv in enumerate(levels):
        axes[2].bar([j + i * width for j in range(len(names))],
                    [100 * x.hit_rate.get(lv, 0.0) for x in s], width=width, label=lv)
    axes[2].set_xticks([j + width * (len(levels) - 1) / 2 for j in range(len(names))], names)
    axes[2].set_ylabel("hit rate (%)")
    axes[2].legend()
    axes[3].bar(names, [x.level_bytes.get("HBM", 0.0) / 1e12 for x in s], color="tab:purple")
    axes[3].set_ylabel("HBM traffic per step (TB)")
    axes[4].bar(names, [x.footprint_bytes / 1e9 for x in s], color="tab:red", label="footprint")
    axes[4].scatter(names, [x.capacity_bytes / 1e9 for x in s], color="black", marker="_",
                    s=800, label="capacity", zorder=3)
    axes[4].set_yscale("log")
    axes[4].set_ylabel("GB")
    axes[4].legend()
    for ax in axes:
        ax.tick_params(axis="x", rotation=20)
    fig.suptitle(f"{reports[0].workload}: one training step per design")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def miss_ratio_curve(capacity_bytes, hit_rate, path: str | Path, *, title: str,
                     marks: Sequence[tuple[str, float]] = ()) -> Path:
    """Hit rate against cache capacity (log x), with the designs' capacities marked."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(capacity_bytes, [100 * h for h in hit_rate], color="tab:blue")
    for label, cap in marks:
        ax.axvline(cap, color="gray", linestyle="--")
        ax.text(cap, 2, label, rotation=90, va="bottom", ha="right", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("cache capacity (bytes)")
    ax.set_ylabel("hit rate (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


#: The paper's Figures 7-10: quantity key, y label, file name.
_SCALING_FIGURES = (
    ("flops_per_sample", "FLOPs per training sample", "fig7_flops_per_sample.png"),
    ("bytes_per_step", "bytes accessed per step", "fig8_bytes_per_step.png"),
    ("operational_intensity", "operational intensity (FLOP/byte)",
     "fig9_operational_intensity.png"),
    ("min_footprint_bytes", "minimal memory footprint (bytes)", "fig10_min_footprint.png"),
)


def scaling_figures(series: dict[str, dict[str, Sequence[float]]],
                    out_dir: str | Path) -> list[Path]:
    """One log-log figure per quantity against parameter count, one line per domain."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for key, ylabel, filename in _SCALING_FIGURES:
        fig, ax = plt.subplots(figsize=(6, 4.5))
        for domain, data in series.items():
            ax.plot(data["params"], data[key], marker="o", markersize=3, label=domain)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("model parameters")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = out / filename
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


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
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
# --- end of sweep views ---------------------------------------------------------------------------
