"""`accelsim case-study`: the paper's Table 5 (Section 6) recomputed beside the paper's rows.

The word LM with LSTM projection (`workloads/word_lm_case_study.yaml`) on the Table 4
accelerator, step by step as the paper takes it: the roofline baseline on one chip, the
cache-hierarchy-aware baseline (accelsim's replay), data parallelism on 1024 and 512 chips,
4-way layer parallelism on 2048 chips, then the embedding sharded across the four stages.
Plans that do not fit in 32 GB are timed anyway here (the paper times them: its data-parallel
rows need 125.7 GB per chip), and each such row says so. The paper's values come from the
reference tables (`reproduce.load_tables`); docs/reproduction.md explains each row more than
15 % off.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from accelsim import refdata, reproduce

SECONDS_PER_DAY = 86400.0
#: Shipped specs (refdata finds them in the repository or an installed wheel).
DEFAULT_WORKLOAD = refdata.workload_spec_path("word_lm_case_study")
DEFAULT_BASELINE = refdata.workload_spec_path("word_lm_frontier")
DEFAULT_HARDWARE = refdata.hardware_spec_path("ppopp19_target")

#: Table 5's rows in order: (stage as the paper names it, the plan accelsim runs for it).
PLANS = (
    ("best-case roofline baseline", None),
    ("cache-hierarchy-aware baseline", "single"),
    ("data parallelism (option 1)", "dp=1024"),
    ("data parallelism (option 2)", "dp=512"),
    ("+ layer parallelism (4x)", "dp=512,pp=4"),
    ("+ shard the embedding layer", "dp=512,pp=4,shard_embedding=true"),
)


def _ratio(ours: Any, paper: Any) -> Any:
    if isinstance(ours, list) and isinstance(paper, list) and len(ours) == len(paper):
        return [o / p if p else None for o, p in zip(ours, paper, strict=True)]
    if isinstance(ours, int | float) and isinstance(paper, int | float) and paper:
        return ours / paper
    return None


def rows(hw_path: str | Path = DEFAULT_HARDWARE, wl_path: str | Path = DEFAULT_WORKLOAD,
         baseline_path: str | Path = DEFAULT_BASELINE, tables: dict | None = None,
         mode: str = "auto") -> dict[str, Any]:
    """Every Table 5 row and the Section 6 text numbers, accelsim's beside the paper's."""
    import accelsim
    from accelsim.models import build_graph
    from accelsim.parallel import simulate_plan
    from accelsim.spec import plan_from_option

    tables = tables if tables is not None else reproduce.load_tables()
    paper = tables["word_lm_case_study"]
    by_stage = {row["stage"]: row for row in paper["stages"]}
    hw = accelsim.load_hardware(hw_path)
    wl = accelsim.load_workload(wl_path)
    roof = reproduce.Roofline(peak_flop_rate=hw.compute.peak_flop_rate(wl.precision),
                              bandwidth_bytes_per_s=hw.memory.bandwidth_bytes_per_s,
                              compute_efficiency=hw.calibration.compute_efficiency,
                              bandwidth_efficiency=hw.calibration.bandwidth_efficiency,
                              name=hw.name)
    graph = build_graph(wl)
    roof_step = roof.step_s(graph.flops, graph.bytes_accessed)
    base_graph = build_graph(accelsim.load_workload(baseline_path))
    base_step = roof.step_s(base_graph.flops, base_graph.bytes_accessed)
    per_example = wl.model.samples_per_example()
    samples = wl.dataset.samples if wl.dataset is not None else float("nan")

    out_rows = []
    cache: dict = {}
    for stage, plan_text in PLANS:
        ref = by_stage.get(stage, {})
        row: dict[str, Any] = {"stage": stage, "plan": plan_text or "roofline"}
        if plan_text is None:
            steps = samples / (wl.subbatch * per_example)
            row.update(accelerators=1, batch=wl.subbatch,
                       mem_gb=graph.minimal_footprint_bytes() / 1e9,
                       days=steps * roof_step / SECONDS_PER_DAY,
                       util=graph.flops / (roof_step * roof.peak_flop_rate), fits=None)
        elif plan_text == "single":
            report = accelsim.simulate(hw, wl, mode=mode, force=True)
            s = report.summary
            row.update(accelerators=1, batch=wl.subbatch, mem_gb=s.footprint_bytes / 1e9,
                       days=(s.epoch_time_s or float("nan")) / SECONDS_PER_DAY,
                       util=s.flop_utilization, fits=s.shortfall_bytes == 0)
        else:
            plan = plan_from_option(plan_text)
            report = simulate_plan(hw, wl, plan.resolve(None), mode=mode, force=True,
                                   graph=graph, cache=cache)
            par = report.parallel
            assert par is not None
            mems = [st.footprint_bytes / 1e9 for st in par.stages]
            row.update(accelerators=par.chips, batch=wl.subbatch * par.data,
                       mem_gb=mems if len(mems) > 1 else mems[0],
                       days=(par.time_to_train_s or float("nan")) / SECONDS_PER_DAY,
                       util=report.summary.flop_utilization, fits=par.fits,
                       bubble=par.bubble_fraction, exposed_comm_s=par.exposed_comm_s,
                       step_s=report.summary.step_time_s)
        paper_mem = ref.get("mem_required_gb_per_accelerator", ref.get("mem_required_gb"))
        row["paper"] = {"accelerators": ref.get("accelerators"), "batch": ref.get("batch"),
                        "mem_gb": paper_mem, "days": ref.get("days_per_epoch"),
                        "util": ref.get("alg_flop_utilization"), "note": ref.get("note")}
        row["ratio"] = {k: _ratio(row[k], row["paper"][k])
                        for k in ("accelerators", "batch", "mem_gb", "days", "util")}
        out_rows.append(row)
    text = paper.get("text", {})
    return {
        "hardware": hw.name, "workload": wl.name, "rows": out_rows,
        "roofline_step_s": {"accelsim": roof_step,
                            "paper": text.get("roofline_step_seconds_after_projection"),
                            "ratio": _ratio(roof_step,
                                            text.get("roofline_step_seconds_after_projection"))},
        "projection_speedup": {"accelsim": base_step / roof_step,
                               "paper": text.get("projection_speedup"),
                               "ratio": _ratio(base_step / roof_step,
                                               text.get("projection_speedup"))},
    }


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, list):
        return "[" + ", ".join(_fmt(v) for v in x) + "]"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.3g}"
    return str(x)


def render(result: dict[str, Any]) -> str:
    lines = [f"Table 5 (Section 6 case study): {result['workload']} on {result['hardware']}",
             "  each cell: accelsim / paper (ratio)", ""]
    for key, label in (("roofline_step_s", "roofline step after projection (s)"),
                       ("projection_speedup", "projection speedup (x)")):
        c = result[key]
        lines.append(f"  {label:<36} {_fmt(c['accelsim'])} / {_fmt(c['paper'])} "
                     f"({_fmt(c['ratio'])})")
    lines.append("")
    for row in result["rows"]:
        fit = "" if row["fits"] is None else ("  fits" if row["fits"] else
                                                "  DOES NOT FIT in memory: timed anyway, as the paper does")
        lines.append(f"  {row['stage']}  [{row['plan']}]{fit}")
        for key, label in (("accelerators", "accelerators"), ("batch", "batch"),
                           ("mem_gb", "memory per accelerator (GB)"), ("days", "days per epoch"),
                           ("util", "algorithmic FLOP utilization")):
            lines.append(f"    {label:<32} {_fmt(row[key]):>24} / {_fmt(row['paper'][key]):<20} "
                         f"({_fmt(row['ratio'][key])})")
        if row["paper"].get("note"):
            lines.append(f"    note: {row['paper']['note']}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hardware", metavar="HW", default=str(DEFAULT_HARDWARE),
                        help="accelerator (default hwspecs/ppopp19_target.yaml)")
    parser.add_argument("--workload", metavar="WL", default=str(DEFAULT_WORKLOAD),
                        help="the case-study workload (default workloads/word_lm_case_study.yaml)")
    parser.add_argument("--baseline", metavar="WL", default=str(DEFAULT_BASELINE),
                        help="the model before projection (default workloads/word_lm_frontier.yaml)")
    parser.add_argument("--json", metavar="FILE", help="write the rows as JSON")


def run(args: argparse.Namespace) -> int:
    result = rows(args.hardware, args.workload, args.baseline)
    print(render(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1, default=float)
        print(f"wrote {args.json}", file=sys.stdout)
    return 0
