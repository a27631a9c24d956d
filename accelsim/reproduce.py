"""`accelsim project`: the paper's Tables 1-3 recomputed by accelsim, next to the published values.

Hestness, Ardalani, Diamos, "Beyond Human-Level Accuracy: Computational Challenges in Deep
Learning" (PPoPP 2019). Table 1 comes from the learning-curve fits (accelsim.scaling); Table 3
builds each domain's training step at the frontier size (the builder's size hyperparameter
solved to reach Table 3's parameter count) and applies the paper's roofline, max(FLOPs / (0.8
peak), bytes / (0.7 bandwidth)), on the Table 4 accelerator; Table 2 fits per-parameter
coefficients to a sweep of model sizes per domain. The published numbers ship in the package
(accelsim/data/ppopp19_tables.yaml, read through `accelsim.refdata`); where the
paper contradicts itself (its `note:` entries, and NMT's and speech's Table 3 sequence lengths),
both readings are shown.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path
from typing import Any

import attrs
import yaml

from accelsim import refdata, scaling
from accelsim.models import build_graph
from accelsim.models.char_lm import CharLMConfig
from accelsim.models.nmt import NMTConfig
from accelsim.models.resnet import ResNetConfig
from accelsim.models.speech import SpeechConfig
from accelsim.models.word_lm import WordLMConfig
from accelsim.progress import stage
from accelsim.workload import WorkloadSpec

DEFAULT_HARDWARE = "ppopp19_target"  # a shipped spec (refdata.hardware_spec_path)
DOMAINS = ("word_lm", "char_lm", "nmt", "speech", "image")
SECONDS_PER_DAY = 86400.0


@attrs.frozen(kw_only=True)
class Setup:
    """How one domain is built at a given size: Catamount's structure, one size knob."""

    domain: str
    reading: str
    config: Any
    size_field: str
    optimizer: str = "sgd"

    def at_params(self, target_params: float) -> Any:
        return scaling.scale_config(self.config, self.size_field, target_params)

    def at_size(self, size: int) -> Any:
        return attrs.evolve(self.config, **{self.size_field: size})


#: Table 3 setups. NMT's and speech's published rows need other sequence lengths than
#: Catamount's sweep printout: both readings are kept (docs/reproduction.md).
SETUPS = (
    Setup(domain="word_lm", reading="", config=WordLMConfig(hidden=2004), size_field="hidden"),
    Setup(domain="char_lm", reading="", config=CharLMConfig(hidden=2004), size_field="hidden"),
    Setup(domain="nmt", reading="26 word pieces (Catamount sweep, Table 2)",
          config=NMTConfig(hidden=1024, sequence_length=26), size_field="hidden"),
    Setup(domain="nmt", reading="50 word pieces (matches Table 3)",
          config=NMTConfig(hidden=1024, sequence_length=50), size_field="hidden"),
    Setup(domain="speech", reading="300 frames (Table 2, Table 3)",
          config=SpeechConfig(encoder_hidden=1024, encoder_steps=300), size_field="encoder_hidden"),
    Setup(domain="speech", reading="335 frames (Catamount sweep)",
          config=SpeechConfig(encoder_hidden=1024, encoder_steps=335), size_field="encoder_hidden"),
    Setup(domain="image", reading="ResNet-152, widened", config=ResNetConfig(depth=152),
          size_field="width", optimizer="momentum"),
)


# --- inputs ----------------------------------------------------------------------------------
def load_tables(path: str | Path | None = None) -> dict:
    """The published tables: the file at `path`, else the copy shipped in the package."""
    if not path:
        return refdata.paper_tables()
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@attrs.frozen(kw_only=True)
class Roofline:
    """The paper's step-time model: achievable fractions of peak FLOP/s and bandwidth."""

    peak_flop_rate: float
    bandwidth_bytes_per_s: float
    compute_efficiency: float = 0.8
    bandwidth_efficiency: float = 0.7
    name: str = "ppopp19_target"

    def step_s(self, flops: float, bytes_accessed: float) -> float:
        """max(FLOPs / (0.8 peak), bytes / (0.7 bandwidth)), the paper's Table 3 step time."""
        return max(flops / (self.compute_efficiency * self.peak_flop_rate),
                   bytes_accessed / (self.bandwidth_efficiency * self.bandwidth_bytes_per_s))


