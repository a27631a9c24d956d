"""The report figures: what each draws, read back from the returned matplotlib objects."""

from __future__ import annotations

import pytest

import accelsim
from accelsim import plot
from accelsim.cli import main


@pytest.fixture(scope="module")
def report(repo, tiny):
    hw = accelsim.load_hardware(repo / "hwspecs" / "v100.yaml")
    return accelsim.simulate(hw, accelsim.load_workload(tiny), chips=2)


def _points(ax) -> int:
    return sum(len(c.get_offsets()) for c in ax.collections)


def test_roofline_has_one_panel_per_level_and_one_point_per_op(report):
    fig = plot.roofline(report)
    axes = fig.axes
    levels = report.level_names()
    assert [ax.get_title().split(":")[0] for ax in axes] == levels
    for ax, lv in zip(axes, levels, strict=True):
        expect = [op for op in report.ops if op.flops > 0 and op.bytes.get(lv, 0) > 0
                  and op.time_s > 0]
        assert _points(ax) == len(expect)
        assert ax.get_xscale() == ax.get_yscale() == "log"
        assert lv in ax.get_xlabel() and "FLOP/s" in ax.get_ylabel()
        # the roof: compute ceiling at the peak, bandwidth slope at the level's bandwidth
        (roof,) = ax.lines
        x, y = roof.get_data()
        assert max(y) == pytest.approx(report.summary.peak_flop_rate)
        assert y[0] / x[0] == pytest.approx(report.summary.level_bandwidth_bytes_per_s[lv])
        legend = {t.get_text() for t in ax.get_legend().get_texts()}
        assert legend == {f"bound: {op.bound}" for op in expect}


def test_breakdown_attributes_the_whole_step(report):
    fig = plot.breakdown(report, top=5)
    by_cat, by_phase, top = fig.axes[:3]
    widths = [p.get_width() for p in by_cat.patches]
    scale = 1e3  # the tiny step is milliseconds long
    assert "(ms)" in by_cat.get_xlabel()
    assert sum(widths) == pytest.approx(report.summary.step_time_s * scale, rel=1e-9)
    assert [t.get_text() for t in by_cat.get_yticklabels()] == list(report.time_by_category())
    assert "exposed communication" in report.time_by_category()
    phases = [t.get_text() for t in by_phase.get_yticklabels()]
    assert phases == ["forward", "backward", "update"]
    assert sum(p.get_width() for p in by_phase.patches) == pytest.approx(
        sum(op.time_s for op in report.ops) * scale, rel=1e-9)
    assert len(top.patches) == 5
    slowest = max(report.ops, key=lambda o: o.time_s)
    assert top.patches[0].get_width() == pytest.approx(slowest.time_s * scale)


def test_gantt_draws_every_op_and_a_utilization_row_per_level(report):
    fig = plot.gantt(report)
    ops_ax, units_ax, *level_axes = fig.axes
    bars = sum(len(c.get_paths()) for c in ops_ax.collections
               if type(c).__name__ == "PolyCollection")
    assert bars == len(report.ops)
    assert [ax.get_ylabel().split("\n")[0] for ax in level_axes] == report.level_names()
    assert "time in the step" in level_axes[-1].get_xlabel()
    for ax in [units_ax, *level_axes]:
        assert ax.get_ylim()[1] == pytest.approx(105)  # percent of the chip's peak


def test_cli_run_plot_writes_three_pngs(repo, tiny, tmp_path):
    out = tmp_path / "figs"
    assert main(["run", str(repo / "hwspecs" / "v100.yaml"), tiny, "--plot", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["breakdown.png", "gantt.png", "roofline.png"]
    assert all(p.stat().st_size > 10_000 for p in out.iterdir())


def test_mrc_axis_stops_at_the_footprint():
    import numpy as np

    cap = np.array([2.0**k for k in range(10, 40)])
    fig = plot.mrc_figure(cap, np.linspace(0.1, 0.99, cap.size), title="t",
                          marks=[("chip", 2.0**20)], footprint_bytes=2.0**30)
    (ax,) = fig.axes
    assert ax.get_xlim()[1] == pytest.approx(2.0**30 * 1.05)
    assert ax.get_xlabel() == "cache capacity" and ax.get_ylabel() == "hit rate (%)"
    texts = [t.get_text() for t in ax.texts]
    assert "chip" in texts and any("footprint 1.07 GB" in t for t in texts)


def test_comparison_labels_every_bar(report):
    fig = plot.comparison_figure([report, report])
    step_ax = fig.axes[0]
    assert len(step_ax.patches) == 2
    labels = [t.get_text() for t in step_ax.texts]
    assert labels == [f"{report.summary.step_time_s * 1e3:.3g}"] * 2
    assert [ax.get_title() for ax in fig.axes][:2] == ["step time", "FLOP utilization"]


def test_scaling_figure_overlays_the_papers_values():
    from accelsim import reproduce

    tables = reproduce.load_tables(None)
    domains = list(tables["projected_training"])[:2]
    sweeps = {d: [{"params": p, "flops": 1e3 * p, "bytes": 1e2 * p, "min_footprint_bytes": 8 * p}
                  for p in (1e8, 1e9)] for d in domains}
    paper = reproduce.paper_series(sweeps, tables)
    fig = plot.scaling_figure(sweeps_series := {
        d: {"params": [x["params"] for x in v], "flops_per_sample": [x["flops"] for x in v],
            "bytes_per_step": [x["bytes"] for x in v],
            "operational_intensity": [x["flops"] / x["bytes"] for x in v],
            "min_footprint_bytes": [x["min_footprint_bytes"] for x in v]}
        for d, v in sweeps.items()}, "min_footprint_bytes", paper)
    (ax,) = fig.axes
    assert len(ax.lines) == 3 * len(sweeps_series) + 2  # ours, formula, frontier; 2 legend keys
    stars = [ln for ln in ax.lines if ln.get_marker() == "*" and len(ln.get_xdata())]
    for d, star in zip(domains, stars, strict=True):
        row = tables["projected_training"][d]
        assert star.get_xdata()[0] == row["params"]
        assert star.get_ydata()[0] == pytest.approx(row["min_footprint_gb"] * 1e9)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [*domains, "paper, Table 2 formula", "paper, Table 3 frontier"]
