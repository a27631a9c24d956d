"""Stage results reused across design points whose inputs to that stage are equal (sweeps).

A sweep over L2 capacity x HBM bandwidth x compute efficiency runs the cache simulation of
each distinct (cache hierarchy, mapping) once, not once per point, because the trace stage
reads the caches and the mappings but never the HBM bandwidth. Nothing here lists what a stage
reads: the key is *recorded*. A stage runs with its hardware spec wrapped in a recorder that
notes every field it reads (the key path and the value read); a later point reuses the result
when its spec has the same value at every one of those paths. Reads are deterministic given
the values read, so a point that agrees on all of them would take the same path through the
stage and read nothing else. A stage that starts reading a new field keys on it at once.

The other arguments are keyed exactly: values by equality (strings, tuples of mappings,
frozen records by their fields), big unhashable objects (a graph, a cache result) by identity,
so reuse across points needs those objects reused too (`StageReuse` keeps them alive).

Conservative fallbacks, never a wrong reuse: hashing, comparing, printing, pickling or copying
a recorded object records its whole value; a stage whose result holds a recorded object (it
kept part of its input) or that fails under the recorder is not stored.
"""

from __future__ import annotations

import inspect
import types
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import attrs

_PRIMITIVES = (int, float, str, bool, bytes, type(None), complex)
_WHOLE = "<whole>"
_LEN = "<len>"
_KEYS = "<keys>"


def _fingerprint(value: Any) -> Any:
    """An exactly comparable stand-in for a value read: type plus repr for primitives (so
    -0.0 and 0.0, 1 and 1.0 differ), the value itself for other hashable values."""
    if isinstance(value, _PRIMITIVES):
        return (type(value).__qualname__, repr(value))
    return (type(value).__qualname__, value)


def _whole(value: Any) -> Any:
    """Fingerprint of a whole object (attrs records print every field exactly)."""
    return (type(value).__qualname__, repr(value))


class _Opaque(Exception):
    """A stage read a value the recorder cannot fingerprint: do not store its result."""


class Reads:
    """The key paths a stage read and the fingerprint of each value read."""

    def __init__(self) -> None:
        self.values: dict[tuple, Any] = {}
        self.proxies: dict[tuple, _Recorded] = {}
        self.closed = False

    def note(self, path: tuple, fingerprint: Any) -> None:
        if not self.closed:
            self.values.setdefault(path, fingerprint)

    def wrap(self, value: Any, path: tuple) -> Any:
        """`value` as the stage sees it: primitives recorded and returned, containers copied
        with recorded items, records behind a recorder (one per path, so `is` holds)."""
        if isinstance(value, _PRIMITIVES):
            self.note(path, _fingerprint(value))
            return value
        if isinstance(value, tuple | list):
            self.note(path + (_LEN,), len(value))
            items = [self.wrap(v, path + (i,)) for i, v in enumerate(value)]
            return type(value)(items) if type(value) in (tuple, list) else self._opaque(value, path)
        if isinstance(value, dict):
            self.note(path + (_KEYS,), tuple(_fingerprint(k) for k in value))
            return {k: self.wrap(v, path + (k,)) for k, v in value.items()}
        if attrs.has(type(value)):
            proxy = self.proxies.get(path)
            if proxy is None:
                proxy = self.proxies[path] = _Recorded(value, path, self)
            return proxy
        return self._opaque(value, path)

    def _opaque(self, value: Any, path: tuple) -> Any:
        try:
            hash(value)
        except TypeError:
            raise _Opaque(f"{'.'.join(map(str, path))}: {type(value).__name__}") from None
        self.note(path, _fingerprint(value))
        return value


def _unwrap(obj: Any) -> Any:
    return object.__getattribute__(obj, "_obj") if isinstance(obj, _Recorded) else obj


