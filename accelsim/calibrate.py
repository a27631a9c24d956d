"""`accelsim calibrate`: fit a spec's calibration knobs to one chip's measurements.

The model's physics stays as the spec says (units, clocks, pipes, caches, bandwidths); only the
knobs that turn peaks into times are fitted, each within physical bounds, by least squares on
the log of predicted / measured time (a 2x over- and under-prediction weigh the same):

- GEMM rows fit `compute_efficiency` (achievable fraction of a pipe's peak) and
  `launch_overhead` (fixed cost per kernel);
- RNN rows then fit `rnn_step_overhead` and `rnn_call_overhead` (the recurrent library's host
  work per timestep and per call), with the GEMM knobs fixed.

The search is a grid: `compute_efficiency` on a coarse grid refined around the best value, the
launch overhead from the per-row predictions at two overheads (the prediction is affine in
it), the two RNN overheads exactly (a pass is its kernels plus one call plus one overhead per
step). Errors are then computed with the real model at the fitted values, in-sample and by
k-fold cross-validation over shapes (a shape's precisions and passes fall in one fold, so no
held-out prediction has seen its shape). GEMM traffic comes from the analytic re-streaming
model (`validate --analytic`), which keeps a fit under two minutes on the DeepBench tables.
"""

from __future__ import annotations

import argparse
import datetime
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import numpy as np

from accelsim import validate
from accelsim.errors import AccelsimError, Issue, SpecError, SpecTypeError
from accelsim.hardware import HardwareSpec
from accelsim.validate import Row, rnn_steps, shape_of, summarize

#: Physical bounds of each fitted knob (Calibration field -> (low, high)).
BOUNDS = {
    "compute_efficiency": (0.3, 1.0),
    "launch_overhead_s": (0.0, 50e-6),
    "rnn_step_overhead_s": (0.0, 100e-6),
    "rnn_call_overhead_s": (0.0, 500e-6),
}
GEMM_KNOBS = ("compute_efficiency", "launch_overhead_s")
RNN_KNOBS = ("rnn_step_overhead_s", "rnn_call_overhead_s")
#: A fit needs at least this many measured rows per knob it fits, per table.
MIN_ROWS_PER_KNOB = 5
DEFAULT_FOLDS = 5
_COARSE_STEP, _FINE_STEP = 0.05, 0.01
_LAUNCH_PROBE_S = 10e-6
_FINE_LAUNCH_S = 0.25e-6
_GRID_POINTS = 401


@attrs.frozen
class Fit:
    """Fitted knobs, the rows predicted with them, and the cross-validated predictions."""

    knobs: dict[str, float]
    rows: list[Row]
    held_out: list[Row]
    folds: int
    fold_knobs: list[dict[str, float]]


PIPE_KNOB = "compute.matrix.{}.efficiency"


def pipe_of(row: Row) -> str:
    """The matrix pipe a GEMM row runs on (pseudo-FP16 rows use the FP32 pipes)."""
    if row.precision in validate.SCALAR_MATH_PRECISIONS:
        return "fp32"
    return validate.PRECISION_DTYPE[row.precision]


def with_knobs(hw: HardwareSpec, knobs: dict[str, float]) -> HardwareSpec:
    """`hw` with calibration fields (`launch_overhead_s`, ...) and per-pipe efficiencies
    (`compute.matrix.fp16.efficiency`) replaced by `knobs`."""
    pipes = {k.split(".")[2]: v for k, v in knobs.items() if k.startswith("compute.matrix.")}
    if pipes:
        matrix = {d: attrs.evolve(p, efficiency=pipes[d]) if d in pipes else p
                  for d, p in hw.compute.matrix.items()}
        hw = attrs.evolve(hw, compute=attrs.evolve(hw.compute, matrix=matrix))
    cal = {k: v for k, v in knobs.items() if "." not in k}
    return attrs.evolve(hw, calibration=attrs.evolve(hw.calibration, **cal))


