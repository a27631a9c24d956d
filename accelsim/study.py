"""`accelsim study`: the paper's memory argument as numbers and figures (issue 9 item 5).

Hestness et al. (PPoPP 2019) argue that small subbatches make recurrent layers memory bound
and that a much larger on-chip cache restores utilization. This module runs that argument
through the full simulator instead of a roofline:

* **subbatch study** — step time and algorithmic FLOP utilization against subbatch for each
  design and workload (default ppopp19_target, bigcache, bigmem; the frontier NMT and word LM);
* **cache-size study** — utilization against the capacity of the first design's last cache
  level (the paper's re-streaming argument: a 6 MB cache re-streams tiled GEMM operands);
* **Table 5's cache-aware row** — the LSTMP word LM on ppopp19_target, the paper's 80 % -> 46 %
  beside accelsim's, with the numbers that explain the difference;
* **roofline floors** — per op max(compute time, bytes per level / that level's bandwidth),
  summed over the step, with compute charged three ways: the algorithmic FLOPs (raw), each
  GEMM's shape rounded up to its pipe's granule (`min_tile`; no kernel on that pipe does less)
  and the tiles the mapper chose (padded). At small subbatch the speedup of each design over
  the first is compared with the ratio of their granule floors (the issue's criterion: within
  20 % at subbatch <= 8), the raw ratio printed beside it.

Every point is timed, also when its footprint does not fit the design's memory (frontier
models need 150-1500 GB): such points are timed as `run --force` times them and marked
`fits: no`. Memory capacity enters neither the mapping, the cache simulation nor the timing,
so a design that differs from an earlier one only in memory capacity (bigmem from
ppopp19_target) reuses that design's simulation and differs only in `fits`; the table says so.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from accelsim.hardware import HardwareSpec
from accelsim.report import OpResult, Report
from accelsim.timing import level_bandwidths, port_bytes
from accelsim.vocabulary import MEMORY
from accelsim.workload import WorkloadSpec

DEFAULT_DESIGNS = ("ppopp19_target", "bigcache", "bigmem")
DEFAULT_WORKLOADS = ("nmt_frontier", "word_lm_frontier")
#: The issue's axis is 1-128; the default runs a subset that finishes in minutes
#: (`--subbatch 1 2 4 8 16 32 64 128` for all of it).
ALL_SUBBATCHES = (1, 2, 4, 8, 16, 32, 64, 128)
DEFAULT_SUBBATCHES = (4, 8, 32, 128)
#: Last-level cache capacities of the cache-size study (ppopp19_target's 6 MiB L2 upwards).
DEFAULT_CACHE_SIZES = (6 * 2**20, 96 * 2**20, 1536 * 2**20, 24 * 2**30, 96 * 2**30)
#: Subbatches of the cache-size study: a memory-bound one and the paper's Table 3/5 one.
DEFAULT_CACHE_SUBBATCHES = (8, 128)
CASE_STUDY_WORKLOAD = "word_lm_case_study"  # a shipped workload (refdata.workload_spec_path)

#: Issue 9's criterion: at subbatch <= FLOOR_SUBBATCH_MAX a design's speedup over the first
#: design is within FLOOR_TOLERANCE of the ratio of their roofline floors.
FLOOR_SUBBATCH_MAX = 8
FLOOR_TOLERANCE = 0.20
#: Issue 9's criterion for Table 5's cache-aware row: accelsim within 15 % of the paper.
TABLE5_TOLERANCE = 0.15


@attrs.frozen
class StudyPoint:
    """One simulated step of the study."""

    design: str
    workload: str
    subbatch: int
    #: capacity of the design's last cache level as simulated
    llc_bytes: int
    step_time_s: float
    flop_utilization: float
    hbm_bytes: float
    #: per-op roofline floor of the step (`roofline_floor_s`): compute at the algorithmic FLOPs
    floor_s: float
    #: the same floor with each GEMM's compute charged for its shape rounded up to its pipe's
    #: granule (`granule_work_factor`): the least work any kernel on that pipe does
    granule_floor_s: float
    #: the granule floor with each GEMM's compute charged for its mapping's padded tile work
    #: (`OpResult.padding_waste`): what the chosen tiles allow, not what the FLOPs need
    padded_floor_s: float
    footprint_bytes: float
    capacity_bytes: float
    fits: bool
    #: wall-clock time attributed to each bound (`Summary.bound_time_s`)
    bound_time_s: dict[str, float]
    #: the design whose simulation this point reuses (same chip but memory capacity), or ""
    reused_from: str = ""


@attrs.frozen
class FloorComparison:
    """A design's speedup over the baseline design at one subbatch against their floors."""

    workload: str
    subbatch: int
    baseline: str
    design: str
    speedup: float
    #: the ratio of the raw floors (`StudyPoint.floor_s`)
    floor_ratio: float
    #: the ratio of the granule floors (`StudyPoint.granule_floor_s`): the criterion's
    granule_floor_ratio: float
    #: the ratio of the padded floors (`StudyPoint.padded_floor_s`)
    padded_floor_ratio: float = math.nan

    @property
    def deviation(self) -> float:
        """speedup / granule floor ratio - 1: how far the simulated gain is from the gain of
        the floors no kernel on these pipes can beat."""
        ratio = self.granule_floor_ratio
        return self.speedup / ratio - 1.0 if ratio > 0 else math.inf

    @property
    def checked(self) -> bool:
        """Whether the issue's criterion applies (small subbatch)."""
        return self.subbatch <= FLOOR_SUBBATCH_MAX

    @property
    def within(self) -> bool:
        return abs(self.deviation) <= FLOOR_TOLERANCE


