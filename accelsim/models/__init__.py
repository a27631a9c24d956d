"""Model families: each module defines a config class and a builder of the training-step graph.

Adding a domain is one file: define a frozen attrs config (its fields are the YAML keys under
`model:`), decorate the builder with `@register("family", Config)`, and import the module at the
bottom of this file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from accelsim.graph import OpGraph
from accelsim.workload import WorkloadSpec

Builder = Callable[[Any, WorkloadSpec], OpGraph]


@attrs.frozen
class ModelFamily:
    name: str
    config_class: type
    build: Builder
    doc: str


FAMILIES: dict[str, ModelFamily] = {}


def register(name: str, config_class: type) -> Callable[[Builder], Builder]:
    """Register `build(config, workload) -> OpGraph` for the family `name`."""

    def wrap(build: Builder) -> Builder:
        FAMILIES[name] = ModelFamily(name, config_class, build, (build.__doc__ or "").strip())
        return build

    return wrap


def family_of(config: Any) -> ModelFamily:
    for fam in FAMILIES.values():
        if isinstance(config, fam.config_class):
            return fam
    raise KeyError(f"no model family registered for {type(config).__name__}")


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