class _Recorded:
    """A read-only stand-in for a frozen attrs record that notes what is read of it.

    Fields and what they hold are recorded where they are read; properties and methods run
    with `self` bound to the stand-in, so their reads are recorded too. `isinstance` sees the
    record's class. Anything that uses the record as a whole records its whole value.
    """

    __slots__ = ("_obj", "_path", "_reads")

    def __init__(self, obj: Any, path: tuple, reads: Reads) -> None:
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_reads", reads)

    def _all(self) -> Any:
        obj = object.__getattribute__(self, "_obj")
        reads = object.__getattribute__(self, "_reads")
        reads.note(object.__getattribute__(self, "_path") + (_WHOLE,), _whole(obj))
        return obj

    def __getattr__(self, name: str) -> Any:
        obj = object.__getattribute__(self, "_obj")
        path = object.__getattribute__(self, "_path")
        reads = object.__getattribute__(self, "_reads")
        found = inspect.getattr_static(type(obj), name, None)
        if isinstance(found, property) and found.fget is not None:
            return found.fget(self)
        if isinstance(found, types.FunctionType):
            return types.MethodType(found, self)
        if isinstance(found, staticmethod | classmethod) or (
                found is not None and not inspect.isdatadescriptor(found)
                and not isinstance(found, _PRIMITIVES)):
            return getattr(obj, name)  # class-level helpers: no instance state read
        return reads.wrap(getattr(obj, name), path + (name,))

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance() sees the record's class
        return type(object.__getattribute__(self, "_obj"))

    def __setattr__(self, name: str, value: Any) -> None:
        raise attrs.exceptions.FrozenInstanceError()

    def __eq__(self, other: object) -> bool:
        return bool(self._all() == _unwrap(other))

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(self._all())

    def __repr__(self) -> str:
        return repr(self._all())

    def __str__(self) -> str:
        return str(self._all())

    def __reduce_ex__(self, protocol: Any) -> Any:
        return self._all().__reduce_ex__(protocol)

    def __copy__(self) -> Any:
        return self._all()

    def __deepcopy__(self, memo: Any) -> Any:
        return self._all()


def read_value(root: Any, path: tuple) -> Any:
    """The fingerprint at `path` of `root`, as `Reads` noted it; a sentinel if it is absent."""
    node = root
    for step in path[:-1]:
        try:
            if isinstance(node, tuple | list | dict):
                node = node[step]
            else:
                node = getattr(node, step)
        except (AttributeError, IndexError, KeyError, TypeError):
            return _MISSING
    last = path[-1]
    if last == _LEN:
        return len(node) if isinstance(node, tuple | list) else _MISSING
    if last == _KEYS:
        return tuple(_fingerprint(k) for k in node) if isinstance(node, dict) else _MISSING
    if last == _WHOLE:
        return _whole(node)
    try:
        value = node[last] if isinstance(node, tuple | list | dict) else getattr(node, last)
    except (AttributeError, IndexError, KeyError, TypeError):
        return _MISSING
    return _fingerprint(value)


_MISSING = object()
#: `StageReuse.call`'s first argument for a stage that reads no spec (`run_exact`).
_NOTHING = object()


