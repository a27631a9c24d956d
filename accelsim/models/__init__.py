"""Model families: each module defines a config class and a builder of the training-step graph.

Adding a domain is one file: define a frozen attrs config (its fields are the YAML keys under
`model:`) that follows `ModelConfig` (`params_formula()`, `samples_per_example()`), decorate the
builder with `@register("family", Config)`, and import the module at the bottom of this file.
`register` refuses a config class that does not declare the protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import attrs

from accelsim.graph import OpGraph
from accelsim.workload import WorkloadSpec

Builder = Callable[[Any, WorkloadSpec], OpGraph]


class ModelConfig(Protocol):
    """What every model family's config declares besides its hyperparameters."""

    def params_formula(self) -> int:
        """Parameter count from the family's closed-form formula (checks the built graph)."""
        ...

    def samples_per_example(self) -> int:
        """Dataset samples one example of the subbatch covers (e.g. tokens of a sequence)."""
        ...


#: The methods `register` requires of a config class (the `ModelConfig` protocol).
CONFIG_PROTOCOL = ("params_formula", "samples_per_example")


@attrs.frozen
class ModelFamily:
    name: str
    config_class: type
    build: Builder
    doc: str

    def samples_per_example(self, config: Any) -> int:
        return int(config.samples_per_example())

    def params_formula(self, config: Any) -> int:
        return int(config.params_formula())


FAMILIES: dict[str, ModelFamily] = {}


def register(name: str, config_class: type) -> Callable[[Builder], Builder]:
    """Register `build(config, workload) -> OpGraph` for the family `name`; `config_class`
    must declare the `ModelConfig` methods."""
    missing = [m for m in CONFIG_PROTOCOL if not callable(getattr(config_class, m, None))]
    if missing:
        raise TypeError(f"model family {name!r}: {config_class.__name__} must define "
                        f"{', '.join(missing)} (see accelsim.models.ModelConfig)")

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
)
