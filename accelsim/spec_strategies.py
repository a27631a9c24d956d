"""Hypothesis strategies that generate valid hardware and workload specs.

Needs the `test` extra (`pip install accelsim[test]`): hypothesis is imported here, never by the
core package. The strategies are derived from the attrs metadata (`schema.field`: unit kind,
choices, bounds, allowed keys) and from the cross-field `schema.rule`s, so a new field or model
family is covered without editing this file. Strings include YAML's traps (`yes`, `no`, `null`,
`1e9`, `~`, leading dashes and colons) to check that dumping and loading keep them strings.

    from accelsim.spec_strategies import hardware_specs
    @given(hardware_specs())
    def test_roundtrip(hw): assert hardware_from_yaml(dump_yaml(hw)) == hw
"""

from __future__ import annotations

import types
import typing
from typing import Any

import attrs
from hypothesis import strategies as st

from accelsim import schema
from accelsim.hardware import (
    KERNEL_MENU_KEYS,
    CacheLevelSpec,
    HardwareSpec,
    KernelLibrary,
    KernelMenu,
    TechnologySpec,
)
from accelsim.models import FAMILIES
from accelsim.workload import WorkloadSpec

#: Strings PyYAML would read as something else if they were written unquoted.
YAML_TRAPS = ("yes", "no", "on", "off", "y", "n", "true", "False", "null", "~", "", "1e9",
              "3.35e12", "0x10", "012", ".inf", "- item", "key: value", "#comment", "*alias",
              "&anchor", "!tag", "'quoted'", '"double"', " padded ", "a\nb", "<<", "é µs")

_BIG_INT = 2**63 - 1  # the loader's limit (int64)
#: Decimal and binary multiples: where unit formatting ("900 GB/s", "6 MiB") is exercised.
_SCALES = (1.0, 1e3, 1e6, 1e9, 1e12, 1e-3, 1e-6, 1e-9, 2.0**10, 2.0**20, 2.0**30)


def names() -> st.SearchStrategy[str]:
    """Free-text names: YAML trap words and arbitrary printable text."""
    text = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=12)
    return st.one_of(st.sampled_from(YAML_TRAPS), text)


def _floats(lo: float | None, hi: float | None) -> st.SearchStrategy[float]:
    lo = 0.0 if lo is None else float(lo)
    plain = st.floats(min_value=lo, max_value=1e18 if hi is None else float(hi),
                      allow_nan=False, allow_infinity=False)
    if hi is not None:
        return plain
    round_ = st.builds(lambda n, scale: n * scale, st.integers(0, 999), st.sampled_from(_SCALES))
    return st.one_of(plain, round_.filter(lambda x: x >= lo))


def _ints(lo: float | None, hi: float | None) -> st.SearchStrategy[int]:
    lo_i = 0 if lo is None else int(lo)
    hi_i = _BIG_INT if hi is None else int(hi)
    # Powers of two often divide each other, so rules such as "heads divide width" hold often
    # enough for filtering to work; the other branches cover everything else.
    powers = [2**k for k in range(63) if lo_i <= 2**k <= hi_i]
    branches = [st.integers(lo_i, min(hi_i, lo_i + 4096)), st.integers(lo_i, hi_i)]
    if powers:
        branches = [st.sampled_from(powers[:16]), st.sampled_from(powers[:16]), *branches]
    return st.one_of(branches)


def _byte_sizes(lo: float | None, hi: float | None = None) -> st.SearchStrategy[int]:
    lo_i = 0 if lo is None else int(lo)
    round_ = st.builds(lambda n, scale: n * scale, st.integers(1, 1023),
                       st.sampled_from([1, 1000, 1024, 10**6, 2**20, 10**9, 2**30, 2**40]))
    return st.one_of(_ints(lo, hi), round_.filter(lambda n: n >= lo_i))


def _for_type(tp: Any, meta: dict) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)][0]
        return st.one_of(st.none(), _for_type(inner, meta))
    lo, hi = meta.get("minimum"), meta.get("maximum")
    unit = meta.get("unit")
    if unit == "bytes":
        return _byte_sizes(lo, hi).filter(lambda n: hi is None or n <= hi)
    if unit:
        return _floats(lo, hi).filter(lambda x: x > 0 or not meta.get("positive"))
    if meta.get("choices"):
        return st.sampled_from(meta["choices"])
    if tp is Any and meta.get("polymorphic"):
        return model_configs()
    if attrs.has(tp):
        return specs_of(tp)
    if origin is tuple:
        return st.lists(_for_type(typing.get_args(tp)[0], {}), max_size=3).map(tuple)
    if origin is dict:
        value_tp = typing.get_args(tp)[1]
        keys = st.sampled_from(meta["keys"]) if meta.get("keys") else names()
        return st.dictionaries(keys, _for_type(value_tp, {}), min_size=1, max_size=3)
    if tp is bool:
        return st.booleans()
    if tp is int:
        return _ints(lo, hi)
    if tp is float:
        return _floats(lo, hi).filter(lambda x: x > 0 or not meta.get("positive"))
    if tp is str:
        return names()
    raise TypeError(f"no strategy for field type {tp!r}")


