"""simpy replay: exact timelines on hand-made graphs, all-reduce, and schedule properties."""

from __future__ import annotations

import pathlib

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accelsim.collectives import alpha_beta_s, collective_time_s
from accelsim.graph import GraphBuilder, OpGraph
from accelsim.models import build_graph
from accelsim.models.nmt import NMTConfig
from accelsim.pipeline import simulate_step
from accelsim.replay import (
    Collective,
    FairShareServer,
    lower_bound_step_s,
    replay,
)
from accelsim.spec import load_hardware
from accelsim.timing import OpTiming, analytic_traffic, map_op, op_timing
from accelsim.workload import WorkloadSpec

ROOT = pathlib.Path(__file__).parents[1]
HW = load_hardware(ROOT / "hwspecs" / "ppopp19_target.yaml")
HBM_BW = 100.0  # bytes/s in the hand-made timings: round numbers, exact timelines
L2_BW = 400.0


def timing(units: int, compute_s: float = 0.0, hbm_bytes: float = 0.0, waves: int = 1,
           launch_s: float = 0.0, l2_bytes: float = 0.0, hbm_cap: float = HBM_BW,
           overhead_s: float = 0.0) -> OpTiming:
    """An OpTiming built by the timing formula (isolated time consistent with its parts)."""
    bw = {"L2": L2_BW, "HBM": hbm_cap}
    lb = {"L2": l2_bytes, "HBM": hbm_bytes}
    wave = overhead_s + max(compute_s, *(lb[k] / waves / bw[k] for k in bw))
    return OpTiming(launch_s=launch_s, latency_s=0.0, waves=waves, units_used=units,
                    wave_compute_s=compute_s, level_bytes=lb, level_bandwidth=bw,
                    isolated_time_s=launch_s + waves * wave, bound="x", wave_overhead_s=overhead_s)


def graph_of(edges: list[tuple[int, ...]], n: int, weights: int = 0) -> OpGraph:
    """`n` ops; op i reads the outputs of the ops listed in edges[i]."""
    g = GraphBuilder("t")
    outs = []
    for i in range(n):
        ins = [outs[j] for j in edges[i]] or [g.input(f"x{i}", (4,))]
        t = g.tensor(f"y{i}", (4,))
        g.op(f"op{i}", "elementwise", ins, [t], 4.0)
        outs.append(t)
    return g.build()


def test_single_op_takes_exactly_its_isolated_time():
    g = GraphBuilder("one")
    a, b = g.input("a", (512, 2048)), g.weight("b", (2048, 1024))
    g.matmul("mm", a, b)
    graph = g.build()
    op = graph.ops[0]
    mp = map_op(HW, op, "fp32")
    t = op_timing(HW, op, mp, analytic_traffic(HW, op, mp, "fp32"), "fp32")
    res = replay(HW, graph, [t])
    assert res.ops[0].start_s == 0.0
    assert res.ops[0].end_s == pytest.approx(t.isolated_time_s, rel=1e-12)
    assert res.step_time_s == pytest.approx(t.isolated_time_s, rel=1e-12)


@pytest.mark.parametrize("waves", [1, 3, 1000])
def test_single_op_with_many_waves_overheads_and_levels(waves):
    t = timing(80, compute_s=0.01, hbm_bytes=3.0 * waves, l2_bytes=7.0 * waves, waves=waves,
               launch_s=0.5, overhead_s=0.002)
    res = replay(HW, graph_of([()], 1), [t])
    assert res.step_time_s == pytest.approx(t.isolated_time_s, rel=1e-12)
    assert res.bytes_moved["HBM"] == pytest.approx(3.0 * waves)


def test_two_independent_ops_overlap():
    ts = [timing(40, compute_s=2.0), timing(40, compute_s=3.0)]
    res = replay(HW, graph_of([(), ()], 2), ts)
    assert [o.start_s for o in res.ops] == [0.0, 0.0]
    assert [o.end_s for o in res.ops] == [2.0, 3.0]
    assert res.step_time_s == 3.0
    assert res.utilization["compute"] == pytest.approx((40 * 2 + 40 * 3) / 80 / 3.0)


