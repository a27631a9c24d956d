"""YAML <-> frozen attrs specs, with every problem reported at its file, line and key path.

The loader composes the YAML into nodes (keeping line/column marks) and converts each node by
the type and unit metadata of the attrs field it fills (see `schema.field`). It does not trust
PyYAML's implicit typing: `1e9` (a string to PyYAML) is a number where a number is expected, a
name `no` stays the string "no", and a boolean must be written `true` or `false`. Duplicate keys
are errors, not silently last-wins; `<<` merge keys follow the YAML merge-key spec. All problems
in a file are collected, then raised once as a `SpecError`, in file order. Cross-field rules
(`schema.rule`) run on whatever fields loaded, so they are not hidden by other problems.

YAML keys are the field names without their unit suffix (`capacity: 6 MiB` fills
`capacity_bytes`); the full field name is accepted too. docs/spec-format.md is the reference.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import stat
import types
import typing
from pathlib import Path
from typing import Any

import attrs
import yaml

from accelsim import schema, units
from accelsim.errors import Issue, SpecError, SpecTypeError
from accelsim.hardware import HardwareSpec, TechnologySpec, TechnologyTable
from accelsim.models import FAMILIES
from accelsim.plan import ParallelPlan
from accelsim.workload import WorkloadSpec

_SUFFIXES = ("_bytes_per_s", "_bytes", "_hz", "_s")
_PARSERS = {"bytes": units.parse_bytes, "bandwidth": units.parse_bandwidth,
            "frequency": units.parse_frequency, "time": units.parse_time,
            "flop_rate": units.parse_flop_rate, "count": units.parse_count}
_UNIT_WORDS = {"bytes": "a size such as '6 MiB'", "bandwidth": "a bandwidth such as '900 GB/s'",
               "frequency": "a frequency such as '1.53 GHz'", "time": "a time such as '5 us'",
               "flop_rate": "a compute rate such as '15.7 TFLOP/s'",
               "count": "a number such as 97.4e9"}


def yaml_key(field_name: str) -> str:
    """The YAML key of a field: its name without the unit suffix."""
    for suffix in _SUFFIXES:
        if field_name.endswith(suffix) and len(field_name) > len(suffix):
            return field_name[: -len(suffix)]
    return field_name


#: Nodes a document may expand to (aliases included) before loading gives up: a guard against
#: alias bombs ("billion laughs"), far above any real spec.
MAX_NODES = 200_000
_KIND_WORDS = {"bytes": "a size", "bandwidth": "a bandwidth", "frequency": "a frequency",
               "time": "a time", "flop_rate": "a compute rate"}
_YAML11_BOOLS = ("yes", "no", "on", "off", "y", "n", "Yes", "No", "On", "Off", "YES", "NO",
                 "ON", "OFF", "Y", "N")


class _TooLarge(Exception):
    pass


class _Context:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.issues: list[Issue] = []
        self.budget = MAX_NODES

    def visit(self) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise _TooLarge

    def issue(self, node: yaml.Node | None, path: str, expected: str, got: str) -> None:
        line = col = None
        if node is not None and node.start_mark is not None:
            line, col = node.start_mark.line + 1, node.start_mark.column + 1
        self.issues.append(Issue(self.filename, line, col, path, expected, got))


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null") and not node.style:
        return "nothing (null)"
    if (isinstance(node, yaml.ScalarNode) and not node.style
            and node.value in ("true", "True", "false", "False")):
        return f"{node.value} (a boolean)"
    if isinstance(node, yaml.ScalarNode):
        return repr(node.value) if node.style or not _is_plain_number(node.value) else node.value
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    return "a list"


def _is_plain_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


_MISSING = object()


# --- scalars --------------------------------------------------------------------------------
def _scalar(node: yaml.Node, tp: Any, meta: dict, path: str, ctx: _Context) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        ctx.issue(node, path, _expected_word(tp, meta), _describe(node))
        return _MISSING
    text = node.value
    is_null = node.tag == "tag:yaml.org,2002:null" and not node.style
    if is_null:
        ctx.issue(node, path, _expected_word(tp, meta), "nothing (null)")
        return _MISSING
    unit = meta.get("unit")
    if unit:
        try:
            value = _PARSERS[unit](_number_or_text(node))
        except units.UnitError as exc:
            expected = str(exc).rpartition(", got ")[0] or _UNIT_WORDS[unit]
            hint = _other_kind_hint(node, unit) or exc.hint
            ctx.issue(node, path, expected, _describe(node) + hint)
            return _MISSING
        return _check_bounds(int(value) if tp is int else value, meta, node, path, ctx)
    if tp is bool:
        if node.style is None and text in ("true", "True", "false", "False"):
            return text.lower() == "true"
        hint = ""
        if node.style is None and text in _YAML11_BOOLS:
            word = "true" if text.lower() in ("yes", "on", "y") else "false"
            hint = f" (YAML 1.1 would read it as {word}; write {word})"
        ctx.issue(node, path, "true or false", _describe(node) + hint)
        return _MISSING
    if tp is str:
        choices = meta.get("choices")
        if choices and text not in choices:
            close = _suggest(text, list(choices))
            hint = f" (did you mean {close!r}?)" if close else ""
            ctx.issue(node, path, f"one of {list(choices)}", f"{text!r}{hint}")
            return _MISSING
        return text
    if tp in (int, float):
        value = _number_or_text(node)
        if isinstance(value, int) and tp is float:
            value = float(value) if abs(value) < 2**1023 else math.inf
        if isinstance(value, str) or (isinstance(value, float) and not math.isfinite(value)) or (
                tp is int and value != int(value)):
            word = "an integer" if tp is int else "a number"
            ctx.issue(node, path, word, _describe(node))
            return _MISSING
        return _check_bounds(int(value) if tp is int else float(value), meta, node, path, ctx)
    ctx.issue(node, path, f"a value of type {tp}", repr(text))
    return _MISSING


def _number_or_text(node: yaml.ScalarNode) -> str | int | float:
    """A plain scalar that reads as a number becomes one (ints exactly, `1e9` too); else text."""
    if node.style is None:
        try:
            return int(node.value)
        except ValueError:
            pass
        if _is_plain_number(node.value):
            return float(node.value)
    return node.value


def _other_kind_hint(node: yaml.ScalarNode, unit: str) -> str:
    """' (that is a frequency)' when a quantity parses as another unit kind than the one wanted."""
    text = node.value
    if not isinstance(text, str) or _is_plain_number(text):
        return ""
    for kind, word in _KIND_WORDS.items():
        if kind != unit:
            try:
                _PARSERS[kind](text)
            except units.UnitError:
                continue
            return f" (that is {word})"
    return ""


#: Integers are counts and byte sizes that the simulator keeps in int64 arrays.
INT_LIMIT = 2**63


def _check_bounds(value: Any, meta: dict, node: yaml.Node, path: str, ctx: _Context) -> Any:
    if isinstance(value, int) and abs(value) >= INT_LIMIT:
        ctx.issue(node, path, "an integer below 2**63 (8 EiB as a size)", _describe(node))
        return _MISSING
    lo, hi = meta.get("minimum"), meta.get("maximum")
    unit = meta.get("unit")
    got = _describe(node) if unit else repr(value)
    if meta.get("positive") and not value > 0:
        what = _KIND_WORDS.get(unit or "", "a value")
        ctx.issue(node, path, f"{what} > 0 (the simulator divides by it)", got)
        return _MISSING
    if lo is not None and value < lo:
        ctx.issue(node, path, f"a value >= {_limit_text(lo, unit)}", got)
        return _MISSING
    if hi is not None and value > hi:
        ctx.issue(node, path, f"a value <= {_limit_text(hi, unit)}", got)
        return _MISSING
    return value


def _limit_text(limit: float, unit: str | None) -> str:
    """A bound as the user would write it: '1 PiB', '1 s', '1048576'."""
    if unit and unit != "count":
        return str(units.format_quantity(limit, unit))
    if float(limit) == int(limit) and abs(limit) < 2**63:
        return str(int(limit))
    return f"{limit:g}"


def _expected_word(tp: Any, meta: dict) -> str:
    if meta.get("unit"):
        return _UNIT_WORDS[meta["unit"]]
    if meta.get("choices"):
        return f"one of {list(meta['choices'])}"
    if attrs.has(tp):
        return f"a mapping with keys {[yaml_key(f.name) for f in attrs.fields(tp)]}"
    if typing.get_origin(tp) is tuple:
        item = typing.get_args(tp)[0]
        if attrs.has(item):
            return f"a list of mappings with keys {[yaml_key(f.name) for f in attrs.fields(item)]}"
        return f"a list of {_expected_word(item, {})}"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        tp, str(tp))


# --- structure --------------------------------------------------------------------------------
def _mapping_items(node: yaml.MappingNode, path: str, ctx: _Context,
                   _merging: frozenset[int] = frozenset()) -> list[tuple[str, yaml.Node, yaml.Node]]:
    """Key/value pairs with duplicate keys reported and `<<` merges applied.

    Merge semantics follow the YAML merge-key spec: keys written in the mapping override merged
    ones wherever they appear, and earlier mappings in `<<: [*a, *b]` override later ones.
    """
    ctx.visit()
    if id(node) in _merging:
        ctx.issue(node, path, "a mapping that does not merge itself", "a recursive '<<' merge")
        return []
    merging = _merging | {id(node)}
    items: list[tuple[str, yaml.Node, yaml.Node]] = []
    merged: list[tuple[str, yaml.Node, yaml.Node]] = []
    seen: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            ctx.issue(key_node, path, "a plain key", _describe(key_node))
            continue
        key = key_node.value
        if key == "<<" and key_node.tag.endswith(":merge"):
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    ctx.issue(source, _join(path, "<<"), "a mapping or a list of mappings to merge",
                              _describe(source))
                    continue
                have = {k for k, _kn, _vn in merged}
                merged += [item for item in _mapping_items(source, path, ctx, merging)
                           if item[0] not in have]
            continue
        if key in seen:
            first = seen[key].start_mark.line + 1
            ctx.issue(key_node, _join(path, key), f"each key once (first given on line {first})",
                      f"{key!r} again")
            continue
        seen[key] = key_node
        items.append((key, key_node, value_node))
    return items + [item for item in merged if item[0] not in seen]


def _structure(node: yaml.Node, tp: Any, meta: dict, path: str, ctx: _Context) -> Any:
    ctx.visit()
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null") and not node.style:
            return None
        return _structure(node, args[0], meta, path, ctx)
    if tp is Any and meta.get("polymorphic"):
        return _model_config(node, path, ctx)
    if attrs.has(tp):
        return _attrs_object(node, tp, path, ctx)
    if origin is tuple:
        (item_tp, *_rest) = typing.get_args(tp)
        if not isinstance(node, yaml.SequenceNode):
            ctx.issue(node, path, _expected_word(tp, {}), _describe(node))
            return _MISSING
        out = [_structure(n, item_tp, {}, _join(path, i), ctx) for i, n in enumerate(node.value)]
        return _MISSING if any(o is _MISSING for o in out) else tuple(out)
    if origin is dict:
        _key_tp, value_tp = typing.get_args(tp)
        if not isinstance(node, yaml.MappingNode):
            ctx.issue(node, path, "a mapping", _describe(node))
            return _MISSING
        allowed = meta.get("keys")
        result = {}
        for k, key_node, v in _mapping_items(node, path, ctx):
            if allowed and k not in allowed:
                close = _suggest(k, list(allowed))
                hint = f" (did you mean {close!r}?)" if close else ""
                ctx.issue(key_node, _join(path, k), f"a key among {list(allowed)}", f"{k!r}{hint}")
                result[k] = _MISSING
                continue
            result[k] = _structure(v, value_tp, {}, _join(path, k), ctx)
        return _MISSING if any(v is _MISSING for v in result.values()) else result
    return _scalar(node, tp, meta, path, ctx)


def _suggest(key: str, valid: list[str]) -> str | None:
    """The valid word nearest to `key`: same letters in another case, close spelling, or prefix."""
    folded = {v.lower(): v for v in valid}
    if key.lower() in folded:
        return folded[key.lower()]
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6) or [
        v for v in valid if key and (v.startswith(key) or key.startswith(v))][:1]
    return close[0] if close else None


def _default(f: attrs.Attribute) -> Any:
    if isinstance(f.default, attrs.Factory):  # type: ignore[arg-type]
        return _MISSING if f.default.takes_self else f.default.factory()
    return f.default


def _attrs_object(node: yaml.Node, cls: type, path: str, ctx: _Context,
                  skip: tuple[str, ...] = ()) -> Any:
    fields = attrs.fields(cls)
    hints = typing.get_type_hints(cls)
    if not isinstance(node, yaml.MappingNode):
        ctx.issue(node, path, _expected_word(cls, {}), _describe(node))
        return _MISSING
    by_key: dict[str, attrs.Attribute] = {}
    for f in fields:
        by_key[yaml_key(f.name)] = f
        by_key[f.name] = f
    values: dict[str, Any] = {}
    given: dict[str, str] = {}
    value_nodes: dict[str, yaml.Node] = {}
    suggested: set[str] = set()
    failed = False
    for key, key_node, value_node in _mapping_items(node, path, ctx):
        if key in skip:
            continue
        f = by_key.get(key)
        if f is None:
            valid = [yaml_key(x.name) for x in fields] + list(skip)
            close = _suggest(key, valid)
            hint = ""
            if close:
                hint = f"; did you mean {close!r}?"
                suggested.add(close)
            ctx.issue(key_node, _join(path, key), f"one of the keys {valid}",
                      f"unknown key {key!r}{hint}")
            failed = True
            continue
        if f.name in given:
            ctx.issue(key_node, _join(path, key),
                      f"one of {given[f.name]!r} and {key!r}, not both", "both")
            failed = True
            continue
        given[f.name] = key
        value_nodes[f.name] = value_node
        meta = dict(f.metadata)
        if f.name == "model" and cls is WorkloadSpec:
            meta["polymorphic"] = True
        if f.name == "node" and cls is TechnologySpec and path == "technology":
            meta["choices"] = tuple(technology_table().nodes)  # the rows of the packaged table
        value = _structure(value_node, hints[f.name], meta, _join(path, yaml_key(f.name)), ctx)
        if value is _MISSING:
            failed = True
        else:
            values[f.name] = value
    for f in fields:
        if f.name not in given and f.default is attrs.NOTHING:
            failed = True
            if yaml_key(f.name) not in suggested:  # the unknown-key issue already points here
                ctx.issue(node, _join(path, yaml_key(f.name)),
                          f"a value ({f.metadata.get('doc', 'required')})",
                          "nothing: the key is missing")
    # Cross-field rules run on every field that loaded (defaults standing in for keys not
    # given), so a conflict is reported even when other keys of this mapping are also wrong.
    available = dict(values)
    for f in fields:
        if f.name not in given and f.default is not attrs.NOTHING:
            default = _default(f)
            if default is not _MISSING:
                available[f.name] = default
    for v in schema.violations(cls, available):
        blamed, blamed_path = _locate(value_nodes.get(v.field, node),
                                      _join(path, yaml_key(v.field)), v.at)
        ctx.issue(blamed, blamed_path, v.expected, v.got)
        failed = True
    if failed:
        return _MISSING
    try:
        return cls(**values)
    except (ValueError, TypeError) as exc:  # a check not declared as a schema.rule
        message = str(exc)
        key, sep, rest = message.partition(": ")
        names = {f.name for f in fields}
        sub = key if sep and key in names else ""
        rest = rest if sub else message
        if rest.startswith("expected ") and ", got " in rest:
            expected, _, got = rest.removeprefix("expected ").partition(", got ")
        else:
            expected, got = "a value consistent with the other keys", rest
        ctx.issue(value_nodes.get(sub, node), _join(path, yaml_key(sub)) if sub else path,
                  expected, got)
        return _MISSING


def _locate(node: yaml.Node, path: str, at: tuple[int | str, ...]) -> tuple[yaml.Node, str]:
    """The node and key path that a rule's `Violation.at` points to, as far as the YAML has it."""
    for step in at:
        if isinstance(step, int) and isinstance(node, yaml.SequenceNode) and step < len(node.value):
            node, path = node.value[step], _join(path, step)
        elif isinstance(step, str) and isinstance(node, yaml.MappingNode):
            path = _join(path, yaml_key(step))
            found = [v for k, _kn, v in _mapping_items(node, path, _Context(""))
                     if k in (step, yaml_key(step))]
            if not found:  # a default broke the rule: point at the mapping
                break
            node = found[0]
        else:
            break
    return node, path


