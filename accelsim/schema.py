"""Declarative fields for the frozen attrs specs.

A spec class says, per field, its unit kind, allowed choices and a one-line doc; `spec` reads
this metadata to turn YAML into objects (and back) and to word its error messages. Keeping the
rules next to the classes means a new hardware knob or model hyperparameter is one line.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

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
    keys: tuple[str, ...] | None = None,
    positive: bool = False,
) -> Any:
    """An attrs field whose metadata carries its unit kind, choices, bounds and doc.

    `keys` lists the allowed keys of a mapping-valued field (e.g. the dtypes of
    `compute.matrix`), so the loader can point at a bad key and suggest a good one.
    """
    if unit is not None and unit not in UNIT_KINDS:
        raise ValueError(f"unknown unit kind {unit!r}")
    metadata = {"doc": doc, "unit": unit, "choices": choices, "minimum": minimum,
                "maximum": maximum, "keys": keys, "positive": positive}
    validators = []
    if choices is not None:
        validators.append(attrs.validators.in_(choices))
    if keys is not None:
        validators.append(_keys_in(keys))
    if minimum is not None:
        validators.append(_bound(minimum, ge=True))
    if maximum is not None:
        validators.append(_bound(maximum, ge=False))
    if positive:
        validators.append(_positive)
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


def _positive(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name}: expected a value > 0, got {value!r}")


def _keys_in(allowed: tuple[str, ...]):
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        unknown = sorted(set(value) - set(allowed)) if value is not None else []
        if unknown:
            raise ValueError(f"{attribute.name}: expected keys among {list(allowed)}, "
                             f"got {unknown[0]!r}")
    return check


class Violation(NamedTuple):
    """A broken cross-field rule: the field to blame, what was expected, what was given.

    `at` narrows the blame inside the field's value, e.g. `(1, "line_bytes")` for the line of
    the second cache level, so the message points at that item's line in the file.
    """

    field: str
    expected: str
    got: str
    at: tuple[int | str, ...] = ()

    def path(self) -> str:
        """Dotted path of the blamed value, e.g. 'caches[1].line_bytes'."""
        out = self.field
        for step in self.at:
            out += f"[{step}]" if isinstance(step, int) else f".{step}"
        return out

    def __str__(self) -> str:
        return f"{self.path()}: expected {self.expected}, got {self.got}"


_RULE_MARK = "__spec_rule_fields__"


def rule(fn: Callable[..., Violation | None]) -> Any:
    """Declare a cross-field rule of a spec class, as a function of fields named by its parameters.

    The rule returns None when the fields agree, else a `Violation`. Declaring rules (instead of
    raising in `__attrs_post_init__`) lets the loader run every rule whose fields loaded, so a
    bad `ways` is reported even when another key of the same mapping is also wrong.
    """
    setattr(fn, _RULE_MARK, tuple(inspect.signature(fn).parameters))
    return staticmethod(fn)


def rules(cls: type) -> list[tuple[Callable[..., Violation | None], tuple[str, ...]]]:
    """The rules declared on `cls`, with the field names each one reads, in definition order."""
    found = []
    for value in vars(cls).values():
        fn = getattr(value, "__func__", None)
        names = getattr(fn, _RULE_MARK, None)
        if names is not None:
            found.append((fn, names))
    return found


def violations(cls: type, values: Mapping[str, Any]) -> list[Violation]:
    """Every rule of `cls` broken by `values`; rules reading a field absent from `values` are skipped."""
    broken = []
    for fn, names in rules(cls):
        if all(n in values for n in names):
            result = fn(**{n: values[n] for n in names})
            if result is not None:
                broken.append(result)
    return broken


def check_rules(instance: Any) -> None:
    """Raise ValueError naming the field of the first broken rule (call from __attrs_post_init__)."""
    values = {f.name: getattr(instance, f.name) for f in attrs.fields(type(instance))}
    broken = violations(type(instance), values)
    if broken:
        raise ValueError(str(broken[0]))


def describe(cls: type) -> list[tuple[str, str]]:
    """(field name, doc) pairs of an attrs spec class, for error hints and docs."""
    return [(f.name, f.metadata.get("doc", "")) for f in attrs.fields(cls)]