def _contains_recorded(value: Any, depth: int = 0) -> bool:
    """Whether a stage's result holds a recorder (it kept part of its recorded input)."""
    if isinstance(value, _Recorded):
        return True
    if depth > 6 or isinstance(value, _PRIMITIVES):
        return False
    if isinstance(value, tuple | list | set | frozenset):
        return any(_contains_recorded(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return any(_contains_recorded(v, depth + 1) for v in value.values())
    if attrs.has(type(value)):
        return any(_contains_recorded(getattr(value, f.name), depth + 1)
                   for f in attrs.fields(type(value)))
    return False


def _arg_key(value: Any) -> Any:
    """Exact key of a non-recorded argument: equal values, or the same object."""
    if attrs.has(type(value)) and type(value).__eq__ is object.__eq__:
        # attrs eq=False: by its fields when they are all hashable, else by identity
        parts = tuple(getattr(value, f.name) for f in attrs.fields(type(value)))
        try:
            hash(parts)
            return (type(value), parts)
        except TypeError:
            return ("id", id(value))
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return (type(value), value)


@attrs.define
class _Entry:
    exact: Any
    reads: dict[tuple, Any]
    result: Any
    keep: tuple  # the arguments keyed by identity, kept alive so their ids stay theirs


@attrs.define
class StageCount:
    """How often a stage ran and how often its result was reused."""

    ran: int = 0
    reused: int = 0
    #: stores refused: the result kept part of the recorded input, or the recorder failed
    not_stored: int = 0


class StageReuse:
    """Results of pipeline stages kept for later design points (one per worker process).

    `call(stage, hw, *args)` runs `stage(hw, *args)` unless an earlier call had equal
    arguments and a spec that agrees with `hw` on every field that call read. At most
    `max_entries` results per stage are kept (least recently used dropped).
    """

    def __init__(self, max_entries: int = 16) -> None:
        self.max_entries = max_entries
        self._entries: dict[str, OrderedDict[int, _Entry]] = {}
        self._serial = 0
        self.counts: dict[str, StageCount] = {}

    def call(self, stage: Callable[..., Any], recorded: Any, *args: Any, **kwargs: Any) -> Any:
        name = getattr(stage, "__qualname__", repr(stage))
        count = self.counts.setdefault(name, StageCount())
        exact = (tuple(_arg_key(a) for a in args),
                 tuple(sorted((k, _arg_key(v)) for k, v in kwargs.items())))
        entries = self._entries.setdefault(name, OrderedDict())
        for serial, entry in reversed(entries.items()):
            if entry.exact == exact and all(read_value(recorded, p) == v
                                            for p, v in entry.reads.items()):
                entries.move_to_end(serial)
                count.reused += 1
                return entry.result
        reads = Reads()
        try:
            if recorded is _NOTHING:
                result = stage(*args, **kwargs)
            else:
                result = stage(reads.wrap(recorded, ()), *args, **kwargs)
            reads.closed = True
            storable = not _contains_recorded(result)
        except Exception:  # noqa: BLE001 - opaque value or a recorder limit: run it plainly
            reads.closed = True
            if recorded is _NOTHING:
                raise
            result, storable = stage(recorded, *args, **kwargs), False
        count.ran += 1
        if not storable:
            count.not_stored += 1
            if _contains_recorded(result):
                result = stage(recorded, *args, **kwargs)  # a result free of recorders
            return result
        self._serial += 1
        keep = tuple(a for a in (*args, *kwargs.values()) if _arg_key(a)[0] == "id")
        entries[self._serial] = _Entry(exact=exact, reads=dict(reads.values), result=result,
                                       keep=keep)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)
        return result

    def read_paths(self, stage: Callable[..., Any]) -> list[tuple]:
        """The key paths the stored results of `stage` read (what it depends on)."""
        name = getattr(stage, "__qualname__", repr(stage))
        paths: dict[tuple, None] = {}
        for entry in self._entries.get(name, {}).values():
            paths.update(dict.fromkeys(entry.reads))
        return list(paths)

    def clear(self) -> None:
        self._entries.clear()


_ACTIVE: ContextVar[StageReuse | None] = ContextVar("accelsim_stage_reuse", default=None)


def active() -> StageReuse | None:
    """The `StageReuse` in force (inside `reusing`), else None."""
    return _ACTIVE.get()


@contextmanager
def reusing(memo: StageReuse | None) -> Iterator[StageReuse | None]:
    """Within the block, the pipeline's stages consult `memo` (None: no reuse)."""
    token = _ACTIVE.set(memo)
    try:
        yield memo
    finally:
        _ACTIVE.reset(token)


def run_stage(stage: Callable[..., Any], recorded: Any, *args: Any, **kwargs: Any) -> Any:
    """`stage(recorded, *args, **kwargs)`, through the active `StageReuse` if there is one."""
    memo = _ACTIVE.get()
    if memo is None:
        return stage(recorded, *args, **kwargs)
    return memo.call(stage, recorded, *args, **kwargs)


def run_exact(stage: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`stage(*args, **kwargs)` for a stage that reads no spec, through the active
    `StageReuse` (keyed by its arguments alone) if there is one."""
    memo = _ACTIVE.get()
    if memo is None:
        return stage(*args, **kwargs)
    return memo.call(stage, _NOTHING, *args, **kwargs)


def path_text(path: tuple) -> str:
    """`('caches', 0, 'capacity_bytes')` -> 'caches[0].capacity_bytes'."""
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        elif step in (_LEN, _KEYS, _WHOLE):
            out += f" ({step[1:-1]})"
        else:
            out += f".{step}" if out else str(step)
    return out


__all__ = ["Reads", "StageCount", "StageReuse", "active", "path_text", "read_value", "reusing",
           "run_exact", "run_stage"]
