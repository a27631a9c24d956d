"""The registry of model families: their config protocol, `register` and lookup.

Family modules import `register` from here (not from the package), so the package's
`__init__`, which imports every family, and the families form no import cycle.
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