def _model_config(node: yaml.Node, path: str, ctx: _Context) -> Any:
    if not isinstance(node, yaml.MappingNode):
        ctx.issue(node, path, "a mapping with a 'family' key", _describe(node))
        return _MISSING
    family_node = next((v for k, _kn, v in _mapping_items(node, path, _Context("")) if k == "family"), None)
    if family_node is None:
        ctx.issue(node, _join(path, "family"), f"one of {sorted(FAMILIES)}", "nothing: the key is missing")
        return _MISSING
    if not isinstance(family_node, yaml.ScalarNode) or (family_node.tag.endswith(":null")
                                                        and not family_node.style):
        ctx.issue(family_node, _join(path, "family"), f"one of {sorted(FAMILIES)}",
                  _describe(family_node))
        return _MISSING
    fam = FAMILIES.get(family_node.value)
    if fam is None:
        close = _suggest(family_node.value, sorted(FAMILIES))
        hint = f" (did you mean {close!r}?)" if close else ""
        ctx.issue(family_node, _join(path, "family"), f"one of {sorted(FAMILIES)}",
                  f"{family_node.value!r}{hint}")
        return _MISSING
    return _attrs_object(node, fam.config_class, path, ctx, skip=("family",))


# --- public API -------------------------------------------------------------------------------
_TOKEN_WORDS = {"<block end>": "the end of the indented block", "'<scalar>'": "a value",
                "'?'": "a key", "'<block sequence start>'": "a '- ' list item",
                "'<block mapping start>'": "a key", "'<block end>'": "the end of the block"}


