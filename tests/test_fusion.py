"""Gradient accumulation fused into GEMM epilogues: same FLOPs, fewer bytes, in-place buffer."""

import numpy as np

from accelsim.fusion import fuse_gemm_accumulate
from accelsim.models.common import Net


def _rnn_graph(steps: int = 4):
    net = Net("rnn")
    w = net.weight("w", (16, 16))
    h = net.input("h0", (8, 16))
    for t in range(steps):
        h = net.unary(f"tanh{t}", "tanh", net.matmul(f"mm{t}", h, w))
    net.softmax_cross_entropy("loss", h, net.input("labels", (8,), dtype="int32"))
    net.backward()
    net.update("sgd")
    return net.build()


def test_accumulations_fold_into_weight_gradient_gemms():
    graph = _rnn_graph(4)
    fused, n = fuse_gemm_accumulate(graph)
    assert n == 3  # 4 contributions: the first starts the sum, 3 adds fold into GEMMs
    assert fused.flops == graph.flops
    assert len(fused.ops) == len(graph.ops) - 3
    acc = [op for op in fused.ops if op.accumulate]
    assert len(acc) == 3 and all(op.kind == "gemm" and len(op.inputs) == 3 for op in acc)
    assert not any(op.tag == "accumulate" for op in fused.ops)
    # each fused GEMM no longer writes a per-timestep gradient: 2 x 1 KiB fewer bytes per fold
    w_bytes = 16 * 16 * 4
    assert graph.bytes_accessed - fused.bytes_accessed == 3 * 2 * w_bytes
    assert fused.minimal_footprint_bytes() <= graph.minimal_footprint_bytes()
    # every op still reads only tensors produced earlier (or graph inputs / weights)
    for i, op in enumerate(fused.ops):
        for t in op.inputs:
            p = fused.producer(t)
            assert p is None or p < i or fused.tensors[t].persistent


def test_fused_gemm_reads_its_addend_and_accumulates_in_place():
    from accelsim.trace_layout import allocate
    from accelsim.trace_runs import epilogue_reads

    graph, _ = fuse_gemm_accumulate(_rnn_graph(3))
    bases = allocate(graph, 256).bases
    for op in graph.ops:
        if op.accumulate:
            assert bases[op.outputs[0]] == bases[op.inputs[2]]
    addr = np.array([0, 100, 200], np.int64)
    nbytes = np.array([10, 10, 10], np.int64)
    is_write = np.array([0, 0, 1], np.uint8)
    unit = np.zeros(3, np.int32)
    a, nb, w, _u = epilogue_reads(addr, nbytes, is_write, unit, c_base=200, d_base=5000)
    assert a.tolist() == [0, 100, 5000, 200]
    assert w.tolist() == [0, 0, 0, 1]
    assert nb.tolist() == [10, 10, 10, 10]


# --- recurrent weight gradients as one GEMM over all timesteps (issue 9) ----------------------
def _lstm_graph(steps: int = 5, layers: int = 2):
    from accelsim.models.common import embedding_steps, lstm_layer

    net = Net("lstm")
    xs = embedding_steps(net, "emb", 50, 16, 4, steps)
    for layer in range(layers):
        xs = lstm_layer(net, f"lstm{layer}", xs, 16)
    top = net.concat("collapse", xs, axis=0)
    logits = net.matmul("out", top, net.weight("out/kernel", (16, 50)))
    net.softmax_cross_entropy("loss", logits, net.input("labels", (4 * steps,), dtype="int32"))
    net.backward()
    net.update("sgd")
    return net.build()


def test_recurrent_weight_gradient_runs_as_one_gemm_and_conserves_flops():
    from accelsim.fusion import execute, stack_recurrent_weight_gradients

    steps, layers = 5, 2
    graph = _lstm_graph(steps, layers)
    stacked, removed = stack_recurrent_weight_gradients(graph)
    assert removed == layers * (steps - 1)
    assert stacked.flops == graph.flops  # the algorithmic FLOPs, GEMMs and adds together
    big = [op for op in stacked.ops if op.k_segments > 1]
    assert len(big) == layers
    for op in big:
        assert op.k_segments == steps and op.k == steps * 4 and (op.m, op.n) == (32, 64)
        a_stack, b_stack = op.contiguous
        assert sum(stacked.tensors[t].nbytes for t in a_stack) == op.m * op.k * 4
        assert sum(stacked.tensors[t].nbytes for t in b_stack) == op.n * op.k * 4
    # the executed graph is smaller: each of T GEMMs and T-1 adds becomes one GEMM
    assert len(stacked.ops) == len(graph.ops) - 2 * layers * (steps - 1)
    # the weight gradient is written once instead of read and written every timestep
    assert stacked.bytes_accessed < fuse_gemm_accumulate(graph)[0].bytes_accessed
    for i, op in enumerate(stacked.ops):
        for t in op.inputs:
            p = stacked.producer(t)
            assert p is None or p < i or stacked.tensors[t].persistent
    lib, counts = execute(graph, "library")
    fw, fw_counts = execute(graph, "framework")
    assert counts["stacked_weight_gradients"] == removed
    assert fw_counts["stacked_weight_gradients"] == 0
    assert fw_counts["fused_accumulations"] == layers * (steps - 1)
    assert lib.flops == fw.flops == graph.flops
    assert len(lib.ops) < len(fw.ops)


