"""`accelsim validate`: predicted against measured kernel times of any device (DeepBench columns;
the packaged V100 tables by default).

Rows are those of the spec's device (the `device` column holds the spec's name as a word, e.g.
spec `v100` and "NVIDIA V100") or of `--device`; a file mixing devices needs one of the two.
Measured times must be plausible milliseconds (positive, finite, under an hour, no faster than
the chip's peak, a column whose median is within 100x of the prediction); a row whose
precision has no pipe on the chip is reported as not predicted, never run on another pipe.

Every GEMM row becomes one `gemm` op (fp32 rows on the fp32 pipes, fp16_mixed rows on the
tensor cores, dtype "fp16"); it is mapped by `timing.map_op` and timed by `timing.op_timing`
with bytes per level from the cache simulator when it is installed (`accelsim.cache`), else from
the analytic re-streaming model. Every RNN row becomes the graph of ops cuDNN runs for each pass
(`rnn_pass_graph`; DeepBench uses CUDNN_SKIP_INPUT: the input enters unprojected, so a step is
one recurrent GEMM plus one fused elementwise kernel, and backward-weights is one GEMM over all
timesteps), mapped, traced through one cache state and timed by the pipeline's stages like any
other step's ops, and timed along the dependency chain plus the spec's per-call and per-step
costs (`rnn_pass_time`). The summary gives, per
table and precision, the median, p90 and max absolute percentage error.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from accelsim import refdata
from accelsim.errors import Issue, SpecError, SpecTypeError
from accelsim.graph import Op, OpGraph
from accelsim.hardware import HardwareSpec
from accelsim.mapping import GemmMapping
from accelsim.progress import stage
from accelsim.timing import OpTiming, analytic_traffic, copy_units, map_op, op_timing
from accelsim.traffic import Traffic
from accelsim.vocabulary import MEMORY, dtype_bytes

#: Defaults of `accelsim validate`: the shipped V100 spec and the packaged DeepBench V100 tables.
DEFAULT_HARDWARE = "v100"
DEFAULT_GEMM_CSV = refdata.DEEPBENCH_V100_GEMM
DEFAULT_RNN_CSV = refdata.DEEPBENCH_V100_RNN
PRECISION_DTYPE = {"fp32": "fp32", "fp16_mixed": "fp16", "fp16": "fp16", "tf32": "tf32",
                   "bf16": "bf16", "fp16_pseudo": "fp16"}
#: Precisions whose data are 16-bit but whose math runs on the FP32 pipes (NVIDIA's "pseudo
#: FP16", e.g. DeepBench's P100 "Float16" rows).
SCALAR_MATH_PRECISIONS = ("fp16_pseudo",)
GEMM_COLUMNS = ("precision", "M", "N", "K", "transA", "transB", "time_ms")
RNN_COLUMNS = ("precision", "cell", "hidden", "batch", "timesteps", "fwd_ms", "bwd_inputs_ms",
               "bwd_weights_ms")
RNN_PASSES = ("fwd", "bwd_inputs", "bwd_weights")
DEVICE_COLUMN = "device"
#: Plausibility of a measured time in milliseconds: below an hour, at most `_PEAK_SLACK` faster
#: than the chip's peak matrix rate allows, and, per column, a median measured/predicted ratio
#: within `_UNIT_RATIO` either way (a column in microseconds or seconds is off by 1000x; the
#: model's errors are tens of percent).
MAX_MEASURED_MS = 3600e3
_PEAK_SLACK = 0.5
_UNIT_RATIO = 100.0
#: Gate blocks of the recurrent weight matrix, per cell type.
CELL_GATES = {"vanilla": 1, "lstm": 4, "gru": 3}
#: Elementwise FLOPs per hidden unit and batch entry of one step (forward, backward), counted
#: with `models.common.POINTWISE_FLOPS` (sigmoid 4, tanh 6, add/mul 1) over the cell's gates;
#: the step's elementwise kernel is launch-bound anyway.
CELL_POINTWISE_FLOPS = {"vanilla": (7.0, 4.0), "lstm": (30.0, 40.0), "gru": (25.0, 35.0)}
#: Hidden-sized vectors an elementwise step kernel reads and writes besides the gate
#: pre-activations (h, c, saved activations), forward and backward.
CELL_STATE_VECTORS = {"vanilla": (3, 4), "lstm": (6, 9), "gru": (5, 8)}


@attrs.frozen
class Row:
    """One validated measurement and its prediction (`line`/`column`: where it was read)."""

    table: str
    precision: str
    label: str
    measured_s: float
    predicted_s: float
    bound: str
    source: str = ""
    line: int = 0
    column: str = ""
    #: The file's time resolution: each reading is the true time truncated to a multiple of
    #: it (DeepBench: whole microseconds, `truncation_resolution_s`); 0 for exact readings.
    resolution_s: float = 0.0

    @property
    def expected_s(self) -> float:
        """The mean true time a truncated reading stands for: reading + resolution / 2."""
        return self.measured_s + self.resolution_s / 2

    @property
    def abs_pct_err(self) -> float:
        return abs(self.predicted_s - self.expected_s) / self.expected_s * 100.0

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "precision": self.precision, "label": self.label,
                "measured_ms": self.measured_s * 1e3, "predicted_ms": self.predicted_s * 1e3,
                "resolution_ms": self.resolution_s * 1e3,
                "abs_pct_err": self.abs_pct_err, "bound": self.bound, "line": self.line}


@attrs.frozen
class NotPredicted:
    """A measured row the chip cannot run as measured (no pipe for its precision)."""

    table: str
    precision: str
    label: str
    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.table} {self.precision} {self.label}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "precision": self.precision, "label": self.label,
                "line": self.line, "reason": self.reason}


# --- CSV ---------------------------------------------------------------------------------------
#: A measurement file is a table of a few thousand rows at most (DeepBench's are ~30 KiB);
#: anything larger is refused before reading (and /dev/zero is never read).
MAX_MEASUREMENT_BYTES = 16 * 2**20
#: Shapes are 32-bit ints in cuBLAS and cuDNN calls (DeepBench passes `int`).
MAX_DIMENSION = 2**31 - 1
#: Cell text quoted in messages is cut to this many characters.
_SHOWN_CHARS = 40
_DECIMAL = re.compile(r"\+?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _shown(text: str) -> str:
    """`text` as a message quotes it: repr, cut to `_SHOWN_CHARS`."""
    return repr(text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "...")


def read_csv_lines(path: str | Path, columns: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV that must carry `columns` (once each; other columns are
    ignored). UTF-8 with or without a BOM, any line ends, RFC 4180 quoting; rows whose cells are
    all blank are skipped; a row with more non-blank cells or fewer cells than the header is an
    error. Every problem is a SpecError naming the file and line."""
    from accelsim.spec import read_text_file

    name = str(path)
    if isinstance(path, str) and not path.strip():
        raise SpecError([Issue(repr(path), None, None, "", "a measurement file path",
                               "an empty name")])
    text = read_text_file(path, max_bytes=MAX_MEASUREMENT_BYTES,
                          what="a measurement file").removeprefix("\ufeff")
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise SpecError([Issue(name, line, None, "", "a CSV text file",
                               "a NUL byte (a binary file?)")])
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    out = []
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue  # a blank line, or one of empty cells (a spreadsheet's trailing rows)
            if header is None:
                header = [c.strip() for c in cells]
                _check_header(name, reader.line_num, header, columns)
                continue
            line = reader.line_num
            if len(cells) < len(header) or any(c.strip() for c in cells[len(header):]):
                hint = ("a truncated line?" if len(cells) < len(header)
                        else "an unquoted ',' inside a number?")
                raise SpecError([Issue(name, line, None, "row",
                                       f"{len(header)} cells, one per header column",
                                       f"{len(cells)} ({hint})")])
            out.append((line, dict(zip(header, (c.strip() for c in cells), strict=False))))
    except csv.Error as exc:
        raise SpecError([Issue(name, reader.line_num, None, "row", "CSV text (fields quoted "
                               "with \" as in RFC 4180)", str(exc))]) from None
    if header is None:
        raise SpecError([Issue(name, None, None, "", f"a header line naming the columns "
                               f"{', '.join(columns)}", "an empty file")])
    return out


