"""Word language model: embedding, stacked LSTM layers, output projection, softmax xent.

The structure of the TensorFlow model Catamount analysed (the paper's word LM): an embedding
[v, h]; `layers` LSTM layers (TF's LSTM cell: one kernel [input + h, 4h] and a bias [4h]); the
top layer's outputs collapsed to [steps*batch, h]; a softmax layer W [v, h] (applied transposed)
with bias [v]; sparse softmax cross-entropy. Two scalar variables (global step, learning rate)
count as parameters, as Catamount counts every variable: 16h^2 + 2hv + 8h + v + 2 for 2 layers.
The optional `projection` p inserts a [h, p] projection before the softmax layer (which becomes
[v, p]), as the paper's Section 6 case study does to shrink the output layer.
"""

from __future__ import annotations

import attrs

from accelsim.graph import OpGraph
from accelsim.models.common import Net, embedding_steps, language_model_step, lstm_layer
from accelsim.models.registry import register
from accelsim.schema import field
from accelsim.workload import MAX_DEPTH, MAX_STEPS, MAX_VOCAB, MAX_WIDTH, WorkloadSpec


@attrs.frozen
class WordLMConfig:
    """Hyperparameters of the LSTM word language model."""

    hidden: int = field(minimum=1, maximum=MAX_WIDTH,
        doc="LSTM hidden size h (also the embedding width)")
    layers: int = field(default=2, minimum=1, maximum=MAX_DEPTH, doc="stacked LSTM layers")
    vocab: int = field(default=10004, minimum=1, maximum=MAX_VOCAB, doc="vocabulary size v")
    sequence_length: int = field(default=80, minimum=1, maximum=MAX_STEPS,
        doc="unrolled timesteps per example")
    projection: int | None = field(default=None, minimum=1, maximum=MAX_WIDTH,
                                   doc="width of a projection before the softmax (none: off)")

    def params_formula(self) -> int:
        """Closed-form parameter count (equals the graph's)."""
        h, v, p = self.hidden, self.vocab, self.projection
        out = p if p else h
        return (v * h + self.layers * (8 * h * h + 4 * h) + (h * p if p else 0)
                + out * v + v + 2)

    def samples_per_example(self) -> int:
        """Words consumed per example: one per unrolled step."""
        return self.sequence_length


@register("word_lm", WordLMConfig)
def build(cfg: WordLMConfig, wl: WorkloadSpec) -> OpGraph:
    """Embedding, stacked LSTMs, (projection,) softmax layer and cross-entropy loss."""
    h, v, b, s = cfg.hidden, cfg.vocab, wl.subbatch, cfg.sequence_length
    net = Net("word_lm", wl.precision)
    net.bookkeeping("global_step")
    net.bookkeeping("learning_rate")
    xs = embedding_steps(net, "embedding", v, h, b, s)
    for layer in range(cfg.layers):
        xs = lstm_layer(net, f"lstm{layer}", xs, h)
    top = net.concat("collapse", xs, axis=0)  # [s*b, h]
    width = h
    if cfg.projection:
        top = net.matmul("projection", top, net.weight("projection/kernel", (h, cfg.projection)))
        width = cfg.projection
    return language_model_step(net, top, v, width, b, s, wl.optimizer)