_CONTEXT_WORDS = {"quoted scalar": "quoted string", "simple key": "key",
                  "block collection": "indented block", "block mapping": "indented mapping",
                  "block sequence": "indented list", "flow mapping": "{...} mapping",
                  "flow sequence": "[...] list"}


def _yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    """PyYAML's wording of a syntax error, with its tokens in words and the usual cause spelled out."""
    problem = exc.problem or "a syntax error"
    if "'\\t'" in problem or "\t" in problem:
        return "a tab character (YAML indents with spaces only)"
    if problem.startswith("mapping values are not allowed"):
        return "a ':' where none may be (is this line indented deeper than the key above it?)"
    if problem.startswith("found undefined alias"):
        name = problem.rpartition(" ")[2].strip("'")
        return f"the alias *{name} with no anchor &{name} before it"
    if "another document" in problem:
        return "a second document ('---'): a spec file holds one"
    for token, words in _TOKEN_WORDS.items():
        problem = problem.replace(token, words)
    mark, context = exc.context_mark, exc.context or ""
    if context.startswith(("while scanning ", "while parsing ")) and mark is not None:
        what = context.split(" ", 2)[2].removeprefix("a ")
        what = _CONTEXT_WORDS.get(what, what)
        if what != "for the next token":
            problem += f", in the {what} that starts at line {mark.line + 1}"
    if "the end of the indented block" in problem:
        problem += " (check the indentation of this line)"
    return problem