def _check_header(path: str, line: int, header: list[str], columns: Sequence[str]) -> None:
    """Each of `columns` named exactly once (a repeated name would hide one of its cells)."""
    issues = [Issue(path, line, None, c, "the column once",
                    f"{header.count(c)} columns named {c!r}")
              for c in dict.fromkeys(header) if header.count(c) > 1 and c]
    missing = [c for c in columns if c not in header]
    if len(header) == 1 and missing and any(sep in header[0] for sep in ";\t|"):
        got = f"one column {_shown(header[0])}: not separated by commas"
        issues.append(Issue(path, line, None, "", "comma-separated columns", got))
    else:
        shown = [h if len(h) <= _SHOWN_CHARS else h[:_SHOWN_CHARS] + "..." for h in header[:30]]
        issues += [Issue(path, line, None, c, f"a column named {c!r}",
                         f"columns {shown}{' ...' if len(header) > 30 else ''}")
                   for c in missing]
    if issues:
        raise SpecError(issues)


def device_matches(hw_name: str, device: str) -> bool:
    """Whether a `device` cell names the chip of spec `hw_name`: the name is one of its words
    (case and punctuation ignored: spec `v100` matches "NVIDIA V100" and "Tesla V100-SXM2")."""
    words = [w for w in re.split(r"[^0-9a-z]+", device.casefold()) if w]
    name = re.sub(r"[^0-9a-z]+", "", hw_name.casefold())
    return bool(name) and (name in words or name == "".join(words))


def select_device(path: str | Path, records: list[tuple[int, dict[str, str]]], hw_name: str,
                  device: str | None = None) -> list[tuple[int, dict[str, str]]]:
    """The rows of one device: `device` (the cell, case-insensitive) when given, else the device
    named like the spec. A file without a `device` column is one device."""
    if not records or DEVICE_COLUMN not in records[0][1]:
        if device:
            raise SpecError([Issue(str(path), 1, None, DEVICE_COLUMN,
                                   f"a {DEVICE_COLUMN!r} column to select --device {device!r}",
                                   "no such column")])
        return records
    blank = [line for line, rec in records if not rec[DEVICE_COLUMN]]
    if blank:
        raise SpecError([Issue(str(path), blank[0], None, DEVICE_COLUMN, "the device the row "
                               "was measured on (the file has a device column)", "''")])
    devices = list(dict.fromkeys(rec[DEVICE_COLUMN] for _, rec in records))
    if device:
        picked = [d for d in devices if d.casefold() == device.strip().casefold()]
        if not picked:
            raise SpecError([Issue(str(path), None, None, DEVICE_COLUMN,
                                   f"rows of device {device!r} (--device)",
                                   f"devices {devices}")])
    else:
        picked = [d for d in devices if device_matches(hw_name, d)]
        if len(picked) != 1:
            what = ("one device named like the hardware spec" if not picked
                    else "one device named like the hardware spec, found several")
            raise SpecError([Issue(str(path), None, None, DEVICE_COLUMN,
                                   f"{what} {hw_name!r}, or --device NAME to choose the rows",
                                   f"devices {devices}")])
    return [(line, rec) for line, rec in records if rec[DEVICE_COLUMN] == picked[0]]


def pipe_problem(hw: HardwareSpec, precision: str) -> str | None:
    """Why `hw` cannot run rows of `precision` as measured, or None when it can."""
    dtype = "fp32" if precision in SCALAR_MATH_PRECISIONS else PRECISION_DTYPE[precision]
    if dtype in hw.compute.matrix:
        return None
    return (f"not predicted: {hw.name} has no {dtype} matrix pipe "
            f"(pipes: {', '.join(sorted(hw.compute.matrix))})")


def _unpredictable(path: str | Path, line: int, table: str, precision: str, label: str,
                   reason: str, not_predicted: list[NotPredicted] | None) -> None:
    item = NotPredicted(table, precision, label, str(path), line, reason)
    if not_predicted is None:
        raise SpecError([Issue(str(path), line, None, "precision",
                               "a precision the hardware has a pipe for", f"{precision!r}: {reason}")])
    not_predicted.append(item)


def _time_ms(path: str | Path, line: int, row: dict[str, str], column: str, *,
             optional: bool = False) -> float | None:
    """A measured time in milliseconds: positive, finite, under an hour."""
    value = _number(path, line, row, column, optional=optional)
    if value is not None and value > MAX_MEASURED_MS:
        raise SpecError([Issue(str(path), line, None, column,
                               "a time in milliseconds under one hour (3600000 ms)",
                               _shown(row[column]))])
    return value


#: DeepBench's benchmarks print each time as whole microseconds, truncated
#: (`static_cast<int>` of the mean over the repeats in gemm_bench.cu and rnn_bench.cu).
DEEPBENCH_RESOLUTION_S = 1e-6


def truncation_resolution_s(times_s: Sequence[float]) -> float:
    """The resolution a measurement file's times were truncated to: DeepBench's whole
    microsecond when every time is a whole number of microseconds, else 0 (exact)."""
    whole = all(abs(t / DEEPBENCH_RESOLUTION_S - round(t / DEEPBENCH_RESOLUTION_S)) < 1e-6
                for t in times_s)
    return DEEPBENCH_RESOLUTION_S if times_s and whole else 0.0


def peak_issue(path: str | Path, line: int, column: str, label: str, measured_s: float,
               peak_s: float) -> Issue | None:
    """A measured time faster than the chip's peak matrix rate allows (with `_PEAK_SLACK`):
    not milliseconds, or not this chip. Checked before predicting, so a shape far beyond
    what was measured is refused without being simulated."""
    if measured_s >= _PEAK_SLACK * peak_s:
        return None
    return Issue(str(path), line, None, column, f"a time in milliseconds the chip can reach "
                 f"(its peak matrix rate needs >= {peak_s * 1e3:.4g} ms for {label})",
                 f"{measured_s * 1e3:.6g}")


def check_plausible(hw: HardwareSpec, rows: Sequence[Row]) -> None:
    """Columns that cannot be milliseconds on this chip: a median measured/predicted ratio off
    by more than `_UNIT_RATIO` (each row's own bound is `peak_issue`)."""
    issues = []
    by_column: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        by_column.setdefault((r.source, r.column), []).append(r)
    for (source, column), col_rows in by_column.items():
        ratio = float(np.median([r.measured_s / r.predicted_s for r in col_rows]))
        if not 1 / _UNIT_RATIO <= ratio <= _UNIT_RATIO:
            hint = "microseconds?" if ratio > 1 else "seconds, or a throughput?"
            issues.append(Issue(source, None, None, column,
                                f"times in milliseconds (median measured/predicted within "
                                f"{_UNIT_RATIO:g}x of 1 on {hw.name})",
                                f"a median ratio of {ratio:.3g} over {len(col_rows)} rows: "
                                f"{hint}"))
    if issues:
        raise SpecError(issues)


