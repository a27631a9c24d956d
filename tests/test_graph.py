"""Hand-checkable op graphs: FLOPs, bytes and the minimal-footprint walk."""

import pytest

from accelsim.graph import GraphBuilder
from accelsim.models.common import Net, dense


def test_matmul_counts_and_shapes():
    g = GraphBuilder("t")
    a, b = g.input("a", (4, 3)), g.weight("b", (3, 5))
    c = g.matmul("mm", a, b)
    graph = g.build()
    assert c.shape == (4, 5)
    op = graph.ops[0]
    assert (op.m, op.n, op.k, op.flops) == (4, 5, 3, 2 * 4 * 5 * 3)
    assert graph.op_bytes(op) == 4 * (12 + 15 + 20)


def test_matmul_rejects_mismatched_inner_dims():
    g = GraphBuilder("t")
    with pytest.raises(ValueError, match="inner dimensions"):
        g.matmul("mm", g.input("a", (4, 3)), g.weight("b", (4, 5)))


def test_minimal_footprint_frees_after_last_consumer():
    # x(100 B) -> y = f(x) (100 B) -> z = f(y) (100 B); x is an input, live from the start.
    g = GraphBuilder("t")
    x = g.input("x", (25,))
    y = g.pointwise("f", [x])
    g.pointwise("g", [y])
    graph = g.build()
    # op f: x + y live = 200; x freed after f. op g: y + z = 200; the peak is 200.
    assert list(graph.live_bytes_profile()) == [200, 200]
    assert graph.minimal_footprint_bytes() == 200
    assert graph.total_footprint_bytes == 300


def test_autodiff_dense_layer_backward_and_update():
    net = Net("t")
    x = net.input("x", (8, 16))
    y = dense(net, "fc", x, 4)
    net.softmax_cross_entropy("loss", y, net.input("labels", (8,), dtype="int32"))
    net.backward()
    net.update("momentum")
    graph = net.build()
    kinds = [(op.phase, op.kind) for op in graph.ops]
    assert ("backward", "gemm") in kinds and ("update", "update") in kinds
    gemms = [op for op in graph.ops if op.kind == "gemm"]
    # forward x@W, backward dW = x^T @ dy (x needs no gradient, so no dx GEMM)
    assert [(op.m, op.n, op.k) for op in gemms] == [(8, 4, 16), (16, 4, 8)]
    assert graph.params == 16 * 4 + 4
    updates = [op for op in graph.ops if op.kind == "update"]
    assert sum(op.flops for op in updates) == 4 * graph.params  # momentum: 4 FLOPs/param
    roles = graph.footprint_by_role()
    assert roles["optimizer_state"] == roles["weight"]  # one momentum buffer per weight


def test_recurrent_weight_gradient_is_one_running_buffer():
    net = Net("t")
    w = net.weight("w", (4, 4))
    h = net.input("h0", (2, 4))
    for t in range(5):
        h = net.unary(f"tanh{t}", "tanh", net.matmul(f"mm{t}", h, w))
    net.softmax_cross_entropy("loss", h, net.input("labels", (2,), dtype="int32"))
    net.backward()
    graph = net.build()
    grads = [op for op in graph.ops if op.name.startswith("grad/w/accumulate")]
    assert len(grads) == 4  # 5 contributions, summed as they arrive
