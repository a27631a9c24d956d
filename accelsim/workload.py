"""Frozen description of a training workload: which model, how big, batch, precision, optimizer.

The model's own hyperparameters live in a per-family config class (see `accelsim.models`);
this class holds what every training workload has. Nothing here knows hardware.
"""

from __future__ import annotations

from typing import Any

import attrs

from accelsim.plan import ParallelPlan, plan_violation
from accelsim.schema import Violation, field, rule
from accelsim.vocabulary import COMPUTE_DTYPES, RECURRENT_EXECUTIONS, dtype_bytes

OPTIMIZERS = ("sgd", "momentum", "adam")

# Physical ceilings of model sizes (docs/spec-format.md, "Limits"): orders of magnitude beyond
# any trained model, low enough that products of them (tensor bytes, addresses) fit in int64.
MAX_SUBBATCH = 2**24   # examples per step per chip
MAX_WIDTH = 2**20      # hidden sizes, model widths, attention and MLP widths
MAX_VOCAB = 2**24      # vocabulary and class counts
MAX_STEPS = 2**20      # sequence lengths, timesteps, frames
MAX_DEPTH = 2**14      # layers, recurrence depth
MAX_IMAGE = 2**16      # image height and width in pixels

#: Optimizer state tensors kept per parameter, and FLOPs per parameter of one update
#: (SGD: w -= lr*g is 2; momentum: v = m*v + g; w -= lr*v is 4; Adam: two moments, bias-corrected
#: step, sqrt and divide, about 12).
OPTIMIZER_STATE_PER_PARAM = {"sgd": 0, "momentum": 1, "adam": 2}
OPTIMIZER_FLOPS_PER_PARAM = {"sgd": 2, "momentum": 4, "adam": 12}


@attrs.frozen
class DatasetSpec:
    """The training set, counted in the domain's unit (words, characters, images, tokens)."""

    samples: float = field(unit="count", minimum=0, maximum=1e18,
                           doc="size of one epoch in the domain's unit")
    unit: str = field(default="samples", doc="what a sample is, e.g. words, characters, images")


@attrs.frozen
class WorkloadSpec:
    """One training step of `model` on `subbatch` examples per chip."""

    name: str = field(doc="short name used in reports")
    model: Any = field(doc="model family and its hyperparameters (family: ...)")
    subbatch: int = field(minimum=1, maximum=MAX_SUBBATCH,
        doc="examples per training step per chip")
    precision: str = field(default="fp32", choices=COMPUTE_DTYPES,
                           doc="dtype of weights, activations and gradients")
    optimizer: str = field(default="sgd", choices=OPTIMIZERS, doc="weight update rule")
    dataset: DatasetSpec | None = field(default=None, doc="training set size, for time to train")
    description: str = field(default="", doc="free text: where the numbers come from")
    # --- parallel plans (issue 8) --------------------------------------------------------------
    parallel: ParallelPlan | None = field(
        default=None, doc="how chips split the step (data, pipeline, tensor degrees; none: "
                          "data parallel on the chips given)")

    @rule
    def _plan_splits_model(model: Any, parallel: ParallelPlan | None) -> Violation | None:
        """A tensor-parallel degree divides the sizes it splits."""
        return plan_violation(parallel, model) if parallel is not None else None
    # --- end parallel plans ----------------------------------------------------------------
    # --- issue 9: how recurrent layers execute (accelsim.fusion.execute) ---
    recurrent_execution: str = field(
        default="library", choices=RECURRENT_EXECUTIONS,
        doc="library: a recurrent weight's gradient is one GEMM over all timesteps (cuDNN); "
            "framework: one GEMM per timestep adding into the running sum")

    @property
    def dtype_bytes(self) -> int:
        """Bytes per element of `precision`."""
        return dtype_bytes(self.precision)