def _number(path: str | Path, line: int, row: dict[str, str], column: str, *,
            integer: bool = False, optional: bool = False) -> float | None:
    """A positive finite decimal (`1760`, `0.041`, `4.1e-2`; no unit, hex or ',' separator);
    with `integer` a whole number up to `MAX_DIMENSION` (`1760.0` is one)."""
    text = row[column]
    if text == "" and optional:
        return None
    value = float(text) if _DECIMAL.fullmatch(text) else math.nan
    ok = math.isfinite(value) and value > 0
    if integer:
        ok = ok and value == int(value) and value <= MAX_DIMENSION
    if not ok:
        what = (f"a positive integer up to {MAX_DIMENSION} (a 32-bit shape)" if integer
                else "a positive number (digits, '.', 'e'; no unit or thousands separator)")
        raise SpecError([Issue(str(path), line, None, column, what, _shown(text))])
    return value


def _choice(path: str | Path, line: int, row: dict[str, str], column: str,
            choices: Sequence[str]) -> str:
    text = row[column]
    if text not in choices:
        raise SpecError([Issue(str(path), line, None, column, f"one of {list(choices)}",
                               _shown(text))])
    return text


# --- GEMM ---------------------------------------------------------------------------------------
def gemm_op(m: int, n: int, k: int, trans_a: bool = False, trans_b: bool = False,
            batch: int = 1, name: str = "gemm") -> Op:
    """A stand-alone GEMM op C[m,n] = op(A)[m,k] @ op(B)[k,n]."""
    return Op(id=0, name=name, kind="gemm", phase="forward", inputs=(), outputs=(),
              flops=2.0 * m * n * k * batch, m=m, n=n, k=k, batch_count=batch, trans_a=trans_a,
              trans_b=trans_b)


def deepbench_gemm_op(m: int, n: int, k: int, trans_a: bool, trans_b: bool) -> Op:
    """A DeepBench / cuBLAS GEMM (column-major: C[M,N] = op(A) @ op(B)) as accelsim's row-major
    op: the same memory is C^T[N,M] = op(B)^T @ op(A)^T, so M and N swap and so do the
    operands (a column-major A that is not transposed is a row-major [K, M] array).
    DeepBench's gemm_bench calls cuBLAS with beta = 1: C += op(A) @ op(B), so the epilogue
    reads C before writing it (`Op.accumulate`)."""
    return attrs.evolve(gemm_op(n, m, k, trans_a=trans_b, trans_b=trans_a), accumulate=True)


TrafficFn = Callable[[HardwareSpec, Op, GemmMapping, str], Traffic]


def time_op(hw: HardwareSpec, op: Op, dtype: str, *, nbytes: float | None = None,
            resident_bytes: float = 0.0, traffic_fn: TrafficFn | None = None) -> OpTiming:
    """Map and time one op; GEMM traffic from `traffic_fn` (cache simulation) when given."""
    mapping = map_op(hw, op, dtype, nbytes=nbytes)
    if traffic_fn is not None and isinstance(mapping, GemmMapping) and resident_bytes == 0:
        traffic = traffic_fn(hw, op, mapping, dtype)
    else:
        traffic = analytic_traffic(hw, op, mapping, dtype, nbytes=nbytes,
                                   resident_bytes=resident_bytes)
    return op_timing(hw, op, mapping, traffic, dtype)


def scalar_math_hw(hw: HardwareSpec, dtype: str) -> HardwareSpec:
    """`hw` computing `dtype` data on its FP32 pipes (the data stay `dtype`-sized)."""
    matrix = dict(hw.compute.matrix)
    if "fp32" in matrix:
        matrix[dtype] = matrix["fp32"]
    return attrs.evolve(hw, compute=attrs.evolve(hw.compute, matrix=matrix))


def hw_for_precision(hw: HardwareSpec, precision: str) -> HardwareSpec:
    """The chip as a row of `precision` uses it."""
    if precision in SCALAR_MATH_PRECISIONS:
        return scalar_math_hw(hw, PRECISION_DTYPE[precision])
    return hw


def _int(path: str | Path, line: int, rec: dict[str, str], column: str) -> int:
    return int(_number(path, line, rec, column, integer=True) or 0)


def _peak_s(hw: HardwareSpec, precision: str, flops: float) -> float:
    """The least time `flops` take at the chip's peak matrix rate for `precision`."""
    return flops / hw_for_precision(hw, precision).compute.peak_flop_rate(
        PRECISION_DTYPE[precision])


def warm_operand_bytes(hw: HardwareSpec, op: Op, dtype: str) -> float:
    """Operand bytes a benchmark's repeated call finds in the last cache level: DeepBench times
    many back-to-back calls on the same buffers, so a GEMM whose operands and output fit in the
    last level reads its operands from there, not from memory (0 when they do not fit)."""
    if not hw.caches:
        return 0.0
    eb = dtype_bytes(dtype)
    operands = eb * (op.m * op.k + op.k * op.n)
    if operands + eb * op.m * op.n > hw.caches[-1].capacity_bytes:
        return 0.0
    return float(operands)


def validate_gemm(hw: HardwareSpec, path: str | Path, traffic_fn: TrafficFn | None = None, *,
                  device: str | None = None,
                  not_predicted: list[NotPredicted] | None = None,
                  resolution_s: float | None = None) -> list[Row]:
    """Predict every row of a GEMM CSV for the spec's device (or `device`).

    `resolution_s`: what the times were truncated to (None: `truncation_resolution_s` of the
    file's times); rows are compared with the mean true time, reading + resolution / 2.

    Every row is read and checked before any is predicted. A row whose precision has no pipe
    on the chip is appended to `not_predicted`, or is a SpecError when no list is given;
    implausible times are a SpecError (`peak_issue`, `check_plausible`), and so is a shape
    the cache simulation (`traffic_fn`) could not trace in bounded time and memory."""
    records = select_device(path, read_csv_lines(path, GEMM_COLUMNS), hw.name, device)
    if not records:
        raise SpecError([Issue(str(path), None, None, "time_ms", "at least one measured row",
                               "none")])
    todo, issues = [], []
    for line, rec in records:
        prec = _choice(path, line, rec, "precision", tuple(PRECISION_DTYPE))
        m, n, k = (_int(path, line, rec, c) for c in ("M", "N", "K"))
        ta = _choice(path, line, rec, "transA", ("N", "T")) == "T"
        tb = _choice(path, line, rec, "transB", ("N", "T")) == "T"
        measured = (_time_ms(path, line, rec, "time_ms") or 0.0) * 1e-3
        label = f"{m}x{n}x{k} {'T' if ta else 'N'}{'T' if tb else 'N'}"
        problem = pipe_problem(hw, prec)
        if problem:
            _unpredictable(path, line, "gemm", prec, label, problem, not_predicted)
            continue
        chip, op = hw_for_precision(hw, prec), deepbench_gemm_op(m, n, k, ta, tb)
        issue = peak_issue(path, line, "time_ms", label, measured,
                           _peak_s(hw, prec, 2.0 * m * n * k))
        if issue is None and traffic_fn is not None:
            issue = _gemm_simulation_issue(path, line, chip, op, PRECISION_DTYPE[prec])
        if issue is not None:
            issues.append(issue)
        todo.append((line, prec, label, measured, chip, op))
    if issues:
        raise SpecError(issues)
    if resolution_s is None:
        resolution_s = truncation_resolution_s([item[3] for item in todo])
    rows = []
    for line, prec, label, measured, chip, op in todo:
        stage(f"GEMM line {line}")  # the bar of `accelsim validate`
        t = time_op(chip, op, PRECISION_DTYPE[prec],
                    resident_bytes=warm_operand_bytes(chip, op, PRECISION_DTYPE[prec]),
                    traffic_fn=traffic_fn)
        rows.append(Row("gemm", prec, label, measured, t.isolated_time_s, t.bound, str(path), line,
                        "time_ms", resolution_s))
    check_plausible(hw, rows)
    return rows


