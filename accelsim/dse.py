"""Design-space sweeps: axes over hardware, workload and chips, a content-addressed store, engines.

An axis is a `--set KEY=V1,V2,...`. KEY is a YAML key path in the hardware spec
(`caches[0].capacity`, `hardware.memory.bandwidth`), in the workload (`subbatch`,
`model.hidden`, `workload.precision`) or the word `chips`. An unprefixed key belongs to the
file whose top-level keys include its first step; the few both files have (`name`,
`description`) must carry a `hardware.` or `workload.` prefix, so a key never means two things.

A variant is the base spec's plain data (`spec.to_dict`) with some key paths replaced by text as
the user wrote it, loaded back through the spec loader: a sweep accepts exactly what a file
accepts, with the same error messages. Keys the base file lacks can be added where the schema
has a free-keyed mapping (a dtype under `compute.matrix`) or an absent optional section. Every
variant is built (and checked) before the first simulation, so a bad value fails in a second,
not after an hour of sweeping; values that load to the same spec are collapsed.

The store is JSON lines, one finished point per line, appended, flushed and fsynced as points
finish. A point's key is the SHA-256 of the canonical JSON of everything its result depends on:
the loaded hardware and workload specs (`spec.to_dict`), chips, mode, the report schema and a
fingerprint of accelsim's own code. An edited YAML file or a changed simulator never reuses a
stale result, and a rerun (after Ctrl-C or kill -9) simulates only the points not yet stored.

Engines: in process (`jobs=1`), Dask (`dask.distributed`: a LocalCluster of `jobs` workers, an
existing scheduler address, or a `Client`), or, without Dask installed, a local spawn pool.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import os
import re
import time
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from accelsim import spec
from accelsim.errors import AccelsimError, Issue, LocatedError, SpecError
from accelsim.hardware import HardwareSpec
from accelsim.plan import CLI_ALIASES
from accelsim.report import SCHEMA_VERSION
from accelsim.vocabulary import MEMORY
from accelsim.workload import WorkloadSpec

_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])*"
_PATH = re.compile(rf"{_NAME}(?:\.{_NAME})*")
_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")

HARDWARE, WORKLOAD, CHIPS = "hardware", "workload", "chips"
#: `--set plan=dp=4+pp=2,pp=4+tp=2`: whole parallel plans, written as `--plan` text with `+`
#: between its items (commas separate the axis's values); they replace the workload's
#: `parallel:` section. `dp`, `pp`, `tp` are its degrees alone (`--set pp=1,2,4`).
PLAN, PLAN_PATH = "plan", "parallel"
MODES = ("auto", "exact", "coalesced")
#: Version of the store's line format (bump when a record's layout changes).
STORE_FORMAT = 2
#: Summary fields a stored record must carry to be used (the table, CSV and plots read them).
_SUMMARY_NUMBERS = ("step_time_s", "flop_utilization", "shortfall_bytes", "footprint_bytes")


# --- axes ------------------------------------------------------------------------------------
@attrs.frozen
class Axis:
    """One `--set`: which file (or chips) it edits, the key path there, its distinct values."""

    key: str                 # as the user typed it: the column name in tables
    target: str              # HARDWARE, WORKLOAD or CHIPS
    path: str                # canonical key path inside the target ("" for chips)
    values: tuple[str, ...]  # as typed, duplicates (equal after loading) removed
    unit: str = ""           # unit of the loaded values: bytes, bytes/s, Hz, s, FLOP/s or ""


def _top_keys(cls: type) -> list[str]:
    return [spec.yaml_key(f.name) for f in attrs.fields(cls)]


def _split_target(key: str) -> tuple[str, str]:
    """(target, key path inside it) of a `--set` key; AccelsimError if it is ambiguous or unknown."""
    if key == CHIPS:
        return CHIPS, ""
    # --- parallel plans as an axis ---
    if key == PLAN:
        return WORKLOAD, PLAN_PATH
    if key in CLI_ALIASES:
        return WORKLOAD, f"{PLAN_PATH}.{CLI_ALIASES[key]}"
    # --- end parallel plans ---
    for target in (HARDWARE, WORKLOAD):
        if key.startswith(target + "."):
            return target, key[len(target) + 1:]
    first = re.split(r"[.\[]", key, maxsplit=1)[0]
    hw_keys, wl_keys = _top_keys(HardwareSpec), _top_keys(WorkloadSpec)
    in_hw = first in hw_keys or spec.yaml_key(first) in hw_keys
    in_wl = first in wl_keys or spec.yaml_key(first) in wl_keys
    if in_hw and in_wl:
        raise SpecError([Issue(f"--set {key}", None, None, key,
                               f"'hardware.{key}' or 'workload.{key}' (both files have "
                               f"{first!r})", repr(key))])
    if in_hw:
        return HARDWARE, key
    if in_wl:
        return WORKLOAD, key
    import difflib

    valid = [*hw_keys, *(k for k in wl_keys if k not in hw_keys), CHIPS, PLAN, *CLI_ALIASES]
    close = difflib.get_close_matches(first, valid, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise SpecError([Issue(f"--set {key}", None, None, key,
                           f"a key path starting with a hardware key {hw_keys}, a workload key "
                           f"{wl_keys}, 'hardware.', 'workload.', the word 'chips', or a "
                           "plan: 'plan' (whole plans such as dp=4+pp=2) or 'dp', 'pp', 'tp'",
                           f"unknown key {first!r}{hint}")])


def _text(value: Any) -> str:
    """A setting as YAML text: strings stay as written, Python numbers and booleans spelled."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return str(value)


def _parse_path(key: str, label: str) -> list[str | int]:
    if not _PATH.fullmatch(key):
        raise SpecError([Issue(f"--set {label}", None, None, key,
                               "a key path such as 'memory.bandwidth' or 'caches[0].capacity'",
                               repr(key))])
    return [name if name else int(index) for name, index in _STEP.findall(key)]


