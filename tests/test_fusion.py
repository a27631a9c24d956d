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
