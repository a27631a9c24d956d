"""The Chrome trace-event export: the format's rules, and the slices against the report."""

from __future__ import annotations

import json
import math
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import accelsim
from accelsim import timeline
from accelsim.cli import main
from accelsim.report import OpResult, Report, Summary

PHASES = {"M", "X", "C"}
METADATA = {"process_name", "process_sort_index", "thread_name", "thread_sort_index"}


@pytest.fixture(scope="module")
def reports(repo, tiny):
    hw = accelsim.load_hardware(repo / "hwspecs" / "v100.yaml")
    wl = accelsim.load_workload(tiny)
    return {1: accelsim.simulate(hw, wl), 4: accelsim.simulate(hw, wl, chips=4)}


def _check_format(trace: dict) -> None:
    """The trace-event format's required fields and the nesting rule of complete events."""
    assert isinstance(trace["traceEvents"], list)
    assert trace["displayTimeUnit"] in ("ms", "ns")
    named_pids, named_threads = set(), set()
    for e in trace["traceEvents"]:
        assert e["ph"] in PHASES
        assert isinstance(e["name"], str) and e["name"]
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
        if e["ph"] == "M":
            assert e["name"] in METADATA
            if e["name"] == "process_name":
                named_pids.add(e["pid"])
            if e["name"] == "thread_name":
                named_threads.add((e["pid"], e["tid"]))
        elif e["ph"] == "X":
            assert math.isfinite(e["ts"]) and e["ts"] >= 0
            assert math.isfinite(e["dur"]) and e["dur"] >= 0
            assert isinstance(e["args"], dict)
        else:  # counter: numeric series values
            assert math.isfinite(e["ts"]) and e["args"]
            assert all(isinstance(v, int | float) and math.isfinite(v) for v in e["args"].values())
    used = {(e["pid"], e["tid"]) for e in trace["traceEvents"] if e["ph"] == "X"}
    assert used <= named_threads, "every slice track has a thread_name"
    assert {p for p, _ in used} | {e["pid"] for e in trace["traceEvents"] if e["ph"] == "C"} \
        <= named_pids, "every track's process has a process_name"
    # complete events on one track nest properly: each starts after the enclosing one ends or
    # lies wholly inside it
    tracks = defaultdict(list)
    for e in trace["traceEvents"]:
        if e["ph"] == "X":
            tracks[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    for slices in tracks.values():
        stack: list[float] = []
        for t0, t1 in sorted(slices, key=lambda s: (s[0], -s[1])):
            while stack and stack[-1] <= t0 + 1e-9:
                stack.pop()
            assert not stack or t1 <= stack[-1] + 1e-9, "slices overlap without nesting"
            stack.append(t1)


@pytest.mark.parametrize("chips", [1, 4])
def test_trace_follows_the_format(reports, chips):
    _check_format(reports[chips].to_timeline())


@pytest.mark.parametrize("chips", [1, 4])
def test_one_slice_per_op_with_the_reports_times_in_microseconds(reports, chips):
    report = reports[chips]
    events = report.to_timeline()["traceEvents"]
    slices = [e for e in events if e["ph"] == "X" and e["pid"] == timeline.PID_UNITS]
    assert len(slices) == len(report.ops)
    for op, e in zip(report.ops, slices, strict=True):
        assert e["name"] == op.name
        assert e["ts"] == pytest.approx(op.start_s * 1e6, rel=1e-12, abs=1e-9)
        assert e["dur"] == pytest.approx(op.time_s * 1e6, rel=1e-9, abs=1e-9)
        assert e["args"]["shape"] == op.shape
        assert e["args"]["bound"] == op.bound
        assert e["args"]["bytes"] == op.bytes


def _integral(points: list[tuple[float, float]], end: float) -> float:
    return sum(v * (t1 - t0) for (t0, v), (t1, _) in zip(points, points[1:] + [(end, 0)],
                                                        strict=True))


def test_bandwidth_counters_carry_every_byte(reports):
    """The GB/s counter of each level integrates (over the step) to the ops' bytes there."""
    report = reports[1]
    events = report.to_timeline()["traceEvents"]
    end_us = report.summary.step_time_s * 1e6
    for lv in report.level_names():
        pts = [(e["ts"], e["args"]["GB/s"]) for e in events
               if e["ph"] == "C" and e["name"] == f"{lv} bandwidth (GB/s)"]
        assert pts, lv
        moved = _integral(pts, end_us) * 1e-6 * 1e9
        expect = sum(op.bytes.get(lv, 0.0) for op in report.ops if op.end_s > op.start_s)
        assert moved == pytest.approx(expect, rel=1e-6), lv
        util = [e["args"]["%"] for e in events
                if e["ph"] == "C" and e["name"] == f"{lv} utilization (%)"]
        assert util and max(util) <= 100.0 * (1 + 1e-6), lv  # the replay shares bandwidth


def test_units_counter_never_exceeds_the_chip(reports):
    report = reports[1]
    events = report.to_timeline()["traceEvents"]
    busy = [e["args"]["units"] for e in events if e["ph"] == "C" and e["name"] == "units busy"]
    assert busy and max(busy) <= report.summary.compute_units and min(busy) >= 0


def test_links_track_shows_exposed_communication_only_when_data_parallel(reports):
    one, four = (reports[c].to_timeline()["traceEvents"] for c in (1, 4))
    assert not [e for e in one if e.get("cat") == "communication"]
    waits = [e for e in four if e.get("cat") == "communication"]
    assert waits, "4-chip step waits for the last all-reduce"
    last_op_end = max(op.end_s for op in reports[4].ops)
    assert reports[4].summary.step_time_s >= last_op_end
    assert all(e["dur"] > 0 for e in waits)


def test_cli_writes_the_trace(repo, tiny, tmp_path, capsys):
    out = tmp_path / "step.json"
    assert main(["run", str(repo / "hwspecs" / "v100.yaml"), tiny, "--timeline", str(out)]) == 0
    trace = json.loads(out.read_text())
    _check_format(trace)
    names = {e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "process_name"}
    assert any("compute units" in n for n in names) and any(n.startswith("HBM") for n in names)
    assert any(n.startswith("L2") for n in names)
    assert "wrote" in capsys.readouterr().out


# --- invariants on synthetic reports -----------------------------------------------------------
def _report(intervals: list[tuple[float, float, int]]) -> Report:
    ops = tuple(OpResult(name=f"op{i}", kind="gemm", phase="forward", shape="s", flops=1.0,
                         start_s=a, end_s=a + d, time_s=d, bytes={"HBM": 10.0 * (i + 1)},
                         hit_rate={}, bound="HBM", units=u)
                for i, (a, d, u) in enumerate(intervals))
    step = max((o.end_s for o in ops), default=0.0)
    summary = Summary(params=0, flops=0.0, bytes_accessed=0.0, step_time_s=step,
                      peak_flop_rate=1.0, flop_utilization=0.0, hit_rate={}, level_bytes={},
                      bound_time_s={}, footprint_bytes=0, footprint_by_role={},
                      algorithmic_footprint_bytes=0, capacity_bytes=1, shortfall_bytes=0,
                      chips_needed=1, chips=1, samples_per_step=1.0, steps_per_epoch=None,
                      epoch_time_s=None)
    return Report(hardware="hw", workload="wl", ops=ops, summary=summary)


_INTERVALS = st.lists(st.tuples(st.integers(0, 50).map(lambda x: x * 1e-6),
                                st.integers(0, 20).map(lambda x: x * 1e-6),
                                st.integers(1, 8)), max_size=30)


@settings(max_examples=60, deadline=None)
@given(_INTERVALS)
def test_lanes_never_overlap_and_are_as_few_as_the_peak_overlap(intervals):
    report = _report(intervals)
    lane = timeline.lanes(report.ops)
    _check_format(report.to_timeline())
    by_lane = defaultdict(list)
    for op, k in zip(report.ops, lane, strict=True):
        by_lane[k].append((op.start_s, op.end_s))
    for spans in by_lane.values():
        spans.sort()
        assert all(b[0] >= a[1] - 1e-15 for a, b in zip(spans, spans[1:], strict=False))
    # greedy interval partitioning is optimal: lanes == the most ops running at one instant
    # (ops touching within round-off count as not overlapping, as in `lanes`)
    peak = max((sum(1 for o in report.ops if o.start_s <= t < o.end_s - 1e-15)
                for t in {o.start_s for o in report.ops}), default=0)
    n_lanes = max(lane, default=-1) + 1
    positive = [o for o in report.ops if o.end_s > o.start_s]
    assert n_lanes >= peak and (n_lanes == peak or len(positive) < len(report.ops))


def test_step_function_hand_checked():
    report = _report([(0.0, 2e-6, 3), (1e-6, 2e-6, 5)])
    pts = timeline.step_function(report.ops, lambda o: float(o.units))
    assert pts == [(0.0, 3.0), (1e-6, 8.0), (2e-6, 5.0), (3e-6, 0.0)]
