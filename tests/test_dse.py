"""`accelsim sweep` and `accelsim.dse` on a tiny NMT: axes, the content-addressed store, resume
after kill -9, errors before any simulation, views. The Dask engine is in test_dse_dask.py."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

import accelsim
from accelsim import dse, progress
from accelsim.cli import main
from accelsim.errors import AccelsimError, SpecError

SETS = ["--set", "caches[0].capacity=1MiB,24MiB", "--set", "memory.bandwidth=300GB/s,900 GB/s"]


@pytest.fixture(scope="module")
def v100(repo):
    return str(repo / "hwspecs/v100.yaml")


@pytest.fixture(scope="module")
def hw(v100):
    return accelsim.load_hardware(v100)


@pytest.fixture(scope="module")
def wl(tiny):
    return accelsim.load_workload(tiny)


def test_apply_settings_goes_through_the_loader(hw):
    out = dse.apply_settings(hw, {"caches[0].capacity": "24MiB", "memory.bandwidth": "1e12",
                                  "compute.units": 40, "calibration.compute_efficiency": 0.5})
    assert out.caches[0].capacity_bytes == 24 * 2**20
    assert out.memory.bandwidth_bytes_per_s == 1e12
    assert out.compute.units == 40 and out.calibration.compute_efficiency == 0.5
    assert out.caches[0].line_bytes == hw.caches[0].line_bytes  # the rest is untouched
    assert dse.apply_settings(hw, {}) == hw
    with pytest.raises(SpecError, match=r"compute\.units: expected an integer"):
        dse.apply_settings(hw, {"compute.units": "no"})


def test_a_key_the_base_lacks_is_added_where_the_schema_allows(hw):
    assert "bf16" not in hw.compute.matrix
    out = dse.apply_settings(hw, {"compute.matrix.bf16.peak_flop_rate": "100 TFLOP/s"})
    assert out.compute.matrix["bf16"].peak_flop_rate == 100e12
    assert out.compute.peak_flop_rate("bf16") == 100e12
    with pytest.raises(SpecError, match=r"compute\.matrix\.fp99: expected a key among"):
        dse.apply_settings(hw, {"compute.matrix.fp99.peak_flop_rate": "1 TFLOP/s"})
    with pytest.raises(SpecError, match=r"memory\.speed: expected one of the keys"):
        dse.apply_settings(hw, {"memory.speed": "1"})  # an attrs section is not free-keyed


def test_workload_settings_go_through_the_loader(wl):
    out = dse.apply_workload_settings(wl, {"subbatch": 32, "model.hidden": 128,
                                           "precision": "fp16", "dataset.samples": "2e6"})
    assert (out.subbatch, out.model.hidden, out.precision) == (32, 128, "fp16")
    assert out.dataset.samples == 2e6 and out.model.vocab == wl.model.vocab
    with pytest.raises(SpecError, match=r"subbatch: expected a value >= 1, got 0"):
        dse.apply_workload_settings(wl, {"subbatch": 0})
    with pytest.raises(SpecError, match=r"precision: expected one of"):
        dse.apply_workload_settings(wl, {"precision": "fp7"})


def test_plan_resolves_each_key_to_one_file(hw, wl):
    p = dse.plan(hw, wl, {"subbatch": [8, 16], "workload.model.hidden": [64],
                          "hardware.memory.bandwidth": ["1TB/s"], "caches[0].capacity": ["1MiB"],
                          "chips": [1, 4]})
    assert [(a.key, a.target, a.path) for a in p.axes] == [
        ("subbatch", "workload", "subbatch"), ("workload.model.hidden", "workload", "model.hidden"),
        ("hardware.memory.bandwidth", "hardware", "memory.bandwidth"),
        ("caches[0].capacity", "hardware", "caches[0].capacity"), ("chips", "chips", "")]
    assert len(p.points) == 4
    assert [(q.wl.subbatch, q.chips) for q in p.points] == [(8, 1), (8, 4), (16, 1), (16, 4)]
    assert p.points[0].values == {"subbatch": 8, "workload.model.hidden": 64,
                                  "hardware.memory.bandwidth": 1e12,
                                  "caches[0].capacity": 2**20, "chips": 1}
    assert {a.key: a.unit for a in p.axes}["caches[0].capacity"] == "bytes"
    assert len({q.key for q in p.points}) == 4
    with pytest.raises(SpecError, match="'hardware.name' or 'workload.name'"):
        dse.plan(hw, wl, {"name": ["x"]})
    with pytest.raises(SpecError, match="unknown key 'subbatches'; did you mean 'subbatch'"):
        dse.plan(hw, wl, {"subbatches": [8]})
    with pytest.raises(SpecError, match=r"chips: expected a whole number >= 1, got '0'"):
        dse.plan(hw, wl, {"chips": [0]})
    with pytest.raises(AccelsimError, match="both as an option and as a --set axis"):
        dse.plan(hw, wl, {"chips": [2]}, chips=2)


def test_values_equal_after_loading_are_collapsed(hw, wl):
    p = dse.plan(hw, wl, {"caches[0].capacity": ["6MiB", "6 MiB", "6291456", "24MiB"],
                          "subbatch": ["8", "8"]})
    assert p.axes[0].values == ("6MiB", "24MiB") and p.axes[1].values == ("8",)
    assert len(p.points) == 2
    assert "6 MiB is the same as 6MiB" in " ".join(p.notes)
    assert "8 given twice" in " ".join(p.notes)


def test_key_hashes_the_loaded_specs_not_their_text(hw, wl, v100, tmp_path):
    key = dse.point_key(hw, wl, chips=1, mode="auto")
    assert len(key) == 64
    assert dse.point_key(dse.apply_settings(hw, {"memory.bandwidth": "900e9"}), wl, chips=1,
                         mode="auto") == key  # same spec spelled differently: same point
    assert dse.point_key(hw, wl, chips=2, mode="auto") != key
    assert dse.point_key(hw, wl, chips=1, mode="exact") != key
    wider = dse.apply_workload_settings(wl, {"model.hidden": 65})
    assert dse.point_key(hw, wider, chips=1, mode="auto") != key
    edited = tmp_path / "v100.yaml"  # an edited file is a different point, whatever its name
    edited.write_text(open(v100).read().replace("latency: 260 ns", "latency: 300 ns"))
    assert dse.point_key(accelsim.load_hardware(edited), wl, chips=1, mode="auto") != key


def test_sweep_2x2_applies_values_and_resumes(tiny, v100, tmp_path, capsys):
    store, table = tmp_path / "r.jsonl", tmp_path / "r.csv"
    argv = ["sweep", v100, tiny, *SETS, "--jobs", "1", "--out", str(store), "--csv", str(table)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "4 points; 0 reused" in out and "L2 hit" in out and "shortfall" in out
    assert captured.err == ""  # stderr is not a terminal: no progress output
    records = [json.loads(line) for line in store.read_text().splitlines()]
    assert len(records) == 4 and len({r["key"] for r in records}) == 4
    assert {r["format"] for r in records} == {dse.STORE_FORMAT}
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
    assert [float(r["caches[0].capacity_value"]) for r in rows] == [2**20, 2**20,
                                                                     24 * 2**20, 24 * 2**20]

    assert main(argv) == 0  # rerun: everything reused, nothing appended
    assert "4 points; 4 reused" in capsys.readouterr().out
    assert len(store.read_text().splitlines()) == 4

    # One more value, spelled differently for an old one: only two new points are simulated.
    more = ["sweep", v100, tiny, "--set", "caches[0].capacity=1048576,24MiB,96MiB",
            "--set", "memory.bandwidth=300GB/s,900 GB/s", "--out", str(store), "--jobs", "1"]
    assert main(more) == 0
    assert "6 points; 4 reused from" in capsys.readouterr().out
    assert len(dse.read_store(store).records) == 6 and not dse.read_store(store).invalid


def _good_record(hw, wl) -> dict:
    point = dse.sweep(hw, wl, {"subbatch": [8]})[0]
    return point.to_record()


def test_unusable_store_lines_are_reported_and_simulated_again(tiny, v100, hw, wl, tmp_path,
                                                              capsys):
    store = tmp_path / "r.jsonl"
    good = _good_record(hw, wl)
    lied = {**good, "summary": {**good["summary"], "step_time_s": 123.0}}  # check now wrong
    resealed = {k: v for k, v in good.items() if k != "check"}
    resealed["summary"] = {"step_time_s": "fast"}
    resealed["check"] = dse._check_of(resealed)  # a consistent check over bad content
    lines = ['{"format": 2, "key": "ab', "[]", json.dumps(lied), "not json at all",
             json.dumps({"schema_version": 1, "settings": {}}), json.dumps(resealed)]
    store.write_text("\n".join(lines))  # the last line has no newline: torn
    contents = dse.read_store(store)
    assert not contents.records
    assert [n for n, _ in contents.invalid] == [1, 2, 3, 4, 5, 6]
    whys = dict(contents.invalid)
    assert "not JSON" in whys[1] and "not an object" in whys[2]
    assert "check does not match" in whys[3] and "store format None" in whys[5]
    assert "summary.step_time_s" in whys[6]

    assert main(["sweep", v100, tiny, "--set", "subbatch=8", "--jobs", "1",
                 "--out", str(store)]) == 0
    out = capsys.readouterr().out
    assert "1 points; 0 reused" in out
    assert "6 unusable lines ignored: line 1 (not JSON" in out and "and 1 more" in out
    after = dse.read_store(store)
    assert list(after.records) == [good["key"]]  # simulated again, appended on its own line
    assert after.records[good["key"]]["summary"]["step_time_s"] == good["summary"]["step_time_s"]


KILLER = """
import os, signal, sys
import accelsim
from accelsim import dse

