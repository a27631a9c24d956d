"""Speech recognition: bi-LSTM encoder with time pooling, attention decoder (LAS-style).

The structure of the TensorFlow model Catamount analysed (its variables, read from the
checkpoint): input normalization (means, std [F]); an encoder of `encoder_layers` bidirectional
LSTM layers (kernel [in + E, 4E] per direction; the first sees the F audio features, the others
the 2E concatenated outputs of the layer below) with stride-2 time pooling between layers (T,
T/2, T/4 steps); attention keys from the encoder outputs ([2E, A] + b); a decoder of two LSTM
cells per output step: an attention cell (input: previous context 2E and previous character
one-hot V; kernel [AH + 2E + V, 4AH]) and a decoder cell (input: attention-cell output and
context; kernel [AH + D + 2E, 4D]); hybrid (location-aware) attention (Chorowski et al. 2015):
the previous alignment convolved with Q [width, 1, filters], mapped by U [1, filters, A], the
attention cell's state [c, h] mapped by W [2AH, A] + b, scored by w [A], softmax over the
encoder steps, context = alignment-weighted sum of encoder outputs; the output projection
[D, V] + b; two scalar bookkeeping variables.
"""

from __future__ import annotations

import attrs

from accelsim.graph import OpGraph, Tensor
from accelsim.models.common import Net, lstm_cell, lstm_layer, lstm_weights
from accelsim.models.registry import register
from accelsim.schema import field
from accelsim.workload import MAX_DEPTH, MAX_STEPS, MAX_VOCAB, MAX_WIDTH, WorkloadSpec


