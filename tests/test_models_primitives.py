"""Net primitives: shapes, FLOPs and bytes of single ops, hand-checked."""

from __future__ import annotations

import pytest

from accelsim.models.common import NORM_FLOPS, NORM_GRAD_FLOPS, Net


def _ops(net: Net, prefix: str):
    return [op for op in net.g.ops if op.name.startswith(prefix)]


def test_conv2d_is_implicit_gemm_forward_and_backward() -> None:
    net = Net("t")
    x = net.requires_grad(net.input("x", (2, 8, 8, 3)))
    w = net.weight("w", (3, 3, 3, 16))
    y = net.conv2d("conv", x, w, stride=2)
    assert y.shape == (2, 4, 4, 16)
    net.softmax_cross_entropy("loss", net.reshape("flat", y, (2, 256)), net.input("l", (2,)))
    net.backward()
    fwd, = _ops(net, "conv")[:1]
    assert (fwd.kind, fwd.m, fwd.n, fwd.k) == ("gemm", 2 * 4 * 4, 16, 3 * 3 * 3)
    assert fwd.flops == 2 * 32 * 16 * 27
    by_name = {op.name: op for op in net.g.ops}
    gi, gf = by_name["conv/grad_input"], by_name["conv/grad_filter"]
    assert (gi.m, gi.n, gi.k, gi.flops) == (32, 27, 16, fwd.flops)
    assert (gf.m, gf.n, gf.k, gf.flops) == (27, 16, 32, fwd.flops)
    assert net.g.tensors[gi.outputs[0]].shape == x.shape
    assert net.g.tensors[gf.outputs[0]].shape == w.shape


def test_conv2d_rejects_channel_mismatch() -> None:
    net = Net("t")
    with pytest.raises(ValueError, match="channels"):
        net.conv2d("c", net.input("x", (1, 4, 4, 3)), net.weight("w", (1, 1, 4, 8)))


def test_split_is_one_op_reading_its_input_once() -> None:
    net = Net("t")
    x = net.input("x", (4, 40))
    parts = net.split("s", x, [10, 10, 20])
    assert [p.shape for p in parts] == [(4, 10), (4, 10), (4, 20)]
    (op,) = _ops(net, "s")
    g = net.build()
    assert g.op_bytes(op) == 2 * 4 * 40 * 4


def test_gather_bytes_are_ids_plus_twice_the_rows() -> None:
    net = Net("t")
    table = net.weight("emb", (1000, 16))
    ids = net.input("ids", (3, 5), dtype="int32")
    out = net.gather("g", table, ids)
    g = net.build()
    assert g.op_bytes(g.ops[0]) == ids.nbytes + 2 * out.nbytes


def test_max_pool_and_normalize_flops() -> None:
    net = Net("t")
    x = net.input("x", (2, 8, 8, 4))
    y = net.max_pool("p", x, 3, 2)
    assert y.shape == (2, 4, 4, 4)
    assert net.g.ops[-1].flops == y.elements * 9
    z = net.normalize("bn", x, net.weight("g", (4,)), net.weight("b", (4,)))
    assert net.g.ops[-1].flops == NORM_FLOPS * z.elements
    net.softmax_cross_entropy("loss", net.reshape("flat", z, (2, 256)), net.input("l", (2,)))
    net.backward()
    names = {op.name: op for op in net.g.ops}
    assert names["bn/grad_gamma"].flops == 2 * x.elements
    assert names["bn/grad_beta"].flops == x.elements
    assert "bn/grad_x" not in names          # x is a graph input: no gradient
    assert NORM_GRAD_FLOPS == 5.0


def test_broadcast_mul_reduces_its_gradient() -> None:
    net = Net("t")
    a = net.requires_grad(net.input("a", (3, 7, 5)))
    w = net.weight("w", (5,))
    c = net.mul("m", a, w)
    net.softmax_cross_entropy("loss", net.reshape("flat", c, (3, 35)), net.input("l", (3,)))
    net.backward()
    net.update("sgd")
    update = [op for op in net.g.ops if op.phase == "update"]
    (upd,) = update
    assert net.g.tensors[upd.inputs[1]].shape == (5,)