def test_stacked_operands_are_stored_contiguously():
    from accelsim.fusion import stack_recurrent_weight_gradients
    from accelsim.trace_layout import allocate

    graph, _ = stack_recurrent_weight_gradients(_lstm_graph(4, 1))
    align = 256
    bases = allocate(graph, align).bases
    seen = set()
    for op in graph.ops:
        for stack in op.contiguous:
            at = bases[stack[0]]
            for t in stack:
                assert bases[t] == at
                at += -(-graph.tensors[t].nbytes // align) * align
            seen.add(stack)
    assert len(seen) == 2
    # no other live tensor overlaps a stack while the stack is in use
    spans = sorted((int(bases[t]), int(bases[t]) + graph.tensors[t].nbytes, t)
                   for stack in seen for t in stack)
    for (_, end, _), (start, _, _) in zip(spans, spans[1:], strict=False):
        assert end <= start


def test_shared_stack_and_models_keep_flops():
    """The RHN reads one state with two kernels (one stack for both); every recurrent model's
    executed graph keeps the algorithmic FLOPs and is smaller under library execution."""
    from accelsim.fusion import execute
    from accelsim.models import build_graph
    from accelsim.models.char_lm import CharLMConfig
    from accelsim.models.nmt import NMTConfig
    from accelsim.models.word_lm import WordLMConfig
    from accelsim.workload import WorkloadSpec

    for model in (CharLMConfig(hidden=8, recurrence_depth=2, vocab=10, sequence_length=4),
                  NMTConfig(hidden=8, vocab=20, sequence_length=4),
                  WordLMConfig(hidden=8, vocab=20, sequence_length=4)):
        graph = build_graph(WorkloadSpec(name="t", model=model, subbatch=2))
        lib, counts = execute(graph, "library")
        fw, _ = execute(graph, "framework")
        assert lib.flops == fw.flops == graph.flops
        assert counts["stacked_weight_gradients"] > 0 and len(lib.ops) < len(fw.ops)


def test_recurrent_input_gemms_are_hoisted_out_of_the_loop():
    from accelsim.fusion import execute, hoist_recurrent_input_gemms
    from accelsim.trace_layout import allocate

    steps, layers, hidden, batch = 5, 2, 16, 4
    graph = _lstm_graph(steps, layers)
    hoisted, n = hoist_recurrent_input_gemms(graph)
    assert n == layers
    assert hoisted.flops == graph.flops
    assert len(hoisted.ops) == len(graph.ops) + layers
    big = [op for op in hoisted.ops if op.name.endswith("input_gemm/all_timesteps")]
    assert [(op.m, op.n, op.k) for op in big] == [(steps * batch, 4 * hidden, hidden)] * layers
    per_step = [op for op in hoisted.ops if op.b_row_offset]
    assert len(per_step) == layers * steps
    for op in per_step:  # only the recurrent rows of the kernel, plus the hoisted slice
        assert (op.m, op.n, op.k, op.b_row_offset) == (batch, 4 * hidden, hidden, hidden)
        assert op.accumulate and len(op.inputs) == 3
        hoist = next(h for h in big if op.inputs[2] in h.outputs)
        assert hoist.id < op.id and op.inputs[1] == hoist.inputs[1]
    for i, op in enumerate(hoisted.ops):
        for t in op.inputs:
            p = hoisted.producer(t)
            assert p is None or p < i or hoisted.tensors[t].persistent
    # stacked inputs and the slices they produce are stored contiguously
    bases = allocate(hoisted, 256).bases
    for op in big:
        for stack in op.contiguous:
            sizes = [-(-hoisted.tensors[t].nbytes // 256) * 256 for t in stack]
            assert [int(bases[t]) for t in stack] == [int(bases[stack[0]]) + sum(sizes[:j])
                                                        for j in range(len(stack))]
    lib, counts = execute(graph, "library")
    assert counts["hoisted_input_gemms"] == layers and lib.flops == graph.flops


def test_decoder_fed_its_attention_is_not_hoisted():
    """An input that depends on the previous timestep (input feeding) cannot be hoisted."""
    from accelsim.fusion import hoist_recurrent_input_gemms
    from accelsim.models import build_graph
    from accelsim.models.nmt import NMTConfig
    from accelsim.workload import WorkloadSpec

    graph = build_graph(WorkloadSpec(name="t", subbatch=2,
                                     model=NMTConfig(hidden=8, vocab=20, sequence_length=4)))
    hoisted, n = hoist_recurrent_input_gemms(graph)
    assert n == 2  # the encoder's forward and backward LSTMs, not the decoder
    names = [op.name for op in hoisted.ops if op.name.endswith("input_gemm/all_timesteps")]
    assert all(name.startswith("encoder/") for name in names)


def test_partitioned_stages_keep_stacked_operands_contiguous():
    """A parallel plan's per-chip graphs renumber tensors; the stacks follow (issue 9 x 8)."""
    from accelsim.fusion import execute
    from accelsim.partition import partition
    from accelsim.plan import ParallelPlan
    from accelsim.trace_layout import allocate

    graph, counts = execute(_lstm_graph(5, 2))
    assert counts["stacked_weight_gradients"] and counts["hoisted_input_gemms"]
    for plan in (ParallelPlan(data=1, pipeline=2), ParallelPlan(data=1, tensor=2)):
        part = partition(graph, plan, subbatch=4)
        for st in part.stages:
            g = st.graph
            bases = allocate(g, 256).bases
            groups = [grp for op in g.ops for grp in op.contiguous]
            assert groups
            for op in g.ops:
                for grp in op.contiguous:
                    assert set(grp) <= {*op.inputs, *op.outputs}
            for grp in groups:
                at = int(bases[grp[0]])
                for t in grp:
                    assert int(bases[t]) == at
                    at += -(-g.tensors[t].nbytes // 256) * 256