def load_roofline(tables: dict, hardware: str | Path | None = None) -> Roofline:
    """The Table 4 accelerator from its hwspec (spec.load_hardware), else from Table 4 itself."""
    path = Path(hardware) if hardware else refdata.hardware_spec_path(DEFAULT_HARDWARE)
    if path.is_file():
        from accelsim.spec import load_hardware

        hw = load_hardware(path)
        return Roofline(peak_flop_rate=hw.compute.peak_flop_rate("fp32"),
                        bandwidth_bytes_per_s=hw.memory.bandwidth_bytes_per_s,
                        compute_efficiency=hw.calibration.compute_efficiency,
                        bandwidth_efficiency=hw.calibration.bandwidth_efficiency, name=hw.name)
    if hardware:
        raise FileNotFoundError(f"no hardware spec at {path}")
    t4 = tables["target_accelerator"]
    return Roofline(peak_flop_rate=t4["compute_fp32_tflops"] * 1e12,
                    bandwidth_bytes_per_s=t4["memory_bandwidth_gb_per_s"] * 1e9,
                    compute_efficiency=t4["achievable_fraction_of_peak_flops"],
                    bandwidth_efficiency=t4["achievable_fraction_of_peak_bandwidth"],
                    name="Table 4")


def _cell(ours: float | None, paper: float | None) -> dict:
    ratio = ours / paper if ours is not None and paper else None
    return {"accelsim": ours, "paper": paper, "ratio": ratio}


# --- Table 1 ---------------------------------------------------------------------------------
def table1(tables: dict) -> dict[str, dict]:
    """Data and model growth per domain from the learning-curve exponents.

    Reading 1 uses only the exponents, (desired/current)**(1/beta_g); where the paper notes it
    used another data growth, reading 2 takes the paper's data growth and applies beta_p.
    """
    out = {}
    projected = tables["projected_training"]
    for domain in DOMAINS:
        lc = tables["learning_curves"][domain]
        curve = scaling.LearningCurve(alpha=lc["alpha"], beta_g=lc["beta_g"], sigma=lc["sigma"],
                                      beta_p=lc["beta_p"])
        proj = scaling.project(curve, lc["current_sota"]["value"], lc["desired_sota"]["value"],
                               lc["current_data"]["samples"])
        row = {"data_growth": _cell(proj.data_growth, lc["projected_data_growth"]),
               "model_growth": _cell(proj.model_growth, lc["projected_model_growth"])}
        if "note" in lc:
            table3_growth = projected[domain]["data"] / lc["current_data"]["samples"]
            row["data_growth_from_table3"] = _cell(table3_growth, lc["projected_data_growth"])
            row["model_growth_from_paper_data_growth"] = _cell(
                scaling.model_growth(lc["projected_data_growth"], curve.beta_p),
                lc["projected_model_growth"])
            row["note"] = lc["note"]
        out[domain] = row
    return out


# --- Table 3 ---------------------------------------------------------------------------------
def graph_counts(config: Any, subbatch: int, optimizer: str) -> dict[str, float]:
    """Params, FLOPs, bytes and minimal footprint of one training step."""
    g = build_graph(WorkloadSpec(name="project", model=config, subbatch=subbatch,
                                 optimizer=optimizer))
    return {"params": g.params, "flops": g.flops, "bytes": g.bytes_accessed,
            "min_footprint_bytes": g.minimal_footprint_bytes()}