@attrs.frozen
class SpeechConfig:
    """Hyperparameters of the attention speech model."""

    encoder_hidden: int = field(minimum=1, maximum=MAX_WIDTH,
        doc="encoder LSTM width E per direction")
    attention_dim: int = field(default=128, minimum=1, maximum=MAX_WIDTH,
        doc="attention space width A")
    attention_hidden: int | None = field(default=None, minimum=1, maximum=MAX_WIDTH,
                                         doc="attention-cell LSTM width AH (default E/2)")
    decoder_hidden: int | None = field(default=None, minimum=1, maximum=MAX_WIDTH,
                                       doc="decoder-cell LSTM width D (default E/2)")
    encoder_layers: int = field(default=3, minimum=1, maximum=MAX_DEPTH,
                                doc="bi-LSTM encoder layers (stride-2 pooling between them)")
    encoder_steps: int = field(default=300, minimum=1, maximum=MAX_STEPS,
        doc="audio frames T per utterance")
    decoder_steps: int | None = field(default=None, minimum=1, maximum=MAX_STEPS,
                                      doc="output characters per utterance (default: T/4)")
    audio_features: int = field(default=40, minimum=1, maximum=MAX_WIDTH,
        doc="features per frame F")
    vocab: int = field(default=31, minimum=1, maximum=MAX_VOCAB, doc="output characters V")
    conv_filters: int = field(default=4, minimum=1, maximum=MAX_WIDTH,
        doc="location-attention filters")
    conv_width: int = field(default=50, minimum=1, maximum=MAX_STEPS,
        doc="location-attention filter width")

    @property
    def attn_hidden(self) -> int:
        return self.attention_hidden or max(1, self.encoder_hidden // 2)

    @property
    def dec_hidden(self) -> int:
        return self.decoder_hidden or max(1, self.encoder_hidden // 2)

    @property
    def memory_steps(self) -> int:
        """Encoder output steps after pooling between every pair of layers (floor, as TF's
        stride-2 pooling and Catamount's T//2//2)."""
        steps = self.encoder_steps
        for _ in range(self.encoder_layers - 1):
            steps = max(1, steps // 2)
        return steps

    @property
    def output_steps(self) -> int:
        return self.decoder_steps or max(1, self.encoder_steps // 4)

    def params_formula(self) -> int:
        """Closed-form parameter count (equals the graph's)."""
        e, a, ah, d = self.encoder_hidden, self.attention_dim, self.attn_hidden, self.dec_hidden
        f, v = self.audio_features, self.vocab
        encoder = 2 * ((f + e) * 4 * e + 4 * e) + (self.encoder_layers - 1) * 2 * (
            3 * e * 4 * e + 4 * e)
        attention = (2 * e * a + a + self.conv_width * self.conv_filters
                     + self.conv_filters * a + 2 * ah * a + a + a)
        cells = (ah + 2 * e + v) * 4 * ah + 4 * ah + (ah + d + 2 * e) * 4 * d + 4 * d
        return 2 * f + encoder + attention + cells + d * v + v + 2

    def samples_per_example(self) -> int:
        """Characters of transcript per utterance (the paper counts characters)."""
        return self.output_steps


def _pool(net: Net, name: str, xs: list[Tensor]) -> list[Tensor]:
    """Stride-2 max pooling in time: each output step is the max of two input steps (an odd
    last step is dropped, as a 'valid' stride-2 pooling does)."""
    if len(xs) == 1:
        return xs
    out = []
    for i in range(0, len(xs) - 1, 2):
        both = net.concat(f"{name}/t{i // 2}/pair", xs[i:i + 2], axis=0)
        out.append(net.reduce_sum(f"{name}/t{i // 2}/max", both, xs[i].shape))
    return out


@register("speech", SpeechConfig)
def build(cfg: SpeechConfig, wl: WorkloadSpec) -> OpGraph:
    """Bi-LSTM pyramid encoder, hybrid-attention LSTM decoder, per-character cross-entropy."""
    e, a, ah, d = cfg.encoder_hidden, cfg.attention_dim, cfg.attn_hidden, cfg.dec_hidden
    f, v, b = cfg.audio_features, cfg.vocab, wl.subbatch
    net = Net("speech", wl.precision)
    net.bookkeeping("global_step")
    net.bookkeeping("learning_rate")

    # Input normalization: statistics are variables, not trained.
    means, std = net.g.weight("normalizer/means", (f,)), net.g.weight("normalizer/std", (f,))
    frames = net.input("audio", (cfg.encoder_steps * b, f))
    norm = net.g.pointwise("normalizer/scale", [net.g.pointwise(
        "normalizer/center", [frames, means], 1.0), std], 1.0)
    xs = net.split("normalizer/unstack", norm, [b] * cfg.encoder_steps, axis=0)

    for layer in range(cfg.encoder_layers):
        if layer:
            xs = _pool(net, f"encoder/pool{layer}", xs)
        fw = lstm_layer(net, f"encoder/layer{layer}/fw", xs, e)
        bw = lstm_layer(net, f"encoder/layer{layer}/bw", xs, e, reverse=True)
        xs = [net.concat(f"encoder/layer{layer}/out_t{i}", [fw[i], bw[i]])
              for i in range(len(xs))]
    tm = len(xs)
    enc2d = net.concat("encoder/outputs", xs, axis=0)            # [tm*b, 2e], time-major
    memory = net.reshape("attention/memory", enc2d, (b, tm, 2 * e))
    keys = net.add("attention/keys_bias", net.matmul(
        "attention/keys", enc2d, net.weight("attention/state_nn/kernel", (2 * e, a))),
        net.weight("attention/state_nn/bias", (a,)))
    keys = net.reshape("attention/keys_3d", keys, (b, tm, a))

    q = net.weight("attention/location/Q", (1, cfg.conv_width, 1, cfg.conv_filters))
    u = net.weight("attention/location/U", (1, 1, cfg.conv_filters, a))
    w_state = net.weight("attention/W", (2 * ah, a))
    b_state = net.weight("attention/b", (a,))
    w_score = net.weight("attention/w", (a,))
    attn_kernel, attn_bias = lstm_weights(net, "decoder/attention_cell", 2 * e + v, ah)
    dec_kernel, dec_bias = lstm_weights(net, "decoder/decoder_cell", ah + 2 * e, d)
    out_w = net.weight("decoder/output/kernel", (d, v))
    out_b = net.weight("decoder/output/bias", (v,))

    ah_h, ah_c = net.input("decoder/attention_h0", (b, ah)), net.input("decoder/attention_c0",
                                                                       (b, ah))
    d_h, d_c = net.input("decoder/h0", (b, d)), net.input("decoder/c0", (b, d))
    context = net.input("decoder/context0", (b, 2 * e))
    align = net.input("decoder/alignment0", (b, tm))
    onehots = net.input("decoder/previous_chars", (cfg.output_steps * b, v))
    prev = net.split("decoder/unstack", onehots, [b] * cfg.output_steps, axis=0)
    labels = net.input("decoder/labels", (b, 1), dtype="int32")
    for t in range(cfg.output_steps):
        name = f"decoder/t{t}"
        x = net.concat(f"{name}/attention_in", [context, prev[t]])
        ah_h, ah_c = lstm_cell(net, f"{name}/attention_cell", x, ah_h, ah_c, attn_kernel,
                               attn_bias)
        # Location-aware scores: conv of the previous alignment, keys, and the cell state.
        loc = net.conv2d(f"{name}/location_conv", net.reshape(
            f"{name}/alignment_4d", align, (b, 1, tm, 1)), q)
        loc = net.reshape(f"{name}/location_keys", net.conv2d(f"{name}/location_proj", loc, u),
                          (b, tm, a))
        state = net.matmul(f"{name}/state_proj",
                           net.concat(f"{name}/state", [ah_c, ah_h]), w_state)
        state = net.reshape(f"{name}/state_3d", net.add(f"{name}/state_bias", state, b_state),
                            (b, 1, a))
        z = net.add(f"{name}/add_state", net.add(f"{name}/add_location", keys, loc), state)
        scores = net.reduce_sum(f"{name}/score", net.mul(
            f"{name}/weight", net.unary(f"{name}/tanh", "tanh", z), w_score), (b, tm))
        align = net.softmax(f"{name}/alignment", scores)
        context = net.reshape(f"{name}/context_2d", net.matmul(
            f"{name}/context", net.reshape(f"{name}/alignment_3d", align, (b, 1, tm)), memory),
            (b, 2 * e))
        d_h, d_c = lstm_cell(net, f"{name}/decoder_cell",
                             net.concat(f"{name}/decoder_in", [ah_h, context]), d_h, d_c,
                             dec_kernel, dec_bias)
        logits = net.add(f"{name}/output_bias", net.matmul(f"{name}/output", d_h, out_w), out_b)
        net.softmax_cross_entropy(f"{name}/loss", logits, labels)
    net.backward()
    net.update(wl.optimizer)
    return net.build()
