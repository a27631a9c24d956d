"""Model families: each module defines a config class and a builder of the training-step graph.

Adding a domain is one file: define a frozen attrs config (its fields are the YAML keys under
`model:`) that follows `ModelConfig` (`params_formula()`, `samples_per_example()`), decorate the
builder with `@register("family", Config)` (from `accelsim.models.registry`), and import the
module at the bottom of this file.
`register` refuses a config class that does not declare the protocol.
"""

from __future__ import annotations

from accelsim.graph import OpGraph
from accelsim.models.registry import (
    CONFIG_PROTOCOL,
    FAMILIES,
    Builder,
    ModelConfig,
    ModelFamily,
    family_of,
    register,
)
from accelsim.workload import WorkloadSpec

__all__ = ["CONFIG_PROTOCOL", "FAMILIES", "Builder", "ModelConfig", "ModelFamily", "build_graph",
           "family_of", "register"]


def build_graph(workload: WorkloadSpec) -> OpGraph:
    """The op graph of one training step (forward, backward, update) of `workload`."""
    return family_of(workload.model).build(workload.model, workload)


# Importing a family module registers it.
from accelsim.models import (  # noqa: E402,F401
    char_lm,
    nmt,
    resnet,
    speech,
    transformer,
    word_lm,
    word_lm_lstmp,
)