def _join(path: str, step: str | int) -> str:
    if isinstance(step, int):
        return f"{path}[{step}]"
    return f"{path}.{step}" if path else step


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unwrap(tp: Any, node: Any) -> Any:
    """The type to walk into: optional types without None, a model config for `model: Any`."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    if tp is Any and isinstance(node, dict):
        from accelsim.models import FAMILIES

        fam = FAMILIES.get(node.get("family"))  # type: ignore[arg-type]
        if fam is not None:
            return fam.config_class
    return tp


def _resolve(data: Any, root: type, key: str, label: str) -> tuple[Any, str | int, str]:
    """(container, last step, canonical key path) for `key` in `data`, walking the schema too.

    Missing keys are created where the schema allows them: in a free-keyed mapping (a dtype
    under compute.matrix; the loader then judges the key) and for an absent optional section.
    """
    steps = _parse_path(key, label)
    node, tp, path = data, root, ""
    for i, step in enumerate(steps):
        tp = _unwrap(tp, node)
        if isinstance(step, int):
            if typing.get_origin(tp) is not tuple or not isinstance(node, list):
                what = "a mapping" if isinstance(node, dict) else repr(node)
                raise SpecError([Issue(f"--set {label}", None, None, _join(path, step),
                                       f"a list at {path!r}", what)])
            if step >= len(node):
                raise SpecError([Issue(f"--set {label}", None, None, _join(path, step),
                                       f"an index below {len(node)} ({path!r} has {len(node)} "
                                       "items)", str(step))])
            child_tp = typing.get_args(tp)[0]
        elif attrs.has(tp) and isinstance(node, dict):
            names = {spec.yaml_key(f.name): f.name for f in attrs.fields(tp)}
            if step not in names and spec.yaml_key(step) in names:
                step = spec.yaml_key(step)  # full field names (capacity_bytes) are accepted too
            if step == "family" and "family" in node:
                child_tp = str
            elif step not in names:
                import difflib

                valid = list(names)
                close = difflib.get_close_matches(step, valid, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise SpecError([Issue(f"--set {label}", None, None, _join(path, step),
                                       f"one of the keys {valid}", f"unknown key {step!r}{hint}")])
            else:
                child_tp = _hints(tp)[names[step]]
        elif typing.get_origin(tp) is dict and isinstance(node, dict):
            child_tp = typing.get_args(tp)[1]  # any key: the loader judges it (e.g. a dtype)
        else:
            what = "a list" if isinstance(node, list) else f"the value {node!r}"
            raise SpecError([Issue(f"--set {label}", None, None, _join(path, step),
                                   f"a mapping at {path or '<top>'!r}", what)])
        path = _join(path, step)
        if i == len(steps) - 1:
            return node, step, path
        child = node[step] if isinstance(step, int) else node.get(step)
        if child is None:
            inner = _unwrap(child_tp, None)
            if attrs.has(inner) or typing.get_origin(inner) is dict:
                node[step] = child = {}  # an absent section or a new dict key: filled by the rest
        node, tp = child, child_tp
    raise AssertionError("unreachable")


def _apply(obj: Any, root: type, settings: Mapping[str, Any],
           labels: Mapping[str, str] | None = None) -> Any:
    """`obj` with each key path set to its YAML text, loaded back through the spec loader."""
    data = spec.to_dict(obj, with_units=True)
    canonical: dict[str, str] = {}
    for key, value in settings.items():
        label = (labels or {}).get(key, key)
        container, step, path = _resolve(data, root, key, label)
        text = _text(value)
        if path in canonical:
            raise SpecError([Issue(f"--set {label}", None, None, path, "each key path set once",
                                   f"{path} again ({canonical[path]})")])
        container[step] = (_plan_section(text, label) if root is WorkloadSpec
                           and path == PLAN_PATH else spec.Verbatim(text))
        canonical[path] = f"--set {label}={text}"
    try:
        if root is HardwareSpec:
            return spec.hardware_from_data(data, "<sweep>")
        return spec.workload_from_data(data, "<sweep>")
    except SpecError as exc:
        where = ", ".join(f"{(labels or {}).get(k, k)}={_text(v)}" for k, v in settings.items())
        issues = []
        for issue in exc.issues:
            owner = next((lab for p, lab in canonical.items()
                          if issue.key_path == p or issue.key_path.startswith((p + ".", p + "["))),
                         None)
            issues.append(Issue(owner if owner is not None else f"<sweep {where}>", None, None,
                                issue.key_path, issue.expected, issue.got))
        raise SpecError(list(dict.fromkeys(issues))) from None


def _plan_section(text: str, label: str) -> dict[str, Any]:
    """`dp=4+pp=2` (the `--plan` items joined by `+`) as a `parallel:` section for the loader."""
    from accelsim.plan import cli_plan_data

    try:
        data = cli_plan_data(text.replace("+", ","))
    except AccelsimError as exc:
        raise SpecError([Issue(f"--set {label}={text}", None, None, PLAN_PATH,
                               "plan items KEY=VALUE joined by '+' (e.g. dp=4+pp=2+tp=1)",
                               str(exc).split(": ", 1)[-1])]) from None
    return {k: [spec.Verbatim(x) for x in v] if isinstance(v, list) else spec.Verbatim(v)
            for k, v in data.items()}


def apply_settings(hw: HardwareSpec, settings_point: Mapping[str, Any]) -> HardwareSpec:
    """`hw` with each key path set to its value (YAML text such as '24 MiB'), checked by the loader.

    Raises SpecError naming the `--set` text and key path of whatever the loader rejects.
    """
    if not isinstance(hw, HardwareSpec):
        from accelsim.errors import SpecTypeError

        raise SpecTypeError(f"hw: expected a HardwareSpec, got {type(hw).__name__}")
    return _apply(hw, HardwareSpec, settings_point)


def apply_workload_settings(wl: WorkloadSpec, settings_point: Mapping[str, Any]) -> WorkloadSpec:
    """`wl` with each key path (`subbatch`, `model.hidden`, ...) set, checked by the loader."""
    return _apply(wl, WorkloadSpec, settings_point)


_UNIT_NAMES = {"bytes": "bytes", "bandwidth": "bytes/s", "frequency": "Hz", "time": "s",
               "flop_rate": "FLOP/s"}


def _unit_of(root: type, data: Any, path: str) -> str:
    """Unit of the base-unit numbers at `path` (from the field's schema metadata), or ""."""
    node, tp, unit = data, root, ""
    for step in _parse_path(path, path):
        tp = _unwrap(tp, node)
        if isinstance(step, int):
            tp = typing.get_args(tp)[0] if typing.get_origin(tp) is tuple else Any
        elif attrs.has(tp):
            f = next((f for f in attrs.fields(tp) if spec.yaml_key(f.name) == step), None)
            if f is None:
                return ""
            unit, tp = f.metadata.get("unit", ""), _hints(tp)[f.name]
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        if isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        elif isinstance(node, dict):
            node = node.get(step)
        else:
            node = None
    return _UNIT_NAMES.get(unit, "")


def _lookup(data: Any, path: str) -> Any:
    node = data
    for step in _parse_path(path, path):
        node = node[step]
    return node


def _chips_value(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or str(value) != text.strip():
        raise SpecError([Issue(f"--set chips={text}", None, None, "chips",
                               "a whole number >= 1", repr(text))])
    return value


def _field_name(obj: Any, key: str) -> str:
    for f in attrs.fields(type(obj)):
        if spec.yaml_key(f.name) == key or f.name == key:
            return f.name
    raise KeyError(key)


def _get(obj: Any, steps: Sequence[str | int]) -> Any:
    for step in steps:
        if isinstance(step, int):
            obj = obj[step]
        elif isinstance(obj, dict):
            obj = obj[step]
        else:
            obj = getattr(obj, _field_name(obj, step))
    return obj


def _put(obj: Any, steps: Sequence[str | int], value: Any) -> Any:
    """`obj` with the object at `steps` replaced (attrs.evolve re-runs validators and rules)."""
    if not steps:
        return value
    step, rest = steps[0], steps[1:]
    if isinstance(step, int):
        items = list(obj)
        items[step] = _put(items[step], rest, value)
        return tuple(items)
    if isinstance(obj, dict):
        return {**obj, step: _put(obj[step], rest, value) if rest else value}
    name = _field_name(obj, step)
    return attrs.evolve(obj, **{name: _put(getattr(obj, name), rest, value)})


def _present(obj: Any, step: str | int) -> bool:
    if isinstance(step, int):
        return isinstance(obj, tuple | list) and step < len(obj)
    if isinstance(obj, dict):
        return step in obj
    return attrs.has(type(obj)) and getattr(obj, _field_name(obj, step), None) is not None


def _combine(base: Any, root: type, chosen: Sequence[tuple[Axis, str]],
             single: Mapping[tuple[str, str], Any]) -> Any:
    """The base with several axis values set: each value's object comes from its single-value
    variant (loaded and checked), grafted with attrs.evolve, which re-runs every field check and
    cross-key rule. Whatever the graft cannot do (a model family change, a broken rule) goes
    through the loader instead, for its exact result or message. Loading every combination
    through YAML would cost ~0.05 s each: a minute per thousand points."""
    if not chosen:
        return base
    if len(chosen) == 1:
        return single[(chosen[0][0].key, chosen[0][1])]
    try:
        obj = base
        for axis, text in chosen:
            steps = _parse_path(axis.path, axis.key)
            if "family" in steps:
                raise KeyError("family")
            source = single[(axis.key, text)]
            depth = 0
            node = obj
            while depth < len(steps) - 1 and _present(node, steps[depth]):
                node = _get(node, [steps[depth]])
                depth += 1
            graft = steps[:depth + 1]  # the deepest part the current object has, plus one
            obj = _put(obj, graft, _get(source, graft))
        return obj
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):
        return _apply(base, root, {a.path: v for a, v in chosen}, {a.path: a.key for a, _ in chosen})


# --- the plan: every design point, built and checked before any simulation -------------------
@attrs.frozen(eq=False)
class DesignPoint:
    """One combination of axis values: the loaded variants, chips and the store key."""

    settings: dict[str, str]    # axis key -> value as typed
    values: dict[str, Any]      # axis key -> loaded value in base units (bytes, bytes/s, ...)
    hw: HardwareSpec
    wl: WorkloadSpec
    chips: int
    key: str


@attrs.frozen(eq=False)
class Plan:
    axes: tuple[Axis, ...]
    points: tuple[DesignPoint, ...]
    mode: str
    notes: tuple[str, ...]
    #: step graphs built while checking (by workload), reused by the simulation
    graphs: dict[str, Any] = attrs.field(factory=dict)


def grid(settings: Mapping[str, Sequence[Any]]) -> list[dict[str, str]]:
    """The Cartesian product of the settings, first key varying slowest, values as text."""
    for key, values in settings.items():
        if isinstance(values, str | bytes) or not values:
            raise AccelsimError(f"--set {key}: expected a non-empty list of values, got {values!r}")
    keys = list(settings)
    return [dict(zip(keys, (_text(v) for v in combo), strict=True))
            for combo in itertools.product(*(settings[k] for k in keys))]


#: Modules that only present or drive results: editing them does not invalidate stored points.
_PRESENTATION = ("__main__.py", "cli.py", "dse.py", "plot.py", "progress.py", "testing.py",
                 "spec_strategies.py")


@functools.cache
def code_fingerprint() -> str:
    """SHA-256 of accelsim's own source and data files: a changed simulator never reuses results."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    files = [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
             and p.suffix in (".py", ".yaml", ".yml", ".csv", ".json", ".txt")
             and p.relative_to(root).as_posix() not in _PRESENTATION]
    for p in sorted(files):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def point_key(hw: HardwareSpec, wl: WorkloadSpec, *, chips: int, mode: str) -> str:
    """The store key of a design point: SHA-256 of the canonical JSON of all it depends on."""
    return _key_of(spec.to_dict(hw), spec.to_dict(wl), chips=chips, mode=mode)


def _key_of(hw_data: Any, wl_data: Any, *, chips: int, mode: str) -> str:
    from accelsim import __version__

    material = {"hardware": hw_data, "workload": wl_data, "chips": chips,
                "mode": mode, "accelsim": __version__, "code": code_fingerprint(),
                "report_schema": SCHEMA_VERSION}
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def plan(hw: HardwareSpec, wl: WorkloadSpec, settings: Mapping[str, Sequence[Any]], *,
         chips: int = 1, mode: str = "auto") -> Plan:
    """Every design point of the settings grid, loaded and checked (all problems reported at once).

    Values of one axis that load to the same spec (`6MiB` and `6 MiB`, `8` twice) are
    collapsed into the first, with a note.
    """
    from accelsim.estimate import check_chips, check_mode, check_specs

    check_specs(hw, wl)  # wrong types and swapped arguments named, as in `simulate`
    check_chips(hw, chips)
    check_mode(mode)
    if not isinstance(settings, Mapping):
        raise AccelsimError(f"settings: expected a mapping of key paths to value lists, got "
                            f"{type(settings).__name__}")
    grid(settings)  # shape of the values
    issues: list[Issue] = []
    notes: list[str] = []
    axes: list[Axis] = []
    single: dict[tuple[str, str], Any] = {}  # (axis key, value) -> the base with that value set
    for key, raw in settings.items():
        canonical: dict[str, Any]
        try:
            target, path = _split_target(key)
            if target == CHIPS:
                if chips != 1:
                    raise AccelsimError("chips: given both as an option and as a --set axis")
                canonical = {t: _chips_value(t) for t in (_text(v) for v in raw)}
                path_c = ""
            else:
                root, base = (HardwareSpec, hw) if target == HARDWARE else (WorkloadSpec, wl)
                path_c = _resolve(spec.to_dict(base, with_units=True), root, path, key)[2]
                canonical = {}
                for text in (_text(v) for v in raw):
                    try:
                        variant = _apply(base, root, {path: text}, {path: key})
                    except SpecError as exc:
                        issues += exc.issues
                        continue
                    single[(key, text)] = variant
                    canonical[text] = json.dumps(_lookup(spec.to_dict(variant), path_c))
        except SpecError as exc:
            issues += exc.issues
            continue
        kept: dict[Any, str] = {}
        for text in (_text(v) for v in raw):
            value = canonical.get(text)
            if value is None:
                continue  # rejected above
            if kept.get(value) == text:
                notes.append(f"--set {key}: {text} given twice; simulated once")
            elif value in kept:
                notes.append(f"--set {key}: {text} is the same as {kept[value]}; simulated once")
            else:
                kept[value] = text
        unit = "" if target == CHIPS else _unit_of(root, spec.to_dict(base), path_c)
        axes.append(Axis(key=key, target=target, path=path_c, values=tuple(kept.values()),
                         unit=unit))
    seen: dict[tuple[str, str], str] = {}
    for a in axes:
        where = (a.target, a.path)
        inside = next((k for (t, p), k in seen.items() if t == a.target and p and a.path and (
            a.path.startswith((p + ".", p + "[")) or p.startswith((a.path + ".", a.path + "[")))),
            None)
        if where in seen:
            issues.append(Issue(f"--set {a.key}", None, None, a.path or a.key,
                                "each key path set by one --set",
                                f"the same key as --set {seen[where]}"))
        elif inside is not None:  # `plan` and `pp`: one would overwrite part of the other
            issues.append(Issue(f"--set {a.key}", None, None, a.path,
                                "key paths that do not contain one another",
                                f"a key path overlapping --set {inside}"))
        seen.setdefault(where, a.key)
    if issues:
        raise SpecError(list(dict.fromkeys(issues)))

    hw_cache: dict[tuple, tuple[HardwareSpec, Any]] = {}
    wl_cache: dict[tuple, tuple[WorkloadSpec, Any]] = {}
    points: list[DesignPoint] = []
    for combo in itertools.product(*(a.values for a in axes)):
        chosen = dict(zip(axes, combo, strict=True))
        hw_set = tuple((a, v) for a, v in chosen.items() if a.target == HARDWARE)
        wl_set = tuple((a, v) for a, v in chosen.items() if a.target == WORKLOAD)
        try:
            if hw_set not in hw_cache:
                hw_v = _combine(hw, HardwareSpec, hw_set, single)
                hw_cache[hw_set] = hw_v, spec.to_dict(hw_v)
            if wl_set not in wl_cache:
                wl_v = _combine(wl, WorkloadSpec, wl_set, single)
                wl_cache[wl_set] = wl_v, spec.to_dict(wl_v)
        except SpecError as exc:
            issues += exc.issues
            continue
        (hw_v, hw_d), (wl_v, wl_d) = hw_cache[hw_set], wl_cache[wl_set]
        n_chips = next((_chips_value(v) for a, v in chosen.items() if a.target == CHIPS), chips)
        values: dict[str, Any] = {}
        for a in chosen:
            if a.target == CHIPS:
                values[a.key] = n_chips
            elif a.target == WORKLOAD and a.path == PLAN_PATH:
                values[a.key] = wl_v.parallel.label() if wl_v.parallel is not None else ""
            else:
                values[a.key] = _lookup(hw_d if a.target == HARDWARE else wl_d, a.path)
        points.append(DesignPoint(settings={a.key: v for a, v in chosen.items()}, values=values,
                                  hw=hw_v, wl=wl_v, chips=n_chips,
                                  key=_key_of(hw_d, wl_d, chips=n_chips, mode=mode)))
    if issues:
        raise SpecError(list(dict.fromkeys(issues)))
    graphs: dict[str, Any] = {}
    issues += _check_plans(points, axes, graphs)
    if issues:
        raise SpecError(list(dict.fromkeys(issues)))
    return Plan(axes=tuple(axes), points=tuple(points), mode=mode, notes=tuple(notes),
                graphs=graphs)


def _check_plans(points: Sequence[DesignPoint], axes: Sequence[Axis],
                 graphs: dict[str, Any]) -> list[Issue]:
    """Every point's parallel plan resolved against its chips and the model, and its graph
    partitioned, as `run` and `check` do, before any simulation. The graphs built for this
    are kept in `graphs` (by workload) for the simulation."""
    from accelsim.api import resolve_plan
    from accelsim.models import build_graph
    from accelsim.parallel import check_plan

    issues: list[Issue] = []
    seen: set[tuple[str, int]] = set()
    plan_axes = [a for a in axes if a.target == CHIPS
                 or (a.target == WORKLOAD and a.path.split(".")[0] == PLAN_PATH)]
    for p in points:
        if p.wl.parallel is None:
            continue
        wl_key = _wl_key(p)
        if (wl_key, p.chips) in seen:
            continue
        seen.add((wl_key, p.chips))
        shown = [a for a in plan_axes if a.key in p.settings] or list(axes)
        label = "--set " + ", ".join(f"{a.key}={p.settings[a.key]}" for a in shown)
        try:
            resolved = resolve_plan(p.wl, p.chips, p.wl.parallel, source=label)
            if resolved is not None:
                if wl_key not in graphs:
                    graphs[wl_key] = build_graph(p.wl)
                check_plan(p.wl, resolved, graphs[wl_key])
        except LocatedError as exc:  # the partition's (pipeline deeper than the layers, ...)
            path = exc.key_path if exc.key_path.startswith(PLAN_PATH) else (
                f"{PLAN_PATH}.{exc.key_path}")
            issues.append(Issue(label, None, None, path, exc.expected, exc.got))
        except AccelsimError as exc:  # resolve_plan's: "<label>: <key>: expected X, got Y"
            text = str(exc).removeprefix(label + ": ")
            key, sep, rest = text.partition(": expected ")
            expected, sep2, got = rest.rpartition(", got ")
            if sep and sep2 and " " not in key:
                issues.append(Issue(label, None, None, f"{PLAN_PATH}.{key}", expected, got))
            else:
                issues.append(Issue(label, None, None, PLAN_PATH,
                                    "a plan that splits the model over the chips", text))
    return issues


# --- the store -------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class SweepPoint:
    """One finished design point: its settings, loaded values and the report's summary."""

    settings: dict[str, str]
    values: dict[str, Any]
    hardware: str
    workload: str
    chips: int
    mode: str
    key: str
    summary: dict[str, Any]
    reused: bool = False  # read from the store, not simulated in this run

    def to_record(self) -> dict[str, Any]:
        """The store's JSON line for this point (sealed with a check of its own content)."""
        from accelsim import __version__

        rec = {"format": STORE_FORMAT, "key": self.key, "accelsim": __version__,
               "schema_version": SCHEMA_VERSION, "settings": self.settings,
               "hardware": self.hardware, "workload": self.workload, "chips": self.chips,
               "mode": self.mode, "summary": self.summary}
        return {**rec, "check": _check_of(rec)}


def _check_of(rec: Mapping[str, Any]) -> str:
    body = {k: v for k, v in rec.items() if k != "check"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _why_invalid(rec: Any) -> str | None:
    """What is wrong with a parsed store line (None: usable)."""
    if not isinstance(rec, dict):
        return f"a JSON {type(rec).__name__}, not an object"
    if rec.get("format") != STORE_FORMAT:
        return f"store format {rec.get('format')!r}, expected {STORE_FORMAT}"
    if rec.get("check") != _check_of(rec):
        return "its check does not match its content (edited or corrupted)"
    key = rec.get("key")
    if not isinstance(key, str) or not re.fullmatch(r"[0-9a-f]{64}", key):
        return "no valid key"
    summary = rec.get("summary")
    if not isinstance(summary, dict):
        return "no summary object"
    for name in _SUMMARY_NUMBERS:
        v = summary.get(name)
        if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
            return f"summary.{name} is not a number >= 0"
    for name in ("hit_rate", "level_bytes"):
        if not isinstance(summary.get(name), dict):
            return f"summary.{name} is not an object"
    if not isinstance(rec.get("settings"), dict) or not isinstance(rec.get("chips"), int):
        return "no settings or chips"
    if rec.get("mode") not in MODES:
        return "no valid mode"
    return None


@attrs.frozen
class StoreContents:
    """The usable records of a store by key, and the lines that were not usable (1-based)."""

    records: dict[str, dict[str, Any]]
    invalid: tuple[tuple[int, str], ...]  # (line number, why)

    def describe(self, path: str | Path) -> str | None:
        """One note about unusable lines, or None."""
        if not self.invalid:
            return None
        shown = ", ".join(f"{n} ({why})" for n, why in self.invalid[:5])
        more = f" and {len(self.invalid) - 5} more" if len(self.invalid) > 5 else ""
        return (f"store {path}: {len(self.invalid)} unusable line"
                f"{'s' if len(self.invalid) > 1 else ''} ignored: line {shown}{more}; "
                "their points are simulated again")


def read_store(path: str | Path) -> StoreContents:
    """Usable records of a store by key; torn, non-JSON or wrong-content lines are listed, not fatal."""
    found: dict[str, dict[str, Any]] = {}
    invalid: list[tuple[int, str]] = []
    p = Path(path)
    if not p.exists():
        return StoreContents({}, ())
    with open(p, "rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                invalid.append((n, "not JSON (torn by a killed run, or edited)"))
                continue
            why = _why_invalid(rec)
            if why is not None:
                invalid.append((n, why))
                continue
            found.setdefault(rec["key"], rec)  # first one wins; a later duplicate is harmless
    return StoreContents(found, tuple(invalid))


def _end_torn_line(path: Path) -> None:
    """Close a line a killed run left unfinished, so the next record starts on its own line."""
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as fh:
            fh.seek(-1, 2)
            torn = fh.read(1) != b"\n"
        if torn:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write("\n")


def _append(path: Path, record: Mapping[str, Any]) -> None:
    """One whole line per write, flushed and fsynced: a finished point survives kill -9."""
    line = (json.dumps(record, allow_nan=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


# --- engines ---------------------------------------------------------------------------------
def _simulate_summary(hw: HardwareSpec, wl: WorkloadSpec, graph: Any, chips: int,
                      mode: str) -> dict:
    """A point's report summary, simulated without reuse (what a reused point must equal)."""
    from accelsim.api import simulate

    return _summary_of(simulate(hw, wl, chips=chips, mode=mode, graph=graph))


def _summary_of(report: Any) -> dict:
    """`report.to_dict()["summary"]` without converting its thousands of ops first."""
    return attrs.evolve(report, ops=()).to_dict()["summary"]


# --- reuse across points: stage results kept per worker process ---
#: Stage results this process keeps for later points of one sweep (`accelsim.reuse`), by
#: sweep; a worker that starts on another sweep frees the earlier one's (long-lived Dask
#: workers serve many sweeps).
_PROCESS_REUSE: dict[str, Any] = {}
#: Stages whose reuse the notes report, by the name `StageReuse` counts them under.
REUSED_STAGES = {"trace_step": "cache simulation", "_execute": "executed (fused) graph"}


def _process_reuse(sweep_id: str) -> Any:
    from accelsim.reuse import StageReuse

    if sweep_id not in _PROCESS_REUSE:
        _PROCESS_REUSE.clear()
        _PROCESS_REUSE[sweep_id] = StageReuse(max_entries=8)
    return _PROCESS_REUSE[sweep_id]


#: Cache-simulation threads in a sweep's worker processes (pool or Dask): one, since the
#: sweep already runs one worker per core (two each would oversubscribe the cores).
WORKER_CACHE_THREADS = 1


def _simulate_point(hw: HardwareSpec, wl: WorkloadSpec, graph: Any, chips: int,
                    mode: str, sweep_id: str = "", cache_threads: int | None = None) -> dict:
    """Worker body (module level so that spawned and Dask processes can import it): the
    point's summary, which stages it ran or reused, and the key paths those stages read (the
    driver groups later points by them). `cache_threads` (pool and Dask workers: 1, as each
    worker already has a core of its own) sets this process's `cache.THREADS_ENV`."""
    from accelsim import pipeline
    from accelsim.api import simulate
    from accelsim.cache import THREADS_ENV
    from accelsim.reuse import reusing

    if cache_threads is not None:
        os.environ[THREADS_ENV] = str(cache_threads)

    memo = _process_reuse(sweep_id)
    before = {name: (c.ran, c.reused) for name, c in memo.counts.items()}
    with reusing(memo):
        report = simulate(hw, wl, chips=chips, mode=mode, graph=graph)
    stages = {name: (c.ran - before.get(name, (0, 0))[0], c.reused - before.get(name, (0, 0))[1])
              for name, c in memo.counts.items()}
    return {"summary": _summary_of(report), "stages": stages,
            "trace_paths": memo.read_paths(pipeline.trace_step)}


class _Tally:
    """What the finished points ran and reused, for the sweep's notes and the grouping."""

    def __init__(self) -> None:
        self.stages: dict[str, list[int]] = {}
        self.trace_paths: list[tuple] | None = None

    def add(self, outcome: Mapping[str, Any]) -> None:
        for name, (ran, reused) in outcome["stages"].items():
            counts = self.stages.setdefault(name, [0, 0])
            counts[0] += ran
            counts[1] += reused
        if self.trace_paths is None and outcome["trace_paths"]:
            self.trace_paths = [tuple(p) for p in outcome["trace_paths"]]

    def notes(self, points: int, split: str) -> list[str]:
        from accelsim.reuse import path_text

        out = []
        for name, what in REUSED_STAGES.items():
            ran, reused = self.stages.get(name, (0, 0))
            if not ran and not reused:
                continue
            text = (f"reuse: {what} run {ran} times for {points} points ({reused} reused "
                    "the result of an earlier point that agreed on every input it read")
            if name == "trace_step" and self.trace_paths:
                fields = sorted({path_text(p).split(" (")[0] for p in self.trace_paths})
                text += (f": the mappings, the executed graph and {', '.join(fields)}")
            out.append(text + ")" + (split if name == "trace_step" and split else ""))
        return out


def _group_key(p: DesignPoint, trace_paths: Sequence[tuple] | None) -> tuple:
    """Points with equal keys can share a cache simulation (if their mappings agree too)."""
    from accelsim.reuse import read_value

    values = tuple(read_value(p.hw, path) for path in trace_paths or ())
    return (_wl_key(p), p.chips, values)


def _by_group(jobs: Sequence[Job], trace_paths: Sequence[tuple] | None,
              workers: int) -> list[list[Job]]:
    """The jobs in runs that share a cache simulation. For several workers the runs are cut
    to at most half a worker's share, longest first, so that assigning each run to the least
    loaded worker keeps them all busy (a cut group simulates its cache state once per worker
    it lands on)."""
    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        groups.setdefault(_group_key(job[1], trace_paths), []).append(job)
    if workers <= 1:
        return list(groups.values())
    share = max(1, math.ceil(len(jobs) / (2 * workers)))
    runs = [g[i:i + share] for g in groups.values() for i in range(0, len(g), share)]
    return sorted(runs, key=len, reverse=True)
# --- end reuse across points ---


def _watch_parent(parent_pid: int) -> None:
    """Pool-worker initializer: exit when the driver dies, even by SIGKILL (no orphans)."""
    import threading

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()


def dask_available() -> bool:
    """True when `dask.distributed` can be imported (the `dask` extra)."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


class _LocalDask:
    """A LocalCluster of single-threaded worker processes, closed on exit (workers die with it)."""

    def __init__(self, workers: int) -> None:
        import logging

        from distributed import Client, LocalCluster

        self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                    dashboard_address=None, silence_logs=logging.ERROR)
        self.client = Client(self.cluster)

    def close(self) -> None:
        self.client.close()
        self.cluster.close()


def _probe(address: str | None) -> None:
    """Fail at once, not after the client's retries, when nothing listens at a tcp:// address."""
    import socket
    from urllib.parse import urlsplit

    if not address or not address.startswith("tcp://"):
        return
    try:
        parts = urlsplit(address)
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or not port:
        raise AccelsimError(f"--scheduler {address}: expected tcp://HOST:PORT")
    try:
        socket.create_connection((host, port), timeout=10).close()
    except OSError as exc:
        raise AccelsimError(f"--scheduler {address}: cannot connect "
                            f"({exc.strerror or exc})") from None


def _check_workers(client: Any) -> int:
    """Number of workers; AccelsimError when one runs a different accelsim (results would differ)."""
    prints = client.run(code_fingerprint)
    mine = code_fingerprint()
    other = sorted(addr for addr, fp in prints.items() if fp != mine)
    if other:
        raise AccelsimError(f"Dask workers {other} run a different accelsim than this driver "
                            "(install the same version on every machine of the cluster)")
    if not prints:
        raise AccelsimError("the Dask cluster has no workers")
    return len(prints)


Job = tuple[int, DesignPoint]  # (index among the points to simulate, point)


def _run_dask(client: Any, jobs: list[Job], graphs: Mapping[str, Any], mode: str,
              finish: Callable[[int, dict], None], tally: _Tally, sweep_id: str) -> None:
    """The first point alone (it tells which settings its cache simulation read), then the
    rest grouped by those settings, each group pinned to one worker so that it simulates
    the shared cache state once (`_by_group`); points stream back as they finish."""
    from distributed import as_completed

    scattered = {k: client.scatter(g, broadcast=True, hash=False) for k, g in graphs.items()}
    futures: dict[Any, int] = {}

    def submit(i: int, p: DesignPoint, worker: str | None = None) -> Any:
        fut = client.submit(_simulate_point, p.hw, p.wl, scattered[_wl_key(p)], p.chips, mode,
                            sweep_id, WORKER_CACHE_THREADS,
                            pure=False, key=f"accelsim-point-{p.key[:20]}-{i}",
                            workers=[worker] if worker else None,
                            allow_other_workers=worker is not None)
        futures[fut] = i
        return fut

    by_index = dict(jobs)
    pending = as_completed([submit(*jobs[0])])
    rest = jobs[1:]
    try:
        for fut in pending:
            try:
                outcome = fut.result()
            except (AccelsimError, KeyboardInterrupt):
                raise
            except Exception as exc:
                if type(exc).__name__ not in ("KilledWorker", "CancelledError",
                                              "FutureCancelledError"):
                    raise  # a bug: keep its traceback
                p = by_index[futures[fut]]
                raise AccelsimError(f"design point {p.settings}: its Dask worker died or was "
                                    f"cancelled ({type(exc).__name__}: {exc}); out of memory? "
                                    "rerun with --out to keep finished points") from None
            tally.add(outcome)
            finish(futures[fut], outcome)
            if rest:
                addresses = sorted(client.scheduler_info()["workers"]) or [None]
                load = dict.fromkeys(addresses, 0)
                for run in _by_group(rest, tally.trace_paths, len(addresses)):
                    worker = min(load, key=lambda a: load[a])  # least loaded first
                    load[worker] += len(run)
                    for i, p in run:
                        pending.add(submit(i, p, worker if len(addresses) > 1 else None))
                rest = []
    finally:
        client.cancel(list(futures))
        client.cancel(list(scattered.values()))


def _run_pool(workers: int, jobs: list[Job], graphs: Mapping[str, Any], mode: str,
              finish: Callable[[int, dict], None], tally: _Tally, sweep_id: str) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")  # numba's thread pool does not survive fork
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_watch_parent,
                             initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(_simulate_point, p.hw, p.wl, graphs[_wl_key(p)], p.chips, mode,
                               sweep_id, WORKER_CACHE_THREADS): i
                   for i, p in jobs}
        try:
            for fut in as_completed(futures):
                outcome = fut.result()
                tally.add(outcome)
                finish(futures[fut], outcome)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise


def _wl_key(p: DesignPoint) -> str:
    return json.dumps(spec.to_dict(p.wl), sort_keys=True)


# --- the sweep -------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class SweepResult:
    """Finished points in grid order, what each axis was, and notes on engine, reuse and store."""

    axes: tuple[Axis, ...]
    points: tuple[SweepPoint, ...]
    notes: tuple[str, ...]
    simulated: int
    reused: int
    elapsed_s: float

    def __iter__(self) -> Iterator[SweepPoint]:
        return iter(self.points)

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, i: int) -> SweepPoint:
        return self.points[i]


def sweep(hw: HardwareSpec, wl: WorkloadSpec, settings: Mapping[str, Sequence[Any]], *,
          chips: int = 1, mode: str = "auto", jobs: int = 1, store: str | Path | None = None,
          client: Any = None, scheduler: str | None = None,
          on_start: Callable[[int], None] | None = None,
          on_point: Callable[[SweepPoint], None] | None = None) -> SweepResult:
    """Simulate every point of the settings grid; points found in `store` are reused.

    Engine: `client` (a `distributed.Client`) or `scheduler` (its address) runs on that Dask
    cluster; else `jobs` > 1 starts a LocalCluster of `jobs` workers (a spawn pool when Dask
    is not installed); `jobs` == 1 runs in this process. New points are appended to `store`
    as they finish. `on_start(n)` learns how many points will be simulated, `on_point` sees
    each as it finishes (for progress).
    """
    return run(plan(hw, wl, settings, chips=chips, mode=mode), jobs=jobs, store=store,
               client=client, scheduler=scheduler, on_start=on_start, on_point=on_point)


def run(the_plan: Plan, *, jobs: int = 1, store: str | Path | None = None, client: Any = None,
        scheduler: str | None = None, on_start: Callable[[int], None] | None = None,
        on_point: Callable[[SweepPoint], None] | None = None) -> SweepResult:
    """Simulate the points of a `plan` (see `sweep`)."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise AccelsimError(f"jobs: expected an integer >= 1, got {jobs!r}")
    t0 = time.perf_counter()
    mode = the_plan.mode
    notes = list(the_plan.notes)
    contents = read_store(store) if store is not None else StoreContents({}, ())
    if store is not None and (note := contents.describe(store)):
        notes.append(note)

    points = the_plan.points
    results: dict[str, SweepPoint] = {}
    todo: list[DesignPoint] = []
    queued: set[str] = set()
    for p in points:
        rec = contents.records.get(p.key)
        if p.key in results or p.key in queued:
            continue  # two settings that load to one spec: simulated once
        if rec is not None and rec["chips"] == p.chips and rec["mode"] == mode:
            results[p.key] = _finished(p, mode, rec["summary"], reused=True)
        else:
            if rec is not None:
                notes.append(f"store {store}: the line of key {p.key[:12]}... holds chips or "
                             "mode other than its key's; simulated again")
            todo.append(p)
            queued.add(p.key)

    if store is not None and todo:
        _end_torn_line(Path(store))

    def finish(i: int, outcome: dict) -> None:
        pt = _finished(todo[i], mode, outcome["summary"], reused=False)
        results[pt.key] = pt
        if store is not None:
            _append(Path(store), pt.to_record())
        if on_point is not None:
            on_point(pt)

    if on_start is not None:
        on_start(len(todo))
    if todo:
        notes += _simulate(todo, mode, jobs, client, scheduler, finish, the_plan.graphs)
    out = tuple(attrs.evolve(results[p.key], settings=p.settings, values=p.values)
                for p in points)
    return SweepResult(axes=the_plan.axes, points=out, notes=tuple(notes),
                       simulated=len(todo), reused=sum(p.reused for p in out),
                       elapsed_s=time.perf_counter() - t0)


def _finished(p: DesignPoint, mode: str, summary: dict, *, reused: bool) -> SweepPoint:
    return SweepPoint(settings=p.settings, values=p.values, hardware=p.hw.name,
                      workload=p.wl.name, chips=p.chips, mode=mode, key=p.key, summary=summary,
                      reused=reused)


def _simulate(todo: list[DesignPoint], mode: str, jobs: int, client: Any,
              scheduler: str | None, finish: Callable[[int, dict], None],
              built: Mapping[str, Any] | None = None) -> list[str]:
    """Run the points on the chosen engine; returns notes on the engine and on what was reused."""
    from accelsim.models import build_graph

    graphs: dict[str, Any] = {k: g for k, g in (built or {}).items()
                              if any(_wl_key(p) == k for p in todo)}
    for p in todo:
        k = _wl_key(p)
        if k not in graphs:
            graphs[k] = build_graph(p.wl)
    jobs_list = list(enumerate(todo))
    tally = _Tally()
    sweep_id = os.urandom(8).hex()  # workers keep stage results for this sweep only
    reuse = (f"reuse: workload graph built once per workload variant ({len(graphs)} for "
             f"{len(todo)} points)")
    grouped = ("; points grouped by the settings the cache simulation read, each group on one "
               "worker")
    if client is not None or scheduler is not None:
        if not dask_available():
            raise AccelsimError("a Dask scheduler or client needs dask.distributed: "
                                "pip install 'accelsim[dask]'")
        own = None
        if client is None:
            from distributed import Client

            _probe(scheduler)
            try:
                client = own = Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise AccelsimError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
        try:
            n = _check_workers(client)
            _run_dask(client, jobs_list, graphs, mode, finish, tally, sweep_id)
        finally:
            if own is not None:
                own.close()
        where = scheduler or getattr(client.scheduler, "address", "a Dask cluster")
        return [f"engine: Dask cluster at {where}, {n} workers",
                reuse + " and sent to every worker once (scatter)",
                *tally.notes(len(todo), grouped)]
    if jobs == 1 or len(todo) == 1:
        try:
            def one(i: int, p: DesignPoint) -> None:
                outcome = _simulate_point(p.hw, p.wl, graphs[_wl_key(p)], p.chips, mode,
                                          sweep_id)
                tally.add(outcome)
                finish(i, outcome)

            one(*jobs_list[0])  # it tells which settings the cache simulation reads
            for run in _by_group(jobs_list[1:], tally.trace_paths, 1):
                for i, p in run:  # points that can share a cache simulation, one after another
                    one(i, p)
        finally:
            _PROCESS_REUSE.pop(sweep_id, None)  # this sweep's results, freed when it ends
        return ["engine: this process", reuse,
                *tally.notes(len(todo), "; points sharing those settings run one after another")]
    workers = min(jobs, len(todo))
    if dask_available():
        local = _LocalDask(workers)
        try:
            _run_dask(local.client, jobs_list, graphs, mode, finish, tally, sweep_id)
        finally:
            local.close()
        return [f"engine: Dask LocalCluster, {workers} single-threaded worker processes",
                reuse + " and sent to every worker once (scatter)",
                *tally.notes(len(todo), grouped)]
    _run_pool(workers, jobs_list, graphs, mode, finish, tally, sweep_id)
    return [f"engine: local spawn pool of {workers} processes (Dask not installed: "
            "pip install 'accelsim[dask]' for a LocalCluster or a remote scheduler)",
            reuse + " and pickled with each point",
            *tally.notes(len(todo), "; points are not grouped on a spawn pool: each worker "
                         "process simulates a shared cache state once")]


def parse_set(text: str) -> tuple[str, list[str]]:
    """'caches[0].capacity=6MiB,24MiB' -> ('caches[0].capacity', ['6MiB', '24MiB'])."""
    key, sep, values = text.partition("=")
    key = key.strip()
    items = [v.strip() for v in values.split(",")]
    if not sep or not key or not all(items):
        raise AccelsimError(f"--set {text}: expected KEY=V1,V2,... such as "
                            "'caches[0].capacity=6MiB,24MiB' (no empty values)")
    return key, items


# --- views -----------------------------------------------------------------------------------
def _fmt(value: float | None, kind: str) -> str:
    from accelsim.units import format_bytes, format_time

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if kind in _COST_FORMATS:  # energy, area and cost columns (issue 14)
        return _COST_FORMATS[kind].format(value)
    if kind == "time":
        return format_time(value)
    if kind == "pct":
        return f"{100 * value:.3g} %"
    return format_bytes(value)


# --- energy, area and cost columns (issue 14) ---
_COST_FORMATS = {"J": "{:.4g} J", "W": "{:.4g} W", "mm2": "{:,.0f} mm^2", "usd": "${:,.4g}",
                 "text": "{}"}
#: (column title, key of summary.energy_area_cost, format) shown when a point has an estimate.
COST_COLUMNS = (("energy/step", "total_step_energy_j", "J"), ("power", "average_power_w", "W"),
                ("die area", "die_area_mm2", "mm2"), ("build", "buildability", "text"),
                ("cost/model", "total_run_cost_usd", "usd"))


def _cost_columns(points: Sequence[SweepPoint]) -> tuple[tuple[str, str, str], ...]:
    return COST_COLUMNS if any(p.summary.get("energy_area_cost") for p in points) else ()


#: Axes of the sweep's Pareto plot: name -> (label, value of a point's summary or None).
PARETO_AXES: dict[str, tuple[str, Callable[[dict[str, Any]], float | None]]] = {
    "step_time": ("step time (s)", lambda s: s["step_time_s"]),
    "time_to_train": ("time to train (days)", lambda s: _days(
        (s.get("energy_area_cost") or {}).get("run_time_s", s.get("epoch_time_s")))),
    "cost": ("cost per trained model (USD)",
             lambda s: (s.get("energy_area_cost") or {}).get("total_run_cost_usd")),
    "energy": ("energy per training run (kWh)",
               lambda s: (s.get("energy_area_cost") or {}).get("run_energy_kwh")),
    "power": ("average power (W)", lambda s: (s.get("energy_area_cost") or {}).get("average_power_w")),
    "area": ("die area (mm^2)", lambda s: (s.get("energy_area_cost") or {}).get("die_area_mm2")),
    "chip_cost": ("cost per chip (USD)",
                  lambda s: (s.get("energy_area_cost") or {}).get("total_chip_cost_usd")),
}


def _days(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 86400


def parse_axes(text: str) -> tuple[str, str]:
    """'time_to_train,cost' -> the two axis names, checked against PARETO_AXES."""
    names = [t.strip() for t in text.split(",")]
    if len(names) != 2 or any(n not in PARETO_AXES for n in names):
        raise AccelsimError(f"--axes {text}: expected two of {sorted(PARETO_AXES)} separated by "
                            "a comma, e.g. 'time_to_train,cost'")
    return names[0], names[1]


def pareto_values(points: Sequence[SweepPoint], x: str, y: str) -> list[tuple[float, float] | None]:
    """Each point's (x, y); None where the summary lacks one (no dataset or no technology)."""
    out: list[tuple[float, float] | None] = []
    for p in points:
        vx, vy = PARETO_AXES[x][1](p.summary), PARETO_AXES[y][1](p.summary)
        out.append(None if vx is None or vy is None else (float(vx), float(vy)))
    return out


def pareto_front(values: Sequence[tuple[float, float] | None]) -> list[bool]:
    """Which points no other point beats on both axes (lower is better on both)."""
    front = []
    for i, v in enumerate(values):
        if v is None:
            front.append(False)
            continue
        front.append(not any(w is not None and j != i and w[0] <= v[0] and w[1] <= v[1]
                             and w != v for j, w in enumerate(values)))
    return front
# --- end energy, area and cost columns ---


def _columns(points: Sequence[SweepPoint]) -> tuple[list[str], list[str]]:
    keys: list[str] = []
    levels: list[str] = []
    for p in points:
        keys += [k for k in p.settings if k not in keys]
        levels += [lv for lv in p.summary.get("hit_rate", {}) if lv not in levels]
    return keys, levels


def table(points: Sequence[SweepPoint]) -> str:
    """One row per point: swept values, step time, utilization, hit rates, HBM bytes, shortfall,
    and energy, power, area and cost when the spec has a technology section."""
    keys, levels = _columns(points)
    costs = _cost_columns(points)
    head = [*keys, "step time", "FLOP util", *[f"{lv} hit" for lv in levels], "HBM bytes",
            "shortfall", *[name for name, _key, _fmt_kind in costs], ""]
    rows = [head]
    for p in points:
        s = p.summary
        rows.append([*[p.settings.get(k, "") for k in keys], _fmt(s["step_time_s"], "time"),
                     _fmt(s["flop_utilization"], "pct"),
                     *[_fmt(s["hit_rate"].get(lv), "pct") for lv in levels],
                     _fmt(s["level_bytes"].get(MEMORY), "bytes"),
                     _fmt(s["shortfall_bytes"], "bytes"),
                     *[_fmt((s.get("energy_area_cost") or {}).get(key), kind)
                       for _name, key, kind in costs],
                     "(reused)" if p.reused else ""])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) if i >= len(keys) else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
                     for r in rows)


def rows(points: Sequence[SweepPoint]) -> list[dict[str, Any]]:
    """One flat record per point for analysis: each axis as typed and as its loaded value
    (`<key>_value`, base units), then step and epoch time, utilization, per-level hit rates
    and bytes, footprint, shortfall, chips, whether it was reused and its store key."""
    keys, levels = _columns(points)
    out = []
    for p in points:
        s = p.summary
        row: dict[str, Any] = {}
        for k in keys:
            row[k] = p.settings.get(k, "")
            row[f"{k}_value"] = p.values.get(k)
        row.update(step_time_s=s["step_time_s"], epoch_time_s=s.get("epoch_time_s"),
                   flop_utilization=s["flop_utilization"])
        for lv in levels:
            row[f"hit_rate_{lv}"] = s["hit_rate"].get(lv)
        for lv, b in s["level_bytes"].items():
            row[f"bytes_{lv}"] = b
        row.update(hbm_bytes=s["level_bytes"].get(MEMORY), footprint_bytes=s["footprint_bytes"],
                   shortfall_bytes=s["shortfall_bytes"], chips=p.chips)
        for _name, key, _kind in _cost_columns(points):  # energy, area, cost (issue 14)
            row[key] = (s.get("energy_area_cost") or {}).get(key)
        row.update(reused=p.reused, key=p.key)
        out.append(row)
    return out


def to_csv(points: Sequence[SweepPoint], path: str | Path) -> None:
    """`rows` as CSV with base-unit numbers (seconds, bytes, fractions); no pandas needed."""
    import csv

    records = rows(points)
    head: list[str] = []
    for r in records:
        head += [k for k in r if k not in head]
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=head, lineterminator="\n")
        w.writeheader()
        w.writerows(records)