def table3(tables: dict, roofline: Roofline) -> list[dict]:
    """Each domain at Table 3's parameter count: counts, roofline step time, days per epoch."""
    rows = []
    for setup in SETUPS:
        paper = tables["projected_training"][setup.domain]
        config = setup.at_params(paper["params"])
        counts = graph_counts(config, paper["subbatch"], setup.optimizer)
        step_s = roofline.step_s(counts["flops"], counts["bytes"])
        per_example = config.samples_per_example()
        steps = paper["data"] / (paper["subbatch"] * per_example)
        paper_steps = paper["epoch_days"] * SECONDS_PER_DAY / paper["step_seconds"]
        t2 = parse_coefficients(tables["asymptotic_requirements"][setup.domain])
        b, p = paper["subbatch"], paper["params"]
        rows.append({
            "domain": setup.domain, "reading": setup.reading,
            "size": {setup.size_field: getattr(config, setup.size_field)},
            "subbatch": paper["subbatch"], "samples_per_example": per_example,
            "paper_implied_samples_per_example": paper["data"] / (paper["subbatch"] * paper_steps),
            "params": _cell(counts["params"], paper["params"]),
            "tflops_per_step": _cell(counts["flops"] / 1e12, paper["tflops_per_step"]),
            "tb_accessed_per_step": _cell(counts["bytes"] / 1e12, paper["tb_accessed_per_step"]),
            "min_footprint_gb": _cell(counts["min_footprint_bytes"] / 1e9,
                                      paper["min_footprint_gb"]),
            "step_seconds": _cell(step_s, paper["step_seconds"]),
            "step_seconds_from_paper_counts": _cell(
                roofline.step_s(paper["tflops_per_step"] * 1e12,
                                paper["tb_accessed_per_step"] * 1e12), paper["step_seconds"]),
            "epoch_days": _cell(steps * step_s / SECONDS_PER_DAY, paper["epoch_days"]),
            # The paper's own Table 2 formulas at its Table 3 size: where these disagree with
            # Table 3, the paper is inconsistent with itself (docs/reproduction.md).
            "table2_formula": {
                "tflops_per_step": t2["flops_per_param_per_sample"] * b * p / 1e12,
                "tb_accessed_per_step": (t2["bytes_per_param"] * p + t2[
                    "bytes_per_param_sqrt_term"] * b * math.sqrt(p)) / 1e12,
                "min_footprint_gb": t2["min_footprint_bytes_per_param"] * p / 1e9},
        })
    return rows


# --- Table 2 ---------------------------------------------------------------------------------
def parse_coefficients(entry: dict) -> dict[str, float]:
    """Numbers of Table 2's formulas: '481*b' -> 481; '1755 + 30784*b/sqrt(p)' -> 1755, 30784."""
    flops = float(re.match(r"\s*([\d.]+)", entry["flops_per_param"]).group(1))
    const, slope = (float(x) for x in re.findall(r"[\d.]+", entry["bytes_per_param"])[:2])
    return {"flops_per_param_per_sample": flops, "bytes_per_param": const,
            "bytes_per_param_sqrt_term": slope,
            "min_footprint_bytes_per_param": float(entry["min_footprint_bytes_per_param"])}


def sweep(setup: Setup, subbatch: int, frontier_params: float, points: int = 6,
          span: float = 16.0) -> list[dict]:
    """Counts at `points` sizes, geometric from frontier size / `span` up to the frontier size.

    The fits are asymptotic: small models, where embedding and vocabulary terms rival the
    recurrent weights, would bend them, so the sweep stays within a factor `span` in size.
    """
    top = getattr(setup.at_params(frontier_params), setup.size_field)
    steps = max(1, points - 1)
    sizes = sorted({max(8, round(top / span ** (i / steps))) for i in range(points)})
    out = []
    for size in sizes:
        stage(f"{setup.domain} {setup.size_field}={size}")  # the bar of `accelsim project`
        counts = graph_counts(setup.at_size(size), subbatch, setup.optimizer)
        counts["size"] = size
        out.append(counts)
    return out