# --- roofline floors ---------------------------------------------------------------------------
#: `OpResult.shape` of a GEMM (`pipeline._shape`): optional `<batch>x`, `[MxK]@[KxN]`, optional `+C`
GEMM_SHAPE = re.compile(r"^(?:\d+x)?\[(\d+)x(\d+)\]@\[(\d+)x(\d+)\](?:\+C)?$")


def gemm_dims(op: OpResult) -> tuple[int, int, int] | None:
    """(m, n, k) of a GEMM result from its shape; None when the shape is empty (results built
    by hand, without dimensions)."""
    if not op.shape:
        return None
    match = GEMM_SHAPE.match(op.shape)
    if match is None:
        raise ValueError(f"{op.name}: expected a GEMM shape like [MxK]@[KxN], got {op.shape!r}")
    m, k, _k, n = (int(g) for g in match.groups())
    return m, n, k


def granule_work_factor(hw: HardwareSpec, op: OpResult, dtype: str) -> float:
    """Work of a GEMM with M, N and K each rounded up to the pipe's granule (`min_tile`) over
    its algorithmic work: a pipe that computes in granules (an MMA instruction's shape) does at
    least this much whatever the kernel; 1 for other ops and scalar pipes (granule 1)."""
    g = max(1, hw.compute.pipe(dtype).min_tile)
    dims = gemm_dims(op) if op.kind == "gemm" and g > 1 else None
    if dims is None:
        return 1.0
    m, n, k = (max(d, 1) for d in dims)
    return math.prod(math.ceil(d / g) * g / d for d in (m, n, k))


def op_floor_s(hw: HardwareSpec, op: OpResult, dtype: str, padded: bool = False,
               granule: bool = False) -> float:
    """max(compute time, bytes per level / that level's bandwidth) of one op as replayed.

    Compute at the achievable rate (the matrix pipe for GEMMs, the vector rate otherwise, each
    times its efficiency); each level's bytes as they cross its port (`timing.port_bytes`: a
    level that feeds the compute units bypasses the ports above it) over its achievable
    bandwidth with every unit busy. Padding, waves, latency and contention are not in it: no
    mapping can beat it. `granule`: a GEMM's compute charged for its shape rounded up to the
    pipe's granule (`granule_work_factor`), which no kernel on that pipe can beat either.
    `padded`: the granule work plus its mapping's padding beyond it (`OpResult.padding_waste`),
    the floor of the tiles the mapper chose.
    """
    if op.kind == "gemm":
        rate = hw.compute.peak_flop_rate(dtype) * hw.compute_efficiency(dtype)
    else:
        rate = hw.compute.vector_flop_rate * hw.calibration.vector_efficiency
    compute_s = max(op.flops, 0.0) / rate
    if granule or padded:
        compute_s *= granule_work_factor(hw, op, dtype)
    if padded and op.padding_waste < 1.0:
        compute_s /= 1.0 - op.padding_waste
    bandwidth = level_bandwidths(hw, hw.compute.units)
    ports = port_bytes(hw, {k: float(v) for k, v in op.bytes.items()})
    transfer_s = max((ports.get(lv, 0.0) / bw for lv, bw in bandwidth.items() if bw > 0),
                     default=0.0)
    return max(compute_s, transfer_s)