def _gemm_simulation_issue(path: str | Path, line: int, hw: HardwareSpec, op: Op,
                           dtype: str) -> Issue | None:
    """A GEMM whose cache simulation (`simulated_gemm_traffic`) would trace more than
    `SIM_MAX_ROW_GRANULES`, found from its mapping before any simulation."""
    mapping = map_op(hw, op, dtype)
    if not hw.caches or not isinstance(mapping, GemmMapping):
        return None
    granules = _SimulatedGemm.of(hw, op, mapping, dtype).granules()
    if granules <= SIM_MAX_ROW_GRANULES:
        return None
    return Issue(str(path), line, None, "M, N, K", f"a GEMM the cache simulation traces in "
                 f"at most {SIM_MAX_ROW_GRANULES:.3g} granules (--analytic times any size)",
                 f"~{granules:.3g} granules")


# --- RNN ----------------------------------------------------------------------------------------
# --- RNN through the pipeline ---------------------------------------------------
def _state_split(vectors: int) -> tuple[int, int]:
    """(vectors carried to the next step, vectors saved for backward) of a step's elementwise
    kernel besides its input and output: the recurrent state (c of an LSTM) is carried, the
    rest is saved."""
    extra = max(vectors - 2, 0)
    carried = extra // 2
    return carried, extra - 2 * carried


#: cuDNN's input modes: "skip" (CUDNN_SKIP_INPUT, what DeepBench runs: x_t is added to the
#: gates unprojected) and "linear" (CUDNN_LINEAR_INPUT: x_t is projected by an input weight
#: matrix, one GEMM over all timesteps hoisted out of the loop).
RNN_INPUT_MODES = ("skip", "linear")


def rnn_pass_graph(cell: str, hidden: int, batch: int, steps: int, dtype: str,
                   rnn_pass: str, accumulate: str = "fp32", input_mode: str = "skip") -> OpGraph:
    """The ops one recurrent library call runs for `rnn_pass` ("fwd", "bwd_inputs" or
    "bwd_weights"), as an `OpGraph` the pipeline maps, traces and times like any other.

    With `input_mode` "linear" the loop reads the projected inputs (gates wide) instead of x_t
    and backward-data's steps leave dx to the hoisted GEMM (`rnn_input_gemm_graph`).
    Tensors are row-major, the recurrent weights stored [gates*hidden, hidden] as cuDNN and
    frameworks keep them. DeepBench calls cuDNN with CUDNN_SKIP_INPUT (the input enters
    unprojected), so there is no input GEMM to hoist: a forward step is the recurrent GEMM
    (h[batch, hidden] times the stored weights transposed: K-contiguous) and one fused
    elementwise kernel that adds x_t, applies the
    gate nonlinearities, writes h_t and the state, and saves what backward needs. Backward-data
    runs the steps in reverse: the elementwise gradient kernel, then the GEMM with the weights
    as stored. Backward-weights is one GEMM over all timesteps (the stacked gate gradients
    times the stacked states), the bias-gradient reduction and, when the pipe accumulates in a
    wider type, the pass that converts the workspace into the 16-bit gradient.
    """
    from accelsim.graph import GraphBuilder
    from accelsim.vocabulary import dtype_bytes

    gates = CELL_GATES[cell]
    gh = gates * hidden
    fwd_flops, bwd_flops = CELL_POINTWISE_FLOPS[cell]
    fwd_vec, bwd_vec = CELL_STATE_VECTORS[cell]
    b = GraphBuilder(f"{cell}-h{hidden}-b{batch}-t{steps}-{rnn_pass}", dtype)
    w = b.weight("W_rec", (gh, hidden))
    if rnn_pass == "fwd":
        carried, saved = _state_split(fwd_vec)
        h = b.input("h0", (batch, hidden))
        state = b.input("c0", (batch, carried * hidden)) if carried else None
        for t in range(steps):
            g = b.matmul(f"t{t}/recurrent", h, w, trans_b=True)
            x = b.input(f"x{t}", (batch, gh if input_mode == "linear" else hidden))
            ins = [g, x] + ([state] if state is not None else [])
            h = b.tensor(f"t{t}/h", (batch, hidden))
            outs = [h, b.tensor(f"t{t}/reserve", (batch, gh + saved * hidden))]
            if carried:
                state = b.tensor(f"t{t}/c", (batch, carried * hidden))
                outs.append(state)
            b.op(f"t{t}/pointwise", "elementwise", ins, outs, fwd_flops * hidden * batch)
        return b.build()
    if rnn_pass == "bwd_inputs":
        carried, saved = _state_split(bwd_vec)
        dh = b.input("dh_T", (batch, hidden))
        dstate = b.input("dc_T", (batch, carried * hidden)) if carried else None
        for t in reversed(range(steps)):
            reserve = b.input(f"t{t}/reserve", (batch, gh + saved * hidden))
            dy = b.input(f"t{t}/dy", (batch, hidden))
            ins = [dh, dy, reserve] + ([dstate] if dstate is not None else [])
            dg = b.tensor(f"t{t}/dgates", (batch, gh))
            outs = [dg] if input_mode == "linear" else [dg, b.tensor(f"t{t}/dx", (batch, hidden))]
            if carried:
                dstate = b.tensor(f"t{t}/dc", (batch, carried * hidden))
                outs.append(dstate)
            b.op(f"t{t}/pointwise_grad", "elementwise", ins, outs, bwd_flops * hidden * batch)
            dh = b.matmul(f"t{t}/grad_h", dg, w)
        return b.build()
    dgates = b.input("dgates", (batch * steps, gh))
    hs = b.input("h", (batch * steps, hidden))
    acc = accumulate
    ws = b.tensor("grad_w:workspace", (gh, hidden), role="weight_gradient", dtype=acc)
    b.op("grad_w", "gemm", [dgates, hs], [ws], 2.0 * gh * hidden * batch * steps, m=gh,
         n=hidden, k=batch * steps, trans_a=True)
    b.pointwise("grad_b", [dgates], 1.0, shape=(1, gh), kind="reduce",
                out_role="weight_gradient")
    if dtype_bytes(acc) > dtype_bytes(dtype):
        # Products accumulated at higher precision (FP32 for FP16 tensor cores) land in a
        # workspace; a pass over dW adds them into the 16-bit weight gradient.
        dw_old = b.input("dW", (gh, hidden))
        b.pointwise("grad_w/convert", [ws, dw_old], 1.0, out_role="weight_gradient")
    return b.build()


def rnn_input_gemm_graph(cell: str, hidden: int, batch: int, steps: int, dtype: str,
                         rnn_pass: str) -> OpGraph:
    """The input GEMM of a CUDNN_LINEAR_INPUT layer, over all timesteps at once (the input
    size is the hidden size, as in DeepBench): forward x[T*batch, hidden] times W_in
    [gates*hidden, hidden] transposed before the loop; backward-data dx = dgates @ W_in after
    it; backward-weights dW_in = dgates^T @ x."""
    from accelsim.graph import GraphBuilder

    gh, rows = CELL_GATES[cell] * hidden, batch * steps
    b = GraphBuilder(f"{cell}-h{hidden}-b{batch}-t{steps}-{rnn_pass}-input", dtype)
    w_in = b.weight("W_in", (gh, hidden))
    if rnn_pass == "fwd":
        b.matmul("input_gemm", b.input("x", (rows, hidden)), w_in, trans_b=True)
    elif rnn_pass == "bwd_inputs":
        b.matmul("grad_x", b.input("dgates", (rows, gh)), w_in)
    else:
        b.matmul("grad_w_in", b.input("dgates", (rows, gh)), b.input("x", (rows, hidden)),
                 trans_a=True, out_role="weight_gradient")
    return b.build()