def table2(tables: dict, points: int = 6) -> tuple[dict[str, dict], dict[str, list[dict]]]:
    """Per-parameter coefficients fitted to a sweep of sizes (the paper's asymptotic forms).

    FLOPs/b = F*p + G*sqrt(p) and bytes = A*p + B*b*sqrt(p), least squares over the sweep; the
    footprint per parameter is the largest model's ratio (the paper's asymptotic value). F, A,
    B and that ratio are compared with Table 2. The first Table 3 setup of each domain is swept.
    """
    fits, sweeps = {}, {}
    seen = set()
    for setup in SETUPS:
        if setup.domain in seen:
            continue
        seen.add(setup.domain)
        paper3 = tables["projected_training"][setup.domain]
        b = paper3["subbatch"]
        data = sweep(setup, b, paper3["params"], points)
        sweeps[setup.domain] = data
        params = [d["params"] for d in data]
        f, _ = scaling.asymptotic_fit(params, [d["flops"] / b for d in data])
        a, bb = scaling.asymptotic_fit(params, [d["bytes"] for d in data])
        c = data[-1]["min_footprint_bytes"] / data[-1]["params"]
        paper = parse_coefficients(tables["asymptotic_requirements"][setup.domain])
        fits[setup.domain] = {
            "subbatch": b,
            "flops_per_param_per_sample": _cell(f, paper["flops_per_param_per_sample"]),
            "bytes_per_param": _cell(a, paper["bytes_per_param"]),
            "bytes_per_param_sqrt_term": _cell(bb / b, paper["bytes_per_param_sqrt_term"]),
            "min_footprint_bytes_per_param": _cell(c, paper["min_footprint_bytes_per_param"]),
        }
    return fits, sweeps


# --- output ----------------------------------------------------------------------------------
def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if x == 0:
        return "0"
    if abs(x) >= 1e5 or abs(x) < 1e-2:
        return f"{x:.3g}"
    return f"{x:,.4g}" if abs(x) < 1000 else f"{x:,.0f}"


def _line(label: str, cell: dict, width: int = 34) -> str:
    ratio = "-" if cell["ratio"] is None else f"{cell['ratio']:.3f}"
    return (f"  {label:<{width}} {_fmt(cell['accelsim']):>12} {_fmt(cell['paper']):>12} "
            f"{ratio:>7}")


def render(t1: dict, t2: dict, t3: list[dict], roofline: Roofline) -> str:
    """The three tables as text, accelsim / paper / ratio per quantity."""
    head = f"  {'':<34} {'accelsim':>12} {'paper':>12} {'ratio':>7}"
    lines = ["Table 1: data and model growth to reach the desired accuracy", head]
    for domain, row in t1.items():
        lines.append(f" {domain}")
        for key, cell in row.items():
            if key != "note":
                lines.append(_line(key.replace("_", " "), cell))
        if "note" in row:
            lines.append(f"    paper's note: {row['note']}")
    lines += ["", f"Table 3: frontier training step on {roofline.name} (roofline: "
              f"{roofline.compute_efficiency:.0%} of {roofline.peak_flop_rate / 1e12:.2f} TFLOP/s,"
              f" {roofline.bandwidth_efficiency:.0%} of {roofline.bandwidth_bytes_per_s / 1e9:.0f}"
              " GB/s)", head]
    for row in t3:
        size = ", ".join(f"{k} {v}" for k, v in row["size"].items())
        reading = f" [{row['reading']}]" if row["reading"] else ""
        lines.append(f" {row['domain']}{reading}: {size}, subbatch {row['subbatch']}")
        for key in ("params", "tflops_per_step", "tb_accessed_per_step", "min_footprint_gb",
                    "step_seconds", "step_seconds_from_paper_counts", "epoch_days"):
            lines.append(_line(key.replace("_", " "), row[key]))
        formula = row["table2_formula"]
        lines.append("    the paper's Table 2 formulas at this size: "
                     f"{_fmt(formula['tflops_per_step'])} TFLOPs, "
                     f"{_fmt(formula['tb_accessed_per_step'])} TB, "
                     f"{_fmt(formula['min_footprint_gb'])} GB")
        lines.append(f"    samples per example {row['samples_per_example']}; the paper's epoch "
                     f"days imply {row['paper_implied_samples_per_example']:.1f}")
    lines += ["", "Table 2: per-parameter requirements fitted to a sweep of model sizes", head]
    for domain, row in t2.items():
        lines.append(f" {domain} (subbatch b = {row['subbatch']})")
        for key, label in (("flops_per_param_per_sample", "FLOPs/param per sample"),
                           ("bytes_per_param", "bytes/param (constant term)"),
                           ("bytes_per_param_sqrt_term", "bytes/param (x b/sqrt(p))"),
                           ("min_footprint_bytes_per_param", "min footprint bytes/param")):
            lines.append(_line(label, row[key]))
    return "\n".join(lines)


