"""`accelsim calibrate`: fit a spec's calibration knobs to one chip's measurements.

The model's physics stays as the spec says (units, clocks, pipes, caches, bandwidths); only the
knobs that turn peaks into times are fitted, each within physical bounds, by least squares on
the log of predicted / measured time (a 2x over- and under-prediction weigh the same):

- GEMM rows fit `compute_efficiency` (achievable fraction of a pipe's peak; or one per matrix
  pipe), `bandwidth_efficiency` (achievable fraction of HBM bandwidth, seen by memory-bound
  rows), each kernel-library menu's `k_major_memory_efficiency` (the streaming rate of
  K-contiguous operands, seen by memory-bound rows with such an operand) and `launch_overhead`
  (fixed cost per kernel);
- RNN rows then fit `rnn_step_overhead` and `rnn_call_overhead` (the recurrent library's host
  work per timestep and per call), with the GEMM knobs fixed.

A knob is fitted only when enough rows respond to it (their predicted time moves when it
does); the others keep the spec's value and the output says so. The GEMM search is coordinate
descent over bounded grids: each fraction on a coarse grid, then refined, in turn, until a
sweep moves nothing; knobs that act on disjoint rows (one per pipe, one per menu) share one
grid pass. At every grid point the launch overhead is chosen from a fine grid, the prediction
being affine in it (one kernel or two per row, counted once). The two RNN overheads are fitted
exactly (a pass is its kernels plus one call plus one overhead per step). Errors are then
computed with the real model at the fitted values, in-sample and by k-fold cross-validation
over shapes (a shape's precisions and passes fall in one fold, so no held-out prediction has
seen its shape). GEMM traffic comes from the analytic re-streaming model (`validate
--analytic`), which keeps a fit of the DeepBench V100 tables to a few minutes.
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

from accelsim import units, validate
from accelsim.errors import AccelsimError, Issue, SpecError
from accelsim.hardware import HardwareSpec, KernelLibrary, KernelMenu
from accelsim.validate import Row, rnn_steps, shape_of, summarize

#: Physical bounds of each kind of fitted knob (the last part of its name -> (low, high));
#: a pipe's `efficiency` takes those of `compute_efficiency`.
BOUNDS = {
    "compute_efficiency": (0.3, 1.0),
    "bandwidth_efficiency": (0.3, 1.0),
    "k_major_memory_efficiency": (0.3, 1.0),
    "k_major_unaligned_memory_efficiency": (0.3, 1.0),
    "launch_overhead_s": (0.0, 50e-6),
    "rnn_step_overhead_s": (0.0, 100e-6),
    "rnn_call_overhead_s": (0.0, 500e-6),
}
RNN_KNOBS = ("rnn_step_overhead_s", "rnn_call_overhead_s")
#: A fit needs at least this many measured rows per knob it fits, per table; a knob is fitted
#: only when at least this many rows respond to it.
MIN_ROWS_PER_KNOB = 5
DEFAULT_FOLDS = 5
PIPE_KNOB = "compute.matrix.{}.efficiency"
#: A kernel-library menu's K-major streaming rate: "menus.<key>" or "default".
MENU_KNOB = "kernel_library.{}.k_major_memory_efficiency"
#: The rate of a menu's K-major operands whose row stride misses its `k_major_aligned_stride_bytes`.
UNALIGNED_MENU_KNOB = "kernel_library.{}.k_major_unaligned_memory_efficiency"
_COARSE_STEP, _FINE_STEP = 0.05, 0.01
_REFINE_SPAN, _FINE_SPAN = 0.03, 0.01  # around a coarse choice; around a knob in later sweeps
_MAX_SWEEPS = 6
_PROBE_FACTOR = 0.8  # a knob is probed at this fraction of its start value ...
_RESPONDS = 0.01  # ... and a row responds when its predicted time moves by more than this
_LAUNCH_PROBE_S = 10e-6
_RECENTER_S = 1e-6  # predictions are re-made at the fitted launch overhead beyond this shift
_FINE_LAUNCH_S = 0.25e-6
_GRID_POINTS = 401


@attrs.frozen
class Fit:
    """Fitted knobs, the rows predicted with them, the cross-validated predictions, and the
    knobs the rows could not identify (name -> why; they keep the spec's value)."""

    knobs: dict[str, float]
    rows: list[Row]
    held_out: list[Row]
    folds: int
    fold_knobs: list[dict[str, float]]
    not_fitted: dict[str, str] = attrs.field(factory=dict)


def bounds_of(name: str) -> tuple[float, float]:
    """(low, high) of a knob: a calibration field, a pipe's efficiency or a menu's rate."""
    leaf = name.rsplit(".", 1)[-1]
    return BOUNDS["compute_efficiency" if leaf == "efficiency" else leaf]


def pipe_of(row: Row) -> str:
    """The matrix pipe a GEMM row runs on (pseudo-FP16 rows use the FP32 pipes)."""
    if row.precision in validate.SCALAR_MATH_PRECISIONS:
        return "fp32"
    return validate.PRECISION_DTYPE[row.precision]


def _menu_of(lib: KernelLibrary, name: str) -> KernelMenu:
    """The menu a `MENU_KNOB` names: `default`, or `menus.<key>` (a key the library lacks is
    the default menu, which a new entry would copy)."""
    where = name.split(".")[1:-1]
    return lib.default if where == ["default"] else lib.menus.get(where[1], lib.default)


def knob_value(hw: HardwareSpec, name: str) -> float:
    """The value `hw` gives a knob (`launch_overhead_s`, `compute.matrix.fp16.efficiency`,
    `kernel_library.menus.fp16.k_major_memory_efficiency`, ...)."""
    if name.startswith("compute.matrix."):
        return hw.compute_efficiency(name.split(".")[2])
    if name.startswith("kernel_library."):
        return float(getattr(_menu_of(hw.kernel_library, name), name.rsplit(".", 1)[-1]))
    return float(getattr(hw.calibration, name))


def with_knobs(hw: HardwareSpec, knobs: dict[str, float]) -> HardwareSpec:
    """`hw` with calibration fields (`launch_overhead_s`, ...), per-pipe efficiencies
    (`compute.matrix.fp16.efficiency`) and menus' K-major rates
    (`kernel_library.menus.fp16.k_major_memory_efficiency`; a key the spec lacks becomes a
    copy of its default menu with that rate) replaced by `knobs`."""
    pipes = {k.split(".")[2]: v for k, v in knobs.items() if k.startswith("compute.matrix.")}
    if pipes:
        matrix = {d: attrs.evolve(p, efficiency=pipes[d]) if d in pipes else p
                  for d, p in hw.compute.matrix.items()}
        hw = attrs.evolve(hw, compute=attrs.evolve(hw.compute, matrix=matrix))
    lib = hw.kernel_library
    for name, value in knobs.items():
        if not name.startswith("kernel_library."):
            continue
        # from `lib` as changed so far: two knobs may set two rates of one menu
        menu = _menu_of(lib, name)
        if name.endswith(".k_major_unaligned_memory_efficiency"):
            menu = attrs.evolve(menu, k_major_unaligned_memory_efficiency=value)
        else:
            menu = attrs.evolve(menu, k_major_memory_efficiency=value)
        where = name.split(".")[1:-1]
        lib = (attrs.evolve(lib, default=menu) if where == ["default"]
               else attrs.evolve(lib, menus={**lib.menus, where[1]: menu}))
    cal = {k: v for k, v in knobs.items() if "." not in k}
    return attrs.evolve(hw, calibration=attrs.evolve(hw.calibration, **cal), kernel_library=lib)


def menu_knobs(hw: HardwareSpec, rows: Sequence[Row]) -> list[str]:
    """The K-major rates a GEMM fit may set: every menu of the spec, and for the rows on the
    default menu one per dtype (a new menu entry) when that menu is the documented default,
    else the default menu's own; a menu that names an aligned stride also has its unaligned
    rate."""
    lib = hw.kernel_library

    def rates(where: str, menu: KernelMenu) -> list[str]:
        names = [MENU_KNOB.format(where)]
        if menu.k_major_aligned_stride_bytes:
            names.append(UNALIGNED_MENU_KNOB.format(where))
        return names

    names = [n for key in sorted(lib.menus) for n in rates(f"menus.{key}", lib.menus[key])]
    if lib.default != KernelMenu():  # a customised default: a new entry would have to copy it
        return [*names, *rates("default", lib.default)]
    dtypes = sorted({validate.PRECISION_DTYPE[r.precision] for r in rows} - set(lib.menus))
    return names + [MENU_KNOB.format(f"menus.{d}") for d in dtypes]


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


def _grid(low: float, high: float, step: float) -> list[float]:
    return [round(x, 6) for x in np.arange(low, high + step / 2, step)]


# --- GEMM: efficiencies, K-major rates and launch overhead -------------------------------------
#: Knobs searched together: name -> the rows it acts on (disjoint between names).
Coordinate = dict[str, np.ndarray]


class _GemmSearch:
    """Every row's prediction at knob settings (cached) with the launch overhead at `launch_s`,
    and the same at any other launch overhead by adding `slope` (kernels per row) times the
    difference."""

    def __init__(self, rows_at: Callable[[dict[str, float]], list[Row]], measured: np.ndarray,
                 knobs: dict[str, float]) -> None:
        self.rows_at = rows_at
        self.measured = measured
        self.launch_s = knobs["launch_overhead_s"]
        self.cache: dict[tuple, np.ndarray] = {}
        probe = self._predict({**knobs, "launch_overhead_s": self.launch_s + _LAUNCH_PROBE_S})
        self.slope = (probe - self.at(knobs)) / _LAUNCH_PROBE_S
        self.launch = np.linspace(*BOUNDS["launch_overhead_s"], _GRID_POINTS)

    def _predict(self, knobs: dict[str, float]) -> np.ndarray:
        return np.array([r.predicted_s for r in self.rows_at(knobs)])

    def at(self, knobs: dict[str, float]) -> np.ndarray:
        """Predictions with `knobs` (their launch overhead replaced by `launch_s`)."""
        key = tuple(sorted((k, round(v, 9)) for k, v in knobs.items()
                           if k != "launch_overhead_s"))
        if key not in self.cache:
            self.cache[key] = self._predict({**knobs, "launch_overhead_s": self.launch_s})
        return self.cache[key]

    def _cost(self, pred: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Squared log error of `rows` at every launch overhead of the grid."""
        shifted = (pred[rows][None, :]
                   + (self.launch - self.launch_s)[:, None] * self.slope[rows][None, :])
        return _log_sq(shifted, self.measured[rows])

    def step(self, coord: Coordinate, values: Sequence[float], knobs: dict[str, float],
             mask: np.ndarray) -> dict[str, float]:
        """The knobs of `coord` and the launch overhead at the grid point of least error over
        the rows in `mask`, the other knobs fixed: every knob of `coord` takes each value at
        once (they act on disjoint rows), each keeps its own best."""
        rest = mask.copy()
        for rows in coord.values():
            rest &= ~rows
        total = self._cost(self.at(knobs), rest)
        costs = {}
        for name, rows in coord.items():
            costs[name] = np.stack([self._cost(self.at({**knobs, **dict.fromkeys(coord, v)}),
                                               mask & rows) for v in values])
            total = total + costs[name].min(axis=0)
        i = int(np.argmin(total))
        return {**knobs, **{n: float(values[int(np.argmin(c[:, i]))]) for n, c in costs.items()},
                "launch_overhead_s": float(self.launch[i])}

    def point_cost(self, knobs: dict[str, float], mask: np.ndarray) -> tuple[float, float]:
        """(least error over the rows in `mask`, the launch overhead giving it) at `knobs`."""
        cost = self._cost(self.at(knobs), mask)
        i = int(np.argmin(cost))
        return float(cost[i]), float(self.launch[i])

    def descend(self, coords: Sequence[Coordinate], knobs: dict[str, float], mask: np.ndarray,
                coarse: bool) -> dict[str, float]:
        """Coordinate descent from `knobs` until a sweep moves nothing (`coarse`: the first
        sweep searches each knob's whole range first). After a sweep that moved, the move is
        repeated (doubled while the error falls): knobs that trade against each other (the
        bandwidth and K-major rates) would otherwise zig-zag along their valley in grid steps."""
        names = [n for coord in coords for n in coord]
        for sweep in range(_MAX_SWEEPS):
            before = dict(knobs)
            for coord in coords:
                span = _FINE_SPAN
                if coarse and sweep == 0:
                    knobs = self.step(coord, _grid(*bounds_of(next(iter(coord))), _COARSE_STEP),
                                      knobs, mask)
                    span = _REFINE_SPAN
                values = sorted({v for n in coord for v in _grid(
                    max(bounds_of(n)[0], knobs[n] - span),
                    min(bounds_of(n)[1], knobs[n] + span), _FINE_STEP)} | {knobs[n] for n in coord})
                knobs = self.step(coord, values, knobs, mask)
            if all(knobs[n] == before[n] for n in names):
                break
            cost = self.point_cost(knobs, mask)[0]
            move = {n: knobs[n] - before[n] for n in names}
            while True:
                ahead = {**knobs, **{n: round(min(max(knobs[n] + d, bounds_of(n)[0]),
                                                  bounds_of(n)[1]), 6) for n, d in move.items()}}
                ahead_cost, launch = self.point_cost(ahead, mask)
                if ahead_cost >= cost:
                    break
                knobs, cost = {**ahead, "launch_overhead_s": launch}, ahead_cost
                move = {n: 2 * d for n, d in move.items()}
        return knobs


def _refine_launch(rows_at: Callable[[dict[str, float]], list[Row]], knobs: dict[str, float],
                   measured: np.ndarray) -> dict[str, float]:
    """The launch overhead re-searched with the real model around the grid's choice (the
    prediction is affine in it only while no mapping changes), the other knobs fixed."""
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


def _responding(search: _GemmSearch, start: dict[str, float], name: str,
                probe: float | None = None) -> np.ndarray:
    """The rows whose predicted time moves when `name` goes from its start value to `probe`
    (default: `_PROBE_FACTOR` of it, or up by as much from a start near its lower bound)."""
    low, high = bounds_of(name)
    if probe is None:
        probe = start[name] * _PROBE_FACTOR
        if probe < low:
            probe = min(high, start[name] / _PROBE_FACTOR)
    return np.abs(search.at({**start, name: probe}) / search.at(start) - 1.0) > _RESPONDS


def uses_pipe_efficiencies(hw: HardwareSpec) -> bool:
    """Whether a matrix pipe of `hw` states its own efficiency (then the fit is per pipe)."""
    return any(p.efficiency is not None for p in hw.compute.matrix.values())


def _fit_gemm(hw: HardwareSpec, path: str | Path, device: str | None, folds: int,
              per_pipe: bool, resolution_s: float | None
              ) -> tuple[dict[str, float], list[Row], list[Row], list[dict], dict[str, str]]:
    def rows_at(knobs: dict[str, float]) -> list[Row]:
        return validate.validate_gemm(with_knobs(hw, knobs), path, device=device,
                                      not_predicted=[], resolution_s=resolution_s)

    # A spec that gives a pipe its own efficiency says its pipes differ, and a chip-wide
    # value would not reach that pipe: such a spec is fitted per pipe.
    per_pipe = per_pipe or uses_pipe_efficiencies(hw)
    base = rows_at({})
    everything = np.ones(len(base), dtype=bool)
    row_pipes = np.array([pipe_of(r) for r in base])
    compute: Coordinate = ({PIPE_KNOB.format(d): row_pipes == d for d in sorted(set(row_pipes))}
                           if per_pipe else {"compute_efficiency": everything})
    candidates = ["bandwidth_efficiency", *menu_knobs(hw, base)]
    start = {n: knob_value(hw, n) for n in [*compute, *candidates, "launch_overhead_s"]}
    measured = np.array([r.expected_s for r in base])
    search = _GemmSearch(rows_at, measured, start)
    identified: Coordinate = {}
    not_fitted = {}
    for name in candidates:
        rows = _responding(search, start, name)
        if rows.sum() >= MIN_ROWS_PER_KNOB:
            identified[name] = rows
        else:
            not_fitted[name] = (f"{int(rows.sum())} of {len(base)} rows respond to it (at least "
                                f"{MIN_ROWS_PER_KNOB} needed); kept at "
                                f"{format_value(name, start[name])}")
    coords = [compute]
    if "bandwidth_efficiency" in identified:
        coords.append({"bandwidth_efficiency": everything})
    # the rows a menu's rate can reach anywhere in its range (those near the start identify it)
    menus = {n: _responding(search, start, n, bounds_of(n)[0]) | rows
             for n, rows in identified.items() if n.startswith("kernel_library.")}
    if menus:
        coords.append(menus)
    _need_rows(path, "gemm", len(base), [*compute, *identified, "launch_overhead_s"],
               len({shape_of(r) for r in base}), folds)
    knobs = search.descend(coords, start, everything, coarse=True)
    if abs(knobs["launch_overhead_s"] - search.launch_s) > _RECENTER_S + 1e-12:
        search = _GemmSearch(rows_at, measured, knobs)  # mappings at the fitted overhead
        knobs = search.descend(coords, knobs, everything, coarse=False)
    fitted = [*compute, *identified, "launch_overhead_s"]
    knobs = {n: as_written(n, v) for n, v in _refine_launch(rows_at, knobs, measured).items()
             if n in fitted}
    fold = _folds_of(base, folds)
    held_out: list[Row | None] = [None] * len(base)
    fold_knobs = []
    for f in range(folds):
        k = {n: as_written(n, v) for n, v in
             search.descend(coords, {**start, **knobs}, fold != f, coarse=False).items()
             if n in fitted}
        fold_knobs.append(k)
        exact = rows_at(k)  # the real model at this fold's knobs, kept for its held-out rows
        for i in np.flatnonzero(fold == f):
            held_out[i] = exact[i]
    return knobs, rows_at(knobs), [r for r in held_out if r is not None], fold_knobs, not_fitted


# --- RNN: per-step and per-call overheads ------------------------------------------------------
def _fit_rnn(hw: HardwareSpec, path: str | Path, device: str | None, folds: int,
             gemm_knobs: dict[str, float], resolution_s: float | None
             ) -> tuple[dict[str, float], list[Row], list[Row], list[dict]]:
    zero = {**gemm_knobs, "rnn_step_overhead_s": 0.0, "rnn_call_overhead_s": 0.0}
    base = validate.validate_rnn(with_knobs(hw, zero), path, device=device, not_predicted=[],
                                 resolution_s=resolution_s)
    _need_rows(path, "rnn", len(base), RNN_KNOBS, len({shape_of(r) for r in base}), folds)
    measured = np.array([r.expected_s for r in base])
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
        return {"rnn_step_overhead_s": as_written("rnn_step_overhead_s", found[1]),
                "rnn_call_overhead_s": as_written("rnn_call_overhead_s", found[2])}

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
              per_pipe: bool = False, resolution_s: float | None = None) -> Fit:
    """Fit the GEMM knobs on `gemm_csv` (one compute efficiency, or with `per_pipe` one per
    matrix pipe the rows use; the bandwidth efficiency and menus' K-major rates the rows
    identify; the launch overhead), then the RNN knobs on `rnn_csv` (when given), against each
    row's mean true time (`validate.Row.expected_s`: `resolution_s`, or found per file)."""
    validate.require_hardware(hw)
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise AccelsimError(f"--folds: expected a whole number of at least 2 folds, got "
                            f"{folds!r}")
    knobs, rows, held, fold_knobs, not_fitted = _fit_gemm(hw, gemm_csv, device, folds, per_pipe,
                                                          resolution_s)
    if rnn_csv:
        rnn_knobs, rnn_rows, rnn_held, rnn_folds = _fit_rnn(hw, rnn_csv, device, folds, knobs,
                                                            resolution_s)
        knobs = {**knobs, **rnn_knobs}
        rows, held = rows + rnn_rows, held + rnn_held
        fold_knobs = [{**a, **b} for a, b in zip(fold_knobs, rnn_folds, strict=True)]
    return Fit(knobs=knobs, rows=rows, held_out=held, folds=folds, fold_knobs=fold_knobs,
               not_fitted=not_fitted)


# --- output --------------------------------------------------------------------------------------
def format_value(field_name: str, value: float) -> str:
    """A knob as the spec writes it: times in us, fractions with three decimals."""
    if field_name.endswith("_s"):
        return f"{value * 1e6:.4g} us"
    return f"{value:.3f}"


def as_written(name: str, value: float) -> float:
    """`value` as the fitted spec will hold it (rounded as `format_value` writes it), so that
    `validate` on that spec reproduces the fit's errors."""
    text = format_value(name, value)
    return units.parse_time(text) if name.endswith("_s") else float(text)


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


def knob_path(name: str) -> list[str]:
    """The YAML keys leading to a knob's value in a spec."""
    if "." in name:
        return name.split(".")
    from accelsim.spec import yaml_key

    return ["calibration", yaml_key(name)]


def fitted_spec_text(source_text: str, hw: HardwareSpec, fit: Fit,
                     notes: dict[str, str]) -> str:
    """The source spec with each fitted knob set where the spec says it (other comments kept),
    each carrying `# fitted: <note>`; a missing `calibration:` block, `kernel_library:`
    section or menu entry is added. A spec not in block style where a knob goes is written
    whole from the loaded objects, the notes as a header."""
    from accelsim.spec import dump_yaml

    lines = source_text.splitlines()
    for name, value in fit.knobs.items():
        path = knob_path(name)
        text = f"{path[-1]}: {format_value(name, value)}"
        note = f"# fitted: {notes.get(name, 'accelsim calibrate')}"
        leaf_keys = (path[-1], name.rsplit(".", 1)[-1])  # `launch_overhead` or `..._s`
        if not _set_key(lines, path, leaf_keys, text, note,
                        create=not name.startswith("compute.")):
            return ("".join(f"# {k}: fitted: {v}\n" for k, v in notes.items())
                    + dump_yaml(with_knobs(hw, fit.knobs)))
    return "\n".join(lines) + "\n"


#: The comment of a mapping `calibrate` adds to a spec, by the section it is in.
_ADDED = {"kernel_library": "added by accelsim calibrate: the default menu (docs/spec-format.md) "
                            "but for its fitted K-major rate",
          "calibration": "added by accelsim calibrate"}
_COMMENT_COLUMN = 33


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _content(line: str) -> bool:
    """A line holding a key or value (not blank, not only a comment)."""
    return bool(line.strip()) and not line.lstrip().startswith("#")


def _commented(text: str, comment: str) -> str:
    """`text` and `comment` aligned at `_COMMENT_COLUMN`, at least two spaces apart."""
    return f"{text:<{_COMMENT_COLUMN - 2}}  {comment}"


def _block_end(lines: list[str], lo: int, hi: int, parent_indent: int) -> int:
    """Index after the last line of a block in lines[lo:hi]: its keys and values and the
    comments indented under its parent (not a section comment before the next key)."""
    return 1 + max((i for i in range(lo, hi) if lines[i].strip()
                    and (_content(lines[i]) or _indent(lines[i]) > parent_indent)),
                   default=lo - 1)


def _set_key(lines: list[str], path: Sequence[str], leaf_keys: Sequence[str], text: str,
             comment: str, create: bool) -> bool:
    """Write `text` (`key: value`) with `comment` at `path` in block-style YAML `lines`: the
    line of the leaf (spelled as any of `leaf_keys`) and its continued comment are replaced,
    or the leaf (and, with `create`, the mappings leading to it) is added at the end of its
    parent. False when a mapping on the way is not in block style (or missing without
    `create`)."""
    lo, hi, indent, parent_indent = 0, len(lines), 0, -1
    for depth, key in enumerate(path):
        leaf = depth == len(path) - 1
        names = "|".join(re.escape(k) for k in (leaf_keys if leaf else [key]))
        at = next((i for i in range(lo, hi) if _content(lines[i])
                   and _indent(lines[i]) == indent
                   and re.match(rf"({names})\s*:", lines[i].lstrip())), None)
        if at is None and (leaf or create):
            new = [" " * (indent + 2 * d) + k + ":" for d, k in enumerate(path[depth:-1])]
            if new:
                new[0] = _commented(new[0], f"# {_ADDED.get(path[0], 'added by accelsim calibrate')}")
            new.append(_commented(" " * (indent + 2 * len(new)) + text, comment))
            end = _block_end(lines, lo, hi, parent_indent)
            lines[end:end] = new
            return True
        if at is None:
            return False
        if leaf:
            lines[at] = _commented(" " * indent + text, comment)
            while (at + 1 < len(lines) and lines[at + 1].strip() and not _content(lines[at + 1])
                   and _indent(lines[at + 1]) > indent):
                del lines[at + 1]  # the old value's continued comment
            return True
        if not re.match(rf"{re.escape(key)}\s*:\s*(#.*)?$", lines[at].lstrip()):
            return False  # a flow-style or scalar value
        end = next((i for i in range(at + 1, hi) if _content(lines[i])
                    and _indent(lines[i]) <= indent), hi)
        child = next((_indent(lines[i]) for i in range(at + 1, end) if _content(lines[i])),
                     indent + 2)
        lo, hi, indent, parent_indent = at + 1, end, child, indent
    return False


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
                             "(compute.matrix.<dtype>.efficiency) instead of one for the chip "
                             "(always so when a pipe of the spec states its own efficiency)")
    validate.add_resolution_argument(parser)
    parser.add_argument("--folds", type=int, default=DEFAULT_FOLDS, metavar="K",
                        help=f"cross-validation folds over shapes (default {DEFAULT_FOLDS})")
    parser.add_argument("--out", metavar="FITTED.yaml", required=True,
                        help="write the spec with the fitted knobs here")


def run(args: argparse.Namespace) -> int:
    """Fit, print the errors, write the fitted spec; 0 on success (bad input raises)."""
    from accelsim.outputs import check_output
    from accelsim.spec import hardware_from_yaml, load_hardware

    out = Path(args.out)
    check_output("--out", args.out, [p for p in (args.hardware, args.measurements,
                                                 args.rnn_csv) if p])
    hw = load_hardware(args.hardware)
    resolution_s = validate.resolution_from_args(args)
    # every row read and checked before the fit: rows the chip has no pipe for are listed
    skipped: list[validate.NotPredicted] = []
    rows = validate.run_validation(hw, args.measurements, args.rnn_csv, device=args.device,
                                   not_predicted=skipped, resolution_s=resolution_s)
    fit = calibrate(hw, args.measurements, args.rnn_csv, device=args.device, folds=args.folds,
                    per_pipe=args.per_pipe, resolution_s=resolution_s)
    header = (f"# Calibrated copy of {args.hardware}: values marked 'fitted' were fitted by "
              "accelsim calibrate (docs/validation.md).\n")
    text = header + fitted_spec_text(Path(args.hardware).read_text(encoding="utf-8"), hw, fit,
                                     fit_notes(fit, args.measurements, args.rnn_csv))
    hardware_from_yaml(text, str(out))  # what is written must load
    print(f"calibrated {hw.name} ({args.hardware}) on {len(fit.rows)} measured rows; "
          f"GEMM traffic from the analytic re-streaming model")
    if uses_pipe_efficiencies(hw) and not args.per_pipe:
        print("  (fitted per pipe: the spec states a pipe's own efficiency)")
    width = max((len(".".join(knob_path(n))) for n in fit.knobs), default=0) + 2
    for name, value in fit.knobs.items():
        spread = [k[name] for k in fit.fold_knobs]
        print(f"  {'.'.join(knob_path(name)):<{width}}{format_value(name, value):>10}   (folds: "
              f"{format_value(name, min(spread))} .. {format_value(name, max(spread))})")
    for name, why in fit.not_fitted.items():
        print(f"  not fitted, the rows cannot identify it: {'.'.join(knob_path(name))}: {why}")
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