def _control_character(text: str, filename: str) -> None:
    """Refuse control characters with their line and column (PyYAML says only 'position N')."""
    match = _CONTROL.search(text)
    if match is None:
        return
    i = match.start()
    line = text.count("\n", 0, i) + 1
    col = i - text.rfind("\n", 0, i)
    char = match.group()
    name = {"\x00": "NUL", "\x1b": "ESC", "\x7f": "DEL", "\x0b": "vertical tab",
            "\x0c": "form feed", "\x08": "backspace"}.get(char, "a control character")
    raise SpecError([Issue(filename, line, col, "", "printable text",
                           f"U+{ord(char):04X} ({name}); delete it or write it as an escape "
                           "in a double-quoted string")])


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff]")


def _check_depth(text: str, filename: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH before composing (composing recurses per level)."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    raise SpecError([Issue(filename, mark.line + 1, mark.column + 1, "",
                                           f"mappings and lists nested at most {MAX_DEPTH} deep",
                                           "deeper nesting")])
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return  # composing reports the syntax error with its words


def _compose(text: str, filename: str) -> yaml.Node | None:
    _control_character(text, filename)
    _check_depth(text, filename)
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise SpecError([Issue(filename, mark.line + 1 if mark else None,
                               mark.column + 1 if mark else None, "",
                               "valid YAML", _yaml_problem(exc))]) from None
    except yaml.YAMLError as exc:
        raise SpecError([Issue(filename, None, None, "", "valid YAML", str(exc))]) from None


