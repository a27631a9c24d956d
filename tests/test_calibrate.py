"""`accelsim calibrate`: recovers knobs from times the model itself produced, refuses thin data,
writes a spec that loads and that `validate` scores like the fit."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from accelsim import calibrate, refdata
from accelsim.errors import SpecError
from accelsim.spec import load_hardware
from accelsim.validate import (
    PRECISION_DTYPE,
    deepbench_gemm_op,
    hw_for_precision,
    rnn_times,
    time_op,
)

ROOT = Path(__file__).resolve().parents[1]
HEADER_GEMM = "device,precision,app,M,N,K,transA,transB,time_ms\n"
HEADER_RNN = ("device,precision,cell,app,hidden,batch,timesteps,fwd_ms,bwd_inputs_ms,"
              "bwd_weights_ms\n")
#: The knobs the synthetic measurements are made with (on the fine grids of the search).
TRUE = {"compute_efficiency": 0.7, "launch_overhead_s": 8e-6,
        "rnn_step_overhead_s": 30e-6, "rnn_call_overhead_s": 100e-6}


def _gemm_rows(count: int) -> list[dict[str, str]]:
    with refdata.data_path(refdata.DEEPBENCH_V100_GEMM).open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return rows[::max(1, len(rows) // count)][:count]


def _synthetic_gemm(tmp_path: Path, count: int, knobs: dict | None = None) -> Path:
    """DeepBench V100 shapes, 'measured' as the model predicts them with the TRUE knobs."""
    hw = calibrate.with_knobs(load_hardware(ROOT / "hwspecs/v100.yaml"), knobs or TRUE)
    path = tmp_path / "gemm.csv"
    rows = _gemm_rows(count)
    predicted = [time_op(hw_for_precision(hw, r["precision"]),
                         deepbench_gemm_op(int(r["M"]), int(r["N"]), int(r["K"]),
                                           r["transA"] == "T", r["transB"] == "T"),
                         PRECISION_DTYPE[r["precision"]]).isolated_time_s for r in rows]
    path.write_text(HEADER_GEMM + "".join(
        f"V100,{r['precision']},x,{r['M']},{r['N']},{r['K']},{r['transA']},{r['transB']},"
        f"{t * 1e3!r}\n" for r, t in zip(rows, predicted, strict=True)))
    return path


def _synthetic_rnn(tmp_path: Path) -> Path:
    hw = calibrate.with_knobs(load_hardware(ROOT / "hwspecs/v100.yaml"), TRUE)
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
    hw = load_hardware(ROOT / "hwspecs/v100.yaml")
    fit = calibrate.calibrate(hw, _synthetic_gemm(tmp_path, 12), _synthetic_rnn(tmp_path),
                              folds=3)
    assert fit.knobs["compute_efficiency"] == pytest.approx(0.7)
    assert fit.knobs["launch_overhead_s"] == pytest.approx(8e-6, abs=0.2e-6)
    assert fit.knobs["rnn_step_overhead_s"] == pytest.approx(30e-6, abs=0.3e-6)
    assert fit.knobs["rnn_call_overhead_s"] == pytest.approx(100e-6, abs=2e-6)
    assert max(r.abs_pct_err for r in fit.rows) < 1.0
    # held-out folds fit on two thirds of the shapes, so their knobs move a little (1.06 % at
    # worst since the RNN rows run through the pipeline's graphs)
    assert max(r.abs_pct_err for r in fit.held_out) < 1.5
    assert len(fit.held_out) == len(fit.rows) == 12 + 18 and len(fit.fold_knobs) == 3


def test_every_fitted_value_is_within_its_bounds(tmp_path: Path):
    # times 3x slower than any efficiency allows: the fit stops at the bound, never beyond
    path = _synthetic_gemm(tmp_path, 10)
    rows = path.read_text().splitlines()
    slow = [",".join([*r.split(",")[:-1], repr(float(r.split(",")[-1]) * 3)]) for r in rows[1:]]
    path.write_text("\n".join([rows[0], *slow]) + "\n")
    fit = calibrate.calibrate(load_hardware(ROOT / "hwspecs/v100.yaml"), path, folds=2)
    for name, value in fit.knobs.items():
        low, high = calibrate.BOUNDS[name]
        assert low <= value <= high


def test_too_few_rows_for_the_knobs_is_a_clear_error(tmp_path: Path):
    with pytest.raises(SpecError) as err:
        calibrate.calibrate(load_hardware(ROOT / "hwspecs/v100.yaml"),
                            _synthetic_gemm(tmp_path, 4))
    message = str(err.value)
    assert "at least 10 measured rows" in message and "got 4 rows" in message


def test_cli_writes_a_spec_that_loads_and_validates_like_the_fit(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from accelsim.cli import main

    gemm, rnn = _synthetic_gemm(tmp_path, 10), _synthetic_rnn(tmp_path)
    out = tmp_path / "fitted.yaml"
    assert main(["calibrate", str(ROOT / "hwspecs/v100.yaml"), str(gemm), "--rnn-csv", str(rnn),
                 "--folds", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "held-out: median" in printed and "calibration.launch_overhead" in printed
    text = out.read_text()
    assert text.count("# fitted: accelsim calibrate") == 4
    assert "10 rows of gemm.csv" in text and "18 rows of rnn.csv" in text
    fitted = load_hardware(out)
    assert fitted.calibration.compute_efficiency == pytest.approx(0.7)
    assert fitted.compute == load_hardware(ROOT / "hwspecs/v100.yaml").compute
    assert main(["validate", "--hardware", str(out), "--gemm-csv", str(gemm), "--rnn-csv",
                 str(rnn), "--analytic", "--quiet"]) == 0
    assert "gemm            fp32" in capsys.readouterr().out
    # the output may not overwrite an input
    assert main(["calibrate", str(gemm), str(gemm), "--out", str(gemm)]) == 2
    assert "expected a new output file" in capsys.readouterr().err


def test_per_pipe_fit_recovers_each_pipes_efficiency(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]):
    from accelsim.cli import main

    true = {**TRUE, "compute.matrix.fp32.efficiency": 0.8,
            "compute.matrix.fp16.efficiency": 0.6}
    gemm = _synthetic_gemm(tmp_path, 16, true)
    assert {"fp32", "fp16_mixed"} <= {line.split(",")[1] for line in gemm.read_text().split()[1:]}
    out = tmp_path / "fitted.yaml"
    assert main(["calibrate", str(ROOT / "hwspecs/v100.yaml"), str(gemm), "--per-pipe",
                 "--folds", "2", "--out", str(out)]) == 0
    assert "compute.matrix.fp16.efficiency" in capsys.readouterr().out
    fitted = load_hardware(out)
    assert fitted.compute.matrix["fp32"].efficiency == pytest.approx(0.8)
    assert fitted.compute.matrix["fp16"].efficiency == pytest.approx(0.6)
    assert fitted.calibration.launch_overhead_s == pytest.approx(8e-6, abs=0.2e-6)
    text = out.read_text()
    assert text.count("      efficiency: ") == 2
    assert text.count("# fitted: accelsim calibrate") == 3
    # a chip-wide fit would leave those pipes' own values in force: refused
    assert main(["calibrate", str(out), str(gemm), "--folds", "2",
                 "--out", str(tmp_path / "again.yaml")]) == 2
    assert "--per-pipe" in capsys.readouterr().err