hw, wl = accelsim.load_hardware(sys.argv[1]), accelsim.load_workload(sys.argv[2])
done = []

def on_point(point):
    done.append(point)
    if len(done) == 2:  # two points stored: die mid-write of a third line, as kill -9 would
        with open(sys.argv[3], "a") as fh:
            fh.write('{"format": 2, "key": "0123')
        os.kill(os.getpid(), signal.SIGKILL)

dse.sweep(hw, wl, {"subbatch": [8, 16], "caches[0].capacity": ["1MiB", "24MiB"]},
          store=sys.argv[3], on_point=on_point)
"""


def test_kill_9_loses_no_finished_point_and_duplicates_none(repo, tiny, v100, hw, wl, tmp_path):
    store, script = tmp_path / "r.jsonl", tmp_path / "killer.py"
    script.write_text(KILLER)
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.run([sys.executable, str(script), v100, tiny, str(store)], env=env,
                          capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    before = dse.read_store(store)
    assert len(before.records) == 2 and [n for n, _ in before.invalid] == [3]

    result = dse.sweep(hw, wl, {"subbatch": [8, 16], "caches[0].capacity": ["1MiB", "24MiB"]},
                       store=store)
    assert (result.reused, result.simulated) == (2, 2)
    assert "1 unusable line ignored: line 3" in " ".join(result.notes)
    after = dse.read_store(store)
    lines = [ln for ln in store.read_text().splitlines() if ln.strip()]
    assert len(after.records) == 4 and len(lines) == 5  # 4 points + the torn line, no duplicate
    for key, rec in before.records.items():
        assert after.records[key] == rec  # the finished points were kept, not redone
    assert len(dse.sweep(hw, wl, {"subbatch": [8, 16], "caches[0].capacity": ["1MiB", "24MiB"]},
                         store=store).points) == 4


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
    ("subbatch=8,-1", "--set subbatch=-1: subbatch: expected a value >= 1"),
    ("model.hiden=3", "unknown key 'hiden'; did you mean 'hidden'?"),
    ("workload.caches[0].capacity=1MiB", "expected one of the keys ['name', 'model'"),
    ("chips=1,two", "--set chips=two: chips: expected a whole number >= 1"),
])
def test_bad_key_or_value_exits_2_naming_the_key(setting, message, tiny, v100, tmp_path, capsys):
    store = tmp_path / "r.jsonl"
    assert main(["sweep", v100, tiny, "--set", setting, "--out", str(store)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not store.exists()  # checked before any simulation


@pytest.mark.parametrize("option, path, message", [
    ("--csv", "missing_dir/r.csv", "got missing_dir, which does not exist"),
    ("--plot", "r.txt", "expected a file name ending in .png, .pdf, .svg"),
    ("--out", ".", "expected a file name, got a directory"),
])
def test_bad_output_paths_fail_before_any_work(option, path, message, tiny, v100, tmp_path,
                                               capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "r.jsonl"
    argv = ["sweep", v100, tiny, "--set", "subbatch=8", option, path]
    if option != "--out":
        argv += ["--out", str(store)]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not store.exists()


def test_plot_needs_something_to_draw(tiny, v100, capsys, tmp_path):
    assert main(["sweep", v100, tiny, "--set", "precision=fp32", "--plot",
                 str(tmp_path / "p.png")]) == 2
    assert "--plot: needs a numeric axis" in capsys.readouterr().err


def test_pareto_front_by_hand():
    from accelsim.plot import pareto_front

    # (capacity, time): (1, 5) (2, 3) (3, 4) (4, 1) (4, 2) -> the front is 1, 2 and 4 (time 1)
    assert pareto_front([1, 2, 3, 4, 4], [5, 3, 4, 1, 2]) == [0, 1, 3]
    assert pareto_front([2, 1], [1, 1]) == [1]


def test_plot_dataframe_and_parquet(tiny, v100, tmp_path, capsys):
    png, pq = tmp_path / "p.png", tmp_path / "r.parquet"
    argv = ["sweep", v100, tiny, *SETS, "--set", "subbatch=8,16", "--jobs", "1",
            "--plot", str(png)]
    has_parquet = True
    try:
        dse.check_parquet()
        argv += ["--parquet", str(pq)]
    except AccelsimError:
        has_parquet = False
    assert main(argv) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if has_parquet:
        import pandas as pd

        df = pd.read_parquet(pq)
        assert len(df) == 8 and df["reused"].tolist() == [False] * 8
        assert sorted(set(df["subbatch_value"])) == [8, 16]
        assert sorted(set(df["memory.bandwidth_value"])) == [300e9, 900e9]
        assert (df["step_time_s"] > 0).all() and "hit_rate_L2" in df and "bytes_HBM" in df


def test_dataframe_without_the_cli(hw, wl):
    pd = pytest.importorskip("pandas")
    result = dse.sweep(hw, wl, {"subbatch": [8, 16]})
    df = dse.to_dataframe(result)
    assert isinstance(df, pd.DataFrame) and list(df["subbatch"]) == ["8", "16"]
    # time to train follows samples per step: twice the subbatch, about half the steps
    assert df["epoch_time_s"][1] < df["epoch_time_s"][0]


def test_pool_without_dask_matches_in_process(hw, wl, monkeypatch):
    settings = {"caches[0].capacity": ["1MiB", "24MiB"]}
    one = dse.sweep(hw, wl, settings, jobs=1)
    monkeypatch.setattr(dse, "dask_available", lambda: False)
    two = dse.sweep(hw, wl, settings, jobs=2)
    assert [p.settings for p in one] == [p.settings for p in two]
    assert [p.summary for p in one] == [p.summary for p in two]
    assert "local spawn pool of 2 processes" in " ".join(two.notes)


def test_same_key_twice_is_an_error(hw):
    with pytest.raises(SpecError, match="memory.bandwidth again"):
        dse.apply_settings(hw, {"memory.bandwidth": "1TB/s", "memory.bandwidth_bytes_per_s": "2TB/s"})


class _Terminal:
    """A stream that says it is a terminal, collecting what is written."""

    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self.text += s
        return len(s)

    def flush(self) -> None:
        pass


def test_progress_bar_only_on_a_terminal_and_not_quiet():
    import io

    assert not progress.shown(io.StringIO())
    term = _Terminal()
    assert progress.shown(term) and not progress.shown(term, quiet=True)
    with progress.bar(3, "sweep", stream=term, unit="point") as b:
        b.update()
        b.set_postfix_str("subbatch=8")
    assert "sweep" in term.text and "1/3" in term.text and "subbatch=8" in term.text
    quiet = _Terminal()
    with progress.bar(3, "sweep", stream=quiet, quiet=True) as b:
        b.update()
    assert quiet.text == ""


def test_progress_bar_from_the_cli_on_a_terminal(tiny, v100, monkeypatch, capsys):
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    assert main(["sweep", v100, tiny, "--set", "subbatch=8,16", "--jobs", "1"]) == 0
    assert "2/2" in term.text and "point" in term.text
    term.text = ""
    assert main(["sweep", v100, tiny, "--set", "subbatch=8,16", "--jobs", "1", "--quiet"]) == 0
    assert term.text == ""
    assert "2 points" in capsys.readouterr().out


def test_docs_name_the_sweep_syntax(repo):
    readme = (repo / "README.md").read_text()
    for needle in ("--scheduler", "dask scheduler", "dask worker", "workload.", "--set chips="):
        assert needle in readme, needle
    assert textwrap.dedent(dse.__doc__ or "").count("hardware.") >= 1


def _fake_point(i: int) -> dse.SweepPoint:
    summary = {"step_time_s": 0.5 + i, "flop_utilization": 0.4, "shortfall_bytes": 0,
               "footprint_bytes": 10 * i, "hit_rate": {"L2": 0.5}, "level_bytes": {"HBM": 1.0}}
    return dse.SweepPoint(settings={"subbatch": str(i)}, values={"subbatch": i}, hardware="h",
                          workload="w", chips=1, mode="auto", key=f"{i:064x}", summary=summary)


def test_store_keeps_exactly_the_sealed_records_whatever_lies_between(tmp_path):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    junk = st.text(min_size=1, max_size=40).filter(lambda t: t.strip() and "\n" not in t
                                                   and "\r" not in t)
    lines = st.lists(st.one_of(st.integers(0, 30).map(lambda i: ("point", i)),
                               junk.map(lambda t: ("junk", t))), max_size=25)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(lines)
    def check(items):
        path = tmp_path / "s.jsonl"
        text, want, bad = [], {}, []
        for n, (kind, v) in enumerate(items, start=1):
            if kind == "point":
                rec = _fake_point(v).to_record()
                text.append(json.dumps(rec))
                want.setdefault(rec["key"], rec)
            else:
                text.append(v)
                bad.append(n)
        path.write_text("\n".join(text) + ("\n" if text else ""), encoding="utf-8")
        got = dse.read_store(path)
        assert got.records == want
        assert [n for n, _ in got.invalid] == bad

    check()


def test_workers_running_another_accelsim_are_refused():
    class FakeClient:
        def __init__(self, prints):
            self.prints = prints

        def run(self, fn):
            return self.prints

    mine = dse.code_fingerprint()
    assert dse._check_workers(FakeClient({"tcp://a:1": mine, "tcp://b:1": mine})) == 2
    with pytest.raises(AccelsimError, match=r"workers \['tcp://b:1'\] run a different accelsim"):
        dse._check_workers(FakeClient({"tcp://a:1": mine, "tcp://b:1": "0" * 64}))
    with pytest.raises(AccelsimError, match="no workers"):
        dse._check_workers(FakeClient({}))


def test_prefixed_name_keys_edit_their_own_file(hw, wl):
    p = dse.plan(hw, wl, {"hardware.name": ["chip_a"], "workload.name": ["wl_b"]})
    (point,) = p.points
    assert (point.hw.name, point.wl.name) == ("chip_a", "wl_b")


@pytest.mark.parametrize("name", ["v100", "a100", "h100", "ppopp19_target", "bigcache"])
def test_combined_variants_equal_the_loaders(name, repo, wl):
    """`plan` grafts checked single-value variants together; the result must be exactly what
    loading the combined settings through YAML gives."""
    from accelsim.vocabulary import COMPUTE_DTYPES

    base = accelsim.load_hardware(repo / f"hwspecs/{name}.yaml")
    new_dtype = next(d for d in COMPUTE_DTYPES if d not in base.compute.matrix)
    settings = {"caches[0].capacity": ["1MiB", "96MiB"], "memory.bandwidth": ["1TB/s", "3TB/s"],
                "calibration.compute_efficiency": ["0.5"],
                f"compute.matrix.{new_dtype}.peak_flop_rate": ["50TFLOP/s"],
                "subbatch": ["4", "16"], "model.hidden": ["32"], "precision": ["fp16"]}
    p = dse.plan(base, wl, settings)
    assert len(p.points) == 8
    for point in p.points:
        hw_keys = {k: v for k, v in point.settings.items() if k not in ("subbatch", "model.hidden",
                                                                         "precision")}
        wl_keys = {k: v for k, v in point.settings.items() if k not in hw_keys}
        assert point.hw == dse.apply_settings(base, hw_keys)
        assert point.wl == dse.apply_workload_settings(wl, wl_keys)
        assert point.key == dse.point_key(point.hw, point.wl, chips=1, mode="auto")


def test_a_rule_broken_only_by_a_combination_gets_the_loaders_message(hw, wl):
    # 3 ways divide the 49152 lines of 6 MiB, not the 8192 of 1 MiB: each value alone loads.
    with pytest.raises(SpecError, match=r"ways: expected a divisor of the 8192 lines"):
        dse.plan(hw, wl, {"caches[0].capacity": ["6MiB", "1MiB"], "caches[0].ways": ["3"]})


# --- parallel plans as an axis (issue 11 item 1) ---------------------------------------------
def test_plan_axis_loads_each_plan_and_collapses_equal_ones(hw, wl):
    p = dse.plan(hw, wl, {"plan": ["dp=2+pp=2", "pp=2+dp=2", "tp=2"], "chips": [4]})
    assert [pt.settings["plan"] for pt in p.points] == ["dp=2+pp=2", "tp=2"]
    assert [(pt.wl.parallel.data, pt.wl.parallel.pipeline, pt.wl.parallel.tensor)
            for pt in p.points] == [(2, 2, 1), (None, 1, 2)]
    assert any("pp=2+dp=2 is the same as dp=2+pp=2" in n for n in p.notes)
    assert [pt.values["plan"] for pt in p.points] == ["dp=2 pp=2 tp=1", "dp=1 pp=1 tp=2"]
    # the store key includes the plan
    assert len({pt.key for pt in p.points}) == 2
    assert p.points[0].key != dse.point_key(hw, wl, chips=4, mode="auto")


def test_plan_degrees_as_axes(hw, wl):
    p = dse.plan(hw, wl, {"pp": [1, 2], "tp": ["1", "2"], "chips": [4]})
    assert [(pt.wl.parallel.pipeline, pt.wl.parallel.tensor) for pt in p.points] == [
        (1, 1), (1, 2), (2, 1), (2, 2)]
    same = dse.plan(hw, wl, {"parallel.pipeline": [2], "chips": [4]}).points[0]
    assert same.wl == dse.plan(hw, wl, {"pp": [2], "chips": [4]}).points[0].wl


@pytest.mark.parametrize("sets, located", [
    (["pp=1,2,64", "chips=64"], "--set pp=64, chips=64: parallel.pipeline: expected at most 5"),
    (["plan=pp=2+tp=3", "chips=6"], "--set plan=pp=2+tp=3: parallel.tensor: expected a "
                                    "tensor degree that divides"),
    (["plan=dp=x"], "--set plan=dp=x: parallel.data: expected an integer, got 'x'"),
    (["plan=dp=3+pp=2", "chips=4"], "--set plan=dp=3+pp=2, chips=4: parallel: expected a plan"),
    (["plan=pp", "chips=4"], "--set plan=pp: parallel: expected plan items KEY=VALUE"),
    (["plan=pp=2", "pp=1,2"], "--set pp: parallel.pipeline: expected key paths that do not "
                              "contain one another"),
])
def test_invalid_plans_are_located_errors_before_any_simulation(v100, tiny, capsys, monkeypatch,
                                                                sets, located):
    def no_simulation(*args, **kwargs):
        raise AssertionError("simulated")

    monkeypatch.setattr(dse, "_simulate", no_simulation)
    argv = ["sweep", v100, tiny, "--jobs", "1"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert located in err and "Traceback" not in err


def test_plan_sweep_runs_and_matches_run_with_the_plan(hw, wl):
    result = dse.sweep(hw, wl, {"plan": ["dp=2", "pp=2"], "chips": [2]})
    for pt, plan_text in zip(result, ["dp=2", "pp=2"], strict=True):
        report = accelsim.simulate(hw, wl, chips=2, plan=plan_text)
        assert pt.summary == dse._summary_of(report)
# --- end parallel plans as an axis ---


def test_a_worker_point_simulates_its_cache_on_one_thread(monkeypatch):
    """Pool and Dask workers get `WORKER_CACHE_THREADS` (one each: a sweep already runs one
    worker per core); the in-process engine keeps the default."""
    import accelsim.api
    from accelsim.cache import THREADS_ENV, default_threads

    seen = []

    class Stop(Exception):
        pass

    def fake_simulate(*args, **kwargs):
        seen.append(default_threads())
        raise Stop

    monkeypatch.setattr(accelsim.api, "simulate", fake_simulate)
    monkeypatch.setenv(THREADS_ENV, "2")
    with pytest.raises(Stop):
        dse._simulate_point(None, None, None, 1, "auto", "t", dse.WORKER_CACHE_THREADS)
    with pytest.raises(Stop):
        dse._simulate_point(None, None, None, 1, "auto", "t")
    assert dse.WORKER_CACHE_THREADS == 1
    assert seen == [1, 1]  # the environment stays set in the worker process
    monkeypatch.setenv(THREADS_ENV, "2")
    with pytest.raises(Stop):
        dse._simulate_point(None, None, None, 1, "auto", "t")
    assert seen[-1] == 2
