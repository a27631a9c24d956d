"""`accelsim sweep` and `accelsim.dse` on a tiny NMT: settings applied, resume, errors, jobs."""

from __future__ import annotations

import csv
import json

import pytest

import accelsim
from accelsim import dse
from accelsim.cli import main
from accelsim.errors import SpecError
from accelsim.report import SCHEMA_VERSION

SETS = ["--set", "caches[0].capacity=1MiB,24MiB", "--set", "memory.bandwidth=300GB/s,900 GB/s"]


@pytest.fixture(scope="module")
def v100(repo):
    return str(repo / "hwspecs/v100.yaml")


def test_apply_settings_goes_through_the_loader(v100):
    hw = accelsim.load_hardware(v100)
    out = dse.apply_settings(hw, {"caches[0].capacity": "24MiB", "memory.bandwidth": "1e12",
                                  "compute.units": 40, "calibration.compute_efficiency": 0.5})
    assert out.caches[0].capacity_bytes == 24 * 2**20
    assert out.memory.bandwidth_bytes_per_s == 1e12
    assert out.compute.units == 40 and out.calibration.compute_efficiency == 0.5
    assert out.caches[0].line_bytes == hw.caches[0].line_bytes  # the rest is untouched
    assert dse.apply_settings(hw, {}) == hw
    with pytest.raises(SpecError, match=r"compute\.units: expected an integer"):
        dse.apply_settings(hw, {"compute.units": "no"})


def test_sweep_2x2_applies_values_and_resumes(tiny, v100, tmp_path, capsys):
    store, table = tmp_path / "r.jsonl", tmp_path / "r.csv"
    argv = ["sweep", v100, tiny, *SETS, "--out", str(store), "--csv", str(table)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "4 points; 0 reused" in out and "L2 hit" in out and "shortfall" in out
    records = [json.loads(line) for line in store.read_text().splitlines()]
    assert len(records) == 4
    assert {r["schema_version"] for r in records} == {SCHEMA_VERSION}
    assert {r["hardware"] for r in records} == {"v100"}
    assert {r["workload"] for r in records} == {"nmt_tiny"}
    by = {(r["settings"]["caches[0].capacity"], r["settings"]["memory.bandwidth"]): r["summary"]
          for r in records}
    assert len(by) == 4
    for bw in ("300GB/s", "900 GB/s"):  # a bigger L2 never hits less, nor moves more HBM bytes
        small, big = by[("1MiB", bw)], by[("24MiB", bw)]
        assert big["hit_rate"]["L2"] > small["hit_rate"]["L2"]
        assert big["level_bytes"]["HBM"] < small["level_bytes"]["HBM"]
    for cap in ("1MiB", "24MiB"):  # more bandwidth never lengthens the step
        assert by[(cap, "900 GB/s")]["step_time_s"] <= by[(cap, "300GB/s")]["step_time_s"]
    rows = list(csv.DictReader(table.open()))
    assert [r["caches[0].capacity"] for r in rows] == ["1MiB", "1MiB", "24MiB", "24MiB"]

    assert main(argv) == 0  # rerun: everything reused, nothing appended
    assert "4 points; 4 reused" in capsys.readouterr().out
    assert len(store.read_text().splitlines()) == 4

    # One more value: only the two new points are simulated; a torn last line is ignored.
    with store.open("a") as fh:
        fh.write('{"schema_version": 1, "sett')
    more = ["sweep", v100, tiny, "--set", "caches[0].capacity=1MiB,24MiB,96MiB",
            "--set", "memory.bandwidth=300GB/s,900 GB/s", "--out", str(store)]
    assert main(more) == 0
    assert "6 points; 4 reused" in capsys.readouterr().out
    assert dse.read_store(store)[1] == 1 and len(dse.read_store(store)[0]) == 6


@pytest.mark.parametrize("setting, message", [
    ("memory.bandwith=1TB/s", "expected one of the keys ['capacity', 'bandwidth'"),
    ("caches[2].capacity=1MiB", "caches[2]: expected an index below 1"),
    ("compute.units.x=3", "compute.units.x: expected a mapping"),
    ("caches[0].capacity=6MiB,fast", "--set caches[0].capacity=fast: caches[0].capacity: "
                                     "expected a size"),
    ("calibration.compute_efficiency=0.5,yes", "calibration.compute_efficiency: expected a number"),
    ("compute.units=0", "compute.units: expected a value >= 1, got 0"),
    ("memory..bandwidth=1TB/s", "expected a key path"),
    ("memory.bandwidth", "expected KEY=V1,V2"),
])
def test_bad_key_or_value_exits_2_naming_the_key(setting, message, tiny, v100, tmp_path, capsys):
    store = tmp_path / "r.jsonl"
    assert main(["sweep", v100, tiny, "--set", setting, "--out", str(store)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not store.exists()  # checked before any simulation


def test_jobs_2_matches_jobs_1(tiny, v100):
    hw, wl = accelsim.load_hardware(v100), accelsim.load_workload(tiny)
    settings = {"caches[0].capacity": ["1MiB", "24MiB"]}
    one = dse.sweep(hw, wl, settings, jobs=1)
    two = dse.sweep(hw, wl, settings, jobs=2)
    assert [p.settings for p in one] == [p.settings for p in two]
    assert [p.summary for p in one] == [p.summary for p in two]


def test_same_key_twice_is_an_error(v100):
    hw = accelsim.load_hardware(v100)
    with pytest.raises(SpecError, match="memory.bandwidth again"):
        dse.apply_settings(hw, {"memory.bandwidth": "1TB/s", "memory.bandwidth_bytes_per_s": "2TB/s"})