#: Timesteps of a recurrent call run through the pipeline; later steps repeat the last one
#: (after the cold first steps a step's traffic is periodic: the same weights, the same
#: per-step tensors), so a 1500-step call costs what 16 steps do.
RNN_TRACED_STEPS = 16


def _traced_steps(steps: int, rnn_pass: str) -> int:
    """Timesteps of a call's graph that are run (backward-weights is one GEMM over all)."""
    return min(steps, RNN_TRACED_STEPS) if rnn_pass != "bwd_weights" else steps


def _rnn_simulation_issue(path: str | Path, line: int, hw: HardwareSpec, cell: str,
                          hidden: int, batch: int, steps: int, dtype: str) -> Issue | None:
    """A layer whose passes' cache simulation would make more than `SIM_MAX_PASS_BLOCKS`
    block accesses (`estimate.op_stream_bytes` of each traced graph), found from the mapped
    graphs before any simulation."""
    from accelsim import pipeline
    from accelsim.estimate import coalesced_factor, op_stream_bytes

    if not hw.caches:
        return None
    level = hw.caches[0]
    blocks = 0.0
    for rnn_pass in RNN_PASSES:
        graph = rnn_pass_graph(cell, hidden, batch, _traced_steps(steps, rnn_pass), dtype,
                               rnn_pass, hw.compute.pipe(dtype).accumulate)
        stream = sum(op_stream_bytes(graph, list(pipeline.map_step(hw, graph, dtype).mappings),
                                     dtype))
        factor = coalesced_factor(hw.caches, stream, hw.compute.units)
        blocks = max(blocks, stream / (level.line_bytes * factor))
    if blocks <= SIM_MAX_PASS_BLOCKS:
        return None
    return Issue(str(path), line, None, "hidden, batch, timesteps", f"a layer the cache "
                 f"simulation traces in at most {SIM_MAX_PASS_BLOCKS:.3g} block accesses per "
                 "pass (--analytic times any size)", f"~{blocks:.3g}")


def rnn_pass_time(hw: HardwareSpec, cell: str, hidden: int, batch: int, steps: int,
                  dtype: str, rnn_pass: str, simulate: bool = False,
                  input_mode: str = "skip") -> tuple[float, str]:
    """(time, bound) of one recurrent library call (`rnn_pass_graph`) through the pipeline's
    map, trace and time stages: the cache simulation of the call's ops in one cache state
    when `simulate` (`pipeline.trace_step`), else analytic traffic with the weights that an
    earlier step read and the last level holds counted resident. The ops depend on each other,
    so their isolated times add, plus the spec's per-call and per-timestep costs
    (`calibration.rnn_call_overhead`, `rnn_step_overhead`: host work and synchronisation).
    At most `RNN_TRACED_STEPS` steps are run; the rest repeat the last traced step. With
    `input_mode` "linear" the hoisted input GEMM (`rnn_input_gemm_graph`) is timed the same
    way and added."""
    if input_mode not in RNN_INPUT_MODES:
        raise ValueError(f"input_mode: expected one of {RNN_INPUT_MODES}, got {input_mode!r}")
    traced_steps = _traced_steps(steps, rnn_pass)
    graph = rnn_pass_graph(cell, hidden, batch, traced_steps, dtype, rnn_pass,
                           hw.compute.pipe(dtype).accumulate, input_mode)
    timings = _pipeline_timings(hw, graph, dtype, simulate)
    times = [t.isolated_time_s for t in timings]
    cal = hw.calibration
    total = cal.rnn_call_overhead_s + sum(times)
    if rnn_pass != "bwd_weights":
        per_step = len(graph.ops) // traced_steps
        total += (steps - traced_steps) * sum(times[-per_step:])
        total += steps * cal.rnn_step_overhead_s
    if input_mode == "linear":
        hoisted = rnn_input_gemm_graph(cell, hidden, batch, steps, dtype, rnn_pass)
        total += sum(t.isolated_time_s for t in _pipeline_timings(hw, hoisted, dtype, simulate))
    # The bound of the last GEMM: the recurrent GEMM at steady state, or the weight gradient.
    gemms = [t for op, t in zip(graph.ops, timings, strict=True) if op.kind == "gemm"]
    return total, gemms[-1].bound


def _pipeline_timings(hw: HardwareSpec, graph: OpGraph, dtype: str,
                      simulate: bool) -> tuple[OpTiming, ...]:
    """Each op's isolated timing: map, trace (cache simulation when `simulate`, else analytic
    traffic with resident weights), time."""
    from accelsim import pipeline
    from accelsim.timing import resident_weight_bytes

    mapping = pipeline.map_step(hw, graph, dtype)
    if simulate and hw.caches:
        traced = pipeline.trace_step(hw, graph, mapping)
    else:
        seen: set[int] = set()
        traffics = []
        for op, mp in zip(graph.ops, mapping.mappings, strict=True):
            resident = resident_weight_bytes(hw, graph, op, seen)
            traffics.append(analytic_traffic(hw, op, mp, dtype, nbytes=graph.op_bytes(op),
                                             resident_bytes=resident))
            seen.update(op.inputs)
        traced = pipeline.TracedStep(traffics=tuple(traffics),
                                     hit_rates=tuple(dict(t.hit_rate) for t in traffics),
                                     cache=None, notes=())
    return pipeline.time_step(hw, graph, mapping, traced).timings


def rnn_times(hw: HardwareSpec, cell: str, hidden: int, batch: int, steps: int,
              dtype: str, simulate: bool = False,
              input_mode: str = "skip") -> dict[str, tuple[float, str]]:
    """(time, bound) of a recurrent layer's forward, backward-data and backward-weights calls
    (`rnn_pass_time` of each)."""
    return {p: rnn_pass_time(hw, cell, hidden, batch, steps, dtype, p, simulate=simulate,
                             input_mode=input_mode)
            for p in RNN_PASSES}


def validate_rnn(hw: HardwareSpec, path: str | Path, simulate: bool = False, *,
                 device: str | None = None,
                 not_predicted: list[NotPredicted] | None = None,
                 resolution_s: float | None = None) -> list[Row]:
    """Predict every measured pass of every row of an RNN CSV for the spec's device (or
    `device`). Empty cells were not measured and are skipped; a row with no measured pass is a
    SpecError. Rows are all read and checked before any is predicted, and the times'
    resolution found, as in `validate_gemm`."""
    records = select_device(path, read_csv_lines(path, RNN_COLUMNS), hw.name, device)
    if not records:
        raise SpecError([Issue(str(path), None, None, "fwd_ms", "at least one measured row",
                               "none")])
    todo, issues = [], []
    for line, rec in records:
        prec = _choice(path, line, rec, "precision", tuple(PRECISION_DTYPE))
        cell = _choice(path, line, rec, "cell", tuple(CELL_GATES))
        hidden, batch, steps = (_int(path, line, rec, c) for c in ("hidden", "batch", "timesteps"))
        measured = {p: _time_ms(path, line, rec, f"{p}_ms", optional=True) for p in RNN_PASSES}
        if all(ms is None for ms in measured.values()):
            raise SpecError([Issue(str(path), line, None, "fwd_ms",
                                   "a measured time in at least one of "
                                   + ", ".join(f"{p}_ms" for p in RNN_PASSES), "empty cells")])
        label = f"{cell} h{hidden} b{batch} t{steps}"
        problem = pipe_problem(hw, prec)
        if problem:
            _unpredictable(path, line, "rnn", prec, label, problem, not_predicted)
            continue
        peak_s = _peak_s(hw, prec, steps * 2.0 * CELL_GATES[cell] * hidden * hidden * batch)
        found = [peak_issue(path, line, f"{p}_ms", f"{label} {p}", ms * 1e-3, peak_s)
                 for p, ms in measured.items() if ms is not None]
        if not any(found) and simulate:
            found.append(_rnn_simulation_issue(path, line, hw_for_precision(hw, prec), cell,
                                               hidden, batch, steps, PRECISION_DTYPE[prec]))
        issues += [i for i in found if i is not None]
        todo.append((line, prec, cell, hidden, batch, steps, label, measured))
    if issues:
        raise SpecError(issues)
    if resolution_s is None:
        resolution_s = truncation_resolution_s([ms * 1e-3 for item in todo
                                                for ms in item[-1].values() if ms is not None])
    rows = []
    for line, prec, cell, hidden, batch, steps, label, measured in todo:
        stage(f"RNN line {line}")  # the bar of `accelsim validate`
        pred = rnn_times(hw_for_precision(hw, prec), cell, hidden, batch, steps,
                         PRECISION_DTYPE[prec], simulate=simulate)
        for phase, ms in measured.items():
            if ms is None:
                continue
            t, bound = pred[phase]
            rows.append(Row(f"rnn_{phase}", prec, f"{label} {phase}", ms * 1e-3, t, bound,
                            str(path), line, f"{phase}_ms", resolution_s))
    check_plausible(hw, rows)
    return rows


