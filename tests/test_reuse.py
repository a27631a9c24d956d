"""Stage results reused across design points (`accelsim.reuse`, issue 11 item 4).

The key of a reused stage is what it read, recorded; these tests hold reused results equal to
fresh ones bit for bit under random perturbations of the spec, and show that the comparison
fails when a read is left out of the key.
"""

from __future__ import annotations

import json

import attrs
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import accelsim
from accelsim import dse, pipeline, reuse, spec
from accelsim.errors import AccelsimError
from accelsim.models import build_graph


@pytest.fixture(scope="module")
def hw(repo):
    return accelsim.load_hardware(repo / "hwspecs/v100.yaml")


@pytest.fixture(scope="module")
def wl(tiny):
    return accelsim.load_workload(tiny)


@pytest.fixture(scope="module")
def graph(wl):
    return build_graph(wl)


def _report(hw, wl, graph, memo=None):
    with reuse.reusing(memo):
        return json.dumps(accelsim.simulate(hw, wl, graph=graph).to_dict(), sort_keys=True)


# --- the recorder ------------------------------------------------------------------------------
def test_fields_properties_and_methods_are_recorded(hw):
    memo = reuse.StageReuse()

    def stage(h):
        return (h.memory.bandwidth_bytes_per_s, h.compute.run_clock_hz,
                h.compute_efficiency("fp32"), len(h.caches))

    first = memo.call(stage, hw)
    assert first == stage(hw)
    paths = {reuse.path_text(p) for p in memo.read_paths(stage)}
    assert "memory.bandwidth_bytes_per_s" in paths
    assert "caches (len)" in paths
    assert any(p.startswith("compute.") and "clock" in p for p in paths)  # read by the property
    assert any(p.startswith("calibration.") for p in paths)  # read by the method
    # a field the stage never read: reused; one it read: run again
    other = dse.apply_settings(hw, {"caches[0].capacity": "1MiB"})
    assert memo.call(stage, other) is first
    faster = dse.apply_settings(hw, {"memory.bandwidth": "2TB/s"})
    assert memo.call(stage, faster) != first
    assert memo.counts["test_fields_properties_and_methods_are_recorded.<locals>.stage"] == \
        reuse.StageCount(ran=2, reused=1)


def test_whole_uses_record_the_whole_value(hw):
    memo = reuse.StageReuse()

    def stage(h):
        return hash(h.caches[0]) != 0, h.caches[0] == h.caches[0], isinstance(
            h.caches[0], type(hw.caches[0]))

    assert memo.call(stage, hw) == (True, True, True)
    # hashing read every field of the level: a change to any of them is a different key
    slower = dse.apply_settings(hw, {"caches[0].latency": "1us"})
    memo.call(stage, slower)
    assert memo.counts[stage.__qualname__].ran == 2


def test_a_result_that_keeps_its_recorded_input_is_not_stored(hw):
    memo = reuse.StageReuse()
    out = memo.call(lambda h: (h.compute,), hw)
    assert type(out[0]) is type(hw.compute)  # the plain record, not the recorder
    assert memo.counts["test_a_result_that_keeps_its_recorded_input_is_not_stored.<locals>"
                       ".<lambda>"].not_stored == 1


def test_other_arguments_are_keyed_exactly(hw):
    memo = reuse.StageReuse()
    calls = []

    def stage(h, items, name):
        calls.append(name)
        return h.compute.units * len(items)

    big = [1, 2, 3]  # unhashable: the same object only
    memo.call(stage, hw, big, "a")
    memo.call(stage, hw, big, "a")
    memo.call(stage, hw, [1, 2, 3], "a")
    memo.call(stage, hw, big, "b")
    assert calls == ["a", "a", "b"]


def test_stage_errors_propagate_and_are_not_stored(hw):
    memo = reuse.StageReuse()

    def stage(h):
        raise AccelsimError(f"no: {h.compute.units}")

    for _ in range(2):
        with pytest.raises(AccelsimError, match="no: 80"):
            memo.call(stage, hw)


