"""Declarative fields for the frozen attrs specs.

A spec class says, per field, its unit kind, allowed choices and a one-line doc; `spec` reads
this metadata to turn YAML into objects (and back) and to word its error messages. Keeping the
rules next to the classes means a new hardware knob or model hyperparameter is one line.
"""

from __future__ import annotations

from typing import Any

import attrs

#: Unit kinds understood by `spec` (each maps to a parser in `units`).
UNIT_KINDS = ("bytes", "bandwidth", "frequency", "time", "flop_rate", "count")


def field(
    *,
    doc: str,
    unit: str | None = None,
    choices: tuple[str, ...] | None = None,
    default: Any = attrs.NOTHING,
    factory: Any = None,
    minimum: float | None = None,
    maximum: float | None = None,
) -> Any:
    """An attrs field whose metadata carries its unit kind, choices, bounds and doc."""
    if unit is not None and unit not in UNIT_KINDS:
        raise ValueError(f"unknown unit kind {unit!r}")
    metadata = {"doc": doc, "unit": unit, "choices": choices, "minimum": minimum,
                "maximum": maximum}
    validators = []
    if choices is not None:
        validators.append(attrs.validators.in_(choices))
    if minimum is not None:
        validators.append(_bound(minimum, ge=True))
    if maximum is not None:
        validators.append(_bound(maximum, ge=False))
    kwargs: dict[str, Any] = {"metadata": metadata, "kw_only": True}
    if validators:
        kwargs["validator"] = attrs.validators.optional(validators)
    if factory is not None:
        kwargs["factory"] = factory
    elif default is not attrs.NOTHING:
        kwargs["default"] = default
    return attrs.field(**kwargs)


def _bound(limit: float, *, ge: bool):
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value is None:
            return
        if (ge and value < limit) or (not ge and value > limit):
            op = ">=" if ge else "<="
            raise ValueError(f"{attribute.name}: expected a value {op} {limit}, got {value!r}")
    return check


def describe(cls: type) -> list[tuple[str, str]]:
    """(field name, doc) pairs of an attrs spec class, for error hints and docs."""
    return [(f.name, f.metadata.get("doc", "")) for f in attrs.fields(cls)]