def shape_of(row: Row) -> str:
    """The measured shape of a row, the same for its precisions and (RNN) passes: the GEMM's
    `MxNxK TT` or the layer's `cell hH bB tT`."""
    return row.label if row.table == "gemm" else row.label.rsplit(" ", 1)[0]


def rnn_steps(row: Row) -> int:
    """Timesteps of an RNN row (0 for a GEMM row), from its label `cell hH bB tT pass`."""
    if row.table == "gemm":
        return 0
    return int(row.label.split()[3][1:])


# --- summary -------------------------------------------------------------------------------------
def summarize(rows: Sequence[Row]) -> dict[str, dict[str, dict[str, float]]]:
    """Per table and precision: median, p90 and max absolute % error, and the row count."""
    groups: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        groups.setdefault((r.table, r.precision), []).append(r.abs_pct_err)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (table, prec), errs in sorted(groups.items()):
        e = np.asarray(errs)
        out.setdefault(table, {})[prec] = {
            "median_abs_pct_err": float(np.median(e)),
            "p90_abs_pct_err": float(np.percentile(e, 90)),
            "max_abs_pct_err": float(e.max()), "rows": int(e.size)}
    return out


def format_rows(rows: Sequence[Row]) -> str:
    lines = [f"{'table':<16}{'precision':<12}{'case':<34}{'measured ms':>13}"
             f"{'predicted ms':>14}{'err %':>8}  bound"]
    for r in rows:
        lines.append(f"{r.table:<16}{r.precision:<12}{r.label:<34}{r.measured_s * 1e3:>13.4f}"
                     f"{r.predicted_s * 1e3:>14.4f}{r.abs_pct_err:>8.1f}  {r.bound}")
    return "\n".join(lines)


def format_not_predicted(items: Sequence[NotPredicted]) -> str:
    """One line per (table, precision, reason) with its row count and the first lines."""
    groups: dict[tuple[str, str, str, str], list[int]] = {}
    for x in items:
        groups.setdefault((x.source, x.table, x.precision, x.reason), []).append(x.line)
    out = [f"{len(items)} measured row(s) not predicted:"]
    for (source, table, prec, reason), lines in groups.items():
        shown = ", ".join(map(str, lines[:5])) + (", ..." if len(lines) > 5 else "")
        out.append(f"  {table} {prec}: {len(lines)} row(s) ({source} lines {shown}): {reason}")
    return "\n".join(out)


