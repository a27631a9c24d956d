"""Word language model with LSTMP layers: LSTMs with a recurrent projection (Sak, Senior,
Beaufays, "Long Short-Term Memory Recurrent Neural Network Architectures for Large Scale
Acoustic Modeling", Interspeech 2014), the model of the paper's Section 6 case study.

An LSTMP cell keeps an h-wide cell state but projects its output m_t = o_t * tanh(c_t) to p
dimensions, r_t = m_t @ W_proj [h, p]; r_t is both the recurrent input of the next timestep
and the layer's output. The gate kernel is [input + p, 4h], so with p << h the recurrent
GEMMs shrink by about p/h. Layout as the word LM's (`word_lm`): an embedding [v, e] (e: the
`embedding` width, default p), `layers` LSTMP layers, the top outputs collapsed to
[steps*batch, p], a softmax layer W [v, p] (applied transposed) with bias [v], sparse softmax
cross-entropy; two scalar bookkeeping variables.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from accelsim.graph import OpGraph, Tensor
from accelsim.models.common import Net, embedding_steps, language_model_step, lstm_cell
from accelsim.models.registry import register
from accelsim.schema import field
from accelsim.workload import WorkloadSpec


@attrs.frozen
class WordLMLSTMPConfig:
    """Hyperparameters of the LSTMP word language model."""

    hidden: int = field(minimum=1, doc="LSTM cell size h (gates and cell state)")
    projection: int = field(minimum=1, doc="recurrent projection width p (the layer's output)")
    layers: int = field(default=2, minimum=1, doc="stacked LSTMP layers")
    vocab: int = field(default=10004, minimum=1, doc="vocabulary size v")
    sequence_length: int = field(default=80, minimum=1, doc="unrolled timesteps per example")
    embedding: int | None = field(default=None, minimum=1,
                                  doc="embedding width e (none: the projection width p)")

    @property
    def embedding_width(self) -> int:
        return self.embedding or self.projection

    def params_formula(self) -> int:
        """Closed-form parameter count (equals the graph's)."""
        h, p, v, e = self.hidden, self.projection, self.vocab, self.embedding_width
        first = 4 * h * (e + p) + 4 * h + h * p
        rest = (self.layers - 1) * (4 * h * (p + p) + 4 * h + h * p)
        return v * e + first + rest + p * v + v + 2

    def samples_per_example(self) -> int:
        """Words consumed per example: one per unrolled step."""
        return self.sequence_length


def lstmp_cell(net: Net, name: str, x: Tensor, r: Tensor, c: Tensor, kernel: Tensor,
               bias: Tensor, projection: Tensor) -> tuple[Tensor, Tensor]:
    """One LSTMP timestep: an LSTM cell fed (x, r) whose output m is projected,
    r' = m @ W_proj; returns (r', c')."""
    m, c_new = lstm_cell(net, name, x, r, c, kernel, bias, output="m")
    return net.matmul(f"{name}/project", m, projection), c_new


def lstmp_layer(net: Net, name: str, xs: Sequence[Tensor], hidden: int,
                projection: int) -> list[Tensor]:
    """Unrolled LSTMP over timesteps `xs` ([batch, input] each); returns r per timestep."""
    batch, input_size = xs[0].shape
    kernel = net.weight(f"{name}/kernel", (input_size + projection, 4 * hidden))
    bias = net.weight(f"{name}/bias", (4 * hidden,))
    w_proj = net.weight(f"{name}/projection", (hidden, projection))
    r = net.input(f"{name}/r0", (batch, projection))
    c = net.input(f"{name}/c0", (batch, hidden))
    out = []
    for t in range(len(xs)):
        r, c = lstmp_cell(net, f"{name}/t{t}", xs[t], r, c, kernel, bias, w_proj)
        out.append(r)
    return out


@register("word_lm_lstmp", WordLMLSTMPConfig)
def build(cfg: WordLMLSTMPConfig, wl: WorkloadSpec) -> OpGraph:
    """Embedding, stacked LSTMP layers, softmax layer and cross-entropy loss."""
    v, b, s, p = cfg.vocab, wl.subbatch, cfg.sequence_length, cfg.projection
    net = Net("word_lm_lstmp", wl.precision)
    net.bookkeeping("global_step")
    net.bookkeeping("learning_rate")
    xs = embedding_steps(net, "embedding", v, cfg.embedding_width, b, s)
    for layer in range(cfg.layers):
        xs = lstmp_layer(net, f"lstm{layer}", xs, cfg.hidden, p)
    top = net.concat("collapse", xs, axis=0)  # [s*b, p]
    return language_model_step(net, top, v, p, b, s, wl.optimizer)