def roofline_floor_s(hw: HardwareSpec, report: Report, dtype: str, padded: bool = False,
                     granule: bool = False) -> float:
    """The step's roofline floor: `op_floor_s` summed over its ops (ops run one after another);
    `granule`: GEMM compute charged for shapes rounded up to the pipe's granule; `padded`: for
    the padded tile work of the mapping the report shows.
    The replay overlaps independent ops, so a step can beat this sum (by 0.6 % on the frontier
    word LM at subbatch 1 on ppopp19_target, by 3.7 % on bigcache, where the output projection
    overlaps the recurrent steps)."""
    return float(sum(op_floor_s(hw, op, dtype, padded, granule) for op in report.ops))


def floor_comparisons(points: Sequence[StudyPoint]) -> list[FloorComparison]:
    """Every design's speedup over the first design of its workload and subbatch, beside the
    ratios of their roofline floors (raw, granule, padded)."""

    def ratio(a: float, b: float) -> float:
        return a / b if b > 0 else math.inf

    out = []
    by_key: dict[tuple[str, int], list[StudyPoint]] = {}
    for p in points:
        by_key.setdefault((p.workload, p.subbatch), []).append(p)
    for (workload, subbatch), group in by_key.items():
        base = group[0]
        for p in group[1:]:
            if p.reused_from == base.design:  # same simulation: the comparison says nothing
                continue
            out.append(FloorComparison(
                workload=workload, subbatch=subbatch, baseline=base.design, design=p.design,
                speedup=base.step_time_s / p.step_time_s if p.step_time_s > 0 else math.inf,
                floor_ratio=ratio(base.floor_s, p.floor_s),
                granule_floor_ratio=ratio(base.granule_floor_s, p.granule_floor_s),
                padded_floor_ratio=ratio(base.padded_floor_s, p.padded_floor_s)))
    return out


# --- points -----------------------------------------------------------------------------------
def _timing_key(hw: HardwareSpec, wl: WorkloadSpec) -> str:
    """The parts of a design and workload the simulated step depends on: all but the design's
    names, its memory capacity (which only decides whether the step fits) and its technology
    (energy, area, cost), as canonical JSON."""
    from accelsim.spec import to_dict

    chip = to_dict(hw)
    for key in ("name", "description", "technology"):
        chip.pop(key, None)
    chip.get("memory", {}).pop("capacity", None)
    return json.dumps([chip, to_dict(wl)], sort_keys=True, default=str)


def _simulate(hw: HardwareSpec, wl: WorkloadSpec, mode: str) -> Report:
    from accelsim.api import simulate

    return simulate(hw, wl, mode=mode, force=True)


def point(hw: HardwareSpec, wl: WorkloadSpec, report: Report, reused_from: str = "") -> StudyPoint:
    """A study point from a design, a workload and the report of its step."""
    s = report.summary
    footprint = float(s.footprint_bytes)
    capacity = float(hw.memory.capacity_bytes)
    return StudyPoint(
        design=hw.name, workload=wl.name, subbatch=wl.subbatch,
        llc_bytes=int(hw.caches[-1].capacity_bytes) if hw.caches else 0,
        step_time_s=s.step_time_s, flop_utilization=s.flop_utilization,
        hbm_bytes=float(s.level_bytes.get(MEMORY, 0.0)),
        floor_s=roofline_floor_s(hw, report, wl.precision),
        granule_floor_s=roofline_floor_s(hw, report, wl.precision, granule=True),
        padded_floor_s=roofline_floor_s(hw, report, wl.precision, padded=True),
        footprint_bytes=footprint,
        capacity_bytes=capacity, fits=footprint <= capacity,
        bound_time_s=dict(s.bound_time_s), reused_from=reused_from)


