"""The partition pass: FLOPs conserved, per-chip bytes add up, stages never add weight;
plans as specs with located errors; infeasible plans are never timed without --force."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim import spec
from accelsim.errors import AccelsimError, SpecError
from accelsim.fusion import fuse_gemm_accumulate
from accelsim.models import build_graph
from accelsim.partition import op_layers, partition
from accelsim.plan import ParallelPlan


def _word_lm(hidden: int, layers: int, vocab: int, steps: int, batch: int, optimizer: str = "sgd"):
    return spec.workload_from_yaml(
        f"name: w\nmodel: {{family: word_lm, hidden: {hidden}, layers: {layers}, vocab: {vocab},"
        f" sequence_length: {steps}}}\nsubbatch: {batch}\noptimizer: {optimizer}\n"
        "dataset: {samples: 1e6, unit: words}\n")


def _executed(wl):
    return fuse_gemm_accumulate(build_graph(wl))[0]


def _role_bytes(graph, role: str) -> int:
    return sum(t.nbytes for t in graph.tensors if t.role == role and graph._used(t))


@st.composite
def models_and_plans(draw):
    layers = draw(st.integers(1, 3))
    hidden = 8 * draw(st.integers(1, 3))
    vocab = 960  # divisible by every shard count drawn below (pipeline x tensor <= 5 x 8)
    batch = 4 * draw(st.integers(1, 2))
    wl = _word_lm(hidden, layers, vocab, draw(st.integers(2, 3)), batch,
                  draw(st.sampled_from(["sgd", "momentum", "adam"])))
    pp = draw(st.integers(1, layers + 2))
    tp = draw(st.sampled_from([1, 2, 4, 8]))
    shard = pp * tp > 1 and draw(st.booleans())
    plan = ParallelPlan(data=draw(st.integers(1, 3)), pipeline=pp, tensor=tp,
                        shard_embedding=shard)
    return wl, plan


@settings(max_examples=40, deadline=None)
@given(models_and_plans())
def test_flops_conserved_and_bytes_add_up(case):
    wl, plan = case
    graph = _executed(wl)
    part = partition(graph, plan, subbatch=wl.subbatch)
    dp = plan.data
    # every chip's FLOPs together: the replica's once per replica (sizes divide evenly), plus
    # the ops each tensor-parallel chip repeats whole (biases' updates, whole-tensor ops)
    tp = plan.tensor
    assert part.total_flops == pytest.approx(
        dp * (graph.flops + (tp - 1) * part.replicated_flops), rel=1e-12)
    assert part.replicated_flops <= 0.05 * graph.flops
    # against one chip running the global batch, the split adds what each extra replica
    # repeats whatever its batch: at least its weight updates, never more than its whole step
    global_flops = build_graph(attrs.evolve(wl, subbatch=wl.subbatch * dp)).flops
    part = partition(graph, plan, subbatch=wl.subbatch, reference_flops=global_flops)
    assert ((dp - 1) * part.update_flops - 1e-6 <= part.overhead_flops
            <= (dp - 1) * graph.flops + dp * (tp - 1) * part.replicated_flops + 1e-6)
    assert part.total_flops == pytest.approx(part.reference_flops + part.overhead_flops)
    # weights, their gradients and optimizer state: each replica holds one copy of every
    # matrix; each tensor-parallel chip holds the vectors (biases) whole
    vectors = sum(t.nbytes for t in graph.tensors if t.role == "weight" and len(t.shape) < 2
                  and graph._used(t) and any(op.kind == "update" and op.inputs[0] == t.id
                                             for op in graph.ops))
    per_replica = sum(_role_bytes(s.graph, "weight") * tp for s in part.stages)
    assert per_replica == _role_bytes(graph, "weight") + (tp - 1) * vectors
    for role in ("weight_gradient", "optimizer_state"):
        per_replica = sum(_role_bytes(s.graph, role) * tp for s in part.stages)
        assert _role_bytes(graph, role) <= per_replica <= (
            _role_bytes(graph, role) + (tp - 1) * vectors * 2), role
    assert sum(s.chips for s in part.stages) == plan.chips()


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.sampled_from([16, 48, 400]))
def test_more_stages_never_increase_a_chips_weights(layers, hidden_mult, vocab):
    wl = _word_lm(8 * hidden_mult, layers, vocab, 2, 4)
    graph = _executed(wl)
    n_layers = len(op_layers(graph)[0])
    most = []
    for pp in range(1, n_layers + 1):
        part = partition(graph, ParallelPlan(data=1, pipeline=pp), subbatch=4)
        most.append(max(_role_bytes(s.graph, "weight") for s in part.stages))
    assert all(b <= a for a, b in zip(most, most[1:], strict=False)), most


def test_word_lm_layers_and_the_timestep_schedule():
    graph = _executed(_word_lm(16, 2, 48, 3, 4))
    part = partition(graph, ParallelPlan(data=1, pipeline=4), subbatch=4)
    assert [s.layers for s in part.stages] == [("embedding",), ("lstm0",), ("lstm1",),
                                               ("softmax",)]
    assert part.schedule == "timestep" and part.chunks == 3
    # stage 1 sends one [batch, hidden] activation per timestep forward to stage 2 (4 x 16 x 4 B)
    sends = [t for t in part.stages[1].transfers if t.kind == "send" and t.phase == "forward"]
    assert {t.to_stage for t in sends} == {2} and {t.nbytes for t in sends} == {256.0}
    assert len(sends) == 3 and all(t.per_chunk for t in sends)


def test_plan_errors_are_located():
    wl = _word_lm(16, 2, 48, 3, 4)
    graph = _executed(wl)
    with pytest.raises(AccelsimError, match=r"at most 4 stages .*embedding, lstm0, lstm1, softmax"):
        partition(graph, ParallelPlan(data=1, pipeline=5), subbatch=4)
    with pytest.raises(AccelsimError, match=r"does not divide --chips 6"):
        ParallelPlan(pipeline=4).resolve(6)
    with pytest.raises(AccelsimError, match=r"= 8 chips, but --chips is 4"):
        ParallelPlan(data=2, pipeline=4).resolve(4)
    with pytest.raises(SpecError) as exc:
        spec.workload_from_yaml(
            "name: w\nmodel: {family: word_lm, hidden: 16, vocab: 48}\nsubbatch: 4\n"
            "parallel:\n  pipeline: 2\n  tensor: 3\n", "w.yaml")
    assert str(exc.value) == ("w.yaml:6:11: parallel.tensor: expected a tensor degree that "
                              "divides the model's hidden (16), got 3")
    with pytest.raises(SpecError, match=r"^--plan pp=two: pipeline: expected an integer"):
        spec.plan_from_option("pp=two")


def test_cli_rejects_bad_plans_with_exit_2(tmp_path, repo, capsys):
    from accelsim.cli import main

    wl = tmp_path / "w.yaml"
    wl.write_text("name: w\nmodel: {family: word_lm, hidden: 16, vocab: 48, sequence_length: 2}\n"
                  "subbatch: 4\n")
    hw = str(repo / "hwspecs/ppopp19_target.yaml")
    torus = tmp_path / "torus.yaml"
    torus.write_text((repo / "hwspecs/ppopp19_target.yaml").read_text().replace(
        "topology: ring", "topology: torus2d\n  torus_shape: [2, 3]"))
    cases = [
        (["run", hw, str(wl), "--plan", "pp=9"], "at most 4 stages"),
        (["run", hw, str(wl), "--plan", "tp=3"], "divides the model's hidden (16)"),
        (["run", hw, str(wl), "--chips", "6", "--plan", "pp=4"], "does not divide --chips 6"),
        (["run", str(torus), str(wl), "--chips", "8", "--plan", "dp=8"], "holds 6 chips, not 8"),
        (["run", hw, str(wl), "--plan", "dp=2,dp=3"], "given twice"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)


def test_infeasible_plan_is_never_timed_without_force(repo):
    import accelsim

    hw = accelsim.load_hardware(repo / "hwspecs/ppopp19_target.yaml")
    small = attrs.evolve(hw, memory=attrs.evolve(hw.memory, capacity_bytes=30_000))
    wl = _word_lm(16, 2, 48, 2, 4)
    report = accelsim.simulate(small, wl, plan="dp=2")
    par = report.parallel
    assert not par.fits and not par.timed and not par.forced
    assert report.ops == () and report.summary.epoch_time_s is None
    assert par.verdict.startswith("does not fit") and "not timed" in par.verdict
    assert all(s.shortfall_bytes == max(0, s.footprint_bytes - 30_000) for s in par.stages)
    assert report.text().splitlines()[1].startswith("verdict: does not fit")  # under the header
    forced = accelsim.simulate(small, wl, plan="dp=2", force=True)
    assert forced.parallel.forced and forced.summary.step_time_s > 0
    assert "TIMED ANYWAY" in forced.parallel.verdict
    # splitting the layers over 4 stages makes each fit
    staged = accelsim.simulate(small, wl, plan="dp=1,pp=4")
    assert staged.parallel.fits and all(s.footprint_bytes <= 30_000
                                       for s in staged.parallel.stages)


def test_plan_step_composes_stage_replays(repo):
    import accelsim

    hw = accelsim.load_hardware(repo / "hwspecs/ppopp19_target.yaml")
    wl = _word_lm(32, 2, 64, 3, 8)
    one = accelsim.simulate(hw, wl)
    dp = accelsim.simulate(hw, wl, plan="dp=4")
    # data parallel: the replica's compute plus what all-reduce could not hide
    assert dp.summary.step_time_s >= one.summary.step_time_s * (1 - 1e-9)
    assert dp.parallel.exposed_comm_s + dp.parallel.hidden_comm_s == pytest.approx(
        dp.parallel.comm_time_s)
    assert dp.summary.samples_per_step == 4 * one.summary.samples_per_step
    pp = accelsim.simulate(hw, wl, plan="dp=1,pp=4")
    assert 0 < pp.parallel.bubble_fraction < 1
    assert pp.to_dict()["schema_version"] == 2 and pp.to_dict()["parallel"]["pipeline"] == 4


def test_check_rejects_what_run_would(tmp_path, capsys):
    from accelsim.cli import main

    wl = tmp_path / "w.yaml"
    wl.write_text("name: w\nmodel: {family: word_lm, hidden: 16, vocab: 48, sequence_length: 2}\n"
                  "subbatch: 4\nparallel: {pipeline: 5}\n")
    assert main(["check", str(wl)]) == 2
    assert "parallel.pipeline: expected at most 4 stages" in capsys.readouterr().err
    wl.write_text(wl.read_text().replace("pipeline: 5", "pipeline: 4, shard_embedding: true"))
    assert main(["check", str(wl)]) == 0


def test_one_chip_that_does_not_fit_is_not_timed_unless_forced(repo):
    import accelsim

    hw = accelsim.load_hardware(repo / "hwspecs/ppopp19_target.yaml")
    small = attrs.evolve(hw, memory=attrs.evolve(hw.memory, capacity_bytes=30_000))
    wl = _word_lm(16, 2, 48, 2, 4)
    report = accelsim.simulate(small, wl)
    assert report.parallel is not None and not report.parallel.timed and report.ops == ()
    assert "chips' memory would hold it" in report.parallel.verdict
    forced = accelsim.simulate(small, wl, force=True)
    assert forced.parallel is None and forced.summary.step_time_s > 0
    assert forced.notes[0].startswith("DOES NOT FIT")
    fits = accelsim.simulate(hw, wl)  # fits: the single-chip report, unchanged
    assert fits.parallel is None and not any("DOES NOT FIT" in n for n in fits.notes)
    assert fits.summary.step_time_s == pytest.approx(forced.summary.step_time_s)


def test_offload_moves_bytes_to_the_host_and_costs_host_link_time(repo):
    import accelsim

    hw = accelsim.load_hardware(repo / "hwspecs/ppopp19_target.yaml")
    link = attrs.evolve(hw.interconnect, host_bandwidth_bytes_per_s=16e9)
    small = attrs.evolve(hw, interconnect=link,
                         memory=attrs.evolve(hw.memory, capacity_bytes=900_000))
    wl = _word_lm(64, 2, 512, 3, 8, optimizer="adam")
    plain = accelsim.simulate(small, wl, plan="dp=1")
    assert not plain.parallel.fits
    both = accelsim.simulate(small, wl, plan="dp=1,offload=optimizer_state/weights")
    stage = both.parallel.stages[0]
    # Adam's two moments leave the chip entirely, weights but two layers' worth
    on_chip = plain.parallel.stages[0].footprint_bytes
    assert stage.footprint_bytes + stage.host_bytes == on_chip
    assert stage.footprint_by_role["optimizer_state"] == 0 and both.parallel.fits
    # the update reads and writes the moments and writes back the weights over the link
    forced = accelsim.simulate(small, wl, plan="dp=1", force=True)
    assert both.summary.step_time_s > forced.summary.step_time_s
    assert stage.host_transfer_s > 0
    with pytest.raises(AccelsimError, match="host_bandwidth"):
        accelsim.simulate(hw, wl, plan="dp=1,offload=weights")
    # the host memory is a capacity too
    tight = attrs.evolve(small, interconnect=attrs.evolve(link, host_memory_bytes=1000))
    assert not accelsim.simulate(tight, wl, plan="dp=1,offload=optimizer_state").parallel.fits


def test_topology_changes_a_plans_communication(repo):
    import accelsim

    hw = accelsim.load_hardware(repo / "hwspecs/ppopp19_target.yaml")
    wl = _word_lm(32, 2, 64, 2, 8)
    comm = {}
    for topo in ("ring", "switch", "fully_connected"):
        ic = attrs.evolve(hw.interconnect, topology=topo, links=7)
        report = accelsim.simulate(attrs.evolve(hw, interconnect=ic), wl, plan="dp=8")
        comm[topo] = report.parallel.comm_time_s
    assert len(set(comm.values())) == 3, comm
    assert comm["fully_connected"] < comm["ring"]  # one step instead of 2 (p-1) latencies


def test_feed_forward_schedules_bubble_and_kept_activations(repo):
    import accelsim

    hw = accelsim.load_hardware(repo / "hwspecs/ppopp19_target.yaml")
    wl = spec.workload_from_yaml(
        "name: t\nmodel: {family: transformer, layers: 4, width: 32, heads: 2, vocab: 64, "
        "sequence_length: 4}\nsubbatch: 8\n")
    gpipe = accelsim.simulate(hw, wl, plan="dp=1,pp=2,schedule=gpipe,microbatches=8")
    ofob = accelsim.simulate(hw, wl, plan="dp=1,pp=2,schedule=1f1b,microbatches=8")
    assert gpipe.parallel.schedule == "gpipe" and gpipe.parallel.chunks == 8
    # same bubble; 1F1B keeps at most (pipeline - stage) of the 8 microbatches' activations
    assert gpipe.summary.step_time_s == pytest.approx(ofob.summary.step_time_s)
    for g, o in zip(gpipe.parallel.stages, ofob.parallel.stages, strict=True):
        kept = (2 - g.index) / 8
        assert o.footprint_by_role["activation"] == int(g.footprint_by_role["activation"] * kept)
    # fewer microbatches, a larger bubble: (S-1)/(M+S-1) for equal stages
    few = accelsim.simulate(hw, wl, plan="dp=1,pp=2,schedule=gpipe,microbatches=2")
    assert few.parallel.bubble_fraction > gpipe.parallel.bubble_fraction
    with pytest.raises(AccelsimError, match="at most the subbatch"):
        accelsim.simulate(hw, wl, plan="dp=1,pp=2,microbatches=9")


def test_retimed_pipeline_matches_the_timestep_formula_by_hand():
    """Two stages of three 1 s timesteps each (a chain), stage 1's timestep t reads stage 0's.
    Send 0.5 s (faster than a timestep): stage 1 ends at f0 + c + f1 + (K-1) max(f, c) =
    1 + 0.5 + 1 + 2 = 4.5 s. Send 1.5 s (slower; one stage's sends go one at a time): the sends
    pace the pipeline: 1 + 1.5 + 1 + 2 x 1.5 = 6.5 s."""
    from accelsim.parallel import PipelineSend, retime_stages

    chain = [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
    preds = [[[], [0], [1]], [[], [0], [1]]]
    for send, end in ((0.5, 4.5), (1.5, 6.5)):
        sends = [PipelineSend(0, t, 1, send, (t,)) for t in range(3)]
        new = retime_stages([chain, chain], preds, sends)
        assert new[0] == chain  # the first stage waits for nothing
        assert new[1][-1][1] == pytest.approx(end)
        assert all(b - a == pytest.approx(1.0) for a, b in new[1])  # durations kept
    # an op reading a whole sequence (a hoisted GEMM, attention memory) waits for all of it
    whole = [PipelineSend(0, t, 1, 0.5, (0,)) for t in range(3)]
    new = retime_stages([chain, chain], preds, whole)
    assert new[1][0][0] == pytest.approx(3.5) and new[1][-1][1] == pytest.approx(6.5)
    # ops independent of the received tensor keep their replayed times
    new = retime_stages([chain, [(0.0, 1.0), (0.0, 2.0)]], [[[], [0], [1]], [[], []]],
                        [PipelineSend(0, 2, 1, 0.5, (0,))])
    assert new[1] == [(3.5, 4.5), (0.0, 2.0)]


@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
def test_microbatch_schedules_by_hand(schedule):
    """S stages of equal f = b = 1 s and free sends end at (M + S - 1)(f + b) under both
    GPipe and 1F1B (the bubble (S-1)/(M+S-1)). S = 2, M = 2 by hand: stage 1 runs F0 1-2,
    then (GPipe) F1 2-3, B1 3-4, B0 4-5 or (1F1B) B0 2-3, F1 3-4, B1 4-5; stage 0's last
    backward waits for stage 1's: 5-6."""
    from accelsim.parallel import microbatch_schedule

    assert microbatch_schedule([1.0, 1.0], [1.0, 1.0], [0.0], [0.0], 2, schedule) == [6.0, 5.0]
    for n, m in ((3, 4), (4, 8), (2, 1)):
        ends = microbatch_schedule([1.0] * n, [1.0] * n, [0.0] * (n - 1), [0.0] * (n - 1), m,
                                   schedule)
        assert ends[0] == pytest.approx((m + n - 1) * 2.0)
    # a send of 0.5 s each way on one boundary adds it once per direction to the critical path
    ends = microbatch_schedule([1.0, 1.0], [1.0, 1.0], [0.5], [0.5], 2, schedule)
    assert ends[0] == pytest.approx(7.0)
    # a slow last stage (f = b = 2 s) paces the pipeline: stage 0 ends at f0 + M (f1 + b1) + b0
    ends = microbatch_schedule([1.0, 2.0], [1.0, 2.0], [0.0], [0.0], 3, schedule)
    assert ends[0] == pytest.approx(1.0 + 3 * 4.0 + 1.0)


@pytest.mark.parametrize("pp", [3, 5])
def test_nmt_pipeline_edges_follow_the_graph(pp, repo):
    """The cross-stage dependencies are the executed graph's own (producer before consumer),
    so the op-by-op pipeline always schedules (NMT's in-place gradient sums, written in two
    stages, once made sends matched by tensor name wait on themselves)."""
    import accelsim
    from accelsim import pipeline as pl
    from accelsim.plan import ParallelPlan

    wl = spec.workload_from_yaml("name: t\nmodel: {family: nmt, hidden: 16, vocab: 48, "
                                 "sequence_length: 3}\nsubbatch: 4\n")
    executed = pl.prepare(wl).executed
    part = partition(executed, ParallelPlan(data=1, pipeline=pp), subbatch=4)
    assert part.edges and all(e.from_stage != e.to_stage for e in part.edges)
    names = [[op.name for op in st.graph.ops] for st in part.stages]
    index = {op.name: op.id for op in executed.ops}
    assert all(index[names[e.from_stage][e.from_op]] < index[names[e.to_stage][e.to_op]]
               for e in part.edges)
    hw = accelsim.load_hardware(repo / "hwspecs/ppopp19_target.yaml")
    report = accelsim.simulate(hw, wl, plan=f"dp=2,pp={pp}")
    assert report.parallel.timed and 0 < report.parallel.bubble_fraction < 1
