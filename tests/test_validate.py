"""`accelsim validate`: the V100 accuracy targets, CSV errors, JSON and plot outputs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from accelsim import refdata
from accelsim.errors import SpecError
from accelsim.spec import load_hardware
from accelsim.validate import (
    add_arguments,
    run,
    run_validation,
    summarize,
    validate_gemm,
    validate_rnn,
)

ROOT = Path(__file__).resolve().parent.parent
GEMM_CSV = refdata.data_path(refdata.DEEPBENCH_V100_GEMM)
RNN_CSV = refdata.data_path(refdata.DEEPBENCH_V100_RNN)
HEADER_GEMM = "device,precision,app,M,N,K,transA,transB,time_ms\n"
HEADER_RNN = ("device,precision,cell,app,hidden,batch,timesteps,fwd_ms,bwd_inputs_ms,"
              "bwd_weights_ms\n")
#: Accuracy goals of the V100 validation (issue 10): median and p90 absolute % error.
TARGET_GEMM_MEDIAN_PCT = 5.0
TARGET_P90_PCT = 20.0
TARGET_RNN_MEDIAN_PCT = 15.0
#: Where the goals stand: `accelsim validate --analytic` on hwspecs/v100.yaml and the packaged
#: DeepBench V100 tables (docs/validation.md), 2026-12-02, after DeepBench's beta = 1 and
#: whole-microsecond readings were modelled, epilogues exposed per wave and the refit (before:
#: 5.2 / 19.6 / 14.7 with the aligned-stride rule; 5.9 / 32.6 / 13.4 before that). Every goal
#: is met. The tests hold these values within 1.5 points either way, so any change to them is
#: noticed and the measured values here updated on purpose.
MEASURED_GEMM_FP16_MEDIAN_PCT = 4.4
MEASURED_GEMM_FP16_P90_PCT = 18.5
MEASURED_RNN_FWD_FP16_MEDIAN_PCT = 14.3
REGRESSION_MARGIN_PCT = 1.5


@pytest.fixture(scope="module")
def v100_summary() -> dict:
    hw = load_hardware(ROOT / "hwspecs/v100.yaml")
    return summarize(run_validation(hw, GEMM_CSV, RNN_CSV))


def test_gemm_fp32_median_target(v100_summary: dict):
    assert v100_summary["gemm"]["fp32"]["median_abs_pct_err"] <= TARGET_GEMM_MEDIAN_PCT


def test_gemm_fp16_median_target(v100_summary: dict):
    # Met since the epilogue (with DeepBench's C read) follows every wave's K loop and rows are
    # compared with the middle of their truncated microsecond (docs/validation.md); it was
    # 5.2 % before, with the big fp16 GEMMs spread by K around one efficiency.
    median = v100_summary["gemm"]["fp16_mixed"]["median_abs_pct_err"]
    assert median <= TARGET_GEMM_MEDIAN_PCT
    assert median == pytest.approx(MEASURED_GEMM_FP16_MEDIAN_PCT, abs=REGRESSION_MARGIN_PCT)


@pytest.mark.parametrize("precision", ["fp32", "fp16_mixed"])
def test_gemm_p90_target(v100_summary: dict, precision: str):
    assert v100_summary["gemm"][precision]["p90_abs_pct_err"] <= TARGET_P90_PCT


def test_gemm_fp16_p90_measured(v100_summary: dict):
    # Met since the fp16 menu slows K-contiguous operands whose row stride is not a multiple
    # of 2 KiB (K = 1536, 1760, 2560, 2816, 500000) more than aligned ones (docs/validation.md).
    assert v100_summary["gemm"]["fp16_mixed"]["p90_abs_pct_err"] == pytest.approx(
        MEASURED_GEMM_FP16_P90_PCT, abs=REGRESSION_MARGIN_PCT)


@pytest.mark.parametrize("precision", ["fp32", "fp16_mixed"])
def test_rnn_backward_weights_median_target(v100_summary: dict, precision: str):
    assert v100_summary["rnn_bwd_weights"][precision]["median_abs_pct_err"] <= TARGET_RNN_MEDIAN_PCT


@pytest.mark.parametrize("precision", ["fp32", "fp16_mixed"])
def test_rnn_backward_data_median_target(v100_summary: dict, precision: str):
    assert v100_summary["rnn_bwd_inputs"][precision]["median_abs_pct_err"] <= TARGET_RNN_MEDIAN_PCT


def test_rnn_fp32_forward_median_target(v100_summary: dict):
    assert v100_summary["rnn_fwd"]["fp32"]["median_abs_pct_err"] <= TARGET_RNN_MEDIAN_PCT


def test_rnn_fp16_forward_median_target(v100_summary: dict):
    # Met since the fp16 kernels stream the K-contiguous recurrent weights of the forward step
    # at the spec's k-major efficiencies (MEASURED_RNN_FWD_FP16_MEDIAN_PCT).
    median = v100_summary["rnn_fwd"]["fp16_mixed"]["median_abs_pct_err"]
    assert median <= TARGET_RNN_MEDIAN_PCT
    assert median == pytest.approx(MEASURED_RNN_FWD_FP16_MEDIAN_PCT, abs=REGRESSION_MARGIN_PCT)


def test_missing_column_names_file_and_column(tmp_path: Path):
    bad = tmp_path / "g.csv"
    bad.write_text("device,precision,M,N,K,transA,transB\nV100,fp32,1,2,3,N,N\n")
    hw = load_hardware(ROOT / "hwspecs/v100.yaml")
    with pytest.raises(SpecError) as err:
        validate_gemm(hw, bad)
    assert "time_ms" in str(err.value) and str(bad) in str(err.value)


def test_non_number_names_line_and_column(tmp_path: Path):
    bad = tmp_path / "g.csv"
    bad.write_text(HEADER_GEMM + "V100,fp32,x,64,64,64,N,N,0.01\nV100,fp32,x,64,abc,64,N,N,1\n")
    hw = load_hardware(ROOT / "hwspecs/v100.yaml")
    with pytest.raises(SpecError) as err:
        validate_gemm(hw, bad)
    issue = err.value.issues[0]
    assert (issue.line, issue.key_path) == (3, "N")
    assert "abc" in str(err.value)


def test_bad_precision_and_transpose_flag(tmp_path: Path):
    hw = load_hardware(ROOT / "hwspecs/v100.yaml")
    for row, column in (("V100,int3,x,64,64,64,N,N,1", "precision"),
                        ("V100,fp32,x,64,64,64,X,N,1", "transA")):
        bad = tmp_path / "g.csv"
        bad.write_text(HEADER_GEMM + row + "\n")
        with pytest.raises(SpecError) as err:
            validate_gemm(hw, bad)
        assert err.value.issues[0].key_path == column


def test_rnn_empty_cells_are_skipped(tmp_path: Path):
    csv = tmp_path / "r.csv"
    csv.write_text(HEADER_RNN + "V100,fp32,lstm,x,256,16,10,0.5,,\n")
    rows = validate_rnn(load_hardware(ROOT / "hwspecs/v100.yaml"), csv)
    assert [r.table for r in rows] == ["rnn_fwd"]
    assert rows[0].predicted_s > 0


def test_rnn_steps_add_up_along_the_dependency_chain():
    from accelsim.validate import rnn_times

    hw = load_hardware(ROOT / "hwspecs/v100.yaml")
    t = {steps: rnn_times(hw, "gru", 1024, 32, steps, "fp32") for steps in (100, 200, 300)}
    for phase in ("fwd", "bwd_inputs"):
        d1 = t[200][phase][0] - t[100][phase][0]
        d2 = t[300][phase][0] - t[200][phase][0]
        assert d1 == pytest.approx(d2) and d1 > 0
        # 100 dependent steps cannot beat 100 recurrent GEMMs' worth of FLOPs at peak
        assert d1 >= 100 * 2 * 3 * 1024 * 32 * 1024 / hw.compute.peak_flop_rate("fp32")


def test_cli_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    gemm = tmp_path / "g.csv"
    gemm.write_text(HEADER_GEMM + "V100,fp32,x,1024,1024,1024,N,N,0.2\n"
                    "V100,fp16_mixed,x,2048,16,2048,T,N,0.02\n")
    rnn = tmp_path / "r.csv"
    rnn.write_text(HEADER_RNN + "V100,fp32,gru,x,512,32,4,0.2,0.2,0.1\n")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out_json, out_png = tmp_path / "v.json", tmp_path / "v.png"
    args = parser.parse_args(["--hardware", str(ROOT / "hwspecs/v100.yaml"), "--gemm-csv",
                              str(gemm), "--rnn-csv", str(rnn), "--json", str(out_json),
                              "--plot", str(out_png), "--analytic"])
    assert run(args) == 0
    text = capsys.readouterr().out
    assert "median %" in text and "1024x1024x1024" in text
    data = json.loads(out_json.read_text())
    assert len(data["rows"]) == 5
    s = data["summary"]["gemm"]["fp32"]
    assert set(s) >= {"median_abs_pct_err", "p90_abs_pct_err", "max_abs_pct_err"}
    assert out_png.stat().st_size > 1000


def test_simulated_recurrent_weights_stay_resident_only_when_they_fit():
    from accelsim.timing import map_op
    from accelsim.validate import gemm_op, simulated_gemm_traffic
    from accelsim.vocabulary import MEMORY as HBM

    hw = load_hardware(ROOT / "hwspecs/v100.yaml")  # 6 MiB L2
    for hidden, fits in ((512, True), (2048, False)):  # LSTM weights: 4 MiB / 64 MiB fp32
        op = gemm_op(4 * hidden, 16, hidden)
        mp = map_op(hw, op, "fp32")
        cold = simulated_gemm_traffic(hw, op, mp, "fp32").level_bytes[HBM]
        warm = simulated_gemm_traffic(hw, op, mp, "fp32", warm=True).level_bytes[HBM]
        weights = 4 * hidden * hidden * 4
        assert cold >= weights
        assert (warm < 0.2 * weights) == fits


def test_rnn_targets_hold_on_held_out_rows(tmp_path: Path):
    # calibration.rnn_call_overhead_s and rnn_step_overhead_s (hwspecs/v100.yaml) were fitted
    # on the even-numbered data rows
    # of the RNN table; the odd-numbered rows were not used and must meet the same targets.
    lines = RNN_CSV.read_text().splitlines()
    held_out = tmp_path / "odd.csv"
    held_out.write_text("\n".join([lines[0], *lines[2::2]]) + "\n")  # data rows 1, 3, 5, ...
    s = summarize(validate_rnn(load_hardware(ROOT / "hwspecs/v100.yaml"), held_out))
    assert s["rnn_fwd"]["fp32"]["median_abs_pct_err"] <= TARGET_RNN_MEDIAN_PCT
    for precision in ("fp32", "fp16_mixed"):
        assert s["rnn_bwd_inputs"][precision]["median_abs_pct_err"] <= TARGET_RNN_MEDIAN_PCT
        assert s["rnn_bwd_weights"][precision]["median_abs_pct_err"] <= TARGET_RNN_MEDIAN_PCT
    # k_major_memory_efficiency was fitted on all rows of both tables: not held out
    assert s["rnn_fwd"]["fp16_mixed"]["median_abs_pct_err"] <= TARGET_RNN_MEDIAN_PCT


def test_rnn_step_overhead_is_paid_once_per_timestep():
    from accelsim import validate

    hw = load_hardware(ROOT / "hwspecs/v100.yaml")
    base = validate.rnn_times(hw, "lstm", 512, 16, 10, "fp32")
    more = validate.rnn_times(hw, "lstm", 512, 16, 20, "fp32")
    for phase in ("fwd", "bwd_inputs"):
        assert more[phase][0] - base[phase][0] >= 10 * hw.calibration.rnn_step_overhead_s
    assert more["bwd_weights"][0] > base["bwd_weights"][0]


# --- any device: row selection, plausibility, precisions without a pipe ------------------------
def _gemm_file(tmp_path: Path, rows: list[str], name: str = "g.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER_GEMM + "".join(r + "\n" for r in rows))
    return path


MIXED = ["NVIDIA V100,fp32,x,1024,1024,1024,N,N,0.2",
         "Tesla P100,fp32,x,1024,1024,1024,N,N,0.35",
         "NVIDIA V100,fp32,x,2048,2048,2048,N,N,1.3"]


def test_rows_are_those_of_the_specs_device_or_of_device(tmp_path: Path):
    from accelsim.validate import device_matches

    assert device_matches("v100", "NVIDIA V100") and device_matches("p100", "Tesla P100-SXM2")
    assert not device_matches("v100", "Tesla P100") and not device_matches("a100", "A1000")
    path = _gemm_file(tmp_path, MIXED)
    v100 = load_hardware(ROOT / "hwspecs/v100.yaml")
    assert [r.line for r in validate_gemm(v100, path)] == [2, 4]
    p100 = load_hardware(ROOT / "hwspecs/p100.yaml")
    assert [r.line for r in validate_gemm(p100, path)] == [3]
    assert [r.line for r in validate_gemm(v100, path, device="tesla p100")] == [3]


def test_mixed_devices_without_a_match_is_an_error_listing_them(tmp_path: Path):
    path = _gemm_file(tmp_path, MIXED)
    target = load_hardware(ROOT / "hwspecs/ppopp19_target.yaml")
    with pytest.raises(SpecError) as err:
        validate_gemm(target, path)
    assert "'NVIDIA V100', 'Tesla P100'" in str(err.value) and "--device" in str(err.value)
    with pytest.raises(SpecError, match="rows of device 'H100'"):
        validate_gemm(target, path, device="H100")


@pytest.mark.parametrize("cell,expected", [
    ("0", "a positive number"), ("-1", "a positive number"), ("inf", "a positive number"),
    ("nan", "a positive number"), ("", "a positive number"),
    ("3600001", "under one hour")])
def test_implausible_times_are_located_errors(tmp_path: Path, cell: str, expected: str):
    path = _gemm_file(tmp_path, ["V100,fp32,x,64,64,64,N,N,0.01",
                                 f"V100,fp32,x,64,64,64,N,N,{cell}"])
    with pytest.raises(SpecError) as err:
        validate_gemm(load_hardware(ROOT / "hwspecs/v100.yaml"), path)
    issue = err.value.issues[0]
    assert (issue.file, issue.line, issue.key_path) == (str(path), 3, "time_ms")
    assert expected in issue.expected


def test_a_time_faster_than_the_peak_is_not_milliseconds(tmp_path: Path):
    # 4096^3 fp32 takes >= 8.8 ms at the V100's 15.7 TFLOP/s: 0.0088 is seconds
    path = _gemm_file(tmp_path, ["V100,fp32,x,4096,4096,4096,N,N,0.0088"])
    with pytest.raises(SpecError) as err:
        validate_gemm(load_hardware(ROOT / "hwspecs/v100.yaml"), path)
    issue = err.value.issues[0]
    assert (issue.line, issue.key_path) == (2, "time_ms") and "peak" in issue.expected


def test_a_column_in_microseconds_is_refused(tmp_path: Path):
    rows = ["V100,fp32,x,1024,1024,1024,N,N,200", "V100,fp32,x,512,512,512,N,N,40",
            "V100,fp16_mixed,x,2048,2048,2048,N,N,250"]
    with pytest.raises(SpecError) as err:
        validate_gemm(load_hardware(ROOT / "hwspecs/v100.yaml"), _gemm_file(tmp_path, rows))
    assert "median ratio" in str(err.value) and "microseconds" in str(err.value)


def test_empty_files_and_rows_are_errors(tmp_path: Path):
    hw = load_hardware(ROOT / "hwspecs/v100.yaml")
    with pytest.raises(SpecError, match="at least one measured row"):
        validate_gemm(hw, _gemm_file(tmp_path, []))
    rnn = tmp_path / "r.csv"
    rnn.write_text(HEADER_RNN + "V100,fp32,lstm,x,256,16,10,0.5,,\nV100,fp32,gru,x,256,16,10,,,\n")
    with pytest.raises(SpecError) as err:
        validate_rnn(hw, rnn)
    assert err.value.issues[0].line == 3 and "at least one of" in str(err.value)


def test_a_precision_without_a_pipe_is_reported_not_remapped(tmp_path: Path):
    import attrs

    from accelsim.validate import NotPredicted

    v100 = load_hardware(ROOT / "hwspecs/v100.yaml")
    no_fp16 = attrs.evolve(v100, compute=attrs.evolve(
        v100.compute, matrix={"fp32": v100.compute.matrix["fp32"]}))
    path = _gemm_file(tmp_path, ["V100,fp32,x,1024,1024,1024,N,N,0.2",
                                 "V100,fp16_mixed,x,2048,16,2048,T,N,0.02"])
    with pytest.raises(SpecError, match="no fp16 matrix pipe"):
        validate_gemm(no_fp16, path)
    skipped: list[NotPredicted] = []
    rows = validate_gemm(no_fp16, path, not_predicted=skipped)
    assert [r.precision for r in rows] == ["fp32"]
    assert [(x.line, x.precision) for x in skipped] == [(3, "fp16_mixed")]
    assert "pipes: fp32" in skipped[0].reason


def test_cli_reports_rows_without_a_pipe_and_takes_device(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]):
    from accelsim.cli import main

    spec = tmp_path / "no_fp16.yaml"
    text = (ROOT / "hwspecs/v100.yaml").read_text()
    start = text.index("    fp16:\n")
    end = text.index("  vector_flop_rate")
    spec.write_text(text[:start] + text[end:])
    gemm = _gemm_file(tmp_path, MIXED + ["NVIDIA V100,fp16_mixed,x,2048,16,2048,T,N,0.02"])
    code = main(["validate", "--hardware", str(spec), "--gemm-csv", str(gemm), "--rnn-csv", "",
                 "--analytic", "--quiet", "--device", "nvidia v100",
                 "--json", str(tmp_path / "v.json")])
    out = capsys.readouterr().out
    assert code == 0
    assert "1 measured row(s) not predicted" in out and "no fp16 matrix pipe" in out
    data = json.loads((tmp_path / "v.json").read_text())
    assert data["summary"]["gemm"]["fp32"]["rows"] == 2
    assert [x["line"] for x in data["not_predicted"]] == [5]
    assert main(["validate", "--hardware", str(ROOT / "hwspecs/ppopp19_target.yaml"),
                 "--gemm-csv", str(gemm), "--rnn-csv", "", "--analytic"]) == 2
    assert "NVIDIA V100" in capsys.readouterr().err


def test_defaults_work_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]):
    from accelsim.cli import build_parser, main

    monkeypatch.chdir(tmp_path)
    assert main(["validate", "--analytic", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "hardware v100" in out and "rnn_fwd" in out and "gemm" in out
    help_text = build_parser()._subparsers._group_actions[0].choices["validate"].format_help()
    assert "any device" in build_parser().format_help() and "--device" in help_text


# --- calibration knobs live in the spec ----------------------------------------------------
def test_rnn_overheads_come_from_the_spec():
    import attrs

    from accelsim import validate

    hw = load_hardware(ROOT / "hwspecs/v100.yaml")
    assert (hw.calibration.rnn_step_overhead_s, hw.calibration.rnn_call_overhead_s) == (
        pytest.approx(20e-6), pytest.approx(50e-6))
    bare = attrs.evolve(hw, calibration=attrs.evolve(hw.calibration, rnn_step_overhead_s=0.0,
                                                     rnn_call_overhead_s=0.0))
    with_o = validate.rnn_times(hw, "gru", 512, 32, 10, "fp32")
    without = validate.rnn_times(bare, "gru", 512, 32, 10, "fp32")
    for phase in ("fwd", "bwd_inputs"):
        assert with_o[phase][0] - without[phase][0] == pytest.approx(50e-6 + 10 * 20e-6)
    assert with_o["bwd_weights"][0] - without["bwd_weights"][0] == pytest.approx(50e-6)
    assert not [n for n in dir(validate) if n.endswith("_OVERHEAD_S")]  # no fitted constant left


def test_sustained_clock_scales_compute_bound_kernels(tmp_path: Path):
    from accelsim.validate import gemm_op, time_op

    text = (ROOT / "hwspecs/v100.yaml").read_text()
    derated = tmp_path / "v100_70w.yaml"
    derated.write_text(text.replace("  clock: 1.53 GHz", "  clock: 1.53 GHz\n"
                                    "  sustained_clock: 0.765 GHz", 1))
    boost, slow = load_hardware(ROOT / "hwspecs/v100.yaml"), load_hardware(derated)
    assert slow.compute.run_clock_hz == pytest.approx(0.765e9)
    for dtype in ("fp32", "fp16"):
        assert slow.compute.peak_flop_rate(dtype) == pytest.approx(
            boost.compute.peak_flop_rate(dtype) / 2)
    op = gemm_op(8192, 8192, 8192)
    t_boost, t_slow = time_op(boost, op, "fp32"), time_op(slow, op, "fp32")
    assert t_boost.bound == t_slow.bound == "compute"
    assert t_slow.isolated_time_s == pytest.approx(2 * t_boost.isolated_time_s, rel=0.02)
    above = tmp_path / "above.yaml"
    above.write_text(text.replace("  clock: 1.53 GHz", "  clock: 1.53 GHz\n"
                                  "  sustained_clock: 2 GHz", 1))
    with pytest.raises(SpecError) as err:
        load_hardware(above)
    assert "sustained_clock" in str(err.value) and "at most the boost clock" in str(err.value)


def test_a_pipes_own_efficiency_overrides_the_chips_for_that_pipe_only():
    import attrs

    from accelsim.validate import gemm_op, time_op

    hw = load_hardware(ROOT / "hwspecs/v100.yaml")
    # The V100's fp16 pipe states its own efficiency (0.87); halve it.
    fp16 = attrs.evolve(hw.compute.matrix["fp16"], efficiency=hw.compute_efficiency("fp16") / 2)
    tuned = attrs.evolve(hw, compute=attrs.evolve(hw.compute,
                                                  matrix={**hw.compute.matrix, "fp16": fp16}))
    assert tuned.compute_efficiency("fp16") == pytest.approx(0.435)
    assert tuned.compute_efficiency("fp32") == hw.compute_efficiency("fp32") == 0.88
    op = gemm_op(8192, 8192, 8192)
    assert time_op(tuned, op, "fp32").isolated_time_s == time_op(hw, op, "fp32").isolated_time_s
    base, slow = time_op(hw, op, "fp16"), time_op(tuned, op, "fp16")
    assert base.bound == slow.bound == "compute"
    assert slow.isolated_time_s == pytest.approx(2 * base.isolated_time_s, rel=0.02)


# --- the RNN as graphs through the pipeline; DeepBench GEMMs as row-major ops (issue 10) --------
def test_deepbench_gemm_becomes_the_row_major_transpose():
    from accelsim.validate import deepbench_gemm_op

    # cuBLAS TN, M=7680 N=16 K=2560: A stored K-contiguous, B stored K-contiguous.
    op = deepbench_gemm_op(7680, 16, 2560, True, False)
    assert (op.m, op.n, op.k, op.trans_a, op.trans_b) == (16, 7680, 2560, False, True)
    assert op.flops == 2.0 * 7680 * 16 * 2560


def test_rnn_pass_graphs_by_hand():
    from accelsim.validate import rnn_pass_graph

    # LSTM, hidden 4, batch 2, 3 steps: 16 gate rows.
    fwd = rnn_pass_graph("lstm", 4, 2, 3, "fp16", "fwd")
    gemms = [op for op in fwd.ops if op.kind == "gemm"]
    assert [op.kind for op in fwd.ops] == ["gemm", "elementwise"] * 3
    assert {(op.m, op.n, op.k, op.trans_a, op.trans_b) for op in gemms} == {(2, 16, 4, False, True)}
    assert fwd.flops == 3 * (2 * 16 * 4 * 2 + 30 * 4 * 2)
    w = fwd.tensors[gemms[0].inputs[1]]
    assert w.role == "weight" and all(op.inputs[1] == w.id for op in gemms)
    # step t + 1 multiplies the h that step t's elementwise kernel wrote
    assert gemms[1].inputs[0] in fwd.ops[1].outputs
    bwd = rnn_pass_graph("lstm", 4, 2, 3, "fp16", "bwd_inputs")
    assert [op.kind for op in bwd.ops] == ["elementwise", "gemm"] * 3
    assert {(op.m, op.n, op.k, op.trans_b) for op in bwd.ops if op.kind == "gemm"} == {
        (2, 4, 16, False)}
    dw = rnn_pass_graph("lstm", 4, 2, 3, "fp16", "bwd_weights")
    assert [op.kind for op in dw.ops] == ["gemm", "reduce", "elementwise"]  # + fp32 -> fp16
    assert (dw.ops[0].m, dw.ops[0].n, dw.ops[0].k) == (16, 4, 6)
    assert [op.kind for op in rnn_pass_graph("lstm", 4, 2, 3, "fp32", "bwd_weights",
                                             "fp32").ops] == ["gemm", "reduce"]


def test_long_calls_repeat_the_last_traced_step():
    from accelsim.validate import RNN_TRACED_STEPS, rnn_pass_time

    hw = load_hardware(ROOT / "hwspecs/v100.yaml")
    n = RNN_TRACED_STEPS
    t = {s: rnn_pass_time(hw, "gru", 512, 32, s, "fp32", "fwd")[0] for s in (n, n + 10, n + 20)}
    assert t[n + 20] - t[n + 10] == pytest.approx(t[n + 10] - t[n], rel=1e-9)


def test_linear_input_adds_the_hoisted_input_gemm():
    from accelsim.validate import rnn_input_gemm_graph, rnn_pass_graph, rnn_times

    shapes = {p: [(op.m, op.n, op.k) for op in rnn_input_gemm_graph("lstm", 4, 2, 3, "fp16",
                                                                     p).ops]
              for p in ("fwd", "bwd_inputs", "bwd_weights")}
    # T * batch = 6 rows, 16 gate rows, input size = hidden = 4
    assert shapes == {"fwd": [(6, 16, 4)], "bwd_inputs": [(6, 4, 16)],
                      "bwd_weights": [(16, 4, 6)]}
    fwd = rnn_pass_graph("lstm", 4, 2, 3, "fp16", "fwd", input_mode="linear")
    assert fwd.tensors[fwd.ops[1].inputs[1]].shape == (2, 16)  # the projected x_t, gates wide
    hw = load_hardware(ROOT / "hwspecs/v100.yaml")
    skip = rnn_times(hw, "lstm", 512, 16, 10, "fp32")
    linear = rnn_times(hw, "lstm", 512, 16, 10, "fp32", input_mode="linear")
    for p in ("fwd", "bwd_inputs", "bwd_weights"):
        assert linear[p][0] > skip[p][0] + hw.calibration.launch_overhead_s
    with pytest.raises(ValueError, match="input_mode"):
        rnn_times(hw, "lstm", 512, 16, 10, "fp32", input_mode="dense")


def test_repeated_small_gemms_read_their_operands_from_l2():
    from accelsim.validate import deepbench_gemm_op, time_op, warm_operand_bytes

    hw = load_hardware(ROOT / "hwspecs/v100.yaml")
    small = deepbench_gemm_op(512, 16, 512, False, False)
    # fp16: A 512x512 + B 512x16 = 2 x (262144 + 8192) B; with C (16 KiB) well inside 6 MiB.
    assert warm_operand_bytes(hw, small, "fp16") == 2 * (512 * 512 + 512 * 16)
    big = deepbench_gemm_op(2048, 16, 2048, False, False)  # 8.4 MB of operands: not warm
    assert warm_operand_bytes(hw, big, "fp16") == 0.0
    warm = time_op(hw, small, "fp16", resident_bytes=warm_operand_bytes(hw, small, "fp16"))
    cold = time_op(hw, small, "fp16")
    assert warm.level_bytes["HBM"] < cold.level_bytes["HBM"]
    assert warm.isolated_time_s < cold.isolated_time_s


def test_whole_microsecond_times_are_compared_at_the_middle_of_their_microsecond(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    # DeepBench prints whole microseconds, truncated: a reading t stands for [t, t + 1 us).
    from accelsim.validate import truncation_resolution_s

    assert truncation_resolution_s([8e-6, 0.2e-3, 1.3e-3]) == 1e-6
    assert truncation_resolution_s([8e-6, 0.2105e-3]) == 0.0
    assert truncation_resolution_s([]) == 0.0
    hw = load_hardware(ROOT / "hwspecs/v100.yaml")
    whole = _gemm_file(tmp_path, ["V100,fp32,x,1024,1024,1024,N,N,0.2"])
    (row,) = validate_gemm(hw, whole)
    assert row.resolution_s == 1e-6 and row.expected_s == pytest.approx(0.2005e-3)
    assert row.abs_pct_err == pytest.approx(abs(row.predicted_s / 0.2005e-3 - 1) * 100)
    exact = _gemm_file(tmp_path, ["V100,fp32,x,1024,1024,1024,N,N,0.2001"], name="e.csv")
    (row,) = validate_gemm(hw, exact)
    assert row.resolution_s == 0.0 and row.expected_s == pytest.approx(0.2001e-3)
    (row,) = validate_gemm(hw, whole, resolution_s=0.0)
    assert row.expected_s == pytest.approx(0.2e-3)
    from accelsim.cli import main

    out = tmp_path / "v.json"
    assert main(["validate", "--analytic", "--gemm-csv", str(whole), "--rnn-csv", "",
                 "--json", str(out)]) == 0
    assert "compared with reading + 0.5 us" in capsys.readouterr().out
    assert json.loads(out.read_text())["rows"][0]["resolution_ms"] == pytest.approx(1e-3)
    assert main(["validate", "--analytic", "--gemm-csv", str(whole), "--rnn-csv", "",
                 "--resolution-us", "0", "--json", str(out)]) == 0
    assert "reading +" not in capsys.readouterr().out
    assert json.loads(out.read_text())["rows"][0]["resolution_ms"] == 0.0
    assert main(["validate", "--analytic", "--gemm-csv", str(whole), "--rnn-csv", "",
                 "--resolution-us", "-1"]) == 2
    assert "--resolution-us" in capsys.readouterr().err


def test_simulated_thin_gemm_reads_only_the_rows_it_has():
    # A 16-row operand in 64-row tiles is read as 16 rows (predicated loads), as the
    # pipeline's traces do; DeepBench's beta = 1 reads C once before writing it.
    from accelsim.timing import gemm_compulsory_bytes, map_op
    from accelsim.validate import deepbench_gemm_op, simulated_gemm_traffic
    from accelsim.vocabulary import MEMORY

    hw = load_hardware(ROOT / "hwspecs/v100.yaml")
    op = deepbench_gemm_op(3072, 16, 1024, True, False)
    mp = map_op(hw, op, "fp16")
    assert op.accumulate and mp.tile_m > op.m == 16
    hbm = simulated_gemm_traffic(hw, op, mp, "fp16").level_bytes[MEMORY]
    c_read = op.m * op.n * 2
    assert hbm == pytest.approx(gemm_compulsory_bytes(op, "fp16") + c_read, rel=0.005)


def test_a_split_k_slices_tiles_run_side_by_side():
    # 512x16x500000 fp32 runs as 64 K slices of 8 tiles on 80 units: a wave deals the units out
    # slice after slice, so a slice's 8 tiles share their 16-row operand in L2 instead of
    # running one after the other on 80 // 64 = 1 unit and re-reading it (1098 MB before).
    from accelsim.timing import analytic_traffic, copy_units, map_op
    from accelsim.validate import deepbench_gemm_op, simulated_gemm_traffic
    from accelsim.vocabulary import MEMORY

    hw = load_hardware(ROOT / "hwspecs/v100.yaml")
    op = deepbench_gemm_op(512, 16, 500000, False, False)
    mp = map_op(hw, op, "fp32")
    assert (mp.split_k, mp.units_used, copy_units(mp, 8)) == (64, 80, 8)
    simulated = simulated_gemm_traffic(hw, op, mp, "fp32").level_bytes[MEMORY]
    assert simulated == pytest.approx(analytic_traffic(hw, op, mp, "fp32").level_bytes[MEMORY],
                                      rel=0.005)


@pytest.mark.slow
def test_the_commands_cache_simulation_meets_every_target():
    # What `accelsim validate` prints by default (the cache simulation; the tests above use the
    # analytic traffic): docs/validation.md, 2026-12-02: GEMM fp16 4.4 / 18.5, fp32 4.8 / 16.2;
    # RNN medians at most 14.3 (fp16 forward).
    from accelsim.validate import simulated_traffic_fn

    hw = load_hardware(ROOT / "hwspecs/v100.yaml")
    s = summarize(run_validation(hw, GEMM_CSV, RNN_CSV, simulated_traffic_fn()))
    for precision in ("fp32", "fp16_mixed"):
        assert s["gemm"][precision]["median_abs_pct_err"] <= TARGET_GEMM_MEDIAN_PCT
        assert s["gemm"][precision]["p90_abs_pct_err"] <= TARGET_P90_PCT
        for table in ("rnn_fwd", "rnn_bwd_inputs", "rnn_bwd_weights"):
            assert s[table][precision]["median_abs_pct_err"] <= TARGET_RNN_MEDIAN_PCT