def run_points(jobs: Sequence[tuple[HardwareSpec, WorkloadSpec]], mode: str = "auto",
               on_point: Callable[[StudyPoint], None] | None = None,
               done: dict[str, tuple[str, Report]] | None = None) -> list[StudyPoint]:
    """Simulate each (design, workload) once; a design equal to an earlier one but for memory
    capacity reuses its report (`_timing_key`). `done`: reports of earlier calls to reuse."""
    done = {} if done is None else done
    out = []
    for hw, wl in jobs:
        key = _timing_key(hw, wl)
        if key in done:
            name, report = done[key]
            p = point(hw, wl, report, reused_from=name)
        else:
            report = _simulate(hw, wl, mode)
            done[key] = (hw.name, report)
            p = point(hw, wl, report)
        out.append(p)
        if on_point is not None:
            on_point(p)
    return out


def subbatch_jobs(designs: Sequence[HardwareSpec], workloads: Sequence[WorkloadSpec],
                  subbatches: Sequence[int]) -> list[tuple[HardwareSpec, WorkloadSpec]]:
    """Every workload at every subbatch on every design (designs innermost, in order)."""
    return [(hw, attrs.evolve(wl, subbatch=b)) for wl in workloads for b in subbatches
            for hw in designs]


def with_llc_capacity(hw: HardwareSpec, capacity_bytes: int) -> HardwareSpec:
    """`hw` with its last cache level resized (line, ways, bandwidth and latency kept)."""
    if not hw.caches:
        raise ValueError(f"{hw.name}: expected at least one cache level to resize")
    last = attrs.evolve(hw.caches[-1], capacity_bytes=int(capacity_bytes))
    name = f"{hw.name} {hw.caches[-1].name}={capacity_text(capacity_bytes)}"
    return attrs.evolve(hw, caches=(*hw.caches[:-1], last), name=name)


def cache_jobs(design: HardwareSpec, workloads: Sequence[WorkloadSpec], sizes: Sequence[int],
               subbatches: Sequence[int]) -> list[tuple[HardwareSpec, WorkloadSpec]]:
    """Each workload at each subbatch (none given: its own) on `design` with each last-level
    capacity."""
    return [(with_llc_capacity(design, size), attrs.evolve(wl, subbatch=b) if b else wl)
            for wl in workloads for b in (subbatches or (0,)) for size in sizes]


# --- Table 5's cache-aware row ----------------------------------------------------------------
def table5_row(hw: HardwareSpec, wl: WorkloadSpec, report: Report,
               tables: dict | None = None) -> dict[str, Any]:
    """Table 5's cache-hierarchy-aware baseline beside the paper's, and the numbers behind the
    difference: the step time the paper's utilization implies and the HBM traffic that step
    time would need if the whole gap were memory time."""
    from accelsim.reproduce import load_tables

    tables = tables if tables is not None else load_tables()
    stages = {row["stage"]: row for row in tables["word_lm_case_study"]["stages"]}
    paper_util = float(stages["cache-hierarchy-aware baseline"]["alg_flop_utilization"])
    roofline_util = float(stages["best-case roofline baseline"]["alg_flop_utilization"])
    s = report.summary
    peak = s.peak_flop_rate
    bw = hw.memory.bandwidth_bytes_per_s * hw.calibration.bandwidth_efficiency
    paper_step_s = s.flops / (paper_util * peak)
    bound = dict(s.bound_time_s)
    total = sum(bound.values()) or 1.0
    return {
        "workload": wl.name, "hardware": hw.name, "subbatch": wl.subbatch,
        "accelsim_util": s.flop_utilization, "paper_util": paper_util,
        "roofline_util": roofline_util, "ratio": s.flop_utilization / paper_util,
        "within": abs(s.flop_utilization / paper_util - 1.0) <= TABLE5_TOLERANCE,
        "step_s": s.step_time_s, "paper_step_s": paper_step_s,
        "flops": s.flops, "algorithmic_bytes": s.bytes_accessed,
        "hbm_bytes": float(s.level_bytes.get(MEMORY, 0.0)),
        "llc_hit_rate": s.hit_rate.get(hw.caches[-1].name) if hw.caches else None,
        # HBM bytes a memory-bound step as long as the paper's would move at the achievable
        # bandwidth: the traffic the paper's re-streaming model must charge
        "paper_implied_hbm_bytes": paper_step_s * bw,
        "hbm_time_s": float(s.level_bytes.get(MEMORY, 0.0)) / bw,
        "compute_bound_share": bound.get("compute", 0.0) / total,
        "bound_time_s": bound,
    }