def _log_sq(pred: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Squared log error, summed over the last axis."""
    return np.sum(np.log(np.maximum(pred, 1e-30) / measured) ** 2, axis=-1)


def _folds_of(rows: Sequence[Row], folds: int) -> np.ndarray:
    """Fold index of each row: shapes dealt round-robin after a seeded shuffle."""
    shapes = sorted({(r.table == "gemm", shape_of(r)) for r in rows})
    order = np.random.default_rng(0).permutation(len(shapes))
    fold = {shapes[i]: n % folds for n, i in enumerate(order)}
    return np.array([fold[(r.table == "gemm", shape_of(r))] for r in rows], dtype=int)


def _need_rows(path: str | Path, table: str, rows: int, knobs: Sequence[str], shapes: int,
               folds: int) -> None:
    need = MIN_ROWS_PER_KNOB * len(knobs)
    if rows < need or shapes < folds:
        raise SpecError([Issue(str(path), None, None, table,
                               f"at least {need} measured rows ({MIN_ROWS_PER_KNOB} per fitted "
                               f"knob: {', '.join(knobs)}) over at least {folds} shapes "
                               f"(--folds)", f"{rows} rows over {shapes} shapes")])


# --- GEMM: compute efficiency and launch overhead ----------------------------------------------
class _GemmTable:
    """Per-row predictions on a grid of compute efficiencies, each at two launch overheads."""

    def __init__(self, predict: Callable[[dict[str, float]], np.ndarray],
                 pipes: Sequence[str], row_pipes: Sequence[str] | None) -> None:
        self.predict = predict
        self.pipes = list(pipes)  # every pipe of the chip: all are set to the grid value
        self.row_pipes = None if row_pipes is None else np.array(row_pipes)
        self.at_zero: dict[float, np.ndarray] = {}
        self.slope: dict[float, np.ndarray] = {}

    def add(self, eff: float) -> None:
        eff = round(eff, 6)
        if eff in self.at_zero:
            return
        knobs = {"compute_efficiency": eff, **{PIPE_KNOB.format(d): eff for d in self.pipes}}
        p0 = self.predict({**knobs, "launch_overhead_s": 0.0})
        p1 = self.predict({**knobs, "launch_overhead_s": _LAUNCH_PROBE_S})
        self.at_zero[eff], self.slope[eff] = p0, (p1 - p0) / _LAUNCH_PROBE_S

    def best(self, measured: np.ndarray, mask: np.ndarray) -> dict[str, float]:
        """The grid point of least squared log error over the rows in `mask`: one efficiency
        for the chip, or (per pipe) one per pipe with the launch overhead shared."""
        lo, hi = BOUNDS["launch_overhead_s"]
        launch = np.linspace(lo, hi, _GRID_POINTS)
        effs = sorted(self.at_zero)
        groups = ({"compute_efficiency": mask} if self.row_pipes is None else
                  {PIPE_KNOB.format(d): mask & (self.row_pipes == d)
                   for d in sorted(set(self.row_pipes[mask]))})
        total = np.zeros(len(launch))
        costs = {}
        for name, rows in groups.items():
            costs[name] = np.stack([_log_sq(self.at_zero[e][rows][None, :]
                                            + launch[:, None] * self.slope[e][rows],
                                            measured[rows]) for e in effs])
            total += costs[name].min(axis=0)
        i = int(np.argmin(total))
        return {**{name: effs[int(np.argmin(c[:, i]))] for name, c in costs.items()},
                "launch_overhead_s": float(launch[i])}


def _refine_launch(rows_at: Callable[[dict[str, float]], list[Row]], knobs: dict[str, float],
                   measured: np.ndarray) -> dict[str, float]:
    """The launch overhead re-searched with the real model around the grid's choice (the
    prediction is affine in it only while no mapping changes), efficiencies fixed."""
    lo, hi = BOUNDS["launch_overhead_s"]
    found = (math.inf, knobs["launch_overhead_s"])
    for launch in np.arange(-4, 5) * _FINE_LAUNCH_S + knobs["launch_overhead_s"]:
        if lo <= launch <= hi:
            pred = np.array([r.predicted_s for r in rows_at({**knobs,
                                                             "launch_overhead_s": launch})])
            cost = float(_log_sq(pred, measured))
            if cost < found[0]:
                found = (cost, float(launch))
    return {**knobs, "launch_overhead_s": found[1]}


def _grid(low: float, high: float, step: float) -> list[float]:
    return [round(x, 6) for x in np.arange(low, high + step / 2, step)]


def _fit_gemm(hw: HardwareSpec, path: str | Path, device: str | None, folds: int,
              per_pipe: bool) -> tuple[dict[str, float], list[Row], list[Row], list[dict]]:
    def rows_at(knobs: dict[str, float]) -> list[Row]:
        return validate.validate_gemm(with_knobs(hw, knobs), path, device=device,
                                      not_predicted=[])

    own = sorted(d for d, p in hw.compute.matrix.items() if p.efficiency is not None)
    if own and not per_pipe:
        raise AccelsimError(f"{hw.name}: pipes {own} have their own efficiency, which a "
                            "chip-wide fit would not change: use --per-pipe")
    base = rows_at({})
    pipes = sorted({pipe_of(r) for r in base})
    names = [PIPE_KNOB.format(d) for d in pipes] if per_pipe else ["compute_efficiency"]
    _need_rows(path, "gemm", len(base), [*names, "launch_overhead_s"],
               len({shape_of(r) for r in base}), folds)
    measured = np.array([r.measured_s for r in base])
    table = _GemmTable(lambda k: np.array([r.predicted_s for r in rows_at(k)]),
                       list(hw.compute.matrix), [pipe_of(r) for r in base] if per_pipe else None)
    low, high = BOUNDS["compute_efficiency"]
    for eff in _grid(low, high, _COARSE_STEP):
        table.add(eff)
    everything = np.ones(len(base), dtype=bool)
    coarse = table.best(measured, everything)
    for name in names:
        for eff in _grid(max(low, coarse[name] - _COARSE_STEP),
                         min(high, coarse[name] + _COARSE_STEP), _FINE_STEP):
            table.add(eff)
    knobs = _refine_launch(rows_at, table.best(measured, everything), measured)
    fold = _folds_of(base, folds)
    held_out: list[Row | None] = [None] * len(base)
    fold_knobs = []
    for f in range(folds):
        k = table.best(measured, fold != f)
        fold_knobs.append(k)
        exact = rows_at(k)  # the real model at this fold's knobs, kept for its held-out rows
        for i in np.flatnonzero(fold == f):
            held_out[i] = exact[i]
    return knobs, rows_at(knobs), [r for r in held_out if r is not None], fold_knobs


# --- RNN: per-step and per-call overheads ------------------------------------------------------
def _fit_rnn(hw: HardwareSpec, path: str | Path, device: str | None, folds: int,
             gemm_knobs: dict[str, float]) -> tuple[dict[str, float], list[Row], list[Row],
                                                    list[dict]]:
    zero = {**gemm_knobs, "rnn_step_overhead_s": 0.0, "rnn_call_overhead_s": 0.0}
    base = validate.validate_rnn(with_knobs(hw, zero), path, device=device, not_predicted=[])
    _need_rows(path, "rnn", len(base), RNN_KNOBS, len({shape_of(r) for r in base}), folds)
    measured = np.array([r.measured_s for r in base])
    kernels = np.array([r.predicted_s for r in base])
    steps = np.array([0 if r.table == "rnn_bwd_weights" else rnn_steps(r) for r in base],
                     dtype=float)
    step_grid = np.linspace(*BOUNDS["rnn_step_overhead_s"], _GRID_POINTS)
    call_grid = np.linspace(*BOUNDS["rnn_call_overhead_s"], _GRID_POINTS)

    def best(mask: np.ndarray) -> dict[str, float]:
        found = (math.inf, 0.0, 0.0)
        for call in call_grid:
            pred = (kernels[mask] + call)[None, :] + step_grid[:, None] * steps[mask]
            cost = _log_sq(pred, measured[mask])
            i = int(np.argmin(cost))
            if cost[i] < found[0]:
                found = (float(cost[i]), float(step_grid[i]), float(call))
        return {"rnn_step_overhead_s": found[1], "rnn_call_overhead_s": found[2]}

    def predicted(knobs: dict[str, float], i: int) -> Row:
        t = (kernels[i] + knobs["rnn_call_overhead_s"]
             + steps[i] * knobs["rnn_step_overhead_s"])
        return attrs.evolve(base[i], predicted_s=float(t))

    knobs = best(np.ones(len(base), dtype=bool))
    fold = _folds_of(base, folds)
    fold_knobs = [best(fold != f) for f in range(folds)]
    held_out = [predicted(fold_knobs[fold[i]], i) for i in range(len(base))]
    return knobs, [predicted(knobs, i) for i in range(len(base))], held_out, fold_knobs


def calibrate(hw: HardwareSpec, gemm_csv: str | Path, rnn_csv: str | Path | None = None, *,
              device: str | None = None, folds: int = DEFAULT_FOLDS,
              per_pipe: bool = False) -> Fit:
    """Fit the GEMM knobs on `gemm_csv` (one compute efficiency, or with `per_pipe` one per
    matrix pipe the rows use), then the RNN knobs on `rnn_csv` (when given)."""
    if not isinstance(hw, HardwareSpec):
        raise SpecTypeError(f"hw: expected a HardwareSpec (accelsim.load_hardware(path)), got "
                            f"{type(hw).__name__}")
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise AccelsimError(f"--folds: expected a whole number of at least 2 folds, got "
                            f"{folds!r}")
    knobs, rows, held, fold_knobs = _fit_gemm(hw, gemm_csv, device, folds, per_pipe)
    if rnn_csv:
        rnn_knobs, rnn_rows, rnn_held, rnn_folds = _fit_rnn(hw, rnn_csv, device, folds, knobs)
        knobs = {**knobs, **rnn_knobs}
        rows, held = rows + rnn_rows, held + rnn_held
        fold_knobs = [{**a, **b} for a, b in zip(fold_knobs, rnn_folds, strict=True)]
    return Fit(knobs=knobs, rows=rows, held_out=held, folds=folds, fold_knobs=fold_knobs)


# --- output --------------------------------------------------------------------------------------
def format_value(field_name: str, value: float) -> str:
    """A knob as the spec writes it: times in us, fractions with three decimals."""
    if field_name.endswith("_s"):
        return f"{value * 1e6:.4g} us"
    return f"{value:.3f}"


def format_errors(fit: Fit) -> str:
    """Median / p90 / max absolute % error per table and precision: fitted vs held-out."""
    fitted, held = summarize(fit.rows), summarize(fit.held_out)
    lines = [f"{'table':<16}{'precision':<12}{'rows':>6}   {'fitted: median':>14}{'p90':>7}"
             f"{'max':>7}   {'held-out: median':>16}{'p90':>7}{'max':>7}"]
    for table, per in fitted.items():
        for prec, s in per.items():
            h = held[table][prec]
            lines.append(f"{table:<16}{prec:<12}{s['rows']:>6}   "
                         f"{s['median_abs_pct_err']:>14.1f}{s['p90_abs_pct_err']:>7.1f}"
                         f"{s['max_abs_pct_err']:>7.1f}   {h['median_abs_pct_err']:>16.1f}"
                         f"{h['p90_abs_pct_err']:>7.1f}{h['max_abs_pct_err']:>7.1f}")
    return "\n".join(lines)


def fit_notes(fit: Fit, gemm_csv: str | Path, rnn_csv: str | Path | None) -> dict[str, str]:
    """Per knob: the fit's date, the rows it used and the table's cross-validated error."""
    today = datetime.date.today().isoformat()
    held = summarize(fit.held_out)
    notes = {}
    gemm_knobs = [k for k in fit.knobs if k not in RNN_KNOBS]
    for knobs, path, tables in ((gemm_knobs, gemm_csv, ("gemm",)),
                                (RNN_KNOBS, rnn_csv, tuple(t for t in held if t != "gemm"))):
        stats = [s for t in tables for s in held.get(t, {}).values()]
        if not path or not stats:
            continue
        rows = sum(1 for r in fit.rows if (r.table == "gemm") == (tables == ("gemm",)))
        median = max(s["median_abs_pct_err"] for s in stats)
        for name in knobs:
            notes[name] = (f"accelsim calibrate {today}, {rows} rows of {Path(path).name}, "
                           f"{fit.folds}-fold CV median abs err <= {median:.1f} %")
    return notes


def fitted_spec_text(source_text: str, hw: HardwareSpec, fit: Fit,
                     notes: dict[str, str]) -> str:
    """The source spec with each fitted knob set in its `calibration:` block (other comments
    kept), each carrying `# fitted: <note>`; a spec without a block-style section is rewritten."""
    from accelsim.spec import dump_yaml, yaml_key

    lines = source_text.splitlines()
    start = next((i for i, x in enumerate(lines)
                  if re.match(r"^calibration:\s*(#.*)?$", x)), None)
    if start is None and not any(x.startswith("calibration:") for x in lines):
        lines += ["calibration:"]
        start = len(lines) - 1
    if start is None:  # a flow-style mapping: write the whole spec from the loaded objects
        fitted = with_knobs(hw, fit.knobs)
        return "".join(f"# {k}: fitted: {v}\n" for k, v in notes.items()) + dump_yaml(fitted)
    end = next((i for i in range(start + 1, len(lines))
                if lines[i] and not lines[i][0].isspace() and not lines[i].startswith("#")),
               len(lines))
    for name, value in fit.knobs.items():
        if name.startswith("compute.matrix."):
            text = f"      efficiency: {format_value(name, value)}"
            text = f"{text:<33}# fitted: {notes.get(name, 'accelsim calibrate')}"
            if not _set_pipe_line(lines, name.split(".")[2], text):
                return ("".join(f"# {k}: fitted: {v}\n" for k, v in notes.items())
                        + dump_yaml(with_knobs(hw, fit.knobs)))
            start = next(i for i, x in enumerate(lines) if re.match(r"^calibration:", x))
            end = next((i for i in range(start + 1, len(lines)) if lines[i]
                        and not lines[i][0].isspace() and not lines[i].startswith("#")),
                       len(lines))
            continue
        key = yaml_key(name)
        text = f"  {key}: {format_value(name, value)}"
        text = f"{text:<33}# fitted: {notes.get(name, 'accelsim calibrate')}"
        pattern = re.compile(rf"^\s+({re.escape(key)}|{re.escape(name)})\s*:")
        at = next((i for i in range(start + 1, end) if pattern.match(lines[i])), None)
        if at is None:
            lines.insert(start + 1, text)
            end += 1
        else:
            lines[at] = text
            while at + 1 < end and re.match(r"^\s{3,}#", lines[at + 1]):  # its old comment
                del lines[at + 1]
                end -= 1
    return "\n".join(lines) + "\n"


def _block(lines: list[str], lo: int, hi: int, indent: int, key: str) -> tuple[int, int] | None:
    """(line of `key:`, end of its block) among lines[lo:hi] at `indent` spaces."""
    at = next((i for i in range(lo, hi) if re.match(rf"^ {{{indent}}}{re.escape(key)}:\s*(#.*)?$",
                                                     lines[i])), None)
    if at is None:
        return None
    end = next((i for i in range(at + 1, hi) if lines[i].strip()
                and not lines[i].lstrip().startswith("#")
                and len(lines[i]) - len(lines[i].lstrip()) <= indent), hi)
    return at, end


def _set_pipe_line(lines: list[str], dtype: str, text: str) -> bool:
    """Set `compute.matrix.<dtype>.efficiency` in block-style YAML lines; False if the blocks
    are not there in that style."""
    compute = _block(lines, 0, len(lines), 0, "compute")
    matrix = compute and _block(lines, compute[0] + 1, compute[1], 2, "matrix")
    pipe = matrix and _block(lines, matrix[0] + 1, matrix[1], 4, dtype)
    if not pipe:
        return False
    at = next((i for i in range(pipe[0] + 1, pipe[1])
               if re.match(r"^ {6}efficiency\s*:", lines[i])), None)
    if at is None:
        lines.insert(pipe[0] + 1, text)
    else:
        lines[at] = text
    return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `accelsim calibrate`."""
    parser.epilog = validate.MEASUREMENT_RULES
    parser.add_argument("hardware", metavar="HW", help="hardware spec YAML to calibrate")
    parser.add_argument("measurements", metavar="MEASUREMENTS.csv",
                        help="GEMM measurements (DeepBench columns: device, precision, M, N, K, "
                             "transA, transB, time_ms)")
    parser.add_argument("--rnn-csv", metavar="F",
                        help="RNN measurements (DeepBench columns) to fit the RNN overheads")
    parser.add_argument("--device", metavar="NAME",
                        help="use the rows whose device column is NAME (default: the device "
                             "named like the hardware spec)")
    parser.add_argument("--per-pipe", action="store_true",
                        help="fit one compute efficiency per matrix pipe the rows use "
                             "(compute.matrix.<dtype>.efficiency) instead of one for the chip")
    parser.add_argument("--folds", type=int, default=DEFAULT_FOLDS, metavar="K",
                        help=f"cross-validation folds over shapes (default {DEFAULT_FOLDS})")
    parser.add_argument("--out", metavar="FITTED.yaml", required=True,
                        help="write the spec with the fitted knobs here")


