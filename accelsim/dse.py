"""Design-space sweeps: hardware variants from key paths, local process pools, a resumable store.

A variant is the base spec's plain data (`spec.to_dict`) with some YAML key paths replaced by
text as the user wrote it, loaded back through the spec loader: a sweep accepts exactly what a
file accepts, with the same error messages. Every variant is built (and checked) before the
first simulation, so a bad value fails in a second, not after an hour of sweeping.

The store is JSON lines, one finished point per line, appended and flushed as points finish;
a rerun of the same sweep reuses the points it finds and simulates only the rest.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from accelsim import spec
from accelsim.errors import AccelsimError, Issue, SpecError
from accelsim.hardware import HardwareSpec
from accelsim.report import SCHEMA_VERSION
from accelsim.workload import WorkloadSpec

_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])*"
_PATH = re.compile(rf"{_NAME}(?:\.{_NAME})*")
_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


@attrs.frozen(kw_only=True)
class SweepPoint:
    """One finished design point: its settings and the report's summary (plain JSON data)."""

    settings: dict[str, str]
    hardware: str
    workload: str
    chips: int
    mode: str
    summary: dict[str, Any]
    reused: bool = False  # read from the store, not simulated in this run

    def to_record(self) -> dict[str, Any]:
        """The store's JSON line for this point."""
        return {"schema_version": SCHEMA_VERSION, "settings": self.settings,
                "hardware": self.hardware, "workload": self.workload, "chips": self.chips,
                "mode": self.mode, "summary": self.summary}