# --- the whole study --------------------------------------------------------------------------
def default_designs() -> list[HardwareSpec]:
    from accelsim.refdata import hardware_spec_path
    from accelsim.spec import load_hardware

    return [load_hardware(hardware_spec_path(name)) for name in DEFAULT_DESIGNS]


def default_workloads() -> list[WorkloadSpec]:
    from accelsim.refdata import workload_spec_path
    from accelsim.spec import load_workload

    return [load_workload(workload_spec_path(name)) for name in DEFAULT_WORKLOADS]


def study(designs: Sequence[HardwareSpec], workloads: Sequence[WorkloadSpec],
          subbatches: Sequence[int], *, cache_sizes: Sequence[int] = (),
          cache_subbatches: Sequence[int] = DEFAULT_CACHE_SUBBATCHES,
          case_study: WorkloadSpec | None = None, mode: str = "auto",
          on_point: Callable[[StudyPoint], None] | None = None) -> dict[str, Any]:
    """Run the subbatch study, the cache-size study (on the first design) and Table 5's
    cache-aware row (on the first design, when `case_study` is given)."""
    done: dict[str, tuple[str, Report]] = {}
    points = run_points(subbatch_jobs(designs, workloads, subbatches), mode, on_point, done)
    cache_points = (run_points(cache_jobs(designs[0], workloads, cache_sizes, cache_subbatches),
                               mode, on_point, done) if cache_sizes else [])
    table5 = None
    if case_study is not None:
        report = _simulate(designs[0], case_study, mode)
        table5 = table5_row(designs[0], case_study, report)
        if on_point is not None:
            on_point(point(designs[0], case_study, report))
    return {"designs": [hw.name for hw in designs], "workloads": [wl.name for wl in workloads],
            "subbatches": list(subbatches), "points": points,
            "floors": floor_comparisons(points), "cache_points": cache_points,
            "cache_subbatches": list(cache_subbatches), "table5": table5}


def jobs_count(n_designs: int, n_workloads: int, n_subbatches: int, n_cache_sizes: int,
               n_cache_subbatches: int, case_study: bool) -> int:
    """Points a study reports (some reuse another point's simulation)."""
    return (n_designs * n_workloads * n_subbatches
            + n_workloads * n_cache_sizes * max(1, n_cache_subbatches) + int(case_study))


