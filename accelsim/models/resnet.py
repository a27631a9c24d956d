"""Image classification: ResNet (He et al. 2016) with basic or bottleneck blocks and batch norm.

The structure of TensorFlow's official ResNet that Catamount analysed (v1.5: the stride sits on
the 3x3 convolution of a bottleneck): a 7x7/2 stem convolution, batch norm, ReLU, 3x3/2 max
pooling; four stages of blocks with `width`, 2, 4 and 8 times `width` channels (bottleneck
blocks expand 4x), a projection shortcut (1x1 convolution + batch norm) where the shape changes;
global average pooling; a fully connected layer with bias. Convolutions have no bias; batch norm
has a trained scale and shift per channel (its moving statistics are not parameters). Two scalar
bookkeeping variables, as Catamount counts every variable. Convolutions become implicit-GEMM ops.
"""

from __future__ import annotations

import attrs

from accelsim.graph import OpGraph, Tensor
from accelsim.models.common import Net
from accelsim.models.registry import register
from accelsim.schema import field
from accelsim.workload import MAX_IMAGE, MAX_VOCAB, MAX_WIDTH, WorkloadSpec

#: Blocks per stage and block type of the standard depths.
STAGES = {18: ((2, 2, 2, 2), "basic"), 34: ((3, 4, 6, 3), "basic"),
          50: ((3, 4, 6, 3), "bottleneck"), 101: ((3, 4, 23, 3), "bottleneck"),
          152: ((3, 8, 36, 3), "bottleneck"), 200: ((3, 24, 36, 3), "bottleneck")}


@attrs.frozen
class ResNetConfig:
    """Hyperparameters of the ResNet image classifier."""

    depth: int = field(default=50, doc="layers: 18, 34 (basic blocks), 50, 101, 152, 200")
    width: int = field(default=64, minimum=1, maximum=MAX_WIDTH,
        doc="channels of the stem and the first stage")
    image_size: int = field(default=224, minimum=32, maximum=MAX_IMAGE,
        doc="input height and width in pixels")
    classes: int = field(default=1000, minimum=1, maximum=MAX_VOCAB, doc="output classes")
    channels: int = field(default=3, minimum=1, maximum=MAX_WIDTH, doc="input image channels")

    def __attrs_post_init__(self) -> None:
        if self.depth not in STAGES:
            raise ValueError(f"depth: expected one of {sorted(STAGES)}, got {self.depth}")

    @property
    def blocks(self) -> tuple[int, ...]:
        return STAGES[self.depth][0]

    @property
    def block(self) -> str:
        return STAGES[self.depth][1]

    def params_formula(self) -> int:
        """Closed-form parameter count (equals the graph's)."""
        w, expand = self.width, 4 if self.block == "bottleneck" else 1
        total = 7 * 7 * self.channels * w + 2 * w
        c_in = w
        for stage, n_blocks in enumerate(self.blocks):
            mid = w * 2 ** stage
            out = mid * expand
            for i in range(n_blocks):
                if self.block == "basic":
                    total += 9 * c_in * mid + 9 * mid * mid + 4 * mid
                else:
                    total += c_in * mid + 9 * mid * mid + mid * out + 4 * mid + 2 * out
                stride = 2 if (i == 0 and stage > 0) else 1
                if stride != 1 or c_in != out:
                    total += c_in * out + 2 * out
                c_in = out
        return total + c_in * self.classes + self.classes + 2

    def samples_per_example(self) -> int:
        """One image per example."""
        return 1


def _conv_bn(net: Net, name: str, x: Tensor, out: int, size: int, stride: int,
             relu: bool = True) -> Tensor:
    w = net.weight(f"{name}/kernel", (size, size, x.shape[-1], out))
    y = net.normalize(f"{name}/bn", net.conv2d(f"{name}/conv", x, w, stride),
                      net.weight(f"{name}/bn/gamma", (out,)), net.weight(f"{name}/bn/beta", (out,)))
    return net.unary(f"{name}/relu", "relu", y) if relu else y


def _block(net: Net, name: str, x: Tensor, mid: int, out: int, stride: int,
           bottleneck: bool) -> Tensor:
    if bottleneck:
        y = _conv_bn(net, f"{name}/a", x, mid, 1, 1)
        y = _conv_bn(net, f"{name}/b", y, mid, 3, stride)
        y = _conv_bn(net, f"{name}/c", y, out, 1, 1, relu=False)
    else:
        y = _conv_bn(net, f"{name}/a", x, mid, 3, stride)
        y = _conv_bn(net, f"{name}/b", y, out, 3, 1, relu=False)
    shortcut = x
    if stride != 1 or x.shape[-1] != out:
        shortcut = _conv_bn(net, f"{name}/projection", x, out, 1, stride, relu=False)
    return net.unary(f"{name}/relu", "relu", net.add(f"{name}/add", y, shortcut))


@register("resnet", ResNetConfig)
def build(cfg: ResNetConfig, wl: WorkloadSpec) -> OpGraph:
    """Stem, four stages of residual blocks, pooling, classifier, cross-entropy."""
    b, w = wl.subbatch, cfg.width
    net = Net(f"resnet{cfg.depth}", wl.precision)
    net.bookkeeping("global_step")
    net.bookkeeping("learning_rate")
    # Catamount's graph holds the stem's input-gradient convolution: count it as it does.
    x = net.requires_grad(net.input("images", (b, cfg.image_size, cfg.image_size, cfg.channels)))
    x = _conv_bn(net, "stem", x, w, 7, 2)
    x = net.max_pool("stem/pool", x, 3, 2)
    expand = 4 if cfg.block == "bottleneck" else 1
    for stage, n_blocks in enumerate(cfg.blocks):
        mid = w * 2 ** stage
        for i in range(n_blocks):
            stride = 2 if (i == 0 and stage > 0) else 1
            x = _block(net, f"stage{stage}/block{i}", x, mid, mid * expand, stride,
                       cfg.block == "bottleneck")
    pooled = net.reduce_sum("pool", x, (b, x.shape[-1]))
    logits = net.add("fc/bias_add", net.matmul(
        "fc/matmul", net.unary("pool/mean", "scale", pooled),
        net.weight("fc/kernel", (x.shape[-1], cfg.classes))), net.weight("fc/bias", (cfg.classes,)))
    net.softmax_cross_entropy("loss", logits, net.input("labels", (b,), dtype="int32"))
    net.backward()
    net.update(wl.optimizer)
    return net.build()