def test_chain_serializes():
    ts = [timing(10, compute_s=1.0), timing(10, compute_s=2.0), timing(10, compute_s=0.5)]
    res = replay(HW, graph_of([(), (0,), (1,)], 3), ts)
    assert [(o.start_s, o.end_s) for o in res.ops] == [(0.0, 1.0), (1.0, 3.0), (3.0, 3.5)]
    assert res.critical_path == [0, 1, 2]


def test_units_are_a_limited_pool():
    ts = [timing(60, compute_s=1.0), timing(60, compute_s=1.0), timing(20, compute_s=1.5)]
    res = replay(HW, graph_of([(), (), ()], 3), ts)
    # op1 does not fit next to op0; op2 backfills the 20 free units
    assert [(o.start_s, o.end_s) for o in res.ops] == [(0.0, 1.0), (1.0, 2.0), (0.0, 1.5)]
    assert res.critical_path == [0, 1]


def test_contention_halves_bandwidth():
    alone = timing(40, hbm_bytes=100.0)  # 1 s alone at 100 B/s
    res = replay(HW, graph_of([(), ()], 2), [alone, alone])
    assert [o.end_s for o in res.ops] == pytest.approx([2.0, 2.0], rel=1e-12)
    assert res.utilization["HBM"] == pytest.approx(1.0)
    assert res.busy_s["HBM"] == pytest.approx(2.0)


def test_contention_respects_per_op_caps_and_late_arrivals():
    # op0 alone could use only 25 B/s; op1 then gets the remaining 75 B/s
    ts = [timing(40, hbm_bytes=50.0, hbm_cap=25.0), timing(40, hbm_bytes=75.0)]
    res = replay(HW, graph_of([(), ()], 2), ts)
    assert [o.end_s for o in res.ops] == pytest.approx([2.0, 1.0], rel=1e-12)
    # a late op shares what is left: op0 alone 0-1 s (100 B), both at 50 B/s afterwards
    ts = [timing(40, hbm_bytes=200.0), timing(10, compute_s=1.0), timing(40, hbm_bytes=50.0)]
    res = replay(HW, graph_of([(), (), (1,)], 3), ts)
    assert res.ops[2].start_s == 1.0
    assert res.ops[2].end_s == pytest.approx(2.0, rel=1e-12)
    assert res.ops[0].end_s == pytest.approx(2.5, rel=1e-12)


def test_compute_overlaps_transfers_within_waves_but_not_across_ops():
    # per wave max(compute, transfer): alone 2 waves x max(1, 0.5) = 2 s. With a memory-bound
    # neighbour (100 B, 1 s alone) each wave's 50 B move at 50 B/s: 1 s, still hidden behind
    # compute; the neighbour gets 50 B/s for 2 s
    a = timing(40, compute_s=1.0, hbm_bytes=100.0, waves=2)
    b = timing(40, hbm_bytes=100.0)
    res = replay(HW, graph_of([(), ()], 2), [a, b])
    assert res.ops[0].end_s == pytest.approx(2.0, rel=1e-12)
    assert res.ops[1].end_s == pytest.approx(2.0, rel=1e-12)
    # with a 2 s compute wave the transfers leave room: the neighbour finishes at 1.5 s
    a = timing(40, compute_s=2.0, hbm_bytes=50.0, waves=1)
    res = replay(HW, graph_of([(), ()], 2), [a, b])
    assert res.ops[0].end_s == pytest.approx(2.0, rel=1e-12)
    assert res.ops[1].end_s == pytest.approx(1.5, rel=1e-12)