def figures(sweeps: dict[str, list[dict]], tables: dict, out_dir: str | Path) -> list[Path]:
    """Analogues of the paper's Figures 7-10 (matplotlib lives in accelsim.plot)."""
    from accelsim import plot

    series = {}
    for domain, data in sweeps.items():
        b = tables["projected_training"][domain]["subbatch"]
        series[domain] = {
            "params": [d["params"] for d in data],
            "flops_per_sample": [d["flops"] / b for d in data],
            "bytes_per_step": [d["bytes"] for d in data],
            "operational_intensity": [d["flops"] / d["bytes"] for d in data],
            "min_footprint_bytes": [d["min_footprint_bytes"] for d in data],
        }
    return plot.scaling_figures(series, out_dir, paper=paper_series(sweeps, tables))


def paper_series(sweeps: dict[str, list[dict]], tables: dict) -> dict[str, dict[str, list]]:
    """The paper's values for the figures: its Table 2 formulas over each sweep's sizes and its
    Table 3 frontier point, per domain (the quantities of `figures`)."""
    out = {}
    for domain, data in sweeps.items():
        paper = tables["projected_training"][domain]
        t2 = parse_coefficients(tables["asymptotic_requirements"][domain])
        b = paper["subbatch"]
        params = sorted({d["params"] for d in data} | {paper["params"]})
        flops = [t2["flops_per_param_per_sample"] * b * p for p in params]
        nbytes = [t2["bytes_per_param"] * p + t2["bytes_per_param_sqrt_term"] * b * math.sqrt(p)
                  for p in params]
        f3, b3 = paper["tflops_per_step"] * 1e12, paper["tb_accessed_per_step"] * 1e12
        out[domain] = {
            "params": params,
            "flops_per_sample": [f / b for f in flops],
            "bytes_per_step": nbytes,
            "operational_intensity": [f / n for f, n in zip(flops, nbytes, strict=True)],
            "min_footprint_bytes": [t2["min_footprint_bytes_per_param"] * p for p in params],
            "frontier_params": [paper["params"]],
            "frontier_flops_per_sample": [f3 / b],
            "frontier_bytes_per_step": [b3],
            "frontier_operational_intensity": [f3 / b3],
            "frontier_min_footprint_bytes": [paper["min_footprint_gb"] * 1e9],
        }
    return out


# --- command ---------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `accelsim project`."""
    parser.add_argument("--tables", metavar="FILE",
                        help="the paper's tables (default: the copy shipped in the package, "
                             "accelsim/data/ppopp19_tables.yaml)")
    parser.add_argument("--hardware", metavar="HW",
                        help="accelerator for the roofline (default hwspecs/ppopp19_target.yaml)")
    parser.add_argument("--sweep-points", type=int, default=6, metavar="N",
                        help="model sizes per domain for the Table 2 fits (default 6)")
    parser.add_argument("--json", metavar="FILE", help="write the tables as JSON")
    parser.add_argument("--plot", metavar="DIR", help="draw Figures 7-10 analogues (PNG) here")


def run(args: argparse.Namespace) -> int:
    """Print Tables 1-3 against the paper's; optionally write JSON and figures."""
    tables = load_tables(args.tables)
    roofline = load_roofline(tables, args.hardware)
    stage("table 1")
    t1 = table1(tables)
    stage("table 3")
    t3 = table3(tables, roofline)
    t2, sweeps = table2(tables, max(2, args.sweep_points))
    print(render(t1, t2, t3, roofline))
    if args.json:
        doc = {"paper": "Hestness, Ardalani, Diamos, PPoPP 2019 (arXiv 1909.01736)",
               "hardware": roofline.name, "table1": t1, "table2": t2, "table3": t3,
               "sweeps": sweeps}
        Path(args.json).write_text(json.dumps(doc, indent=2, default=_json_default) + "\n",
                                   encoding="utf-8")
        print(f"wrote {args.json}")
    if args.plot:
        for path in figures(sweeps, tables, args.plot):
            print(f"wrote {path}")
    return 0


def _json_default(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return float(x)
