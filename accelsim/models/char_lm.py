"""Character language model: a recurrent highway network (RHN, Zilly et al. 2017).

The structure of the TensorFlow model Catamount analysed: an embedding [v, h]; one RHN layer of
recurrence depth L, whose every micro-step l has a transform sublayer h_l = tanh(.) and a gate
t_l = sigmoid(.), each with its own kernel and bias; the first micro-step sees [x_t, s] (kernels
[2h, h]), the rest see s alone ([h, h]); the state update is s = h_l*t_l + s*(1 - t_l) (coupled
carry gate). Then the softmax layer W [v, h] (transposed) with bias [v], and two scalar
bookkeeping variables: 22h^2 + 2hv + 20h + v + 2 parameters at depth 10.
"""

from __future__ import annotations

import attrs

from accelsim.graph import OpGraph
from accelsim.models.common import Net, embedding_steps, language_model_step
from accelsim.models.registry import register
from accelsim.schema import field
from accelsim.workload import MAX_DEPTH, MAX_STEPS, MAX_VOCAB, MAX_WIDTH, WorkloadSpec


@attrs.frozen
class CharLMConfig:
    """Hyperparameters of the RHN character language model."""

    hidden: int = field(minimum=1, maximum=MAX_WIDTH,
        doc="RHN state width h (also the embedding width)")
    recurrence_depth: int = field(default=10, minimum=1, maximum=MAX_DEPTH,
        doc="micro-steps L per character")
    vocab: int = field(default=98, minimum=1, maximum=MAX_VOCAB, doc="character vocabulary size v")
    sequence_length: int = field(default=150, minimum=1, maximum=MAX_STEPS,
        doc="unrolled characters per example")

    def params_formula(self) -> int:
        """Closed-form parameter count (equals the graph's)."""
        h, v, depth = self.hidden, self.vocab, self.recurrence_depth
        rhn = 2 * (2 * h * h + h) + (depth - 1) * 2 * (h * h + h)
        return v * h + rhn + h * v + v + 2

    def samples_per_example(self) -> int:
        """Characters consumed per example: one per unrolled step."""
        return self.sequence_length


@register("char_lm", CharLMConfig)
def build(cfg: CharLMConfig, wl: WorkloadSpec) -> OpGraph:
    """Embedding, one deep RHN layer, softmax layer and cross-entropy loss."""
    h, v, b, steps = cfg.hidden, cfg.vocab, wl.subbatch, cfg.sequence_length
    net = Net("char_lm", wl.precision)
    net.bookkeeping("global_step")
    net.bookkeeping("learning_rate")
    xs = embedding_steps(net, "embedding", v, h, b, steps)
    sub = []
    for micro in range(cfg.recurrence_depth):
        fan_in = 2 * h if micro == 0 else h
        sub.append(tuple(net.weight(f"rhn/{kind}_{micro}/{part}", shape)
                         for kind in ("h", "t")
                         for part, shape in (("kernel", (fan_in, h)), ("bias", (h,)))))
    state = net.input("rhn/s0", (b, h))
    outputs = []
    for t in range(steps):
        for micro, (wh, bh, wt, bt) in enumerate(sub):
            name = f"rhn/t{t}/l{micro}"
            inp = net.concat(f"{name}/concat", [xs[t], state]) if micro == 0 else state
            hh = net.unary(f"{name}/h_tanh", "tanh", net.add(
                f"{name}/h_bias", net.matmul(f"{name}/h_matmul", inp, wh), bh))
            tt = net.unary(f"{name}/t_sigmoid", "sigmoid", net.add(
                f"{name}/t_bias", net.matmul(f"{name}/t_matmul", inp, wt), bt))
            carry = net.unary(f"{name}/carry", "one_minus", tt)
            state = net.add(f"{name}/state", net.mul(f"{name}/transform", hh, tt),
                            net.mul(f"{name}/keep", state, carry))
        outputs.append(state)
    top = net.concat("collapse", outputs, axis=0)  # [steps*b, h]
    return language_model_step(net, top, v, h, b, steps, wl.optimizer)
