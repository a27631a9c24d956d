"""`accelsim calibrate`: recovers knobs from times the model itself produced, refuses thin data,
writes a spec that loads and that `validate` scores like the fit."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim import calibrate, refdata
from accelsim.errors import SpecError
from accelsim.hardware import Calibration, HardwareSpec, KernelMenu
from accelsim.spec import hardware_from_yaml, load_hardware
from accelsim.validate import (
    PRECISION_DTYPE,
    deepbench_gemm_op,
    hw_for_precision,
    rnn_times,
    time_op,
)

ROOT = Path(__file__).resolve().parents[1]
V100 = ROOT / "hwspecs/v100.yaml"
#: The shipped V100 spec without its fp16 pipe's own efficiency, for the chip-wide fits below
#: (a spec that states a pipe's efficiency is fitted per pipe: test_per_pipe_fit_...).
V100_TEXT = re.sub(r"(?m)^      efficiency: .*\n(?: +#.*\n)*", "", V100.read_text())
HEADER_GEMM = "device,precision,app,M,N,K,transA,transB,time_ms\n"
HEADER_RNN = ("device,precision,cell,app,hidden,batch,timesteps,fwd_ms,bwd_inputs_ms,"
              "bwd_weights_ms\n")
FP16_K_MAJOR = "kernel_library.menus.fp16.k_major_memory_efficiency"
FP32_K_MAJOR = "kernel_library.menus.fp32.k_major_memory_efficiency"
#: The fp16 menu's rate for K-contiguous operands whose row stride is not a multiple of 2 KiB.
FP16_UNALIGNED = "kernel_library.menus.fp16.k_major_unaligned_memory_efficiency"
#: The knobs the synthetic measurements are made with (on the fine grids of the search; the
#: V100 spec's fp32 kernels keep the default menu, K-major rate 1.0).
TRUE = {"compute_efficiency": 0.7, "launch_overhead_s": 8e-6, "bandwidth_efficiency": 0.7,
        FP16_K_MAJOR: 0.6, FP16_UNALIGNED: 0.5, "rnn_step_overhead_s": 30e-6,
        "rnn_call_overhead_s": 100e-6}


def _v100() -> HardwareSpec:
    return hardware_from_yaml(V100_TEXT, str(V100))


def _v100_file(tmp_path: Path) -> Path:
    path = tmp_path / "v100.yaml"
    path.write_text(V100_TEXT)
    return path


def _deepbench() -> list[dict[str, str]]:
    with refdata.data_path(refdata.DEEPBENCH_V100_GEMM).open(newline="") as fh:
        return list(csv.DictReader(fh))


def _gemm_rows(count: int) -> list[dict[str, str]]:
    """`count` DeepBench V100 rows spread over the table."""
    rows = _deepbench()
    return rows[::max(1, len(rows) // count)][:count]


def _thin_and_wide() -> list[dict[str, str]]:
    """59 rows: every third thin GEMM (M or N <= 32: memory-bound, half of them streaming a
    K-contiguous operand), every 40th row (mostly compute-bound), and 16 more fp16 GEMMs
    streaming a K-contiguous operand, with a row stride that is a multiple of 2 KiB (K = 2048,
    4096) or not (K = 2560), so that each K-major rate of the fp16 menu has rows that show it."""
    rows = _deepbench()
    sample = [r for r in rows if min(int(r["M"]), int(r["N"])) <= 32][::3] + rows[::40]
    return sample + [r for r in rows if r["precision"] == "fp16_mixed" and r not in sample
                     and r["K"] in ("2048", "2560", "4096") and min(int(r["M"]), int(r["N"])) <= 64
                     and (r["transA"] == "T" or r["M"] == "35")]


def _wide_nt() -> list[dict[str, str]]:
    """The 12 large N,T GEMMs: compute-bound, and neither operand K-contiguous."""
    return [r for r in _deepbench()
            if (r["transA"], r["transB"]) == ("N", "T") and int(r["N"]) > 1000]


def _synthetic_gemm(tmp_path: Path, rows: int | list[dict[str, str]],
                    knobs: dict | None = None) -> Path:
    """DeepBench V100 shapes, 'measured' as the model predicts them with the TRUE knobs."""
    hw = calibrate.with_knobs(_v100(), knobs or TRUE)
    path = tmp_path / "gemm.csv"
    rows = _gemm_rows(rows) if isinstance(rows, int) else rows
    predicted = [time_op(hw_for_precision(hw, r["precision"]),
                         deepbench_gemm_op(int(r["M"]), int(r["N"]), int(r["K"]),
                                           r["transA"] == "T", r["transB"] == "T"),
                         PRECISION_DTYPE[r["precision"]]).isolated_time_s for r in rows]
    path.write_text(HEADER_GEMM + "".join(
        f"V100,{r['precision']},x,{r['M']},{r['N']},{r['K']},{r['transA']},{r['transB']},"
        f"{t * 1e3!r}\n" for r, t in zip(rows, predicted, strict=True)))
    return path


def _synthetic_rnn(tmp_path: Path) -> Path:
    hw = calibrate.with_knobs(_v100(), TRUE)
    lines = []
    for cell, hidden, batch, steps in [("gru", 512, 32, 1), ("lstm", 256, 16, 10),
                                       ("vanilla", 1024, 32, 50), ("gru", 1024, 16, 25),
                                       ("lstm", 512, 64, 5), ("vanilla", 256, 8, 100)]:
        t = rnn_times(hw, cell, hidden, batch, steps, "fp32")
        ms = [f"{t[p][0] * 1e3!r}" for p in ("fwd", "bwd_inputs", "bwd_weights")]
        lines.append(f"V100,fp32,{cell},x,{hidden},{batch},{steps},{','.join(ms)}\n")
    path = tmp_path / "rnn.csv"
    path.write_text(HEADER_RNN + "".join(lines))
    return path


def test_recovers_the_knobs_that_made_the_times(tmp_path: Path):
    hw = _v100()
    fit = calibrate.calibrate(hw, _synthetic_gemm(tmp_path, _thin_and_wide()),
                              _synthetic_rnn(tmp_path), folds=3)
    # every fraction within the 0.01 step of the fine grid
    assert fit.knobs["compute_efficiency"] == pytest.approx(0.7, abs=0.0101)
    assert fit.knobs["bandwidth_efficiency"] == pytest.approx(0.7, abs=0.0101)
    assert fit.knobs[FP16_K_MAJOR] == pytest.approx(0.6, abs=0.0101)
    assert fit.knobs[FP16_UNALIGNED] == pytest.approx(0.5, abs=0.0101)
    assert fit.knobs[FP32_K_MAJOR] == pytest.approx(1.0, abs=0.0101)  # the default menu's
    assert fit.knobs["launch_overhead_s"] == pytest.approx(8e-6, abs=0.2e-6)
    assert fit.knobs["rnn_step_overhead_s"] == pytest.approx(30e-6, abs=0.3e-6)
    assert fit.knobs["rnn_call_overhead_s"] == pytest.approx(100e-6, abs=2e-6)
    assert fit.not_fitted == {}
    # knobs that trade against each other (bandwidth and the K-major rates) may each stop one
    # grid step off: 1.35 % at most here
    assert max(r.abs_pct_err for r in fit.rows) < 2.0
    # held-out folds fit on two thirds of the shapes, so their knobs may move a little
    assert max(r.abs_pct_err for r in fit.held_out) < 2.5
    assert len(fit.held_out) == len(fit.rows) == 59 + 18 and len(fit.fold_knobs) == 3


def test_every_fitted_value_is_within_its_bounds(tmp_path: Path):
    # times 3x slower than any efficiency allows: the fit stops at the bound, never beyond
    path = _synthetic_gemm(tmp_path, 10)
    rows = path.read_text().splitlines()
    slow = [",".join([*r.split(",")[:-1], repr(float(r.split(",")[-1]) * 3)]) for r in rows[1:]]
    path.write_text("\n".join([rows[0], *slow]) + "\n")
    fit = calibrate.calibrate(_v100(), path, folds=2)
    for name, value in fit.knobs.items():
        low, high = calibrate.bounds_of(name)
        assert low <= value <= high
    assert fit.knobs["compute_efficiency"] == calibrate.BOUNDS["compute_efficiency"][0]


def test_too_few_rows_for_the_knobs_is_a_clear_error(tmp_path: Path):
    with pytest.raises(SpecError) as err:
        calibrate.calibrate(_v100(), _synthetic_gemm(tmp_path, 4))
    message = str(err.value)
    assert "at least 10 measured rows" in message and "got 4 rows" in message
    # 14 thin GEMMs identify the bandwidth and the fp32 kernels' K-major rate: 4 knobs
    with pytest.raises(SpecError) as err:
        calibrate.calibrate(_v100(), _synthetic_gemm(tmp_path, _thin_and_wide()[:14]),
                            folds=2)
    message = str(err.value)
    assert "at least 20 measured rows" in message and "got 14 rows" in message
    assert f"bandwidth_efficiency, {FP32_K_MAJOR}, launch_overhead_s" in message


def test_knobs_the_rows_cannot_identify_are_not_fitted(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]):
    from accelsim.cli import main

    # large N,T GEMMs: compute-bound (the bandwidth does not show) and no K-contiguous operand
    gemm = _synthetic_gemm(tmp_path, _wide_nt())
    out = tmp_path / "fitted.yaml"
    assert main(["calibrate", str(_v100_file(tmp_path)), str(gemm), "--folds", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in ("calibration.bandwidth_efficiency", FP16_K_MAJOR, FP32_K_MAJOR):
        assert (f"not fitted, the rows cannot identify it: {name}: 0 of 12 rows respond to it"
                in printed)
    assert "kept at 0.900" in printed and "kept at 0.800" in printed
    fitted = load_hardware(out)
    v100 = _v100()
    assert fitted.calibration.compute_efficiency == pytest.approx(0.7, abs=0.01)
    assert fitted.calibration.bandwidth_efficiency == v100.calibration.bandwidth_efficiency
    assert fitted.kernel_library == v100.kernel_library
    assert out.read_text().count("# fitted: accelsim calibrate") == 2


def _printed_errors(printed: str) -> dict[tuple[str, str], list[float]]:
    """(table, precision) -> fitted median, p90, max as `calibrate` prints them."""
    out = {}
    for line in printed.splitlines():
        cells = line.split()
        if len(cells) == 9 and cells[0] in ("gemm", "rnn_fwd", "rnn_bwd_inputs",
                                           "rnn_bwd_weights"):
            out[(cells[0], cells[1])] = [float(x) for x in cells[3:6]]
    return out


def _scatter(path: Path, columns: int) -> None:
    """Measured times of `path` (its last `columns` columns) off the model by -15..+20 %, so
    that errors show."""
    lines = path.read_text().splitlines()
    out = [lines[0]]
    for i, line in enumerate(lines[1:]):
        cells = line.split(",")
        factor = (0.85, 1.0, 1.2, 0.95, 1.1)[i % 5]
        out.append(",".join(cells[:-columns]
                            + [repr(float(c) * factor) for c in cells[-columns:]]))
    path.write_text("\n".join(out) + "\n")


def test_cli_writes_a_spec_that_loads_and_validates_like_the_fit(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from accelsim.cli import main

    gemm, rnn = _synthetic_gemm(tmp_path, _thin_and_wide()), _synthetic_rnn(tmp_path)
    _scatter(gemm, 1)
    _scatter(rnn, 3)
    out = tmp_path / "fitted.yaml"
    assert main(["calibrate", str(_v100_file(tmp_path)), str(gemm), "--rnn-csv", str(rnn),
                 "--folds", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "held-out: median" in printed and "calibration.launch_overhead" in printed
    assert FP16_K_MAJOR in printed and FP32_K_MAJOR in printed
    text = out.read_text()
    assert text.count("# fitted: accelsim calibrate") == 8
    assert "59 rows of gemm.csv" in text and "18 rows of rnn.csv" in text
    # the fp16 menu's rate replaced with its old comment, the rest of the menu kept; an fp32
    # menu entry added (the default menu but for its rate)
    assert "K-contiguous operand (cuBLAS TN" not in text
    assert "    fp32:                        # added by accelsim calibrate" in text
    fitted, v100 = load_hardware(out), _v100()
    menus = fitted.kernel_library.menus
    assert attrs.evolve(menus["fp16"], k_major_memory_efficiency=0.8,
                        k_major_unaligned_memory_efficiency=0.58) == \
        v100.kernel_library.menus["fp16"]
    assert attrs.evolve(menus["fp32"], k_major_memory_efficiency=1.0) == KernelMenu()
    assert fitted.compute == v100.compute
    # validate on the written spec reproduces the errors the fit printed
    report = tmp_path / "validate.json"
    assert main(["validate", "--hardware", str(out), "--gemm-csv", str(gemm), "--rnn-csv",
                 str(rnn), "--analytic", "--quiet", "--json", str(report)]) == 0
    summary = json.loads(report.read_text())["summary"]
    got = {(t, p): [round(s[k], 1) for k in ("median_abs_pct_err", "p90_abs_pct_err",
                                              "max_abs_pct_err")]
           for t, per in summary.items() for p, s in per.items()}
    assert got == _printed_errors(printed) and len(got) == 5
    assert min(v[0] for v in got.values()) > 1.0  # errors that show
    # the output may not overwrite an input
    assert main(["calibrate", str(gemm), str(gemm), "--out", str(gemm)]) == 2
    assert "expected a new output file" in capsys.readouterr().err


def test_fitted_values_go_where_the_spec_says_them_or_into_added_blocks(tmp_path: Path):
    v100_text = V100.read_text()
    # a spec without `calibration:` and `kernel_library:` sections
    bare = re.sub(r"(?ms)^(calibration|kernel_library):.*?(?=^\S)", "", v100_text)
    assert "calibration:" not in bare and "kernel_library:" not in bare
    knobs = {"bandwidth_efficiency": 0.7, FP16_K_MAJOR: 0.6, FP32_K_MAJOR: 0.9,
             "launch_overhead_s": 7e-6}
    fit = calibrate.Fit(knobs=knobs, rows=[], held_out=[], folds=2, fold_knobs=[])
    hw = hardware_from_yaml(bare, "bare.yaml")
    text = calibrate.fitted_spec_text(bare, hw, fit, {})
    assert text.count("# fitted: accelsim calibrate") == 4 and text.count("kernel_library:") == 1
    fitted = hardware_from_yaml(text, "fitted.yaml")
    assert fitted == calibrate.with_knobs(hw, knobs)
    assert fitted.kernel_library.menus["fp32"] == KernelMenu(k_major_memory_efficiency=0.9)
    assert fitted.calibration.compute_efficiency == Calibration().compute_efficiency
    # a flow-style section: the whole spec is written from the loaded objects
    flow = v100_text.replace("calibration:\n", "calibration: {compute_efficiency: 0.5}\nold:\n")
    flow = re.sub(r"(?ms)^old:.*?(?=^kernel_library:)", "", flow)
    hw = hardware_from_yaml(flow, "flow.yaml")
    text = calibrate.fitted_spec_text(flow, hw, fit, {"bandwidth_efficiency": "note"})
    assert text.startswith("# bandwidth_efficiency: fitted: note\n")
    assert hardware_from_yaml(text, "fitted.yaml") == calibrate.with_knobs(hw, knobs)


_WRITABLE = ("compute_efficiency", "bandwidth_efficiency", "launch_overhead_s",
             "rnn_step_overhead_s", "rnn_call_overhead_s", "compute.matrix.fp16.efficiency",
             FP16_K_MAJOR, FP32_K_MAJOR, "kernel_library.menus.fp16_TN.k_major_memory_efficiency")


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.sampled_from(_WRITABLE), st.floats(0.0, 1.0), min_size=1),
       st.booleans())
def test_any_fitted_knobs_written_load_as_the_fit_sets_them(raw: dict[str, float], bare: bool):
    text = V100.read_text()
    if bare:
        text = re.sub(r"(?ms)^(calibration|kernel_library):.*?(?=^\S)", "", text)
    hw = hardware_from_yaml(text, "v100.yaml")
    knobs = {}
    for name, x in raw.items():
        low, high = calibrate.bounds_of(name)
        knobs[name] = calibrate.as_written(name, low + x * (high - low))
    fit = calibrate.Fit(knobs=knobs, rows=[], held_out=[], folds=2, fold_knobs=[])
    written = calibrate.fitted_spec_text(text, hw, fit, {})
    assert written.count("# fitted: accelsim calibrate") == len(knobs)
    assert hardware_from_yaml(written, "fitted.yaml") == calibrate.with_knobs(hw, knobs)


def test_per_pipe_fit_recovers_each_pipes_efficiency(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]):
    from accelsim.cli import main

    # the bandwidth and K-major rates at the spec's values (24 rows: enough for the pipes,
    # the launch overhead and the bandwidth, which some of them show)
    true = {"launch_overhead_s": 8e-6, "compute.matrix.fp32.efficiency": 0.8,
            "compute.matrix.fp16.efficiency": 0.6}
    gemm = _synthetic_gemm(tmp_path, 24, true)
    assert {"fp32", "fp16_mixed"} <= {line.split(",")[1] for line in gemm.read_text().split()[1:]}
    out = tmp_path / "fitted.yaml"
    assert main(["calibrate", str(_v100_file(tmp_path)), str(gemm), "--per-pipe",
                 "--folds", "2", "--out", str(out)]) == 0
    assert "compute.matrix.fp16.efficiency" in capsys.readouterr().out
    fitted = load_hardware(out)
    assert fitted.compute.matrix["fp32"].efficiency == pytest.approx(0.8)
    assert fitted.compute.matrix["fp16"].efficiency == pytest.approx(0.6)
    assert fitted.calibration.launch_overhead_s == pytest.approx(8e-6, abs=0.2e-6)
    text = out.read_text()
    assert fitted.calibration.bandwidth_efficiency == pytest.approx(0.9, abs=0.0101)
    assert text.count("      efficiency: ") == 2
    assert text.count("# fitted: accelsim calibrate") == 4  # two pipes, launch, bandwidth
    # a spec whose pipes state their own efficiency is fitted per pipe without being asked
    # (a chip-wide value would not reach them)
    again = tmp_path / "again.yaml"
    assert main(["calibrate", str(out), str(gemm), "--folds", "2", "--out", str(again)]) == 0
    assert "compute.matrix.fp16.efficiency" in capsys.readouterr().out
    assert load_hardware(again).compute.matrix["fp16"].efficiency == pytest.approx(0.6)


# --- the calibration defaults: a GPU software stack's, not an ideal machine's -------------
def test_a_spec_without_calibration_gets_the_v100_stack_defaults():
    hw = load_hardware(ROOT / "tests/data/good/tiny_hw.yaml")
    assert "calibration" not in (ROOT / "tests/data/good/tiny_hw.yaml").read_text()
    cal = hw.calibration
    # hwspecs/v100.yaml: the DeepBench fit (0.88, 6.5 us, 20 us, 50 us) and the spec's fractions
    assert (cal.compute_efficiency, cal.vector_efficiency, cal.bandwidth_efficiency,
            cal.cache_bandwidth_efficiency, cal.link_efficiency) == (0.88, 0.9, 0.9, 0.9, 0.8)
    assert (cal.launch_overhead_s, cal.rnn_step_overhead_s, cal.rnn_call_overhead_s) == \
        pytest.approx((6.5e-6, 20e-6, 50e-6), rel=1e-12)
    assert attrs.asdict(cal) == pytest.approx(attrs.asdict(_v100().calibration),
                                              rel=1e-12)


def test_an_explicit_ideal_calibration_stays_ideal():
    text = (ROOT / "tests/data/good/tiny_hw.yaml").read_text() + (
        "calibration:\n  compute_efficiency: 1.0\n  bandwidth_efficiency: 1.0\n"
        "  launch_overhead: 0 us\n  rnn_step_overhead: 0 us\n")
    cal = hardware_from_yaml(text, "ideal.yaml").calibration
    assert (cal.compute_efficiency, cal.bandwidth_efficiency) == (1.0, 1.0)
    assert (cal.launch_overhead_s, cal.rnn_step_overhead_s) == (0.0, 0.0)
    assert cal.vector_efficiency == 0.9 and cal.rnn_call_overhead_s == pytest.approx(50e-6)
    assert set(attrs.asdict(Calibration.ideal()).values()) == {1.0, 0.0}
    assert Calibration.ideal(launch_overhead_s=1e-6).launch_overhead_s == 1e-6


def test_a_stated_time_resolution_reaches_the_fit(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]):
    # The synthetic times are exact (full-precision reprs): found resolution 0, unless the
    # caller states one, as `--resolution-us` does; a bad one is a located error, exit 2.
    path = _synthetic_gemm(tmp_path, 10)
    assert {r.resolution_s for r in calibrate.calibrate(_v100(), path, folds=2).rows} == {0.0}
    fit = calibrate.calibrate(_v100(), path, folds=2, resolution_s=1e-6)
    assert {r.resolution_s for r in fit.rows} == {1e-6}
    from accelsim.cli import main

    assert main(["calibrate", str(ROOT / "hwspecs/v100.yaml"), str(path), "--resolution-us",
                 "nan", "--out", str(tmp_path / "f.yaml")]) == 2
    assert "--resolution-us" in capsys.readouterr().err