def to_dataframe(points: Sequence[SweepPoint]) -> Any:
    """`rows` as a pandas DataFrame (the `pandas` extra)."""
    try:
        import pandas as pd
    except ImportError:
        raise AccelsimError("a DataFrame needs pandas: pip install 'accelsim[pandas]'") from None
    return pd.DataFrame(rows(points))


def to_parquet(points: Sequence[SweepPoint], path: str | Path) -> None:
    """`rows` as a Parquet file (pandas and pyarrow: the `pandas` extra)."""
    check_parquet()
    to_dataframe(points).to_parquet(path, index=False)


def check_parquet() -> None:
    """AccelsimError unless pandas and a Parquet engine can be imported (check before work)."""
    try:
        import pandas  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError:
        raise AccelsimError("Parquet export needs pandas and pyarrow: "
                            "pip install 'accelsim[pandas]'") from None


# --- plots -----------------------------------------------------------------------------------
#: Key-path endings of the resource axes a Pareto front is drawn against.
_RESOURCE_WORDS = ("capacity", "bandwidth", "units", "clock", "peak_flop_rate", "links",
                   "link_bandwidth", "chips")


def plot_axes(axes: Sequence[Axis]) -> tuple[Axis | None, tuple[Axis, Axis] | None]:
    """(the resource axis of the Pareto front, the two axes of the heat map); AccelsimError if
    there is nothing to draw. Known before any simulation."""
    numeric = [a for a in axes if a.target == CHIPS or not a.path.endswith(
        ("name", "precision", "optimizer", "family", "replacement", "write_policy", "inclusion",
         "sharing", "topology", "accumulate", "description", "unit", PLAN_PATH, "schedule",
         "shard_embedding", "offload"))]
    front = next((a for a in numeric if (a.path or a.key).split(".")[-1].startswith(
        _RESOURCE_WORDS)), numeric[0] if numeric else None)
    many = [a for a in axes if len(a.values) > 1]
    heat = (many[0], many[1]) if len(many) >= 2 else None
    if front is None and heat is None:
        raise AccelsimError("--plot: needs a numeric axis (a capacity, bandwidth, subbatch...) "
                            "or two axes to draw")
    return front, heat