def _update_graph() -> OpGraph:
    """Two weights: grads dw0 (op0) then dw1 (op1), updates op2 (w0) and op3 (w1)."""
    g = GraphBuilder("dp")
    w0, w1 = g.weight("w0", (10**7,)), g.weight("w1", (3 * 10**7,))
    x = g.input("x", (10,))
    dw0 = g.tensor("dw0", (10**7,), role="weight_gradient")
    dw1 = g.tensor("dw1", (3 * 10**7,), role="weight_gradient")
    g.op("grad0", "elementwise", [x], [dw0], 1.0)
    g.op("grad1", "elementwise", [x], [dw1], 1.0, deps=(0,))
    g.op("update0", "update", [w0, dw0], [w0], 2.0)
    g.op("update1", "update", [w1, dw1], [w1], 2.0)
    return g.build()


def _allreduce(hw, name: str, nbytes: float, after: int, update: int, chips: int = 4,
               hbm: float = 0.0) -> Collective:
    latency, link = alpha_beta_s(hw, "all_reduce", nbytes, chips)
    return Collective(name=name, kind="all_reduce", group="data", phase="backward",
                      after_op=after, gates=(update,), latency_s=latency, link_s=link,
                      hbm_bytes=hbm)


def test_allreduce_overlaps_backward_and_gates_the_update():
    graph = _update_graph()
    hw = attrs.evolve(HW, interconnect=attrs.evolve(HW.interconnect, latency_s=1e-6))
    ts = [timing(80, compute_s=0.001), timing(80, compute_s=0.002),
          timing(80, compute_s=0.0001), timing(80, compute_s=0.0001)]
    colls = [_allreduce(hw, "w0", 4e7, 0, 2), _allreduce(hw, "w1", 1.2e8, 1, 3)]
    res = replay(hw, graph, ts, collectives=colls, chips=4)
    ar = {a.name: a for a in res.collectives}
    t0 = collective_time_s(hw, "all_reduce", 4e7, 4)  # 1.5 ms: hidden behind grad1 (2 ms)
    t1 = collective_time_s(hw, "all_reduce", 1.2e8, 4)  # 4.6 ms: exposed after the last grad
    assert ar["w0"].start_s == pytest.approx(0.001)
    assert ar["w0"].end_s == pytest.approx(0.001 + t0, rel=1e-9)  # alone on the links
    assert ar["w0"].start_s < res.ops[1].end_s  # overlaps grad1
    assert ar["w1"].start_s == pytest.approx(0.003)
    assert res.ops[2].start_s == pytest.approx(max(0.003, ar["w0"].end_s), rel=1e-9)
    assert res.ops[3].start_s == pytest.approx(max(res.ops[2].end_s, 0.003 + t1), rel=1e-9)
    one = replay(hw, graph, ts)
    assert one.collectives == [] and one.step_time_s == pytest.approx(0.0032)
    assert res.step_time_s > one.step_time_s


def test_collective_takes_hbm_bandwidth_from_compute():
    """By hand: an op streams 100 B of HBM at its cap of 100 B/s (the HBM rate): alone 1 s.
    A collective starting with it needs 1 s of links and 50 B of HBM (cap 50 B/s, its pace
    alone). Max-min fair share of 100 B/s: the collective gets its 50, the op the other 50;
    at 1 s the collective is done (50 B, links done too) and the op has 50 B left, alone at
    100 B/s: it ends at 1.5 s. Without the HBM bytes the collective costs the op nothing."""
    ts = [timing(80, hbm_bytes=100.0)]
    graph = graph_of([()], 1)
    coll = Collective(name="g", kind="all_gather", group="tensor", phase="forward",
                      after_op=-1, gates=(), latency_s=0.0, link_s=1.0, hbm_bytes=50.0)
    res = replay(HW, graph, ts, collectives=[coll])
    assert res.collectives[0].end_s == pytest.approx(1.0)
    assert res.ops[0].end_s == pytest.approx(1.5)
    assert res.bytes_moved["HBM"] == pytest.approx(150.0)
    free = replay(HW, graph, ts, collectives=[attrs.evolve(coll, hbm_bytes=0.0)])
    assert free.ops[0].end_s == pytest.approx(1.0) and free.step_time_s == pytest.approx(1.0)
    assert free.bytes_moved["links"] == pytest.approx(HW.interconnect.bandwidth_bytes_per_s
                                                      * HW.calibration.link_efficiency)


