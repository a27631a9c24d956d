"""Decoder-only transformer language model (GPT-2/GPT-3 style), for modern comparisons.

Token and learned position embeddings; `layers` pre-norm blocks of multi-head causal attention
(fused QKV projection [d, 3d] + bias, per-head scores and context as batched GEMMs over
batch*heads, output projection [d, d] + bias) and an MLP ([d, ffn] + bias, GELU, [ffn, d] + bias),
each with a residual add and a layer norm; a final layer norm; logits through the (tied) token
embedding; softmax cross-entropy. Parameters: vd + Sd + L(12d^2 + 13d) + 2d for ffn = 4d, tied.
Counting follows the same rules as the paper's models (docs/counting.md); the causal mask is
counted as one FLOP per score element and the score scaling as another.
"""

from __future__ import annotations

import attrs

from accelsim.graph import OpGraph, Tensor
from accelsim.models.common import Net
from accelsim.models.registry import register
from accelsim.schema import field
from accelsim.workload import MAX_DEPTH, MAX_STEPS, MAX_VOCAB, MAX_WIDTH, WorkloadSpec


@attrs.frozen
class TransformerConfig:
    """Hyperparameters of the decoder-only transformer LM."""

    layers: int = field(minimum=1, maximum=MAX_DEPTH, doc="transformer blocks L")
    width: int = field(minimum=1, maximum=MAX_WIDTH,
        doc="model width d (embedding and residual stream)")
    heads: int = field(minimum=1, maximum=MAX_WIDTH, doc="attention heads (must divide width)")
    sequence_length: int = field(default=2048, minimum=1, maximum=MAX_STEPS,
        doc="context length S in tokens")
    vocab: int = field(default=50257, minimum=1, maximum=MAX_VOCAB, doc="token vocabulary size v")
    ffn: int | None = field(default=None, minimum=1, maximum=MAX_WIDTH,
        doc="MLP hidden width (default 4*width)")
    tied_embeddings: bool = field(default=True, doc="reuse the token embedding for the logits")

    def __attrs_post_init__(self) -> None:
        if self.width % self.heads:
            raise ValueError(f"heads: expected a divisor of width {self.width}, got {self.heads}")

    @property
    def ffn_width(self) -> int:
        return self.ffn or 4 * self.width

    def params_formula(self) -> int:
        """Closed-form parameter count (equals the graph's)."""
        d, f, v, s = self.width, self.ffn_width, self.vocab, self.sequence_length
        block = 4 * d * d + 4 * d + 2 * d * f + f + d + 4 * d
        return v * d + s * d + self.layers * block + 2 * d + (0 if self.tied_embeddings
                                                              else d * v)

    def samples_per_example(self) -> int:
        """Tokens consumed per example: the whole context."""
        return self.sequence_length


def _layer_norm(net: Net, name: str, x: Tensor) -> Tensor:
    d = x.shape[-1]
    return net.normalize(name, x, net.weight(f"{name}/gamma", (d,)),
                         net.weight(f"{name}/beta", (d,)))


def _linear(net: Net, name: str, x: Tensor, out: int) -> Tensor:
    y = net.matmul(f"{name}/matmul", x, net.weight(f"{name}/kernel", (x.shape[-1], out)))
    return net.add(f"{name}/bias_add", y, net.weight(f"{name}/bias", (out,)))


@register("transformer", TransformerConfig)
def build(cfg: TransformerConfig, wl: WorkloadSpec) -> OpGraph:
    """Embeddings, L pre-norm attention + MLP blocks, tied logits, cross-entropy."""
    d, heads, s, v, b = cfg.width, cfg.heads, cfg.sequence_length, cfg.vocab, wl.subbatch
    dh = d // heads
    net = Net("transformer", wl.precision)
    table = net.weight("embedding/tokens", (v, d))
    ids = net.input("tokens", (b, s), dtype="int32")
    x = net.add("embedding/add_positions", net.gather("embedding/lookup", table, ids),
                net.weight("embedding/positions", (s, d)))
    x = net.reshape("embedding/flatten", x, (b * s, d))
    for layer in range(cfg.layers):
        name = f"layer{layer}"
        qkv = _linear(net, f"{name}/qkv", _layer_norm(net, f"{name}/ln1", x), 3 * d)
        q, k, val = (net.reshape(f"{name}/heads_{p}", t, (b * heads, s, dh))
                     for p, t in zip("qkv", net.split(f"{name}/split", qkv, [d, d, d]),
                                     strict=True))
        scores = net.matmul(f"{name}/scores", q, k, trans_b=True)          # [b*H, S, S]
        scores = net.unary(f"{name}/mask", "scale", net.unary(f"{name}/scale", "scale", scores))
        ctx = net.matmul(f"{name}/context", net.softmax(f"{name}/softmax", scores), val)
        ctx = net.reshape(f"{name}/merge_heads", ctx, (b * s, d))
        x = net.add(f"{name}/residual1", x, _linear(net, f"{name}/attn_out", ctx, d))
        hidden = net.unary(f"{name}/gelu", "gelu", _linear(
            net, f"{name}/mlp_in", _layer_norm(net, f"{name}/ln2", x), cfg.ffn_width))
        x = net.add(f"{name}/residual2", x, _linear(net, f"{name}/mlp_out", hidden, d))
    x = _layer_norm(net, "final_ln", x)
    if cfg.tied_embeddings:
        logits = net.matmul("logits", x, table, trans_b=True)
    else:
        logits = net.matmul("logits", x, net.weight("unembedding", (d, v)))
    net.softmax_cross_entropy("loss", logits, net.input("labels", (b, s), dtype="int32"))
    net.backward()
    net.update(wl.optimizer)
    return net.build()