def run(args: argparse.Namespace) -> int:
    """Fit, print the errors, write the fitted spec; 0 on success (bad input raises)."""
    from accelsim.outputs import check_output
    from accelsim.spec import hardware_from_yaml, load_hardware, yaml_key

    out = Path(args.out)
    check_output("--out", args.out, [p for p in (args.hardware, args.measurements,
                                                 args.rnn_csv) if p])
    hw = load_hardware(args.hardware)
    # every row read and checked before the fit: rows the chip has no pipe for are listed
    skipped: list[validate.NotPredicted] = []
    rows = validate.run_validation(hw, args.measurements, args.rnn_csv, device=args.device,
                                   not_predicted=skipped)
    fit = calibrate(hw, args.measurements, args.rnn_csv, device=args.device, folds=args.folds,
                    per_pipe=args.per_pipe)
    header = (f"# Calibrated copy of {args.hardware}: values marked 'fitted' were fitted by "
              "accelsim calibrate (docs/validation.md).\n")
    text = header + fitted_spec_text(Path(args.hardware).read_text(encoding="utf-8"), hw, fit,
                                     fit_notes(fit, args.measurements, args.rnn_csv))
    hardware_from_yaml(text, str(out))  # what is written must load
    print(f"calibrated {hw.name} ({args.hardware}) on {len(fit.rows)} measured rows; "
          f"GEMM traffic from the analytic re-streaming model")
    for name, value in fit.knobs.items():
        spread = [k[name] for k in fit.fold_knobs]
        shown = name if "." in name else f"calibration.{yaml_key(name)}"
        print(f"  {shown:<32}{format_value(name, value):>10}   (folds: "
              f"{format_value(name, min(spread))} .. {format_value(name, max(spread))})")
    if skipped:
        print(validate.format_not_predicted(skipped))
    for note in validate.repeated_rows(rows):
        print(note)
    print()
    print(format_errors(fit))
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="accelsim calibrate", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))

