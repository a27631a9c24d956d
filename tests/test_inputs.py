"""Inputs that are not broken YAML: special files, output paths, options and API arguments.

Each must end as exit 2 with a message (CLI) or an AccelsimError (API), before any work.
"""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path

import pytest

import accelsim
from accelsim import dse, spec
from accelsim.api import miss_ratio_curve
from accelsim.cli import main
from accelsim.errors import AccelsimError, SpecError, SpecTypeError

REPO = Path(__file__).resolve().parents[1]
GOOD = REPO / "tests" / "data" / "good"
V100 = str(REPO / "hwspecs" / "v100.yaml")


# --- files that are not small regular files ---------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_fifo_is_refused_without_blocking(tmp_path, capsys):
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    result = {}
    worker = threading.Thread(target=lambda: result.update(code=main(["check", str(fifo)])),
                              daemon=True)
    worker.start()
    worker.join(timeout=30)
    if worker.is_alive():  # unblock the reader before failing
        with open(fifo, "w"):
            pass
        pytest.fail("reading a FIFO blocked")
    assert result["code"] == 2
    assert f"{fifo}: <document>: expected a regular file, got a FIFO (named pipe)" in \
        capsys.readouterr().err


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_device_is_refused_before_reading(capsys):
    assert main(["check", "/dev/zero"]) == 2
    assert "/dev/zero: <document>: expected a regular file, got a character device" in \
        capsys.readouterr().err


def test_directory_is_refused(tmp_path, capsys):
    assert main(["check", str(tmp_path)]) == 2
    assert f"{tmp_path}: <document>: expected a regular file, got a directory" in \
        capsys.readouterr().err


def test_big_file_is_refused_before_reading(tmp_path, capsys):
    big = tmp_path / "big.yaml"
    with big.open("wb") as fh:
        fh.truncate(spec.MAX_FILE_BYTES + 1)
    assert main(["check", str(big)]) == 2
    assert (f"{big}: <document>: expected a spec file of at most 1024 KiB, got "
            f"{spec.MAX_FILE_BYTES + 1} bytes") in capsys.readouterr().err


def test_deep_nesting_is_an_error_not_a_recursion_error():
    for text in ("a: " + "[" * 5000 + "]" * 5000, "a: " + "{b: " * 3000 + "1" + "}" * 3000):
        with pytest.raises(SpecError, match="nested at most 64 deep"):
            spec.hardware_from_yaml(text)


