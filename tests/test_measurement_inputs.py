"""Measurement files nobody showed us: `accelsim validate` and `accelsim calibrate` on corrupted
copies of the packaged DeepBench tables.

Each example takes a few rows of a packaged table, writes them with harmless variations (a BOM,
CRLF line ends, quoted fields, blank lines, reordered or extra columns), applies at most one
corruption, and runs the command in-process (`--analytic`: no cache simulation). Whatever the
input, the exit code is 0 (a normal report) or 2 (a message naming the file, and for a broken row
its line and column, saying what was expected and what was got); never a traceback. The API
raises only AccelsimError. Each corruption knows where it must be reported, so a message that
blames the wrong line or column fails.
"""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from accelsim import calibrate, refdata
from accelsim.cli import main
from accelsim.errors import AccelsimError
from accelsim.spec import load_hardware
from accelsim.validate import run_validation

ROOT = Path(__file__).resolve().parents[1]
V100 = str(ROOT / "hwspecs" / "v100.yaml")
TABLES = {"gemm": refdata.data_path(refdata.DEEPBENCH_V100_GEMM),
          "rnn": refdata.data_path(refdata.DEEPBENCH_V100_RNN)}


def _table(name: str) -> tuple[list[str], list[list[str]]]:
    with TABLES[name].open(newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    return header, rows


PACKAGED = {name: _table(name) for name in TABLES}
NUMBERS = {"gemm": ("M", "N", "K", "time_ms"),
           "rnn": ("hidden", "batch", "timesteps", "fwd_ms", "bwd_inputs_ms", "bwd_weights_ms")}
TIMES = {"time_ms", "fwd_ms", "bwd_inputs_ms", "bwd_weights_ms"}
REQUIRED = {"gemm": ("precision", "M", "N", "K", "transA", "transB", "time_ms"),
            "rnn": ("precision", "cell", "hidden", "batch", "timesteps", "fwd_ms",
                    "bwd_inputs_ms", "bwd_weights_ms")}
#: Cells no column may hold: (text, columns it is wrong for).
BAD_NUMBERS = ("-1", "0", "-0", "nan", "inf", "-inf", "1e400", "0x10", "12ms", "1,5", "1_000",
               " ", "abc", "1e-30")
BAD_DIMENSIONS = ("1000000000000", str(2**31), "1.5", "99999999999999999999999999")
BAD_CHOICES = {"transA": ("t", "n", "1", "true", "TRUE", "NT"),
               "transB": ("t", "0", "false"),
               "precision": ("fp64", "FP32", "int8", "half", ""),
               "cell": ("LSTM", "rnn", "gru2", "")}


@attrs.define
class Case:
    """A measurement file as written: its physical lines, where each data row landed, and
    what a correct reader must say about it."""

    table: str
    header: list[str]
    rows: list[list[str]]
    #: (line, column) a row corruption must be reported at; ("file", text) the file must be
    #: refused with `text` in the message; None: either exit is fine.
    expect: tuple[int | str, str] | None = None
    note: str = ""  # text the report must print on exit 0 (e.g. a repeated case)
    raw: bytes | None = None  # bytes written instead of the rows (binary, non-UTF-8)
    kind: str = "file"  # or "directory", "missing"


@st.composite
def cases(draw: st.DrawFn, table: str | None = None, min_rows: int = 2,
          max_rows: int = 6) -> Case:
    table = table or draw(st.sampled_from(sorted(TABLES)))
    header, all_rows = PACKAGED[table]
    count = draw(st.integers(min_rows, max_rows))
    start = draw(st.integers(0, len(all_rows) - 1))
    step = draw(st.integers(1, len(all_rows) // max_rows))  # distinct rows, spread out
    rows = [list(all_rows[(start + i * step) % len(all_rows)]) for i in range(count)]
    header = list(header)
    if draw(st.booleans()):  # reordered columns
        order = draw(st.permutations(range(len(header))))
        header = [header[i] for i in order]
        rows = [[r[i] for i in order] for r in rows]
    if draw(st.booleans()):  # an extra column the reader ignores
        at = draw(st.integers(0, len(header)))
        header.insert(at, draw(st.sampled_from(["notes", "gpu clock", "time_us", ""])))
        for r in rows:
            r.insert(at, draw(st.sampled_from(["", "x", "1,2", '"q"'])))
    case = Case(table, header, rows)
    corrupt = draw(st.sampled_from(
        ["cell", "choice", "file", "column", "dimension", "cells", "device", "duplicate",
         "none"]))
    event(corrupt)
    row = draw(st.integers(0, len(rows) - 1))
    line = row + 2  # the header is line 1 before blank lines are inserted
    if corrupt == "cell":
        column = draw(st.sampled_from([c for c in NUMBERS[table]]))
        rows[row][header.index(column)] = draw(st.sampled_from(BAD_NUMBERS))
        blank_time = table == "rnn" and column in TIMES and not rows[row][header.index(column)].strip()
        case.expect = None if blank_time else (line, column)
    elif corrupt == "dimension":
        column = draw(st.sampled_from([c for c in NUMBERS[table] if c not in TIMES]))
        rows[row][header.index(column)] = draw(st.sampled_from(BAD_DIMENSIONS))
        case.expect = (line, column)
    elif corrupt == "choice":
        column = draw(st.sampled_from([c for c in BAD_CHOICES if c in header]))
        rows[row][header.index(column)] = draw(st.sampled_from(BAD_CHOICES[column]))
        case.expect = (line, column)
    elif corrupt == "device":
        text = draw(st.sampled_from(["NVIDIA H100", "", "tesla v100", "V100 V100"]))
        rows[row][header.index("device")] = text
        case.expect = (line, "device") if not text else None
    elif corrupt == "cells":  # a row with a cell too many or too few
        if draw(st.booleans()):
            rows[row].append(draw(st.sampled_from(["5", "x"])))
        else:  # a truncated row keeps at least half its cells, so it is no blank line
            del rows[row][draw(st.integers(len(rows[row]) // 2, len(rows[row]) - 1)):]
        case.expect = (line, "row")
    elif corrupt == "duplicate":
        rows.append(list(rows[row]))
        case.note = "measured again"
    elif corrupt == "column":
        column = draw(st.sampled_from(REQUIRED[table]))
        at = header.index(column)
        how = draw(st.sampled_from(["delete", "rename", "twice"]))
        if how == "delete":
            del header[at]
            for r in rows:
                del r[at]
        elif how == "rename":
            header[at] = draw(st.sampled_from([column.lower() + "_", column + " (ms)", "?"]))
        else:
            header.append(column)
            for r in rows:
                r.append(r[at])
        case.expect = (1, column)
    elif corrupt == "file":
        what = draw(st.sampled_from(["empty", "header only", "blank lines only", "binary",
                                     "latin-1", "truncated", "directory", "missing",
                                     "semicolons"]))
        if what == "empty":
            case.raw, case.expect = b"", ("file", "an empty file")
        elif what == "blank lines only":
            case.raw, case.expect = b"\n \n,,\n", ("file", "an empty file")
        elif what == "header only":
            case.rows, case.expect = [], ("file", "at least one measured row")
        elif what == "binary":
            case.raw = draw(st.binary(min_size=1, max_size=200).filter(
                lambda b: b"\0" in b or not _is_utf8(b)))
            case.expect = ("file", "expected")
        elif what == "latin-1":
            rows[row][header.index("precision") if "precision" in header else 0] = "fp32\xe9"
            case.raw = _render(case, draw).encode("latin-1")
            case.expect = (line, "UTF-8")
        elif what == "truncated":
            text = _render(case, draw)
            case.raw = text[:draw(st.integers(len(text) // 2, len(text) - 1))].encode()
            case.expect = None
        elif what == "semicolons":
            case.raw = "\n".join(";".join(r) for r in [header, *rows]).encode()
            case.expect = ("file", "comma-separated columns")
        else:
            case.kind, case.expect = what, ("file", "expected")
    return attrs.evolve(case, raw=case.raw) if case.raw is not None else _with_layout(case, draw)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _render(case: Case, draw: st.DrawFn | None = None) -> str:
    """The plain CSV text of the case (minimal quoting, LF line ends)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([case.header, *case.rows])
    return out.getvalue()


def _with_layout(case: Case, draw: st.DrawFn) -> Case:
    """Harmless layout: BOM, quoted fields, blank lines, CRLF; the expected line moves with
    the blank lines inserted before it."""
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    crlf = draw(st.booleans())
    lines = []
    for cells in [case.header, *case.rows]:
        out = io.StringIO()
        csv.writer(out, quoting=quoting, lineterminator="").writerow(cells)
        lines.append(out.getvalue())
    blanks = draw(st.lists(st.tuples(st.integers(0, len(lines)),
                                     st.sampled_from(["", "   ", ",,,", "\t"])), max_size=3))
    expect = case.expect
    for at, text in sorted(blanks, reverse=True):
        lines.insert(at, text)
        if isinstance(expect, tuple) and isinstance(expect[0], int) and at < expect[0]:
            expect = (expect[0] + 1, expect[1])
    text = ("\r\n" if crlf else "\n").join(lines) + ("\r\n" if crlf else "\n")
    bom = "\ufeff" if draw(st.booleans()) else ""
    return attrs.evolve(case, raw=(bom + text).encode("utf-8"), expect=expect)


def _write(case: Case, folder: Path) -> Path:
    path = folder / f"{case.table}.csv"
    if case.kind == "directory":
        path.mkdir()
    elif case.kind == "file":
        assert case.raw is not None
        path.write_bytes(case.raw)
    return path


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _check_outcome(case: Case, path: Path, code: int, out: str, err: str,
                   report: str) -> None:
    event(f"exit {code}")
    assert code in (0, 2), (code, out, err)
    assert "Traceback" not in out + err
    if code == 2:
        assert str(path) in err, err
        assert "expected" in err and "got" in err, err
        if isinstance(case.expect, tuple) and isinstance(case.expect[0], int):
            line, column = case.expect
            where = f"{path}:{line}"
            assert where in err and column in err.split(where, 1)[1].splitlines()[0], \
                f"expected a message at {where} about {column}, got:\n{err}"
        elif case.expect is not None:
            assert case.expect[1] in err, err
    else:
        assert case.expect is None, f"{case.expect} was accepted:\n{out}"
        assert report in out and "median" in out, out
        assert case.note in out, out


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=cases())
def test_validate_reports_any_broken_file_with_its_place(case: Case, tmp_path_factory):
    folder = tmp_path_factory.mktemp("validate")
    path = _write(case, folder)
    tables = ["--gemm-csv", str(path), "--rnn-csv", ""] if case.table == "gemm" else \
        ["--gemm-csv", "", "--rnn-csv", str(path)]
    code, out, err = _run(["validate", "--hardware", V100, *tables, "--analytic", "--quiet"])
    _check_outcome(case, path, code, out, err, "hardware v100")
    hw = load_hardware(V100)
    csvs = (path, None) if case.table == "gemm" else (None, path)
    try:
        run_validation(hw, *csvs, not_predicted=[])
    except Exception as exc:  # noqa: BLE001 - the point: only AccelsimError may escape
        assert isinstance(exc, AccelsimError), repr(exc)
        assert code == 2
    else:
        assert code == 0


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=cases(table="gemm", min_rows=10, max_rows=12))
def test_calibrate_reports_any_broken_file_with_its_place(case: Case, tmp_path_factory):
    folder = tmp_path_factory.mktemp("calibrate")
    path = _write(case, folder)
    out_spec = folder / "fitted.yaml"
    code, out, err = _run(["calibrate", V100, str(path), "--folds", "2", "--out",
                           str(out_spec)])
    if code == 2 and "at least 10 measured rows" in err:  # a row dropped (device, precision)
        assert case.expect is None and str(path) in err
        return
    _check_outcome(case, path, code, out, err, "calibrated v100")
    if code == 0:
        assert load_hardware(out_spec).name == "v100"
    try:
        calibrate.calibrate(load_hardware(V100), path, folds=2)
    except Exception as exc:  # noqa: BLE001 - only AccelsimError may escape
        assert isinstance(exc, AccelsimError), repr(exc)
        assert code == 2
    else:
        assert code == 0


# --- hand-picked cases: the rules the examples above rely on ------------------------------------
HEADER = "device,precision,app,M,N,K,transA,transB,time_ms\n"
ROW = "NVIDIA V100,fp32,x,1760,32,1760,N,N,0.041\n"


@pytest.mark.parametrize("text, message", [
    ("\ufeff" + HEADER + "Tesla P100,fp32,x,1760,32,1760,N,N,0.05\n" + ROW, None),  # BOM
    (HEADER + ROW.replace(",0.041", ",1,5"), ":2: row: expected 9 cells, one per header column, "
                                             "got 10 (an unquoted ',' inside a number?)"),
    (HEADER + ROW.replace(",0.041", ',"1,5"'), ":2: time_ms: expected a positive number"),
    (HEADER.replace("\n", ",M\n") + ROW.replace("\n", ",5\n"),
     ":1: M: expected the column once, got 2 columns named 'M'"),
    (HEADER + ROW + ROW, "lines 2, 3: fp32 1760x32x1760 NN measured again"),
    (HEADER + ROW + ",fp32,x,64,64,64,N,N,0.01\n", ":3: device: expected the device the row"),
    (HEADER + ROW + 'NVIDIA V100,fp32,"x,64,64,64,N,N,0.01\n', ":3: row: expected CSV text"),
    (HEADER + ROW.replace("1760,32", "1000000000000,32"),
     ":2: M: expected a positive integer up to 2147483647 (a 32-bit shape), got '1000000000000'"),
    (HEADER + ROW.replace("N,N", "t,N"), ":2: transA: expected one of ['N', 'T'], got 't'"),
])
def test_csv_rules(text: str, message: str | None, tmp_path: Path):
    path = tmp_path / "g.csv"
    path.write_text(text, encoding="utf-8")
    code, out, err = _run(["validate", "--gemm-csv", str(path), "--rnn-csv", "", "--analytic",
                           "--quiet"])
    if message is None:
        assert code == 0, err
        assert "gemm            fp32             1" in out  # the P100 row is not the spec's
    else:
        assert message in out + err
        assert code == (0 if "measured again" in message else 2)


# --- shapes too large to simulate: refused before any simulation --------------------------------
RNN_HEADER = ("device,precision,cell,app,hidden,batch,timesteps,fwd_ms,bwd_inputs_ms,"
              "bwd_weights_ms\n")


@pytest.mark.parametrize("name, text, message", [
    # 2e18 FLOPs take 36 h at the V100's fp32 peak: no measured time under an hour fits
    ("g.csv", HEADER + "NVIDIA V100,fp32,x,1000000,1000000,1000000,N,N,3000000\n",
     ":2: time_ms: expected a time in milliseconds the chip can reach"),
    # 9.6e12 FLOPs (0.6 s at peak) but a thin GEMM the tile simulation would trace in 3e8 granules
    ("g.csv", HEADER + "NVIDIA V100,fp32,x,300000,16,1000000,N,N,3000\n",
     ":2: M, N, K: expected a GEMM the cache simulation traces in at most 1e+08 granules"),
    ("r.csv", RNN_HEADER + "NVIDIA V100,fp32,lstm,x,1000000,16,50,3000000,,\n",
     ":2: hidden, batch, timesteps: expected a layer the cache simulation traces in at most"),
    ("r.csv", RNN_HEADER + "NVIDIA V100,fp32,lstm,x,512,16,1000000000,,,3000000\n",
     ":2: hidden, batch, timesteps: expected a layer the cache simulation traces in at most"),
])
def test_huge_shapes_are_refused_before_simulating(name: str, text: str, message: str,
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch):
    from accelsim import pipeline, validate

    def refuse(*_args, **_kwargs):
        raise AssertionError("simulated a row that had to be refused first")

    monkeypatch.setattr(validate, "_simulate_gemm_bytes", refuse)
    monkeypatch.setattr(pipeline, "trace_step", refuse)
    path = tmp_path / name
    path.write_text(text)
    tables = (["--gemm-csv", str(path), "--rnn-csv", ""] if name == "g.csv"
              else ["--gemm-csv", "", "--rnn-csv", str(path)])
    code, _, err = _run(["validate", *tables, "--quiet"])  # the cache simulation's path
    assert code == 2 and f"{path}{message}" in err, err


# --- output paths: checked before any row is read ------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["validate", "--json", "{tmp}"], "--json {tmp}: expected a file name, got a directory"),
    (["validate", "--markdown", "{tmp}/no/such/v.md"],
     "--markdown {tmp}/no/such/v.md: expected a path in an existing directory"),
    (["validate", "--gemm-csv", "{csv}", "--json", "{csv}"],
     "--json {csv}: expected a new output file, got the input file {csv}"),
    (["validate", "--json", "{tmp}/v.json", "--markdown", "{tmp}/v.json"],
     "--markdown {tmp}/v.json: expected a file other than --json's"),
    (["validate", "--plot", "{tmp}/v.txt"], "--plot {tmp}/v.txt: expected a file name ending in "
                                            ".png"),
    (["calibrate", V100, "{csv}", "--out", "{tmp}"], "--out {tmp}: expected a file name, got a "
                                                     "directory"),
    (["calibrate", V100, "{csv}", "--out", "{tmp}/no/such/f.yaml"],
     "--out {tmp}/no/such/f.yaml: expected a path in an existing directory"),
    (["calibrate", V100, "{csv}", "--out", V100],
     f"--out {V100}: expected a new output file, got the input file {V100}"),
])
def test_output_paths_are_checked_before_any_work(argv: list[str], message: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch):
    from accelsim import validate

    def refuse(*_args, **_kwargs):
        raise AssertionError("read measurements before checking the output paths")

    monkeypatch.setattr(validate, "read_csv_lines", refuse)
    csv_path = tmp_path / "g.csv"
    csv_path.write_text(HEADER + ROW)
    fill = {"tmp": str(tmp_path), "csv": str(csv_path)}
    code, _, err = _run([a.format(**fill) for a in argv])
    assert code == 2 and message.format(**fill) in err, err


def test_calibrate_lists_rows_without_a_pipe_and_repeated_cases(tmp_path: Path):
    header, rows = PACKAGED["gemm"]
    lines = [",".join(r) for r in rows[::16][:20]]  # 15 rows for the V100's 3 GEMM knobs
    tf32 = lines[0].replace(",fp32,", ",tf32,").replace(",fp16_mixed,", ",tf32,")
    path = tmp_path / "g.csv"
    path.write_text("\n".join([",".join(header), *lines, tf32, lines[1]]) + "\n")
    code, out, err = _run(["calibrate", V100, str(path), "--folds", "2", "--out",
                           str(tmp_path / "fitted.yaml")])
    assert code == 0, err
    assert f"gemm tf32: 1 row(s) ({path} lines 22): not predicted: v100 has no tf32" in out
    assert f"note: {path} lines 3, 23: " in out
    assert _run(["calibrate", V100, "", "--out", str(tmp_path / "f.yaml")])[2] == (
        "accelsim: error: '': <document>: expected a measurement file path, got an empty name\n")