def plot(result: SweepResult, path: str | Path, *, title: str = "") -> Path:
    """The Pareto front of time against the resource axis and a heat map of two axes (PNG)."""
    from accelsim import plot as plots

    front_axis, heat_axes = plot_axes(result.axes)
    wl_axes = any(a.target in (WORKLOAD, CHIPS) for a in result.axes)
    epoch = wl_axes and all(p.summary.get("epoch_time_s") is not None for p in result)
    metric, label = (("epoch_time_s", "time per epoch (s)") if epoch
                     else ("step_time_s", "step time (s)"))
    y = [float(p.summary[metric]) for p in result]
    front = None
    if front_axis is not None:
        others = [a.key for a in result.axes if a is not front_axis]
        x = [float(p.values[front_axis.key]) for p in result]
        groups = [", ".join(f"{k}={p.settings[k]}" for k in others) for p in result]
        front = {"x": x, "y": y, "groups": groups, "x_label": front_axis.key + (f" ({front_axis.unit})" if front_axis.unit else ""),
                 "y_label": label}
    heat = None
    if heat_axes is not None:
        a, b = heat_axes
        cells: dict[tuple[str, str], float] = {}
        for p, v in zip(result, y, strict=True):  # best over any further axes
            k = (p.settings[a.key], p.settings[b.key])
            cells[k] = min(v, cells.get(k, math.inf))
        more = len([x for x in result.axes if len(x.values) > 1]) > 2
        heat = {"rows": list(a.values), "cols": list(b.values), "row_label": a.key,
                "col_label": b.key,
                "value_label": label + (", best over the other axes" if more else ""),
                "values": [[cells.get((r, c), math.nan) for c in b.values] for r in a.values]}
    return plots.sweep_views(path, front=front, heat=heat, title=title)
