"""Layers written once, forward only; the backward pass is derived from a tape.

A model builder calls forward primitives on a `Net` (matmul, pointwise, concat, ...). Each
primitive appends its forward op and records how to differentiate it. `Net.backward(loss)`
replays the tape in reverse, emitting the gradient ops (two GEMMs per matmul, SigmoidGrad,
TanhGrad, ...), summing a tensor's gradient contributions as they arrive (a running add, as a
framework's loop gradient does, so a recurrent weight's gradient is one buffer, not one per
timestep). `Net.update(optimizer)` appends the weight-update ops. FLOP constants per element
are Catamount's (docs/counting.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from accelsim.graph import GraphBuilder, OpGraph, Tensor
from accelsim.workload import OPTIMIZER_FLOPS_PER_PARAM, OPTIMIZER_STATE_PER_PARAM

#: FLOPs per output element of forward pointwise functions and of their gradients.
POINTWISE_FLOPS = {"sigmoid": 4.0, "tanh": 6.0, "relu": 1.0, "add": 1.0, "mul": 1.0,
                   "identity": 0.0, "exp": 1.0, "rsqrt": 2.0, "gelu": 8.0, "scale": 1.0,
                   "one_minus": 1.0}
GRAD_FLOPS = {"sigmoid": 3.0, "tanh": 3.0, "relu": 1.0, "exp": 1.0, "gelu": 8.0,
              "identity": 0.0, "scale": 1.0, "one_minus": 1.0}
#: Functions whose gradient needs only the incoming gradient (y = a*x + c), not the output.
LINEAR_FNS = ("scale", "one_minus")
#: FLOPs per element of a normalization (mean, variance, normalize, scale, shift) and of its
#: gradient with respect to the input (TF's FusedBatchNorm / layer norm, as counted here).
NORM_FLOPS = 5.0
NORM_GRAD_FLOPS = 5.0


class Net:
    """Forward primitives with recorded gradients over a `GraphBuilder`."""

    def __init__(self, name: str, dtype: str = "fp32") -> None:
        self.g = GraphBuilder(name, dtype)
        self._tape: list[Callable[[], None]] = []
        self._grads: dict[int, Tensor] = {}
        self._needs_grad: set[int] = set()
        self.weights: list[Tensor] = []

    # --- tensors -----------------------------------------------------------------------------
    def weight(self, name: str, shape: Sequence[int]) -> Tensor:
        w = self.g.weight(name, shape)
        self.weights.append(w)
        self._needs_grad.add(w.id)
        return w

    def input(self, name: str, shape: Sequence[int], dtype: str | None = None) -> Tensor:
        return self.g.input(name, shape, dtype)

    def requires_grad(self, t: Tensor) -> Tensor:
        """Mark a graph input as differentiated (TF computes the stem's input gradient too)."""
        self._needs_grad.add(t.id)
        return t

    def _track(self, out: Tensor, *inputs: Tensor) -> bool:
        if any(t.id in self._needs_grad for t in inputs):
            self._needs_grad.add(out.id)
            return True
        return False

    # --- gradient bookkeeping ------------------------------------------------------------------
    def _accumulate(self, target: Tensor, grad: Tensor) -> None:
        """Add a gradient contribution for `target` (a running sum: one buffer per tensor)."""
        if target.id not in self._needs_grad:
            return
        prev = self._grads.get(target.id)
        if prev is None:
            self._grads[target.id] = grad
        else:
            role = _grad_role(target)
            self._grads[target.id] = self.g.pointwise(
                f"grad/{target.name}/accumulate", [prev, grad], 1.0, out_role=role,
                tag="accumulate")

    def _sum_to(self, name: str, grad: Tensor, target: Tensor) -> Tensor:
        """Reduce a broadcast operand's gradient to its shape (1 FLOP per input element)."""
        return self.g.pointwise(name, [grad], grad.elements / max(1, target.elements),
                                shape=target.shape, out_role=_grad_role(target), kind="reduce")

    def _grad_of(self, t: Tensor) -> Tensor | None:
        return self._grads.pop(t.id, None)

    # --- forward primitives ----------------------------------------------------------------
    def matmul(self, name: str, a: Tensor, b: Tensor, *, trans_b: bool = False) -> Tensor:
        """C = A @ op(B); backward: dA = dC @ op(B)^T, dB = A^T @ dC (dB^T when trans_b)."""
        c = self.g.matmul(name, a, b, trans_b=trans_b)
        if self._track(c, a, b):
            def back() -> None:
                dc = self._grad_of(c)
                if dc is None:
                    return
                if a.id in self._needs_grad:
                    self._accumulate(a, self.g.matmul(f"{name}/grad_a", dc, b,
                                                      trans_b=not trans_b, out_role="gradient"))
                if b.id in self._needs_grad:
                    role = _grad_role(b)
                    db = (self.g.matmul(f"{name}/grad_b", dc, a, trans_a=True, out_role=role)
                          if trans_b else
                          self.g.matmul(f"{name}/grad_b", a, dc, trans_a=True, out_role=role))
                    self._accumulate(b, db)
            self._tape.append(back)
        return c

    def reshape(self, name: str, x: Tensor, shape: Sequence[int]) -> Tensor:
        """A view with another shape (no FLOPs); backward reshapes the gradient back."""
        if math.prod(shape) != x.elements:
            raise ValueError(f"{name}: cannot reshape {x.shape} to {tuple(shape)}")
        y = self.g.data(name, [x], shape)
        if self._track(y, x):
            def back() -> None:
                dy = self._grad_of(y)
                if dy is not None:
                    self._accumulate(x, self.g.data(f"{name}/grad", [dy], x.shape,
                                                    out_role="gradient"))
            self._tape.append(back)
        return y

    def unary(self, name: str, fn: str, x: Tensor) -> Tensor:
        """y = fn(x); backward: dx = fnGrad(y, dy)."""
        y = self.g.pointwise(name, [x], POINTWISE_FLOPS[fn])
        if self._track(y, x):
            def back() -> None:
                dy = self._grad_of(y)
                if dy is not None and fn != "identity":
                    ins = [dy] if fn in LINEAR_FNS else [y, dy]
                    self._accumulate(x, self.g.pointwise(f"{name}/grad", ins,
                                                         GRAD_FLOPS[fn], out_role="gradient"))
                elif dy is not None:
                    self._accumulate(x, dy)
            self._tape.append(back)
        return y

    def mul(self, name: str, a: Tensor, b: Tensor) -> Tensor:
        """Elementwise product, `b` may broadcast; backward: da = dc*b, db = sum(dc*a)."""
        c = self.g.pointwise(name, [a, b], 1.0, shape=a.shape)
        if self._track(c, a, b):
            def back() -> None:
                dc = self._grad_of(c)
                if dc is None:
                    return
                if a.id in self._needs_grad:
                    self._accumulate(a, self.g.pointwise(f"{name}/grad_a", [dc, b], 1.0,
                                                         out_role="gradient"))
                if b.id in self._needs_grad:
                    db = self.g.pointwise(f"{name}/grad_b", [dc, a], 1.0,
                                          out_role=_grad_role(b))
                    if b.shape != a.shape:
                        db = self._sum_to(f"{name}/grad_b_sum", db, b)
                    self._accumulate(b, db)
            self._tape.append(back)
        return c

    def add(self, name: str, a: Tensor, b: Tensor) -> Tensor:
        """Elementwise sum, `b` may broadcast over leading dims (a bias): its grad is a reduce."""
        c = self.g.pointwise(name, [a, b], 1.0, shape=a.shape)
        if self._track(c, a, b):
            def back() -> None:
                dc = self._grad_of(c)
                if dc is None:
                    return
                self._accumulate(a, dc)
                if b.id in self._needs_grad:
                    self._accumulate(b, dc if b.shape == a.shape
                                     else self._sum_to(f"{name}/grad_b", dc, b))
            self._tape.append(back)
        return c

    def concat(self, name: str, parts: Sequence[Tensor], axis: int = -1) -> Tensor:
        """Concatenate along `axis`; backward splits the gradient (data movement only)."""
        shape = list(parts[0].shape)
        shape[axis] = sum(p.shape[axis] for p in parts)
        out = self.g.data(name, parts, shape)
        if self._track(out, *parts):
            def back() -> None:
                dout = self._grad_of(out)
                if dout is None:
                    return
                for i, p in enumerate(parts):
                    if p.id in self._needs_grad:
                        self._accumulate(p, self.g.data(f"{name}/grad_split{i}", [dout], p.shape,
                                                                 out_role="gradient"))
            self._tape.append(back)
        return out

    def split(self, name: str, x: Tensor, sizes: Sequence[int], axis: int = -1) -> list[Tensor]:
        """Split along `axis` in one op (reads the input once, as TF's Split); backward concats."""
        outs = []
        for i, size in enumerate(sizes):
            shape = list(x.shape)
            shape[axis] = size
            outs.append(self.g.tensor(f"{name}:out{i}", shape))
        self.g.op(name, "data", [x], outs, 0.0)
        if self._track(outs[0], x):
            for o in outs[1:]:
                self._needs_grad.add(o.id)

            def back() -> None:
                grads = [self._grad_of(o) for o in outs]
                present = [d for d in grads if d is not None]
                if present:
                    self._accumulate(x, self.g.data(f"{name}/grad_concat", present, x.shape,
                                                    out_role="gradient"))
            self._tape.append(back)
        return outs

    def gather(self, name: str, table: Tensor, ids: Tensor) -> Tensor:
        """Embedding lookup; backward scatters rows into the table's gradient.

        Bytes follow Catamount's Gather: the ids plus twice the rows copied (read and written),
        not the whole table.
        """
        out = self.g.tensor(f"{name}:out", (*ids.shape, table.shape[-1]))
        self.g.op(name, "data", [table, ids], [out], 0.0,
                  extra_bytes=out.nbytes - table.nbytes)
        if self._track(out, table):
            def back() -> None:
                dout = self._grad_of(out)
                if dout is not None:
                    self._accumulate(table, self.g.pointwise(
                        f"{name}/grad", [dout, ids], 1.0, shape=table.shape,
                        out_role="weight_gradient", kind="data"))
            self._tape.append(back)
        return out

    def softmax(self, name: str, x: Tensor) -> Tensor:
        """Softmax over the last axis (3 FLOPs/element); backward 4 FLOPs/element."""
        y = self.g.pointwise(name, [x], 3.0, kind="softmax")
        if self._track(y, x):
            def back() -> None:
                dy = self._grad_of(y)
                if dy is not None:
                    self._accumulate(x, self.g.pointwise(f"{name}/grad", [y, dy], 4.0,
                                                         out_role="gradient", kind="softmax"))
            self._tape.append(back)
        return y

    def reduce_sum(self, name: str, x: Tensor, shape: Sequence[int]) -> Tensor:
        """Sum down to `shape` (1 FLOP per input element); backward broadcasts."""
        y = self.g.pointwise(name, [x], x.elements / max(1, math.prod(shape)), shape=shape,
                             kind="reduce")
        if self._track(y, x):
            def back() -> None:
                dy = self._grad_of(y)
                if dy is not None:
                    self._accumulate(x, self.g.pointwise(f"{name}/grad", [dy], 0.0, shape=x.shape,
                                                         out_role="gradient", kind="data"))
            self._tape.append(back)
        return y

    def softmax_cross_entropy(self, name: str, logits: Tensor, labels: Tensor) -> Tensor:
        """Fused sparse softmax + cross-entropy; its gradient (p - onehot) is made in forward.

        3 FLOPs per logit (exp, sum, divide: Catamount's SparseSoftmaxCrossEntropyWithLogits).
        The backward pass scales that gradient by the loss's incoming gradient, one multiply
        per logit, as TF's gradient of the op does.
        """
        n = logits.elements
        loss = self.g.tensor(f"{name}:loss", logits.shape[:-1])
        grad = self.g.tensor(f"{name}:grad", logits.shape, role="gradient")
        self.g.op(name, "softmax", [logits, labels], [loss, grad], 3.0 * n)
        if self._track(loss, logits):
            def back() -> None:
                self._accumulate(logits, self.g.pointwise(f"{name}/grad_scale", [grad, loss],
                                                          1.0, shape=grad.shape,
                                                          out_role="gradient"))
            self._tape.append(back)
        return loss

    def conv2d(self, name: str, x: Tensor, w: Tensor, stride: int = 1,
               padding: str = "same") -> Tensor:
        """NHWC convolution lowered to its implicit GEMM (m = N*Ho*Wo, n = C_out, k = C_in*kh*kw).

        Backward: the data gradient (m = N*Ho*Wo, n = C_in*kh*kw, k = C_out, col2im form) and the
        filter gradient (m = C_in*kh*kw, n = C_out, k = N*Ho*Wo), each with the forward's FLOPs,
        as Catamount counts Conv2DBackpropInput/Filter. No data gradient for graph inputs.
        """
        n_img, height, width, c_in = x.shape
        kh, kw, wc_in, c_out = w.shape
        if wc_in != c_in:
            raise ValueError(f"{name}: filter expects {wc_in} channels, input has {c_in}")
        if padding == "same":
            out_h, out_w = -(-height // stride), -(-width // stride)
        else:
            out_h, out_w = (height - kh) // stride + 1, (width - kw) // stride + 1
        m, n, k = n_img * out_h * out_w, c_out, c_in * kh * kw
        y = self.g.tensor(f"{name}:out", (n_img, out_h, out_w, c_out))
        self.g.op(name, "gemm", [x, w], [y], 2.0 * m * n * k, m=m, n=n, k=k)
        if self._track(y, x, w):
            def back() -> None:
                dy = self._grad_of(y)
                if dy is None:
                    return
                if x.id in self._needs_grad:
                    dx = self.g.tensor(f"{name}/grad_input:out", x.shape, role="gradient")
                    self.g.op(f"{name}/grad_input", "gemm", [dy, w], [dx], 2.0 * m * n * k,
                              m=m, n=k, k=n, trans_b=True)
                    self._accumulate(x, dx)
                if w.id in self._needs_grad:
                    dw = self.g.tensor(f"{name}/grad_filter:out", w.shape,
                                       role="weight_gradient")
                    self.g.op(f"{name}/grad_filter", "gemm", [x, dy], [dw], 2.0 * m * n * k,
                              m=k, n=n, k=m, trans_a=True)
                    self._accumulate(w, dw)
            self._tape.append(back)
        return y

    def max_pool(self, name: str, x: Tensor, size: int, stride: int) -> Tensor:
        """NHWC max pooling, 'same' padding: output_elements * kernel_area FLOPs (Catamount)."""
        n_img, height, width, c = x.shape
        shape = (n_img, -(-height // stride), -(-width // stride), c)
        y = self.g.pointwise(name, [x], size * size, shape=shape, kind="reduce")
        if self._track(y, x):
            def back() -> None:
                dy = self._grad_of(y)
                if dy is not None:
                    self._accumulate(x, self.g.pointwise(
                        f"{name}/grad", [x, y, dy], dy.elements * size * size / x.elements,
                        shape=x.shape, out_role="gradient", kind="reduce"))
            self._tape.append(back)
        return y

    def normalize(self, name: str, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        """Batch or layer norm with scale `gamma` and shift `beta` (per channel/feature).

        Forward NORM_FLOPS per element; backward one fused op for the input gradient and one
        reduction each for gamma and beta, as TF's FusedBatchNormGrad emits.
        """
        y = self.g.pointwise(name, [x, gamma, beta], NORM_FLOPS, shape=x.shape)
        if self._track(y, x, gamma, beta):
            def back() -> None:
                dy = self._grad_of(y)
                if dy is None:
                    return
                if x.id in self._needs_grad:
                    self._accumulate(x, self.g.pointwise(f"{name}/grad_x", [x, gamma, dy],
                                                         NORM_GRAD_FLOPS, out_role="gradient"))
                for p in (gamma, beta):
                    if p.id in self._needs_grad:
                        role = _grad_role(p)
                        ins = [dy, x] if p is gamma else [dy]
                        self._accumulate(p, self.g.pointwise(
                            f"{name}/grad_{'gamma' if p is gamma else 'beta'}", ins,
                            len(ins) * dy.elements / max(1, p.elements), shape=p.shape,
                            out_role=role, kind="reduce"))
            self._tape.append(back)
        return y

    # --- backward and update ---------------------------------------------------------------
    def backward(self) -> None:
        """Emit the backward pass: the tape in reverse (the loss gradients are already seeded)."""
        self.g.phase = "backward"
        for back in reversed(self._tape):
            back()
        self._tape.clear()

    def update(self, optimizer: str) -> None:
        """Emit one update op per weight (SGD 2, momentum 4, Adam 12 FLOPs per parameter)."""
        self.g.phase = "update"
        flops = OPTIMIZER_FLOPS_PER_PARAM[optimizer]
        for w in self.weights:
            dw = self._grads.pop(w.id, None)
            if dw is None:
                continue
            state = [self.g.tensor(f"{w.name}/{optimizer}_state{i}", w.shape,
                                   role="optimizer_state")
                     for i in range(OPTIMIZER_STATE_PER_PARAM[optimizer])]
            # In-place update: the op reads and writes the weight and its state.
            self.g.op(f"update/{w.name}", "update", [w, dw, *state], [w, *state],
                      flops * w.elements)

    def bookkeeping(self, name: str) -> Tensor:
        """A scalar variable the framework keeps (global step, learning rate): counted among the
        parameters, as Catamount counts every variable, but never trained."""
        return self.g.weight(name, (1,))

    def build(self) -> OpGraph:
        return self.g.build()


def _grad_role(t: Tensor) -> str:
    """The role of a gradient of `t`: weight gradients are kept apart in footprints."""
    return "weight_gradient" if t.role == "weight" else "gradient"


# --- layers ----------------------------------------------------------------------------------
def dense(net: Net, name: str, x: Tensor, units: int, *, bias: bool = True,
          activation: str | None = None) -> Tensor:
    """x @ W (+ b) (then activation), W of shape [in, units]."""
    w = net.weight(f"{name}/kernel", (x.shape[-1], units))
    y = net.matmul(f"{name}/matmul", x, w)
    if bias:
        y = net.add(f"{name}/bias_add", y, net.weight(f"{name}/bias", (units,)))
    if activation:
        y = net.unary(f"{name}/{activation}", activation, y)
    return y


def lstm_weights(net: Net, name: str, input_size: int, hidden: int) -> tuple[Tensor, Tensor]:
    """Kernel [input+hidden, 4*hidden] and bias [4*hidden] of one LSTM cell."""
    return (net.weight(f"{name}/kernel", (input_size + hidden, 4 * hidden)),
            net.weight(f"{name}/bias", (4 * hidden,)))


def lstm_cell(net: Net, name: str, x: Tensor, h: Tensor, c: Tensor, kernel: Tensor,
              bias: Tensor, output: str = "h") -> tuple[Tensor, Tensor]:
    """One LSTM timestep (TensorFlow's BasicLSTMCell): returns (h', c'); `output` names the
    op producing h' (an LSTMP cell projects it: its `m`)."""
    hidden = c.shape[-1]  # the cell's width (h is narrower in an LSTMP cell)
    xh = net.concat(f"{name}/concat", [x, h])
    z = net.add(f"{name}/bias_add", net.matmul(f"{name}/matmul", xh, kernel), bias)
    i, j, f, o = net.split(f"{name}/split", z, [hidden] * 4)
    f = net.unary(f"{name}/forget_bias", "identity", f)
    c_new = net.add(f"{name}/c_add",
                    net.mul(f"{name}/c_forget", c, net.unary(f"{name}/f_sigmoid", "sigmoid", f)),
                    net.mul(f"{name}/c_input", net.unary(f"{name}/i_sigmoid", "sigmoid", i),
                            net.unary(f"{name}/j_tanh", "tanh", j)))
    h_new = net.mul(f"{name}/{output}", net.unary(f"{name}/c_tanh", "tanh", c_new),
                    net.unary(f"{name}/o_sigmoid", "sigmoid", o))
    return h_new, c_new


def lstm_layer(net: Net, name: str, xs: Sequence[Tensor], hidden: int, *,
               reverse: bool = False) -> list[Tensor]:
    """Unrolled LSTM over timesteps `xs` ([batch, input] each); returns h per timestep."""
    batch, input_size = xs[0].shape
    kernel, bias = lstm_weights(net, name, input_size, hidden)
    h = net.input(f"{name}/h0", (batch, hidden))
    c = net.input(f"{name}/c0", (batch, hidden))
    order = range(len(xs) - 1, -1, -1) if reverse else range(len(xs))
    hs: list[Tensor] = [h] * len(xs)
    for t in order:
        h, c = lstm_cell(net, f"{name}/t{t}", xs[t], h, c, kernel, bias)
        hs[t] = h
    return hs


def language_model_step(net: Net, top: Tensor, vocab: int, width: int, batch: int, steps: int,
                        optimizer: str) -> OpGraph:
    """The shared tail of the language models: a softmax over `vocab` of the collapsed
    outputs `top` [steps*batch, width], cross-entropy against token labels, then the derived
    backward pass and the weight update; the finished step graph."""
    logits = net.add("softmax/bias_add",
                     net.matmul("softmax/matmul", top, net.weight("softmax/kernel", (vocab, width)),
                                trans_b=True),
                     net.weight("softmax/bias", (vocab,)))
    net.softmax_cross_entropy("loss", logits, net.input("labels", (batch, steps), dtype="int32"))
    net.backward()
    net.update(optimizer)
    return net.build()


def embedding_steps(net: Net, name: str, vocab: int, width: int, batch: int,
                    steps: int) -> list[Tensor]:
    """Embedding table [vocab, width] looked up for `steps` timesteps of token ids."""
    table = net.weight(f"{name}/table", (vocab, width))
    ids = net.input(f"{name}/ids", (batch, steps), dtype="int32")
    emb = net.gather(f"{name}/lookup", table, ids)
    return net.split(f"{name}/unstack", net.reshape(f"{name}/reshape", emb,
                                                    (batch, steps * width)), [width] * steps)