def test_gated_consumer_waits_for_the_collective_and_collectives_share_the_links():
    """op0 (1 s) then op1 (1 s), a tensor collective after op0 that op1 needs: latency 0.1 s,
    0.4 s of links. Two such collectives at once share the links: 0.8 s for both."""
    ts = [timing(10, compute_s=1.0), timing(10, compute_s=1.0)]
    graph = graph_of([(), (0,)], 2)
    coll = Collective(name="a", kind="all_reduce", group="tensor", phase="forward",
                      after_op=0, gates=(1,), latency_s=0.1, link_s=0.4, hbm_bytes=0.0)
    res = replay(HW, graph, ts, collectives=[coll])
    assert res.ops[1].start_s == pytest.approx(1.5) and res.step_time_s == pytest.approx(2.5)
    two = replay(HW, graph, ts, collectives=[coll, attrs.evolve(coll, name="b")])
    assert [c.end_s for c in two.collectives] == pytest.approx([1.9, 1.9])
    assert two.ops[1].start_s == pytest.approx(1.9)


@st.composite
def dags_with_collectives(draw):
    edges, ts = draw(random_dags())
    n = len(ts)
    colls = []
    for k in range(draw(st.integers(0, 4))):
        after = draw(st.integers(-1, n - 1))
        later = [i for i in range(n) if i > after] if after >= 0 else []
        gates = tuple(sorted(draw(st.sets(st.sampled_from(later), max_size=2)))) if later \
            else ()
        colls.append(Collective(name=f"c{k}", kind="all_reduce", group="data", phase="forward",
                                after_op=after, gates=gates,
                                latency_s=draw(st.floats(0, 0.5)),
                                link_s=draw(st.floats(0, 2)), hbm_bytes=draw(st.floats(0, 300))))
    return edges, ts, colls


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dags_with_collectives())
def test_collectives_conserve_bytes_and_never_run_faster_than_alone(case):
    edges, ts, colls = case
    graph = graph_of(edges, len(ts))
    res = replay(HW, graph, ts, collectives=colls)
    eps = 1e-9
    assert len(res.collectives) == len(colls)
    # every byte of every op and collective crosses HBM once; the links carry each one's time
    hbm = sum(t.level_bytes["HBM"] for t in ts) + sum(c.hbm_bytes for c in colls)
    assert res.bytes_moved["HBM"] == pytest.approx(hbm, rel=1e-9, abs=1e-9)
    if colls:
        rate = HW.interconnect.bandwidth_bytes_per_s * HW.calibration.link_efficiency
        assert res.bytes_moved["links"] == pytest.approx(sum(c.link_s for c in colls) * rate,
                                                         rel=1e-9, abs=1e-6)
    by_name = {c.name: c for c in res.collectives}
    for c in colls:
        rec = by_name[c.name]
        assert rec.duration_s >= c.alone_s * (1 - eps) - eps
        if c.after_op >= 0:
            assert rec.start_s >= res.ops[c.after_op].end_s - eps
        for g in c.gates:
            assert res.ops[g].start_s >= rec.end_s - eps
    for rec, t in zip(res.ops, ts, strict=True):
        assert rec.duration_s >= t.isolated_time_s * (1 - eps) - eps
    assert res.step_time_s >= max((r.end_s for r in res.collectives), default=0.0) - eps


def test_fair_share_server_alone_and_shared():
    import simpy

    env = simpy.Environment()
    srv = FairShareServer(env, "x", 10.0)
    done = {}

    def job(name, delay, nbytes, cap=None):
        yield env.timeout(delay)
        yield srv.transfer(nbytes, cap)
        done[name] = env.now

    env.process(job("a", 0.0, 30.0))
    env.process(job("b", 1.0, 10.0, cap=2.0))
    env.run()
    # a: 10 B in 0-1 s; then b capped at 2, a at 8: a's last 20 B take 2.5 s; b: 5 B by 3.5 s,
    # then alone at its cap 2 B/s: 5 B more take 2.5 s
    assert done["a"] == pytest.approx(3.5)
    assert done["b"] == pytest.approx(6.0)
    assert srv.busy_s == pytest.approx(6.0)