def _text(value: Any) -> str:
    """A setting as YAML text: strings stay as written, Python numbers and booleans spelled."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return str(value)


def _parse_path(key: str) -> list[str | int]:
    if not _PATH.fullmatch(key):
        raise SpecError([Issue(f"--set {key}", None, None, key,
                               "a key path such as 'memory.bandwidth' or 'caches[0].capacity'",
                               repr(key))])
    return [name if name else int(index) for name, index in _STEP.findall(key)]


def _join(path: str, step: str | int) -> str:
    if isinstance(step, int):
        return f"{path}[{step}]"
    return f"{path}.{step}" if path else step


def _resolve(data: Any, key: str) -> tuple[Any, str | int, str]:
    """(container, last step, canonical key path) for `key` in `data`; SpecError if absent."""
    steps = _parse_path(key)
    node, path = data, ""
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        if isinstance(step, int):
            if not isinstance(node, list):
                what = "a mapping" if isinstance(node, dict) else repr(node)
                raise SpecError([Issue(f"--set {key}", None, None, _join(path, step),
                                       f"a list at {path!r}", what)])
            if step >= len(node):
                raise SpecError([Issue(f"--set {key}", None, None, _join(path, step),
                                       f"an index below {len(node)} ({path!r} has {len(node)} "
                                       "items)", str(step))])
        else:
            if not isinstance(node, dict):
                what = "a list" if isinstance(node, list) else f"the value {node!r}"
                raise SpecError([Issue(f"--set {key}", None, None, _join(path, step),
                                       f"a mapping at {path or '<top>'!r}", what)])
            if step not in node and spec.yaml_key(step) in node:
                step = spec.yaml_key(step)  # full field names (capacity_bytes) are accepted too
            if step not in node:
                valid = list(node)
                close = difflib.get_close_matches(step, valid, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise SpecError([Issue(f"--set {key}", None, None, _join(path, step),
                                       f"one of the keys {valid}", f"unknown key {step!r}{hint}")])
        path = _join(path, step)
        if last:
            return node, step, path
        node = node[step]
    raise AssertionError("unreachable")


def apply_settings(hw: HardwareSpec, settings_point: Mapping[str, Any]) -> HardwareSpec:
    """`hw` with each key path set to its value (YAML text such as '24 MiB'), checked by the loader.

    Raises SpecError naming the `--set` text and key path of whatever the loader rejects.
    """
    if not isinstance(hw, HardwareSpec):
        from accelsim.errors import SpecTypeError

        raise SpecTypeError(f"hw: expected a HardwareSpec, got {type(hw).__name__}")
    if not isinstance(settings_point, Mapping):
        raise AccelsimError(f"settings: expected a mapping of key paths to values, got "
                            f"{type(settings_point).__name__}")
    data = spec.to_dict(hw, with_units=True)
    canonical: dict[str, str] = {}
    for key, value in settings_point.items():
        container, step, path = _resolve(data, key)
        text = _text(value)
        if path in canonical:
            raise SpecError([Issue(f"--set {key}", None, None, path, "each key path set once",
                                   f"{path} again ({canonical[path]})")])
        container[step] = spec.Verbatim(text)
        canonical[path] = f"--set {key}={text}"
    try:
        return spec.hardware_from_data(data, "<sweep>")
    except SpecError as exc:
        where = ", ".join(f"{k}={_text(v)}" for k, v in settings_point.items())
        issues = []
        for issue in exc.issues:
            label = next((lab for p, lab in canonical.items()
                          if issue.key_path == p or issue.key_path.startswith((p + ".", p + "["))),
                         None)
            if label is not None:
                issues.append(Issue(label, None, None, issue.key_path, issue.expected, issue.got))
            else:
                issues.append(Issue(f"<sweep {where}>", None, None, issue.key_path,
                                    issue.expected, issue.got))
        raise SpecError(list(dict.fromkeys(issues))) from None


def grid(settings: Mapping[str, Sequence[Any]]) -> list[dict[str, str]]:
    """The Cartesian product of the settings, first key varying slowest, values as text."""
    for key, values in settings.items():
        if isinstance(values, str | bytes) or not values:
            raise AccelsimError(f"--set {key}: expected a non-empty list of values, got {values!r}")
    keys = list(settings)
    return [dict(zip(keys, (_text(v) for v in combo), strict=True))
            for combo in itertools.product(*(settings[k] for k in keys))]


def point_key(settings: Mapping[str, str], *, hardware: str, workload: str, chips: int,
              mode: str) -> str:
    """What makes two points the same for the store (settings order does not matter)."""
    return json.dumps([sorted(settings.items()), hardware, workload, chips, mode])


def read_store(path: str | Path) -> tuple[dict[str, dict[str, Any]], int]:
    """Records of a store by `point_key`, and the number of unreadable lines (a killed run's tail)."""
    found: dict[str, dict[str, Any]] = {}
    bad = 0
    p = Path(path)
    if not p.exists():
        return found, 0
    for line in p.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if rec.get("schema_version") != SCHEMA_VERSION:
                continue
            key = point_key(rec["settings"], hardware=rec["hardware"], workload=rec["workload"],
                            chips=rec["chips"], mode=rec["mode"])
        except (ValueError, KeyError, TypeError, AttributeError):
            bad += 1
            continue
        found[key] = rec
    return found, bad


def _simulate_summary(hw: HardwareSpec, wl: WorkloadSpec, chips: int, mode: str,
                      limits: Any = None) -> dict:
    """Worker body (module level so that spawned processes can import it)."""
    from accelsim.api import simulate

    return simulate(hw, wl, chips=chips, mode=mode, limits=limits).to_dict()["summary"]


def sweep(hw: HardwareSpec, wl: WorkloadSpec, settings: Mapping[str, Sequence[Any]], *,
          chips: int = 1, mode: str = "auto", jobs: int = 1, store: str | Path | None = None,
          on_point: Callable[[SweepPoint], None] | None = None,
          limits: Any = None) -> list[SweepPoint]:
    """Simulate every point of the settings grid; points found in `store` are reused.

    `jobs` > 1 runs points in that many spawned processes (numba's thread pool does not survive
    fork). New points are appended to `store` as they finish, so an interrupted sweep resumes.
    Results come back in grid order; `on_point` sees each as it finishes (for progress).
    Every variant's work is estimated first and refused beyond `limits` (`accelsim.estimate`).
    """
    from accelsim.estimate import check_arguments, check_specs

    check_specs(hw, wl)
    if not isinstance(settings, Mapping):
        raise AccelsimError(f"settings: expected a mapping of key paths to value lists, got "
                            f"{type(settings).__name__}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise AccelsimError(f"jobs: expected an integer >= 1, got {jobs!r}")
    points = grid(settings)
    variants = _build_all(hw, points)  # every problem reported before any simulation
    graph = None
    for variant in variants:  # ... and every variant's work estimated (one graph for all)
        graph = check_arguments(variant, wl, chips=chips, mode=mode, limits=limits, graph=graph)
    stored, _bad = read_store(store) if store is not None else ({}, 0)
    results: list[SweepPoint | None] = [None] * len(points)
    todo: list[int] = []
    for i, point in enumerate(points):
        rec = stored.get(point_key(point, hardware=hw.name, workload=wl.name, chips=chips,
                                   mode=mode))
        if rec is not None:
            results[i] = SweepPoint(settings=point, hardware=hw.name, workload=wl.name,
                                    chips=chips, mode=mode, summary=rec["summary"], reused=True)
        else:
            todo.append(i)

    if store is not None and todo:
        _end_torn_line(Path(store))

    def finish(i: int, summary: dict) -> None:
        pt = SweepPoint(settings=points[i], hardware=hw.name, workload=wl.name, chips=chips,
                        mode=mode, summary=summary)
        results[i] = pt
        if store is not None:
            with open(store, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(pt.to_record()) + "\n")
        if on_point is not None:
            on_point(pt)

    if jobs == 1 or len(todo) <= 1:
        for i in todo:
            finish(i, _simulate_summary(variants[i], wl, chips, mode, limits))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx) as pool:
            futures = {pool.submit(_simulate_summary, variants[i], wl, chips, mode, limits): i
                       for i in todo}
            try:
                for fut in as_completed(futures):
                    finish(futures[fut], fut.result())
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
    return [r for r in results if r is not None]


def _end_torn_line(path: Path) -> None:
    """Close a line a killed run left unfinished, so the next record starts on its own line."""
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as fh:
            fh.seek(-1, 2)
            torn = fh.read(1) != b"\n"
        if torn:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write("\n")


def _build_all(hw: HardwareSpec, points: Iterable[Mapping[str, str]]) -> list[HardwareSpec]:
    issues: list[Issue] = []
    variants: list[HardwareSpec] = []
    for point in points:
        try:
            variants.append(apply_settings(hw, point))
        except SpecError as exc:
            issues += exc.issues
    if issues:
        raise SpecError(list(dict.fromkeys(issues)))
    return variants


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
    if kind == "time":
        return format_time(value)
    if kind == "pct":
        return f"{100 * value:.3g} %"
    return format_bytes(value)


def _columns(points: Sequence[SweepPoint]) -> tuple[list[str], list[str]]:
    keys: list[str] = []
    levels: list[str] = []
    for p in points:
        keys += [k for k in p.settings if k not in keys]
        levels += [lv for lv in p.summary.get("hit_rate", {}) if lv not in levels]
    return keys, levels


def table(points: Sequence[SweepPoint]) -> str:
    """One row per point: swept values, step time, utilization, hit rates, HBM bytes, shortfall."""
    keys, levels = _columns(points)
    head = [*keys, "step time", "FLOP util", *[f"{lv} hit" for lv in levels], "HBM bytes",
            "shortfall", ""]
    rows = [head]
    for p in points:
        s = p.summary
        rows.append([*[p.settings.get(k, "") for k in keys], _fmt(s["step_time_s"], "time"),
                     _fmt(s["flop_utilization"], "pct"),
                     *[_fmt(s["hit_rate"].get(lv), "pct") for lv in levels],
                     _fmt(s["level_bytes"].get("HBM"), "bytes"),
                     _fmt(s["shortfall_bytes"], "bytes"), "(reused)" if p.reused else ""])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) if i >= len(keys) else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
                     for r in rows)


def to_csv(points: Sequence[SweepPoint], path: str | Path) -> None:
    """The table as CSV with base-unit numbers (seconds, bytes, fractions)."""
    import csv

    keys, levels = _columns(points)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow([*keys, "step_time_s", "flop_utilization",
                    *[f"hit_rate_{lv}" for lv in levels], "hbm_bytes", "shortfall_bytes",
                    "reused"])
        for p in points:
            s = p.summary
            w.writerow([*[p.settings.get(k, "") for k in keys], s["step_time_s"],
                        s["flop_utilization"], *[s["hit_rate"].get(lv) for lv in levels],
                        s["level_bytes"].get("HBM"), s["shortfall_bytes"], p.reused])