# --- command-line outputs, checked before any simulation --------------------------------------
@pytest.fixture
def no_simulation(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("simulated before checking the output paths")

    monkeypatch.setattr("accelsim.api.simulate", refuse)
    monkeypatch.setattr("accelsim.api.miss_ratio_curve", refuse)
    monkeypatch.setattr("accelsim.dse.sweep", refuse)


@pytest.mark.parametrize("argv, message", [
    (["run", V100, "{tiny}", "--json", "{tmp}"], "--json {tmp}: expected a file name, got a directory"),
    (["run", V100, "{tiny}", "--json", V100], f"--json {V100}: expected a new output file, got the "
                                                f"input file {V100}, which it would overwrite"),
    (["run", V100, "{tiny}", "--csv", "{tiny}"], "--csv {tiny}: expected a new output file"),
    (["run", V100, "{tiny}", "--csv", "{tmp}/no/such/dir/x.csv"],
     "--csv {tmp}/no/such/dir/x.csv: expected a path in an existing directory, got "
     "{tmp}/no/such/dir, which does not exist"),
    (["run", V100, "{tiny}", "--json", "{tmp}/a.json", "--csv", "{tmp}/a.json"],
     "--csv {tmp}/a.json: expected a file other than --json's"),
    (["compare", V100, "{tiny}", "--plot", "{tmp}"],
     "--plot {tmp}: expected a file name ending in .png, .pdf, .svg, .jpg, .jpeg, got no extension"),
    (["compare", V100, "{tiny}", "--plot", "{tmp}/figure"],
     "--plot {tmp}/figure: expected a file name ending in .png, .pdf, .svg, .jpg, .jpeg, got no "
     "extension (e.g. figure.png)"),
    (["mrc", V100, "{tiny}", "--plot", "{tmp}/curve.txt"],
     "--plot {tmp}/curve.txt: expected a file name ending in .png"),
    (["sweep", V100, "{tiny}", "--set", "memory.bandwidth=1TB/s", "--out", "{tmp}"],
     "--out {tmp}: expected a file name, got a directory"),
    (["sweep", V100, "{tiny}", "--set", "memory.bandwidth=1TB/s", "--out", V100],
     f"--out {V100}: expected a new output file"),
    (["run", V100, "{tiny}", "--ops", "-1"], "argument --ops: expected a whole number >= 0, got '-1'"),
    (["run", V100, "{tiny}", "--max-graph-ops", "0"],
     "argument --max-graph-ops: expected a whole number >= 1, got '0'"),
])
def test_bad_outputs_and_options_exit_2_before_work(argv, message, tiny, tmp_path, capsys,
                                                    no_simulation):
    fill = {"tiny": tiny, "tmp": str(tmp_path)}
    code = main([a.format(**fill) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message.format(**fill) in err
    assert "Traceback" not in err


def test_read_only_directory_is_refused(tiny, tmp_path, capsys, no_simulation, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == ro else
                        real_access(p, mode))  # as if not root on a read-only directory
    assert main(["run", V100, tiny, "--json", str(ro / "r.json")]) == 2
    assert f"--json {ro / 'r.json'}: expected a writable directory, got {ro}, which is not " \
           "writable" in capsys.readouterr().err


def test_plot_is_written_where_the_user_said(tiny, tmp_path, capsys):
    png = tmp_path / "cmp.png"
    assert main(["compare", V100, tiny, "--plot", str(png)]) == 0
    assert png.is_file() and f"wrote {png}" in capsys.readouterr().out


def test_work_limit_option_refuses_with_the_estimate(tiny, capsys):
    assert main(["run", V100, tiny, "--max-graph-ops", "10"]) == 2
    err = capsys.readouterr().err
    assert f"accelsim: error: {tiny}:2:8: model: expected a step graph of at most 10 ops, got " \
           "about 520 (an upper bound from the model's structure) for nmt_tiny on v100 " \
           "(refused before simulating; to go ahead use --max-graph-ops N or --allow-large" in err


def test_check_refuses_what_run_refuses(tiny, capsys):
    wl = str(REPO / "workloads" / "nmt_frontier.yaml")
    assert main(["check", "--mode", "exact", V100, wl]) == 2
    err = capsys.readouterr().err
    assert f"{wl}:12:3: model: expected at most 1e+09 line accesses in --mode exact" in err
    assert main(["check", V100, tiny]) == 0
    out = capsys.readouterr().out
    assert f"{tiny}: ok (workload 'nmt_tiny')" in out and f"on {V100}: " in out


def test_chips_without_links_is_refused_before_work(tiny, tmp_path, capsys):
    text = (GOOD / "tiny_hw.yaml").read_text(encoding="utf-8").replace(
        "  link_bandwidth: 50 GB/s\n", "  link_bandwidth: 50 GB/s\n  links: 0\n")
    hw = tmp_path / "nolinks.yaml"
    hw.write_text(text, encoding="utf-8")
    for command in ("run", "check"):
        assert main([command, str(hw), tiny, "--chips", "2"]) == 2
        assert "tiny: interconnect.links: expected at least 1 link to all-reduce gradients " \
               "over 2 chips, got 0" in capsys.readouterr().err
    assert main(["check", str(hw), tiny]) == 0


# --- the Python API checks its arguments ----------------------------------------------------
@pytest.fixture(scope="module")
def specs():
    return spec.load_hardware(GOOD / "tiny_hw.yaml"), spec.load_workload(GOOD / "tiny_wl.yaml")


@pytest.mark.parametrize("call, message", [
    (lambda hw, wl: accelsim.simulate(None, wl), "hw: expected a HardwareSpec"),
    (lambda hw, wl: accelsim.simulate(wl, hw), "got them swapped"),
    (lambda hw, wl: accelsim.simulate(hw, "workloads/nmt_current.yaml"),
     "wl: expected a WorkloadSpec (accelsim.load_workload(path)), got the string"),
    (lambda hw, wl: accelsim.simulate(hw, wl, chips=2.5), "chips: expected a positive integer, got 2.5"),
    (lambda hw, wl: accelsim.simulate(hw, wl, chips=True), "chips: expected a positive integer, got True"),
    (lambda hw, wl: accelsim.simulate(hw, wl, chips=0), "chips: expected a positive integer, got 0"),
    (lambda hw, wl: accelsim.simulate(hw, wl, mode="fast"), "mode: expected one of"),
    (lambda hw, wl: accelsim.simulate(hw, wl, mode=None), "mode: expected one of"),
    (lambda hw, wl: accelsim.simulate(hw, wl, limits=5), "limits: expected an accelsim.estimate"),
    (lambda hw, wl: miss_ratio_curve(wl, hw), "got them swapped"),
    (lambda hw, wl: miss_ratio_curve(hw, wl, granule_bytes=3), "granule: expected a power of two"),
    (lambda hw, wl: miss_ratio_curve(hw, wl, granule_bytes=64.0), "granule: expected a power of two"),
    (lambda hw, wl: dse.sweep(hw, None, {}), "wl: expected a WorkloadSpec"),
    (lambda hw, wl: dse.sweep(hw, wl, ["memory.bandwidth"]), "settings: expected a mapping"),
    (lambda hw, wl: dse.sweep(hw, wl, {}, jobs=1.5), "jobs: expected an integer >= 1"),
    (lambda hw, wl: dse.sweep(hw, wl, {}, chips="2"), "chips: expected a positive integer"),
    (lambda hw, wl: dse.apply_settings(None, {}), "hw: expected a HardwareSpec"),
    (lambda hw, wl: accelsim.load_hardware(None), "path: expected a file path"),
    (lambda hw, wl: accelsim.load_workload(42), "path: expected a file path"),
    (lambda hw, wl: spec.hardware_from_yaml(b"name: x"), "text: expected YAML text"),
    (lambda hw, wl: accelsim.build_graph(hw), "wl: expected a WorkloadSpec"),
])
def test_api_argument_errors_are_accelsim_errors(call, message, specs):
    with pytest.raises(AccelsimError) as info:
        call(*specs)
    assert message in str(info.value)


def test_type_errors_are_also_type_errors(specs):
    hw, wl = specs
    with pytest.raises(TypeError):
        accelsim.simulate(None, wl)
    assert issubclass(SpecTypeError, AccelsimError)


def test_slowest_chip_the_limits_allow_gives_finite_numbers(tmp_path, capsys):
    """Every rate at its minimum, every overhead at its maximum, the largest dataset: the
    report's times are huge but finite (1e303 d latencies are refused where they are read)."""
    text = (GOOD / "tiny_hw.yaml").read_text(encoding="utf-8")
    for old, new in [("bandwidth: 900 GB/s", "bandwidth: 1 B/s"), ("bandwidth: 1 TB/s", "bandwidth: 1 B/s"),
                     ("clock: 1 GHz", "clock: 1 Hz"), ("peak_flop_rate: 1 TFLOP/s", "peak_flop_rate: 1 FLOP/s"),
                     ("vector_flop_rate: 1 TFLOP/s", "vector_flop_rate: 1 FLOP/s"),
                     ("link_bandwidth: 50 GB/s", "link_bandwidth: 1 B/s\n  latency: 1 s\ncalibration:\n"
                      + "".join(f"  {k}_efficiency: 0.001\n" for k in
                                ("compute", "vector", "bandwidth", "cache_bandwidth", "link"))
                      + "  launch_overhead: 1 s")]:
        assert old in text
        text = text.replace(old, new)
    hw_path, wl_path = tmp_path / "slow_hw.yaml", tmp_path / "slow_wl.yaml"
    hw_path.write_text(text, encoding="utf-8")
    wl_path.write_text("name: slow\nmodel: {family: nmt, hidden: 64, vocab: 500, sequence_length: 3}\n"
                       "subbatch: 1\ndataset: {samples: 1e18, unit: words}\n", encoding="utf-8")
    assert main(["run", str(hw_path), str(wl_path), "--chips", "4"]) == 0
    out = capsys.readouterr().out
    assert "time per epoch on 4 chips" in out
    for word in ("inf", "nan"):
        assert not [line for line in out.splitlines() if f" {word}" in line.lower()], out
    report = accelsim.simulate(spec.load_hardware(hw_path), spec.load_workload(wl_path), chips=4)
    s = report.summary
    assert all(math.isfinite(x) for x in (s.step_time_s, s.epoch_time_s, s.flops, s.footprint_bytes))


def test_run_plot_is_a_folder_not_an_image(tiny, tmp_path, capsys):
    """`run --plot DIR` writes three figures into DIR: an image name is refused before work."""
    png = tmp_path / "step.png"
    assert main(["run", V100, tiny, "--plot", str(png)]) == 2
    err = capsys.readouterr().err
    assert "expected a folder for the figures" in err and "Traceback" not in err
    assert not png.exists()