def _raise(issues: list[Issue]) -> typing.NoReturn:
    """Raise once, issues in file order, each reported once (merged anchors can repeat one)."""
    unique = list(dict.fromkeys(issues))
    unique.sort(key=lambda i: (i.line or 0, i.col or 0))
    raise SpecError(unique)


def _load(text: str, cls: type, filename: str) -> Any:
    if not isinstance(text, str):
        raise SpecTypeError(f"text: expected YAML text (a str; load_hardware/load_workload "
                            f"read files), got {type(text).__name__}")
    if not isinstance(filename, str):
        raise SpecTypeError(f"filename: expected a str, got {type(filename).__name__}")
    node = _compose(text, filename)
    ctx = _Context(filename)
    if node is None:
        ctx.issue(None, "", _expected_word(cls, {}), "an empty file")
        _raise(ctx.issues)
    try:
        result = _attrs_object(node, cls, "", ctx)
    except _TooLarge:
        ctx.issue(node, "", f"a document of at most {MAX_NODES} nodes once aliases are expanded",
                  "more (an alias bomb?)")
        result = _MISSING
    if ctx.issues or result is _MISSING:
        _raise(ctx.issues)
    return result


#: A spec is a page of YAML; anything larger is not one (and /dev/zero must not be read).
MAX_FILE_BYTES = 1 << 20
#: Mappings and lists nested deeper than this are no spec (and would exhaust the stack).
MAX_DEPTH = 64
_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"))