def format_summary(summary: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = [f"{'table':<16}{'precision':<12}{'rows':>6}{'median %':>10}{'p90 %':>9}{'max %':>9}"]
    for table, per in summary.items():
        for prec, s in per.items():
            lines.append(f"{table:<16}{prec:<12}{s['rows']:>6}{s['median_abs_pct_err']:>10.1f}"
                         f"{s['p90_abs_pct_err']:>9.1f}{s['max_abs_pct_err']:>9.1f}")
    return "\n".join(lines)


def resolution_notes(rows: Sequence[Row]) -> list[str]:
    """One line per measurement file whose times are truncated readings."""
    seen: dict[str, float] = {}
    for r in rows:
        if r.resolution_s > 0:
            seen.setdefault(r.source, r.resolution_s)
    return [f"{source}: times are truncated to {res * 1e6:g} us (DeepBench prints whole "
            f"microseconds); each is compared with reading + {res * 1e6 / 2:g} us"
            for source, res in seen.items()]


def repeated_rows(rows: Sequence[Row]) -> list[str]:
    """One note per case measured on several lines of a file (same table, precision, shape
    and layout): each is kept, as repeated measurements of one kernel are, but the case then
    weighs more in the medians and the fit, which the user should know."""
    lines: dict[tuple[str, str, str], dict[int, None]] = {}
    for r in rows:
        lines.setdefault((r.source, r.precision, shape_of(r)), {})[r.line] = None
    return [f"note: {source} lines {', '.join(map(str, at))}: {prec} {shape} measured again "
            "(every row is kept)" for (source, prec, shape), at in lines.items() if len(at) > 1]


def format_markdown(rows: Sequence[Row], summary: dict[str, dict[str, dict[str, float]]],
                    title: str, worst: int = 12) -> str:
    """Markdown: the summary table, then the rows with the largest errors."""
    out = [f"### {title}", "", "| table | precision | rows | median abs % err | p90 abs % err "
           "| max abs % err |", "|---|---|---:|---:|---:|---:|"]
    for table, per in summary.items():
        for prec, s in per.items():
            out.append(f"| {table} | {prec} | {s['rows']} | {s['median_abs_pct_err']:.1f} | "
                       f"{s['p90_abs_pct_err']:.1f} | {s['max_abs_pct_err']:.1f} |")
    out += ["", f"Largest errors ({worst}):", "", "| table | precision | case | measured ms "
            "| predicted ms | err % | bound |", "|---|---|---|---:|---:|---:|---|"]
    for r in sorted(rows, key=lambda r: -r.abs_pct_err)[:worst]:
        sign = (r.predicted_s - r.expected_s) / r.expected_s * 100.0
        out.append(f"| {r.table} | {r.precision} | {r.label} | {r.measured_s * 1e3:.4g} | "
                   f"{r.predicted_s * 1e3:.4g} | {sign:+.1f} | {r.bound} |")
    return "\n".join(out) + "\n"


# --- cache simulation ------------------------------------------------------------------------------
#: Granules (blocks) one simulated GEMM may touch before the trace is cut to a prefix of tile
#: rows and extrapolated (keeps `validate` around a minute on the DeepBench tables).
SIM_MAX_GRANULES = 400_000
#: Work one row's cache simulation may take; a row beyond is refused before any simulation
#: (`--analytic` times any size). GEMMs: granules `simulated_gemm_traffic` traces, held in
#: memory at ~4-10 bytes each (1e8: ~5 s and ~1 GB; the DeepBench tables reach 1.2e6).
#: RNN passes: block accesses of `pipeline.trace_step` (`estimate.op_stream_bytes` in
#: coalesced blocks; 1e9: ~5-20 s; the tables reach 4e7).
SIM_MAX_ROW_GRANULES = 100_000_000
SIM_MAX_PASS_BLOCKS = 1e9


def _simulate_gemm_bytes(hw: HardwareSpec, m: int, n: int, k: int, mp: GemmMapping, eb: int,
                         trans_a: bool, trans_b: bool, units: int, warm: bool = False,
                         accumulate: bool = False) -> tuple[float, list[float]]:
    """(bytes served by the first level, [bytes moved below each level; last = HBM]) of one
    GEMM run through the cache hierarchy, dirty lines flushed at the end: cold, or (`warm`)
    right after an identical run, as one timestep of a recurrence follows the previous.
    `accumulate`: C += A@B, each C tile read before it is written.
    Tile-major storage, one block granule per level (`coarsening.tile_block_bytes`)."""
    from accelsim.cache import (
        BYTES_READ_FROM_BELOW,
        BYTES_WRITTEN_BELOW,
        CacheHierarchy,
        Trace,
    )
    from accelsim.coarsening import tile_block_bytes
    from accelsim.kernels.trace import gemm_runs
    from accelsim.trace_runs import epilogue_reads

    def padded(rows: int, cols: int, tr: int, tc: int) -> int:  # full-tile slots
        return math.ceil(rows / tr) * tr * math.ceil(cols / tc) * tc * eb

    # A tile larger than the matrix reads only the matrix (predicated loads), as in
    # `trace_runs.gemm_op_runs`: a 16-row operand in 64-row tiles moves 16 rows, not 64.
    tm, tn, tk = min(mp.tile_m, m), min(mp.tile_n, n), min(mp.tile_k, k)
    align = 1 << 20
    a_base = 0
    b_base = (padded(m, k, tm, tk) // align + 1) * align
    c_base = b_base + (padded(k, n, tk, tn) // align + 1) * align
    runs = gemm_runs(m, n, k, tm, tn, tk, eb, a_base, b_base, c_base,
                     trans_a, trans_b, mp.loop_order, units, True)
    if accumulate:
        runs = epilogue_reads(*runs, c_base, c_base)
    trace = Trace.from_runs(runs)
    tile_bytes = [tm * tk * eb, tk * tn * eb, tm * tn * eb]
    blocks = [tile_block_bytes(tile_bytes, lvl) for lvl in hw.caches]
    for i in range(1, len(blocks)):
        blocks[i] = max(blocks[i], blocks[i - 1])
    cache = CacheHierarchy.with_block_bytes(hw.caches, units, blocks)
    if warm:
        cache.run(trace)
    data = cache.run(trace).total().data[0] + cache.flush().total().data[0]
    below = [float(data[i, BYTES_READ_FROM_BELOW] + data[i, BYTES_WRITTEN_BELOW])
             for i in range(len(hw.caches))]
    return float(trace.total_bytes), below


@attrs.frozen
class _SimulatedGemm:
    """What `simulated_gemm_traffic` simulates of a GEMM: one split-K slice of one batch entry
    (`kc` deep, on `units` units), cut to `rows` of its `n_outer` outer tile rows (`outer`
    elements in tiles of `outer_tile`) when it is large; `per_outer` granules (first-level
    blocks) per tile row."""

    m: int
    n: int
    batch: int
    kc: int
    copies: int
    units: int
    eb: int
    outer: int
    outer_tile: int
    n_outer: int
    rows: int
    per_outer: float

    @classmethod
    def of(cls, hw: HardwareSpec, op: Op, mapping: GemmMapping, dtype: str) -> _SimulatedGemm:
        from accelsim.coarsening import tile_block_bytes
        from accelsim.vocabulary import dtype_bytes

        eb = dtype_bytes(dtype)
        m, n, batch = max(op.m, 1), max(op.n, 1), max(op.batch_count, 1)
        kc = math.ceil(max(op.k, 1) / mapping.split_k)
        copies = batch * mapping.split_k
        units = copy_units(mapping, math.ceil(m / mapping.tile_m) * math.ceil(n / mapping.tile_n))
        tile_bytes = [mapping.tile_m * mapping.tile_k * eb, mapping.tile_k * mapping.tile_n * eb,
                      mapping.tile_m * mapping.tile_n * eb]
        block = tile_block_bytes(tile_bytes, hw.caches[0])
        total_est = (math.ceil(n / mapping.tile_n) * m
                     + math.ceil(m / mapping.tile_m) * n) * kc * eb
        outer_tile = mapping.tile_m if mapping.loop_order == 0 else mapping.tile_n
        outer = m if mapping.loop_order == 0 else n
        n_outer = math.ceil(outer / outer_tile)
        inner_tiles = math.ceil((n if mapping.loop_order == 0 else m)
                                / (mapping.tile_n if mapping.loop_order == 0 else mapping.tile_m))
        per_outer = total_est / n_outer / block
        rows = max(1, math.ceil(units / max(inner_tiles, 1)))  # one wave of tile rows at least
        rows = max(rows, int(SIM_MAX_GRANULES / 3 / max(per_outer, 1.0)))
        return cls(m, n, batch, kc, copies, units, eb, outer, outer_tile, n_outer, rows,
                   per_outer)

    @property
    def whole(self) -> bool:
        """Whether the whole GEMM is simulated (not R and 2R tile rows extrapolated)."""
        return self.rows * 2 >= self.n_outer

    def granules(self) -> float:
        """Granules the (cold) simulation traces: the whole GEMM, or R and 2R tile rows."""
        if self.whole:
            return self.n_outer * self.per_outer
        return 3 * self.rows * self.per_outer


def simulated_gemm_traffic(hw: HardwareSpec, op: Op, mapping: GemmMapping,
                           dtype: str, warm: bool = False) -> Traffic:
    """Bytes per level of a GEMM from the cache simulator (tile-major, block granules).

    The trace is the mapping's tile schedule (`kernels.trace.gemm_runs`). Large GEMMs are cut
    to R and 2R tile rows (columns for loop order 1) and extrapolated linearly from their
    difference, which is the steady-state traffic per R rows with the cold start counted once.
    Split-K slices and batch entries are independent GEMMs over disjoint K ranges: one is
    simulated and scaled; the partial-sum reduction bytes are added as in the analytic model.
    `warm` simulates the GEMM right after an identical one (whole GEMM, no extrapolation):
    what stays resident between two timesteps of a recurrence is then not fetched again.
    """
    from accelsim.mapping import accumulate_bytes

    if not hw.caches:
        return analytic_traffic(hw, op, mapping, dtype)
    sim = _SimulatedGemm.of(hw, op, mapping, dtype)
    m, n, batch, kc, copies = sim.m, sim.n, sim.batch, sim.kc, sim.copies
    n_outer, rows = sim.n_outer, sim.rows

    def run(outer_rows: int) -> tuple[float, list[float]]:
        size = min(sim.outer, outer_rows * sim.outer_tile)
        mm, nn = (size, n) if mapping.loop_order == 0 else (m, size)
        # with split-K the slices write partial sums; the reduction reads C (below)
        return _simulate_gemm_bytes(hw, mm, nn, kc, mapping, sim.eb, op.trans_a, op.trans_b,
                                    sim.units, warm, op.accumulate and mapping.split_k == 1)

    if warm or sim.whole:
        served, below = run(n_outer)
    else:
        s1, b1 = run(rows)
        s2, b2 = run(2 * rows)
        reps = (n_outer - rows) / rows
        served = s1 + reps * (s2 - s1)
        below = [x1 + reps * (x2 - x1) for x1, x2 in zip(b1, b2, strict=True)]
    partial = 0.0
    if mapping.split_k > 1:
        partial = 2.0 * mapping.split_k * m * n * batch * accumulate_bytes(hw, dtype)
        if op.accumulate:
            partial += m * n * batch * sim.eb
    names = [c.name for c in hw.caches]
    level_bytes = {names[0]: served * copies + partial}
    for i, name in enumerate(names[1:], start=1):
        level_bytes[name] = below[i - 1] * copies + partial
    level_bytes[MEMORY] = below[-1] * copies + partial
    chain = [*names, MEMORY]
    hit_rate = {a: (0.0 if level_bytes[a] <= 0 else
                    max(0.0, 1.0 - level_bytes[b] / level_bytes[a]))
                for a, b in zip(chain, chain[1:], strict=False)}
    return Traffic(level_bytes=level_bytes, hit_rate=hit_rate)


def simulated_traffic_fn() -> TrafficFn | None:
    """GEMM traffic from the cache simulator, or None when it is not installed."""
    try:
        import accelsim.cache  # noqa: F401
        import accelsim.kernels.trace  # noqa: F401
    except ImportError:
        return None
    cache: dict[tuple, Traffic] = {}

    def fn(hw: HardwareSpec, op: Op, mapping: GemmMapping, dtype: str) -> Traffic:
        key = (id(hw), op.signature, mapping, dtype)
        if key not in cache:
            cache[key] = simulated_gemm_traffic(hw, op, mapping, dtype)
        return cache[key]
    return fn


# --- CLI --------------------------------------------------------------------------------------------
#: How `validate` and `calibrate` read a measurement file (their --help; docs/validation.md).
MEASUREMENT_RULES = (
    "Measurement files: UTF-8 CSV (a BOM, CRLF and quoted fields are fine) whose first "
    "non-blank line names DeepBench's columns, each once (others are ignored). Blank lines are "
    "skipped; a row with fewer cells than the header or extra non-empty ones is an error. Times "
    "are plain decimals in milliseconds (no unit, no ',' decimal): positive, under an hour, "
    "and no faster than the chip's peak allows; shapes are whole numbers below 2**31; "
    "precision, cell and transA/transB (N or T) are matched exactly. A case measured on "
    "several lines is kept and noted. Rows are checked before any is predicted; with the "
    "cache simulation, a row it could not trace in bounded time is refused (--analytic "
    "times any size). Any problem: file:line: column: expected ..., got ...; exit 2.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `accelsim validate`."""
    parser.epilog = MEASUREMENT_RULES
    parser.add_argument("--hardware", metavar="SPEC",
                        help=f"hardware spec YAML (default: the shipped {DEFAULT_HARDWARE} spec)")
    parser.add_argument("--gemm-csv", metavar="F",
                        help="GEMM measurements, DeepBench columns (default: the packaged "
                             f"DeepBench V100 table, accelsim/data/{DEFAULT_GEMM_CSV}); '' to skip")
    parser.add_argument("--rnn-csv", metavar="F",
                        help="RNN measurements, DeepBench columns (default: the packaged "
                             f"DeepBench V100 table, accelsim/data/{DEFAULT_RNN_CSV}); '' to skip")
    parser.add_argument("--device", metavar="NAME",
                        help="use the rows whose device column is NAME (default: the device "
                             "named like the hardware spec, e.g. v100 -> 'NVIDIA V100')")
    add_resolution_argument(parser)
    parser.add_argument("--json", metavar="FILE", help="write rows and summary as JSON")
    parser.add_argument("--plot", metavar="FILE", help="write a log-log scatter (PNG)")
    parser.add_argument("--markdown", metavar="FILE",
                        help="write the summary and the largest errors as Markdown")
    parser.add_argument("--analytic", action="store_true",
                        help="use the analytic traffic model even if the cache simulator exists")
    parser.add_argument("--quiet", action="store_true", help="print the summary only")


def add_resolution_argument(parser: argparse.ArgumentParser) -> None:
    """`--resolution-us` (validate and calibrate): what the measured times were truncated to."""
    parser.add_argument("--resolution-us", metavar="US", type=float,
                        help="the times were truncated to multiples of US microseconds (0: "
                             "exact); each row is compared with reading + US/2 (default: 1 "
                             "when every time is whole microseconds, as DeepBench prints them, "
                             "else 0)")


def resolution_from_args(args: argparse.Namespace) -> float | None:
    """`--resolution-us` in seconds (None: found from each file); a located error when it is
    not a finite number of microseconds from 0 to 1e6."""
    if args.resolution_us is None:
        return None
    if not (math.isfinite(args.resolution_us) and 0 <= args.resolution_us <= 1e6):
        raise SpecError([Issue("command line", None, None, "--resolution-us",
                               "microseconds from 0 to 1e6", repr(args.resolution_us))])
    return float(args.resolution_us) * 1e-6


def require_hardware(hw: object) -> None:
    """A SpecTypeError unless `hw` is a loaded hardware spec (API callers pass paths too)."""
    if not isinstance(hw, HardwareSpec):
        raise SpecTypeError(f"hw: expected a HardwareSpec (accelsim.load_hardware(path)), got "
                            f"{type(hw).__name__}")


def run_validation(hw: HardwareSpec, gemm_csv: str | Path | None, rnn_csv: str | Path | None,
                   traffic_fn: TrafficFn | None = None, *, device: str | None = None,
                   not_predicted: list[NotPredicted] | None = None,
                   resolution_s: float | None = None) -> list[Row]:
    """All rows of both tables (a None or empty path skips that table)."""
    require_hardware(hw)
    rows: list[Row] = []
    if gemm_csv:
        rows += validate_gemm(hw, gemm_csv, traffic_fn, device=device,
                              not_predicted=not_predicted, resolution_s=resolution_s)
    if rnn_csv:
        rows += validate_rnn(hw, rnn_csv, simulate=traffic_fn is not None, device=device,
                             not_predicted=not_predicted, resolution_s=resolution_s)
    return rows


def run(args: argparse.Namespace) -> int:
    """Run the validation, print the tables; 0 on success (errors raise SpecError)."""
    from accelsim.spec import load_hardware

    hw_path = args.hardware or refdata.hardware_spec_path(DEFAULT_HARDWARE)
    hw = load_hardware(hw_path)
    traffic_fn = None if args.analytic else simulated_traffic_fn()
    gemm_csv = refdata.data_path(DEFAULT_GEMM_CSV) if args.gemm_csv is None else args.gemm_csv
    rnn_csv = refdata.data_path(DEFAULT_RNN_CSV) if args.rnn_csv is None else args.rnn_csv
    not_predicted: list[NotPredicted] = []
    rows = run_validation(hw, gemm_csv, rnn_csv, traffic_fn, device=args.device,
                          not_predicted=not_predicted, resolution_s=resolution_from_args(args))
    if not rows:  # every table skipped, or no row has a pipe on this chip
        where = str(gemm_csv or rnn_csv or "--gemm-csv/--rnn-csv")
        got = f"none: {not_predicted[0].reason}" if not_predicted else "both tables skipped"
        raise SpecError([Issue(where, None, None, "precision",
                               f"measured rows {hw.name} can run", got)])
    summary = summarize(rows)
    if not args.quiet:
        print(format_rows(rows))
        print()
    source = "cache simulation" if traffic_fn else "analytic re-streaming model"
    print(f"hardware {hw.name} ({hw_path}); GEMM traffic from the {source}")
    print(format_summary(summary))
    for note in resolution_notes(rows):
        print(note)
    if not_predicted:
        print(format_not_predicted(not_predicted))
    for note in repeated_rows(rows):
        print(note)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"hardware": hw.name, "traffic": source, "summary": summary,
             "rows": [r.as_dict() for r in rows],
             "not_predicted": [x.as_dict() for x in not_predicted]}, indent=1))
    if args.markdown:
        Path(args.markdown).write_text(format_markdown(
            rows, summary, f"{hw.name}: predicted vs measured (GEMM traffic: {source})"))
    if args.plot and rows:
        from accelsim import plot

        plot.validation_scatter(rows, args.plot, f"accelsim vs measured on {hw.name}")
    return 0