@st.composite
def random_dags(draw):
    n = draw(st.integers(1, 12))
    edges = [tuple(sorted(draw(st.sets(st.integers(0, i - 1), max_size=3)))) if i else ()
             for i in range(n)]
    ts = [timing(draw(st.integers(1, 80)), compute_s=draw(st.floats(0, 2)),
                 hbm_bytes=draw(st.floats(0, 300)), l2_bytes=draw(st.floats(0, 300)),
                 waves=draw(st.integers(1, 20)), launch_s=draw(st.floats(0, 0.1)))
          for _ in range(n)]
    return edges, ts


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_dags())
def test_schedule_properties(case):
    edges, ts = case
    graph = graph_of(edges, len(ts))
    res = replay(HW, graph, ts)
    eps = 1e-9
    longest = [0.0] * len(ts)
    for i, (rec, t) in enumerate(zip(res.ops, ts, strict=True)):
        assert rec.duration_s >= t.isolated_time_s * (1 - eps) - eps  # contention only slows down
        for p in edges[i]:
            assert rec.start_s >= res.ops[p].end_s - eps
        longest[i] = t.isolated_time_s + max((longest[p] for p in edges[i]), default=0.0)
    assert res.step_time_s >= max(longest) * (1 - eps) - eps
    # units never oversubscribed
    for rec in res.ops:
        busy = sum(o.units for o in res.ops if o.start_s <= rec.start_s < o.end_s)
        assert busy <= HW.compute.units
    # no level moves bytes faster than its full bandwidth (up to the absolute tolerance of the
    # other checks: replay counts a transfer within 1e-15 s of done as done, found by hypothesis
    # with subnormal byte counts)
    for name in ("L2", "HBM"):
        total = sum(t.level_bytes[name] for t in ts)
        assert res.step_time_s >= total / max(t.level_bandwidth[name] for t in ts) * (1 - eps) - eps
    assert res.critical_path and res.critical_path[-1] == max(
        range(len(ts)), key=lambda i: res.ops[i].end_s)


def _nmt(hidden: int, seq: int, batch: int) -> OpGraph:
    return build_graph(WorkloadSpec(name="nmt", subbatch=batch, model=NMTConfig(
        hidden=hidden, vocab=300, sequence_length=seq)))


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(16, 96), st.integers(2, 3), st.integers(2, 16), st.sampled_from([1, 4]))
def test_simulated_step_never_beats_the_roofline(hidden, seq, batch, chips):
    graph = _nmt(hidden, seq, batch)
    res = simulate_step(HW, graph, "fp32", chips=chips)
    assert res.step_time_s >= lower_bound_step_s(HW, graph, "fp32")
    assert res.step_time_s >= max(o.isolated_time_s for o in res.ops)
    assert len(res.ops) == len(graph.ops)
    assert res.traffic.cache is not None and res.traffic.cache.mode_used == "exact"


def test_simulate_step_memoizes_and_reports():
    graph = _nmt(64, 4, 8)
    res = simulate_step(HW, graph, "fp32", chips=2)
    cells = [o for o in res.ops if o.name.endswith("/cell/matmul")]
    assert len(cells) == 4
    timings = {id(t) for t, o in zip(res.timing.timings, res.ops, strict=True)
               if o.name.startswith("decoder/t") and o.name.endswith("/cell/matmul")}
    assert len(timings) < 4  # repeated timesteps share a timing object
    assert res.step_time_s == max(o.end_s for o in res.ops)  # no collectives given
    s = res.replayed.summary()
    assert s["step_time_s"] == res.step_time_s and "HBM" in s["utilization"]
    assert {"mapping", "trace", "timing", "replay"} <= set(res.wall_s)