def _read(path: str | Path) -> tuple[str, str]:
    """The spec file's text and its name for messages (`read_text_file`)."""
    return read_text_file(path), str(path)


def read_text_file(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES,
                   what: str = "a spec file") -> str:
    """The UTF-8 text of `path`, refusing before reading anything that is not a regular file of
    at most `max_bytes` (`what` names the file in the messages); every problem a SpecError."""
    if not isinstance(path, str | Path):
        raise SpecTypeError(f"path: expected a file path (str or pathlib.Path), got "
                            f"{type(path).__name__} {path!r}")
    p, name = Path(path), str(path)
    try:
        info = p.stat()
        if not stat.S_ISREG(info.st_mode):
            kind = next((word for test, word in _FILE_KINDS if test(info.st_mode)),
                        "not a regular file")
            raise SpecError([Issue(name, None, None, "", "a regular file", kind)])
        if info.st_size > max_bytes:
            raise SpecError([Issue(name, None, None, "", f"{what} of at most "
                                   f"{max_bytes // 1024} KiB", f"{info.st_size} bytes")])
        with p.open("rb") as fh:
            data = fh.read(max_bytes + 1)
        if len(data) > max_bytes:  # grew while we read, or a size the OS does not know
            raise SpecError([Issue(name, None, None, "", f"{what} of at most "
                                   f"{max_bytes // 1024} KiB", "more")])
    except FileNotFoundError:
        raise SpecError([Issue(name, None, None, "", "an existing file", "no such file")]) from None
    except OSError as exc:
        raise SpecError([Issue(name, None, None, "", "a readable file",
                               exc.strerror or type(exc).__name__)]) from None
    except ValueError as exc:  # e.g. a NUL byte in the path
        raise SpecError([Issue(name, None, None, "", "a file path", str(exc))]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - data.rfind(b"\n", 0, exc.start)
        raise SpecError([Issue(name, line, col, "", "UTF-8 text",
                               f"the byte 0x{data[exc.start]:02x}, which is not UTF-8 "
                               "(save the file as UTF-8)")]) from None


def hardware_from_yaml(text: str, filename: str = "<string>") -> HardwareSpec:
    """Parse hardware YAML text; `filename` only labels the messages of the SpecError."""
    return _load(text, HardwareSpec, filename)


def workload_from_yaml(text: str, filename: str = "<string>") -> WorkloadSpec:
    """Parse workload YAML text; `filename` only labels the messages of the SpecError."""
    return _load(text, WorkloadSpec, filename)


class Verbatim(str):
    """A scalar as the user typed it (e.g. on a command line), dumped as plain YAML text.

    Plain data holding `Verbatim("64")` or `Verbatim("6 MiB")` goes through `hardware_from_data`
    so that the loader judges the text exactly as it would in a file (no string quoting).
    """


class _VerbatimDumper(yaml.SafeDumper):
    pass


def _represent_verbatim(dumper: yaml.SafeDumper, data: Verbatim) -> yaml.ScalarNode:
    text = str(data)
    return dumper.represent_scalar(dumper.resolve(yaml.ScalarNode, text, (True, False)), text)


_VerbatimDumper.add_representer(Verbatim, _represent_verbatim)


def hardware_from_data(data: Any, filename: str = "<data>") -> HardwareSpec:
    """Load plain data (`to_dict`'s form, `Verbatim` scalars allowed) through the YAML loader.

    Going through the loader rather than constructing attrs objects directly keeps one set of
    checks and error messages for files and programmatic edits alike (used by `dse`).
    """
    text = yaml.dump(data, Dumper=_VerbatimDumper, sort_keys=False, allow_unicode=True,
                     width=10_000)
    return hardware_from_yaml(text, filename)


# --- parallel plans (issue 8) ----------------------------------------------------------------
def plan_from_yaml(text: str, filename: str = "<string>") -> ParallelPlan:
    """Parse a plan file (the keys of a workload's `parallel:` section)."""
    return _load(text, ParallelPlan, filename)


def plan_from_data(data: Any, filename: str = "<data>") -> ParallelPlan:
    """Load plain data (e.g. `--plan dp=4,pp=2` split into strings) through the YAML loader."""
    data = {k: [Verbatim(x) for x in v] if isinstance(v, list) else Verbatim(v)
            for k, v in data.items()} if isinstance(data, dict) else data
    text = yaml.dump(data, Dumper=_VerbatimDumper, sort_keys=False, width=10_000)
    return plan_from_yaml(text, filename)


def plan_from_option(text: str, option: str = "--plan") -> ParallelPlan:
    """`--plan dp=512,pp=4,tp=1` through the loader; issues name the option, not a line."""
    from accelsim.plan import cli_plan_data

    try:
        return plan_from_data(cli_plan_data(text), f"{option} {text}")
    except SpecError as exc:
        raise SpecError([Issue(i.file, None, None, i.key_path, i.expected, i.got)
                         for i in exc.issues]) from None


def load_plan(path: str | Path) -> ParallelPlan:
    """Read a plan YAML file; raises SpecError listing every problem."""
    text, name = _read(path)
    return plan_from_yaml(text, name)
# --- end parallel plans ----------------------------------------------------------------------


def workload_from_data(data: Any, filename: str = "<data>") -> WorkloadSpec:
    """Load plain workload data (`to_dict`'s form, `Verbatim` scalars allowed) through the loader."""
    text = yaml.dump(data, Dumper=_VerbatimDumper, sort_keys=False, allow_unicode=True,
                     width=10_000)
    return workload_from_yaml(text, filename)


def load_hardware(path: str | Path) -> HardwareSpec:
    """Read a hardware spec YAML file; raises SpecError listing every problem."""
    text, name = _read(path)
    return hardware_from_yaml(text, name)


def load_workload(path: str | Path) -> WorkloadSpec:
    """Read a workload YAML file; raises SpecError listing every problem."""
    text, name = _read(path)
    return workload_from_yaml(text, name)


_KINDS = ("a hardware spec (keys compute, caches, memory, interconnect) "
          "or a workload (keys model, subbatch)")


def key_mark(path: str | Path, key: str) -> tuple[int, int] | None:
    """(line, column) of the value of `key` in the file, to locate a later error.

    `key` may be dotted (`interconnect.torus_shape`); when its last parts are absent (a value
    that was never written) the deepest mapping that holds them is pointed at.
    """
    try:
        text, name = _read(path)
        node = _compose(text, name)
    except SpecError:
        return None
    found = None
    for part in key.split("."):
        if not isinstance(node, yaml.MappingNode):
            break
        node = next((value for k, value in node.value
                     if isinstance(k, yaml.ScalarNode) and k.value == part), None)
        if node is None:
            break
        found = node.start_mark.line + 1, node.start_mark.column + 1
    return found


def kind_of(path: str | Path) -> str:
    """'hardware' or 'workload', judged by the top-level keys (for `accelsim check`)."""
    text, name = _read(path)
    node = _compose(text, name)
    if node is None:
        raise SpecError([Issue(name, None, None, "", _KINDS, "an empty file")])
    if not isinstance(node, yaml.MappingNode):
        ctx = _Context(name)
        ctx.issue(node, "", f"a mapping: {_KINDS}", _describe(node))
        raise SpecError(ctx.issues)
    keys = {k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    if "model" in keys or "subbatch" in keys:
        return "workload"
    if keys & {"compute", "caches", "memory", "interconnect"}:
        return "hardware"
    ctx = _Context(name)
    ctx.issue(node, "", _KINDS, f"top-level keys {sorted(keys)}")
    raise SpecError(ctx.issues)


def to_dict(obj: Any, *, with_units: bool = False) -> Any:
    """Plain data (YAML keys) that loads back to an equal object.

    Quantities are base-unit numbers by default (for JSON and programs); with `with_units` they
    are the shortest exact strings such as '6 MiB' or '900 GB/s' (for people).
    """
    if attrs.has(type(obj)):
        out: dict[str, Any] = {}
        for fam in FAMILIES.values():
            if isinstance(obj, fam.config_class):
                out["family"] = fam.name
        for f in attrs.fields(type(obj)):
            value = getattr(obj, f.name)
            unit = f.metadata.get("unit")
            if with_units and unit and value is not None:
                out[yaml_key(f.name)] = units.format_quantity(value, unit)
            else:
                out[yaml_key(f.name)] = to_dict(value, with_units=with_units)
        return out
    if isinstance(obj, tuple | list):
        return [to_dict(x, with_units=with_units) for x in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v, with_units=with_units) for k, v in obj.items()}
    return obj


def dump_yaml(obj: Any, *, with_units: bool = True) -> str:
    """A spec object as YAML that `hardware_from_yaml` / `workload_from_yaml` read back equal."""
    return yaml.safe_dump(to_dict(obj, with_units=with_units), sort_keys=False,
                          allow_unicode=True, width=100)


# --- technology table (issue 14) ------------------------------------------------------------
TECHNOLOGY_TABLE = Path(__file__).resolve().parent / "data" / "technology_nodes.yaml"


@functools.cache
def technology_table() -> TechnologyTable:
    """The packaged per-node defaults, loaded (and checked) like any spec file."""
    text, _name = _read(TECHNOLOGY_TABLE)
    table: TechnologyTable = _load(text, TechnologyTable, TECHNOLOGY_TABLE.name)
    return table


def node_defaults(node: str) -> TechnologySpec:
    """The packaged row of `node`; an AccelsimError naming the known nodes if there is none."""
    table = technology_table()
    if node not in table.nodes:
        raise SpecError([Issue("technology", None, None, "technology.node",
                               f"one of {list(table.nodes)}", repr(node))])
    return table.nodes[node].resolved(table.common)
# --- end technology table -------------------------------------------------------------------