# --- views --------------------------------------------------------------------------------------
def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def capacity_text(nbytes: float) -> str:
    """A cache capacity as its spec would write it: binary units (6 MiB, 1.5 GiB)."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:g} {unit}"
    return f"{nbytes:g} B"


def render(result: dict[str, Any]) -> str:
    """The study as text tables."""
    lines = ["Subbatch study: step time / algorithmic FLOP utilization / HBM bytes per step / "
             "roofline floor (per op max(compute, bytes per level / bandwidth), summed)",
             "  floor: compute at the algorithmic FLOPs; granule: each GEMM's M, N, K rounded up "
             "to its pipe's granule (min_tile), the least work any kernel does; padded: the "
             "chosen tiles' work;",
             "  fits: the step's footprint fits the design's memory; 'no' = timed anyway "
             "(as run --force)", ""]
    header = f"  {'workload':<20} {'design':<16} {'subbatch':>8} {'step s':>10} {'util':>8} " \
             f"{'HBM TB':>9} {'floor s':>10} {'granule':>10} {'padded':>10} {'fits':>5}  note"
    lines.append(header)
    for p in result["points"]:
        note = f"same simulation as {p.reused_from} (differs in memory capacity only)" \
            if p.reused_from else ""
        lines.append(f"  {p.workload:<20} {p.design:<16} {p.subbatch:>8} {p.step_time_s:>10.4g} "
                     f"{_pct(p.flop_utilization):>8} {p.hbm_bytes / 1e12:>9.4g} "
                     f"{p.floor_s:>10.4g} {p.granule_floor_s:>10.4g} {p.padded_floor_s:>10.4g} "
                     f"{'yes' if p.fits else 'no':>5}  {note}")
    floors = result["floors"]
    if floors:
        lines += ["", f"Speedup over the baseline design vs the ratio of roofline floors "
                      f"(criterion at subbatch <= {FLOOR_SUBBATCH_MAX}: within "
                      f"{FLOOR_TOLERANCE:.0%} of the granule floors' ratio)",
                  f"  {'workload':<20} {'design / baseline':<34} {'subbatch':>8} {'speedup':>8} "
                  f"{'floors':>8} {'granule':>8} {'deviation':>10}  {'criterion':<9} "
                  f"{'padded floors':>13}"]
        for f in floors:
            verdict = ("met" if f.within else "NOT met") if f.checked else "-"
            lines.append(f"  {f.workload:<20} {f.design + ' / ' + f.baseline:<34} "
                         f"{f.subbatch:>8} {f.speedup:>8.3f} {f.floor_ratio:>8.3f} "
                         f"{f.granule_floor_ratio:>8.3f} "
                         f"{100 * f.deviation:>9.1f}%  {verdict:<9} "
                         f"{f.padded_floor_ratio:>13.3f}")
    if result["cache_points"]:
        lines += ["", "Cache-size study: last cache level of "
                      f"{result['designs'][0]} resized",
                  f"  {'workload':<20} {'subbatch':>8} {'last level':>12} {'step s':>10} "
                  f"{'util':>8} {'HBM TB':>9} {'floor s':>10}"]
        for p in result["cache_points"]:
            lines.append(f"  {p.workload:<20} {p.subbatch:>8} {capacity_text(p.llc_bytes):>12} "
                         f"{p.step_time_s:>10.4g} {_pct(p.flop_utilization):>8} "
                         f"{p.hbm_bytes / 1e12:>9.4g} {p.floor_s:>10.4g}")
    t5 = result["table5"]
    if t5:
        lines += ["", f"Table 5, cache-hierarchy-aware baseline ({t5['workload']} on "
                      f"{t5['hardware']}, subbatch {t5['subbatch']})",
                  f"  algorithmic FLOP utilization: accelsim {_pct(t5['accelsim_util'])}, paper "
                  f"{_pct(t5['paper_util'])} (roofline {_pct(t5['roofline_util'])}); ratio "
                  f"{t5['ratio']:.2f}: {'within' if t5['within'] else 'NOT within'} "
                  f"{TABLE5_TOLERANCE:.0%}",
                  f"  step {t5['step_s']:.2f} s (paper's utilization implies "
                  f"{t5['paper_step_s']:.2f} s); {_pct(t5['compute_bound_share'])} of the step "
                  "compute bound",
                  f"  HBM bytes: simulated {t5['hbm_bytes'] / 1e12:.2f} TB "
                  f"({t5['hbm_time_s']:.2f} s at the achievable bandwidth), algorithmic "
                  f"{t5['algorithmic_bytes'] / 1e12:.2f} TB; a memory-bound step of the paper's "
                  f"length would move {t5['paper_implied_hbm_bytes'] / 1e12:.2f} TB"]
    return "\n".join(lines)


def to_json(result: dict[str, Any]) -> dict[str, Any]:
    """The study as plain JSON data."""
    def floor(f: FloorComparison) -> dict[str, Any]:
        return {**attrs.asdict(f), "deviation": f.deviation, "checked": f.checked,
                "within": f.within}

    return {**result,
            "points": [attrs.asdict(p) for p in result["points"]],
            "cache_points": [attrs.asdict(p) for p in result["cache_points"]],
            "floors": [floor(f) for f in result["floors"]],
            "floor_criterion": {"subbatch_max": FLOOR_SUBBATCH_MAX,
                                "tolerance": FLOOR_TOLERANCE}}


def figures(result: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """The subbatch figure and, when run, the cache-size figure (PNGs in `out_dir`)."""
    from accelsim import plot

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [plot.study_subbatch(result["points"], out / "study_subbatch.png")]
    if result["cache_points"]:
        paths.append(plot.study_cache_size(result["cache_points"],
                                           out / "study_cache_size.png"))
    return paths


# --- command ------------------------------------------------------------------------------------
def _size(text: str) -> int:
    from accelsim.units import UnitError, parse_bytes

    try:
        value = parse_bytes(text)
    except UnitError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive size, got {text!r}")
    return value


def _subbatch(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `accelsim study`."""
    parser.add_argument("--hardware", nargs="+", metavar="HW",
                        help="designs; the first is the baseline of speedups and the cache-size "
                             "study (default: hwspecs ppopp19_target, bigcache, bigmem)")
    parser.add_argument("--workload", nargs="+", metavar="WL",
                        help="workloads (default: workloads/nmt_frontier.yaml, "
                             "workloads/word_lm_frontier.yaml)")
    parser.add_argument("--subbatch", nargs="+", type=_subbatch, metavar="B",
                        help="subbatches (default: 4 8 32 128; the issue's full axis is "
                             "1 2 4 8 16 32 64 128)")
    parser.add_argument("--cache-sizes", nargs="*", type=_size, metavar="SIZE",
                        help="last-level cache capacities of the first design for the "
                             "cache-size study (default: 6MiB 96MiB 1.5GiB 24GiB 96GiB; "
                             "none: skip it)")
    parser.add_argument("--cache-subbatch", nargs="+", type=_subbatch, metavar="B",
                        default=list(DEFAULT_CACHE_SUBBATCHES),
                        help="subbatches of the cache-size study (default 8 128)")
    parser.add_argument("--table5", action=argparse.BooleanOptionalAction, default=True,
                        help="simulate Table 5's cache-aware row (workloads/"
                             "word_lm_case_study.yaml on the first design; default: yes)")
    parser.add_argument("--mode", choices=("auto", "exact", "coalesced"), default="auto",
                        help="cache simulation granularity")
    parser.add_argument("--json", metavar="FILE", help="write the study as JSON")
    parser.add_argument("--plot", metavar="DIR",
                        help="draw study_subbatch.png and study_cache_size.png in DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """`accelsim study`: check outputs, load specs, run the points with a progress bar, print."""
    from accelsim import progress, refdata, spec
    from accelsim.errors import SpecError
    from accelsim.outputs import check_distinct, check_output, check_output_dir

    hw_paths = args.hardware or []
    wl_paths = args.workload or []
    inputs = [*hw_paths, *wl_paths]
    if args.json:
        check_output("--json", args.json, inputs)
    if args.plot:
        check_output_dir("--plot", args.plot)
    check_distinct({"--json": args.json, "--plot": args.plot})
    issues, designs, workloads = [], [], []
    for path in hw_paths:
        try:
            designs.append(spec.load_hardware(path))
        except SpecError as exc:
            issues += exc.issues
    for path in wl_paths:
        try:
            workloads.append(spec.load_workload(path))
        except SpecError as exc:
            issues += exc.issues
    if issues:
        raise SpecError(issues)
    designs = designs or default_designs()
    workloads = workloads or default_workloads()
    subbatches = tuple(args.subbatch or DEFAULT_SUBBATCHES)
    sizes = tuple(DEFAULT_CACHE_SIZES if args.cache_sizes is None else args.cache_sizes)
    case = (spec.load_workload(refdata.workload_spec_path(CASE_STUDY_WORKLOAD)) if args.table5
            else None)
    total = jobs_count(len(designs), len(workloads), len(subbatches), len(sizes),
                       len(args.cache_subbatch), bool(case))
    with progress.bar(total, "study", quiet=args.quiet, unit="point") as bar:
        def on_point(p: StudyPoint) -> None:
            bar.set_postfix_str(f"{p.workload} {p.design} b={p.subbatch}")
            bar.update()

        result = study(designs, workloads, subbatches, cache_sizes=sizes,
                       cache_subbatches=args.cache_subbatch, case_study=case, mode=args.mode,
                       on_point=on_point)
    print(render(result))
    if args.json:
        Path(args.json).write_text(json.dumps(to_json(result), indent=1, default=float) + "\n",
                                   encoding="utf-8")
        print(f"wrote {args.json}")
    if args.plot:
        for path in figures(result, args.plot):
            print(f"wrote {path}")
    return 0