# --- the pipeline through a sweep worker's memory: reused equals fresh, bit for bit -----------
def _leaves(data, path=""):
    """(key path, value) of every number in the spec's plain data."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _leaves(v, f"{path}.{k}" if path else k)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _leaves(v, f"{path}[{i}]")
    elif isinstance(data, int | float) and not isinstance(data, bool):
        yield path, data


def _perturbed(hw, changes):
    """`hw` with each numeric leaf scaled (whole numbers stay whole); None if the loader refuses."""
    settings_point = {}
    for path, value, factor in changes:
        new = value * factor
        settings_point[path] = repr(int(round(new)) if isinstance(value, int) else new)
    try:
        return dse.apply_settings(hw, settings_point)
    except AccelsimError:
        return None


def _leaf_paths(hw):
    return sorted(dict(_leaves(spec.to_dict(hw))).items())


PERTURB = st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from([0.5, 2.0, 0.25, 4.0, 1.5])),
                   min_size=1, max_size=3)


@pytest.mark.slow
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(picks=PERTURB)
def test_reused_reports_equal_fresh_ones_bit_for_bit(hw, wl, graph, picks):
    leaves = _leaf_paths(hw)
    changes = [(leaves[i % len(leaves)][0], leaves[i % len(leaves)][1], f) for i, f in picks]
    other = _perturbed(hw, changes)
    assume(other is not None)
    memo = reuse.StageReuse()
    _report(hw, wl, graph, memo)  # the base point fills the memory
    assert _report(other, wl, graph, memo) == _report(other, wl, graph)
    event(f"cache simulation reused: {memo.counts['trace_step'].reused}")


def test_points_that_differ_only_in_what_the_cache_does_not_read_share_it(hw, wl, graph):
    memo = reuse.StageReuse()
    base = _report(hw, wl, graph, memo)
    effs = [dse.apply_settings(hw, {"calibration.compute_efficiency": e}) for e in ("0.9", "0.95")]
    for h in effs:
        assert _report(h, wl, graph, memo) == _report(h, wl, graph)
    assert _report(hw, wl, graph, memo) == base
    counts = memo.counts["trace_step"]
    assert counts.reused >= 1 and counts.not_stored == 0
    assert memo.counts["_execute"] == reuse.StageCount(ran=1, reused=counts.ran + counts.reused - 1)
    paths = {reuse.path_text(p) for p in memo.read_paths(pipeline.trace_step)}
    assert "caches[0].capacity_bytes" in paths and "compute.units" in paths
    assert not any(p.startswith(("memory.", "calibration.")) for p in paths)


def test_a_read_left_out_of_the_key_is_caught(hw, wl, graph, monkeypatch):
    """If the recorder missed the L2 capacity, reuse would hand a 1 MiB L2 the 6 MiB L2's
    cache counters; the reused-vs-fresh comparison above would then fail. (This is what makes
    that test able to fail.)"""
    small = dse.apply_settings(hw, {"caches[0].capacity": "256KiB"})
    note = reuse.Reads.note

    def forgetful(self, path, fingerprint):
        if "capacity_bytes" not in path:
            note(self, path, fingerprint)

    monkeypatch.setattr(reuse.Reads, "note", forgetful)
    memo = reuse.StageReuse()
    _report(hw, wl, graph, memo)
    assert memo.counts["trace_step"].ran == 1
    wrong = _report(small, wl, graph, memo)
    assert memo.counts["trace_step"].reused == 1
    monkeypatch.setattr(reuse.Reads, "note", note)
    assert wrong != _report(small, wl, graph)


def test_sweep_reuses_and_says_so(hw, wl):
    sets = {"caches[0].capacity": ["1MiB", "6MiB"], "calibration.compute_efficiency": ["0.9", "0.95"]}
    result = dse.sweep(hw, wl, sets)
    fresh = [dse._simulate_summary(p.hw, p.wl, None, p.chips, "auto")
             for p in dse.plan(hw, wl, sets).points]
    assert [p.summary for p in result] == fresh  # grid order, bit for bit
    text = "\n".join(result.notes)
    assert "reuse: cache simulation run" in text and "caches[0].capacity_bytes" in text
    ran = int(text.split("reuse: cache simulation run ")[1].split()[0])
    assert ran < len(result)
    assert attrs.evolve(result.points[0]).reused is False


def test_groups_keep_shared_points_together_and_workers_busy(hw, wl):
    sets = {"caches[0].capacity": ["1MiB", "2MiB", "6MiB"], "memory.bandwidth": ["1TB/s", "2TB/s", "3TB/s"],
            "calibration.compute_efficiency": ["0.9", "0.8", "0.7"]}
    points = dse.plan(hw, wl, sets).points
    jobs = list(enumerate(points))
    paths = [("caches", 0, "capacity_bytes")]
    alone = dse._by_group(jobs, paths, 1)
    assert [len(r) for r in alone] == [9, 9, 9]  # one run per L2 capacity, in order
    assert all(len({p.hw.caches[0].capacity_bytes for _, p in r}) == 1 for r in alone)
    runs = dse._by_group(jobs, paths, 2)
    assert sorted(i for r in runs for i, _ in r) == list(range(27))
    assert max(len(r) for r in runs) <= 7  # half of a worker's share: 27 / 4
    load = [0, 0]
    for r in runs:  # as _run_dask assigns them
        load[load.index(min(load))] += len(r)
    assert max(load) - min(load) <= 2