def specs_of(cls: type, **overrides: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid instances of an attrs spec class, field by field from its metadata.

    `overrides` replaces the strategy of named fields. Draws that break a cross-field rule of
    the class are filtered out; give an override when a rule rejects most draws.
    """
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in attrs.fields(cls):
        meta = dict(f.metadata)
        if cls is WorkloadSpec and f.name == "model":
            meta["polymorphic"] = True
        kwargs[f.name] = overrides[f.name] if f.name in overrides else _for_type(hints[f.name], meta)
    values = st.fixed_dictionaries(kwargs).filter(lambda v: not schema.violations(cls, v))
    return values.map(lambda v: _construct(cls, v)).filter(lambda obj: obj is not None)


def _construct(cls: type, values: dict[str, Any]) -> Any:
    """An instance, or None when a check that is not a `schema.rule` rejects the values."""
    try:
        return cls(**values)
    except (ValueError, TypeError):
        return None


@st.composite
def cache_level_specs(draw: st.DrawFn, *, line_bytes: int | None = None) -> CacheLevelSpec:
    """Valid cache levels: a power-of-two line, and ways that divide the number of lines."""
    line = line_bytes or 2 ** draw(st.integers(0, 12))
    sets = draw(st.one_of(st.integers(1, 64), st.sampled_from([2**10, 2**20])))
    ways = draw(st.sampled_from([0, 1, 2, 4, 8, 12, 16, 20]))
    lines = sets * max(ways, 1)
    capacity = lines * line + draw(st.integers(0, line - 1))
    return draw(specs_of(CacheLevelSpec, capacity_bytes=st.just(capacity),
                         line_bytes=st.just(line), ways=st.just(ways)))


@st.composite
def _cache_hierarchies(draw: st.DrawFn) -> tuple[CacheLevelSpec, ...]:
    # at least one level (`HardwareSpec` requires it): an empty draw would only be filtered out
    levels = draw(st.lists(cache_level_specs(), min_size=1, max_size=3,
                           unique_by=lambda c: c.name))
    return tuple(sorted(levels, key=lambda c: c.line_bytes))


def hardware_specs() -> st.SearchStrategy[HardwareSpec]:
    """Valid chips: every field drawn from its metadata, caches ordered by line size."""
    return specs_of(HardwareSpec, caches=_cache_hierarchies(), technology=technology_specs(),
                    kernel_library=kernel_libraries())


def kernel_menus() -> st.SearchStrategy[KernelMenu]:
    """Valid kernel menus: edges and depths in range, split-K factors ascending from 1."""
    edges = st.lists(st.sampled_from([8, 16, 32, 48, 64, 128, 256]), min_size=1, max_size=4,
                     unique=True).map(tuple)
    pairs = st.none() | st.lists(st.tuples(st.sampled_from([16, 32, 64, 128, 256]),
                                           st.sampled_from([8, 16, 32, 64, 128])),
                                 min_size=1, max_size=4).map(tuple)
    splits = st.lists(st.integers(2, 64), max_size=4, unique=True).map(
        lambda xs: (1, *sorted(xs)))
    return specs_of(KernelMenu, tile_edges=edges, tiles=pairs, split_k=splits,
                    tile_k=st.lists(st.sampled_from([8, 16, 32, 64]), min_size=1,
                                    max_size=3).map(tuple))


def kernel_libraries() -> st.SearchStrategy[KernelLibrary]:
    """The default library, or menus for a few dtypes and layouts."""
    menus = st.dictionaries(st.sampled_from(KERNEL_MENU_KEYS), kernel_menus(), max_size=2)
    return st.just(KernelLibrary()) | st.builds(
        lambda d, m: KernelLibrary(default=d, menus=m), kernel_menus(), menus)


def technology_specs() -> st.SearchStrategy[TechnologySpec | None]:
    """No technology section, or one naming a packaged node with values drawn from metadata."""
    from accelsim.spec import technology_table

    nodes = st.sampled_from(sorted(technology_table().nodes))
    return st.none() | specs_of(TechnologySpec, node=nodes)


def model_configs() -> st.SearchStrategy[Any]:
    """A config of any registered model family, its hyperparameters drawn from their metadata."""
    return st.sampled_from(sorted(FAMILIES)).flatmap(
        lambda name: specs_of(FAMILIES[name].config_class))


def workload_specs() -> st.SearchStrategy[WorkloadSpec]:
    """Valid training workloads of any registered model family."""
    return specs_of(WorkloadSpec)
