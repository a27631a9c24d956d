"""Neural machine translation: bidirectional-LSTM encoder, LSTM decoder, Luong attention.

The structure of Catamount's NMT graph (the paper's tool): separate encoder and decoder
embeddings [v, h]; one bidirectional LSTM encoder layer (kernels [2h, 4h]); one decoder LSTM
layer whose input is the target embedding concatenated with the previous attention output
(kernel [3h, 4h]); Luong attention with a memory layer [2h, h] and an attention layer [3h, h];
an output projection [h, v]. Parameters: 33h^2 + 3hv + 12h + 1.
"""

from __future__ import annotations

import attrs

from accelsim.graph import OpGraph
from accelsim.models.common import Net, embedding_steps, lstm_cell, lstm_layer, lstm_weights
from accelsim.models.registry import register
from accelsim.schema import field
from accelsim.workload import MAX_STEPS, MAX_VOCAB, MAX_WIDTH, WorkloadSpec


@attrs.frozen
class NMTConfig:
    """Hyperparameters of the NMT model."""

    hidden: int = field(minimum=1, maximum=MAX_WIDTH,
        doc="LSTM hidden size h (also embedding and attention width)")
    vocab: int = field(default=36548, minimum=1, maximum=MAX_VOCAB,
        doc="word-piece vocabulary size")
    sequence_length: int = field(default=26, minimum=1, maximum=MAX_STEPS,
                                 doc="source and target length in word pieces")
    target_length: int | None = field(default=None, minimum=1, maximum=MAX_STEPS,
                                      doc="target length (default: sequence_length)")

    @property
    def decoder_steps(self) -> int:
        return self.target_length or self.sequence_length

    def params_formula(self) -> int:
        h, v = self.hidden, self.vocab
        return 33 * h * h + 3 * h * v + 12 * h + 1

    def samples_per_example(self) -> int:
        """Word pieces consumed per example (the paper counts target word pieces)."""
        return self.decoder_steps


@register("nmt", NMTConfig)
def build(cfg: NMTConfig, wl: WorkloadSpec) -> OpGraph:
    """Bidirectional-LSTM encoder, LSTM decoder with Luong attention (input feeding)."""
    h, v, b = cfg.hidden, cfg.vocab, wl.subbatch
    s, t_steps = cfg.sequence_length, cfg.decoder_steps
    net = Net("nmt", wl.precision)

    # Encoder: embeddings, forward and backward LSTMs, outputs [b, s, 2h].
    src = embedding_steps(net, "encoder/embedding", v, h, b, s)
    fw = lstm_layer(net, "encoder/fw", src, h)
    bw = lstm_layer(net, "encoder/bw", src, h, reverse=True)
    enc = net.concat("encoder/outputs", [net.concat(f"encoder/out_t{i}", [fw[i], bw[i]])
                                         for i in range(s)])  # [b, s*2h]
    memory = net.reshape("encoder/memory", enc, (b, s, 2 * h))
    mem_w = net.weight("attention/memory_layer/kernel", (2 * h, h))
    keys = net.reshape("attention/keys", net.matmul(
        "attention/memory_layer", net.reshape("attention/memory_2d", enc, (b * s, 2 * h)),
        mem_w), (b, s, h))
    attn_w = net.weight("attention/attention_layer/kernel", (3 * h, h))
    scale = net.weight("attention/scale", (1,))

    # Decoder with input feeding and attention at every step.
    tgt = embedding_steps(net, "decoder/embedding", v, h, b, t_steps)
    kernel, bias = lstm_weights(net, "decoder/cell", 2 * h, h)
    out_w = net.weight("decoder/output_projection/kernel", (h, v))
    hs = net.input("decoder/h0", (b, h))
    cs = net.input("decoder/c0", (b, h))
    attention = net.input("decoder/attention0", (b, h))
    labels = net.input("decoder/labels", (b, t_steps), dtype="int32")
    outputs = []
    for t in range(t_steps):
        x = net.concat(f"decoder/t{t}/input_feed", [tgt[t], attention])
        hs, cs = lstm_cell(net, f"decoder/t{t}/cell", x, hs, cs, kernel, bias)
        query = net.reshape(f"decoder/t{t}/query", hs, (b, 1, h))
        score = net.matmul(f"decoder/t{t}/score", query, keys, trans_b=True)  # [b, 1, s]
        score = net.mul(f"decoder/t{t}/scaled_score", score, scale)
        align = net.softmax(f"decoder/t{t}/alignments", score)
        context = net.reshape(f"decoder/t{t}/context_2d",
                              net.matmul(f"decoder/t{t}/context", align, memory), (b, 2 * h))
        attention = net.matmul(f"decoder/t{t}/attention_layer",
                               net.concat(f"decoder/t{t}/attention_in", [hs, context]), attn_w)
        outputs.append(attention)

    # As TF's Tensordot after the decoder loop: one projection over all steps, so the [h, v]
    # weight is read once per step of training, not once per timestep.
    stacked = net.concat("decoder/outputs", outputs, axis=0)  # [t*b, h]
    logits = net.matmul("decoder/output_projection", stacked, out_w)
    net.softmax_cross_entropy("decoder/loss", logits, labels)

    net.backward()
    net.update(wl.optimizer)
    return net.build()
