"""The `accelsim` command end to end on a small workload: report views, compare, exit codes."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from accelsim.cli import main


def test_run_prints_report_and_writes_json_and_csv(tiny, repo, tmp_path, capsys):
    js, cs = tmp_path / "r.json", tmp_path / "r.csv"
    code = main(["run", str(repo / "hwspecs/v100.yaml"), tiny, "--json", str(js), "--csv", str(cs)])
    out = capsys.readouterr().out
    assert code == 0
    assert "nmt_tiny on v100" in out and "step time" in out and "L2 hit rate" in out
    data = json.loads(js.read_text())
    assert data["schema_version"] == 2
    summary = data["summary"]
    for key in ("params", "flops", "bytes_accessed", "step_time_s", "footprint_bytes",
                "capacity_bytes", "shortfall_bytes", "chips_needed"):
        assert key in summary
    assert summary["shortfall_bytes"] == 0 and summary["chips_needed"] == 1
    op = data["ops"][0]
    for key in ("name", "kind", "flops", "time_s", "hit_rate", "bytes"):
        assert key in op
    assert set(op["bytes"]) == {"L2", "HBM"}
    rows = list(csv.DictReader(cs.open()))
    assert len(rows) == len(data["ops"])
    assert float(rows[0]["time_s"]) == pytest.approx(data["ops"][0]["time_s"])
    # The step is at least as long as the busiest op chain allows and FLOPs are consistent.
    assert summary["flops"] == pytest.approx(sum(o["flops"] for o in data["ops"]))
    assert summary["step_time_s"] >= max(o["end_s"] for o in data["ops"]) - 1e-12


def test_compare_side_by_side_with_plot(tiny, repo, tmp_path, capsys):
    png = tmp_path / "cmp.png"
    code = main(["compare", str(repo / "hwspecs/ppopp19_target.yaml"),
                 str(repo / "hwspecs/bigmem.yaml"), tiny, "--plot", str(png)])
    out = capsys.readouterr().out
    assert code == 0
    assert "ppopp19_target" in out and "bigmem" in out and "shortfall" in out
    assert png.stat().st_size > 10_000


def test_chips_data_parallel_adds_allreduce(tiny, repo, capsys):
    import accelsim

    hw = accelsim.load_hardware(repo / "hwspecs/v100.yaml")
    wl = accelsim.load_workload(tiny)
    one = accelsim.simulate(hw, wl)
    four = accelsim.simulate(hw, wl, chips=4)
    assert four.summary.samples_per_step == 4 * one.summary.samples_per_step
    assert four.summary.step_time_s >= one.summary.step_time_s
    assert four.summary.epoch_time_s < one.summary.epoch_time_s


@pytest.mark.parametrize("argv, message", [
    (["run", "hwspecs/v100.yaml"], "required"),
    (["run", "hwspecs/v100.yaml", "workloads/nmt_frontier.yaml", "--chips", "0"], ">= 1"),
    (["run", "hwspecs/v100.yaml", "workloads/nmt_frontier.yaml", "--mode", "fast"], "invalid choice"),
    (["run", "workloads/nmt_frontier.yaml", "hwspecs/v100.yaml"], "expected"),
    (["compare", "workloads/nmt_frontier.yaml"], "hardware specs and a workload"),
    (["frobnicate"], "invalid choice"),
])
def test_usage_errors_exit_2_without_traceback(argv, message, repo, capsys, monkeypatch):
    monkeypatch.chdir(repo)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unwritable_output_is_a_clean_error(tiny, repo, capsys):
    code = main(["run", str(repo / "hwspecs/v100.yaml"), tiny, "--json", "/nonexistent/dir/r.json"])
    assert code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_console_script_entry_point(repo):
    out = subprocess.run([sys.executable, "-m", "accelsim", "--help"], capture_output=True,
                         text=True, cwd=repo)
    assert out.returncode == 0
    for cmd in ("run", "compare", "check", "project", "validate"):
        assert cmd in out.stdout


def test_mrc_command_and_curve(tiny, repo, tmp_path, capsys):
    import numpy as np

    import accelsim
    from accelsim.api import miss_ratio_curve

    png = tmp_path / "mrc.png"
    assert main(["mrc", str(repo / "hwspecs/v100.yaml"), tiny, "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "90%" in out and "on-chip cache" in out and png.stat().st_size > 5_000
    hw = accelsim.load_hardware(repo / "hwspecs/v100.yaml")
    curve = miss_ratio_curve(hw, accelsim.load_workload(tiny), granule_bytes=128)
    assert np.all(np.diff(curve.hit_rate) >= 0)  # LRU inclusion: bigger never hits less
    assert 0 < curve.hit_rate[-1] < 1  # first touches always miss
    assert curve.capacity_for(0.5) is not None
    assert curve.hit_rate_at(6 * 2**20) == curve.hit_rate[min(len(curve.hit_rate), 49152) - 1]
    assert main(["mrc", str(repo / "hwspecs/v100.yaml"), tiny, "--granule", "100 B"]) == 2
