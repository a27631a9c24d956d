"""The `accelsim` command: run, compare, check, project, validate, mrc, sweep.

Every error a user can cause (bad YAML, unknown keys, missing files, bad options) is an
`AccelsimError`: printed without a traceback, exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from accelsim.errors import AccelsimError

EXIT_OK, EXIT_USAGE = 0, 2


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so usage errors get our exit code 2 path."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise AccelsimError(f"{self.prog}: {message}")


def _cmd_check(args: argparse.Namespace) -> int:
    from accelsim import spec
    from accelsim.estimate import check_chips, estimate_work

    failed = False
    hws, wls = [], []
    for path in args.files:
        try:
            kind = spec.kind_of(path)
            obj = spec.load_hardware(path) if kind == "hardware" else spec.load_workload(path)
        except AccelsimError as exc:
            failed = True
            print(exc, file=sys.stderr)
            continue
        if kind == "hardware":
            print(f"{path}: ok ({kind} '{obj.name}')")
        (hws if kind == "hardware" else wls).append((path, obj))
    # --- work estimates: what `run` would refuse before simulating (accelsim.estimate);
    # a workload is ok once its work fits on every chip given (or, alone, its graph fits) ---
    limits = _limits(args)
    for wl_path, wl in wls:
        lines = []
        for hw_path, hw in hws or [(None, None)]:
            try:
                if hw is not None:
                    check_chips(hw, args.chips)
                est = estimate_work(hw, wl, mode=args.mode, limits=limits)
            except AccelsimError as exc:
                lines = None
                print(_located(exc, hw_path, wl_path), file=sys.stderr)
                break
            lines.append(f"  on {hw_path}: {est.text()}" if hw_path else f"  {est.text()}")
        if lines is None:
            failed = True
            continue
        print(f"{wl_path}: ok (workload '{wl.name}')")
        print("\n".join(lines))
    return EXIT_USAGE if failed else EXIT_OK


def _located(exc: AccelsimError, hw_path: str | None, wl_path: str) -> str:
    """A work refusal (estimate.WorkTooLarge) as `file:line:col: key: expected ..., got ...`."""
    from accelsim import spec
    from accelsim.errors import Issue, WorkTooLarge

    if not isinstance(exc, WorkTooLarge):
        return str(exc)
    path = hw_path if exc.spec == "hardware" and hw_path else wl_path
    line, col = spec.key_mark(path, exc.key_path) or (None, None)
    return str(Issue(path, line, col, exc.key_path, exc.expected, exc.got))


def _simulate(hw, wl, args: argparse.Namespace, hw_path: str, wl_path: str):
    """accelsim.simulate with the options' limits; a refusal located in the file to blame."""
    import accelsim
    from accelsim.errors import WorkTooLarge

    try:
        return accelsim.simulate(hw, wl, chips=args.chips, mode=args.mode, limits=_limits(args))
    except WorkTooLarge as exc:
        raise AccelsimError(_located(exc, hw_path, wl_path)) from None


def _limits(args: argparse.Namespace):
    """The work limits the options ask for (accelsim.estimate.WorkLimits)."""
    import attrs

    from accelsim.estimate import LARGE_LIMITS, WorkLimits

    limits = LARGE_LIMITS if args.allow_large else WorkLimits()
    if args.max_graph_ops is not None:
        limits = attrs.evolve(limits, max_graph_ops=args.max_graph_ops)
    return limits


def _check_outputs(args: argparse.Namespace, inputs: Sequence[str]) -> None:
    """Every output path the command will write, checked before any work (accelsim.outputs)."""
    from accelsim.outputs import PLOT_EXTENSIONS, check_distinct, check_output

    paths = {f"--{name}": getattr(args, name, None) for name in ("json", "csv", "plot", "out")}
    for option, path in paths.items():
        if path is not None:
            check_output(option, path, inputs,
                         extensions=PLOT_EXTENSIONS if option == "--plot" else (),
                         append=option == "--out")
    check_distinct(paths)


def _load_pair(hw_paths: Sequence[str], wl_path: str):
    """Load every file first so that all their problems are reported together."""
    from accelsim import spec
    from accelsim.errors import SpecError

    issues, hws, wl = [], [], None
    for path in hw_paths:
        try:
            hws.append(spec.load_hardware(path))
        except SpecError as exc:
            issues += exc.issues
    try:
        wl = spec.load_workload(wl_path)
    except SpecError as exc:
        issues += exc.issues
    if issues:
        raise SpecError(issues)
    return hws, wl


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _cmd_run(args: argparse.Namespace) -> int:

    _check_outputs(args, [args.hardware, args.workload])
    (hw,), wl = _load_pair([args.hardware], args.workload)
    report = _simulate(hw, wl, args, args.hardware, args.workload)
    print(report.text(top_ops=args.ops))
    if args.json:
        report.to_json(args.json)
        print(f"wrote {args.json}")
    if args.csv:
        report.to_csv(args.csv)
        print(f"wrote {args.csv}")
    return EXIT_OK


def _cmd_compare(args: argparse.Namespace) -> int:
    import json

    from accelsim.report import comparison_table

    _check_outputs(args, args.files)
    hws, wl = _load_pair(args.files[:-1], args.files[-1])
    from accelsim.errors import WorkTooLarge
    from accelsim.estimate import check_arguments

    graph = None
    for hw, hw_path in zip(hws, args.files[:-1], strict=True):  # every chip before the first run
        try:
            graph = check_arguments(hw, wl, chips=args.chips, mode=args.mode,
                                    limits=_limits(args), graph=graph)
        except WorkTooLarge as exc:
            raise AccelsimError(_located(exc, hw_path, args.files[-1])) from None
    reports = [_simulate(hw, wl, args, hw_path, args.files[-1])
               for hw, hw_path in zip(hws, args.files[:-1], strict=True)]
    print(comparison_table(reports))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"schema_version": reports[0].to_dict()["schema_version"],
                       "reports": [r.to_dict() for r in reports]}, fh, indent=1)
        print(f"wrote {args.json}")
    if args.plot:
        from accelsim import plot

        print(f"wrote {plot.comparison(reports, args.plot)}")
    return EXIT_OK


def _cmd_mrc(args: argparse.Namespace) -> int:
    from accelsim.api import miss_ratio_curve
    from accelsim.units import format_bytes

    _check_outputs(args, [args.hardware, args.workload])
    (hw,), wl = _load_pair([args.hardware], args.workload)
    curve = miss_ratio_curve(hw, wl, granule_bytes=args.granule, limits=_limits(args))
    llc = hw.last_level_cache_bytes
    print(f"accelsim mrc: {wl.name}, tiled for {hw.name}; fully associative LRU, "
          f"{format_bytes(curve.granule_bytes)} granules, {curve.accesses:.4g} accesses")
    print(f"  {'hit rate':>9}  {'cache needed':>14}")
    for target in (0.5, 0.9, 0.99):
        cap = curve.capacity_for(target)
        print(f"  {100 * target:>8.0f}%  {format_bytes(cap) if cap else 'unreachable':>14}")
    best = float(curve.hit_rate[-1]) if curve.hit_rate.size else 0.0
    print(f"  at most {100 * best:.1f} % (the rest are first touches) from "
          f"{format_bytes(curve.capacity_for(best) or 0)}")
    if llc:
        print(f"  {hw.name}'s on-chip cache ({format_bytes(llc)}): "
              f"{100 * curve.hit_rate_at(llc):.1f} %")
    if args.plot:
        from accelsim import plot

        marks = [(f"{hw.name} {format_bytes(llc)}", llc)] if llc else []
        print("wrote", plot.miss_ratio_curve(
            curve.capacity_bytes, curve.hit_rate, args.plot, marks=marks,
            title=f"{wl.name}: hit rate vs cache size ({format_bytes(curve.granule_bytes)} granules)"))
    return EXIT_OK


def _cmd_sweep(args: argparse.Namespace) -> int:
    from accelsim import dse

    settings: dict[str, list[str]] = {}
    for text in args.set:
        key, values = dse.parse_set(text)
        if key in settings:
            raise AccelsimError(f"--set {text}: {key} is already set by another --set")
        settings[key] = values
    _check_outputs(args, [args.hardware, args.workload])
    (hw,), wl = _load_pair([args.hardware], args.workload)
    n = 1
    for values in settings.values():
        n *= len(values)

    done = 0

    def progress(point) -> None:
        nonlocal done
        done += 1
        where = ", ".join(f"{k}={v}" for k, v in point.settings.items())
        print(f"  [{done} new] {where}: {point.summary['step_time_s']:.4g} s", file=sys.stderr,
              flush=True)

    points = dse.sweep(hw, wl, settings, chips=args.chips, mode=args.mode, jobs=args.jobs,
                       store=args.out, on_point=progress, limits=_limits(args))
    reused = sum(p.reused for p in points)
    print(f"accelsim sweep: {wl.name} on {hw.name}, {n} points"
          + (f" x {args.chips} chips" if args.chips > 1 else "")
          + (f"; {reused} reused from {args.out}" if args.out else ""))
    print(dse.table(points))
    if args.out:
        print(f"appended {n - reused} points to {args.out}")
    if args.csv:
        dse.to_csv(points, args.csv)
        print(f"wrote {args.csv}")
    return EXIT_OK


def _power_of_two_bytes(text: str) -> int:
    from accelsim.units import UnitError, parse_bytes

    try:
        value = parse_bytes(text)
    except UnitError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value < 1 or value & (value - 1):
        raise argparse.ArgumentTypeError(f"expected a power of two, got {text!r}")
    return value


def _add_sim_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--chips", type=_positive_int, default=1,
                   help="data-parallel chips (gradient all-reduce over the interconnect)")
    p.add_argument("--mode", choices=("auto", "exact", "coalesced"), default="auto",
                   help="cache simulation granularity: lines, blocks, or chosen by size")
    _add_limit_options(p)


def _add_limit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-graph-ops", type=_positive_int, metavar="N",
                   help="refuse workloads whose step graph has more ops (default 1,000,000)")
    p.add_argument("--allow-large", action="store_true",
                   help="raise every work limit to what 64-bit addresses allow "
                        "(accelsim.estimate.LARGE_LIMITS); exact-mode limits stay")


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="accelsim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    check = sub.add_parser("check", help="validate hardware and workload YAML files")
    check.add_argument("files", nargs="+", metavar="FILE",
                       help="specs; with hardware and workloads, each pair's work is estimated")
    _add_sim_options(check)
    check.set_defaults(func=_cmd_check)

    run = sub.add_parser("run", help="simulate one training step of a workload on a chip")
    run.add_argument("hardware", metavar="HW", help="hardware spec YAML")
    run.add_argument("workload", metavar="WL", help="workload YAML")
    _add_sim_options(run)
    run.add_argument("--ops", type=_non_negative_int, default=15, metavar="N",
                     help="show the N slowest ops (0: all)")
    run.add_argument("--json", metavar="FILE", help="write the report as JSON")
    run.add_argument("--csv", metavar="FILE", help="write the per-op table as CSV")
    run.set_defaults(func=_cmd_run)

    compare = sub.add_parser("compare", help="one workload on several chips, side by side")
    compare.add_argument("files", nargs="+", metavar="HW... WL",
                         help="hardware specs, then one workload")
    _add_sim_options(compare)
    compare.add_argument("--json", metavar="FILE", help="write all reports as JSON")
    compare.add_argument("--plot", metavar="FILE", help="draw the comparison (PNG)")
    compare.set_defaults(func=_cmd_compare)

    mrc = sub.add_parser("mrc", help="miss-ratio curve: hit rate against cache size, one pass")
    mrc.add_argument("hardware", metavar="HW", help="hardware spec YAML (sets tiles and marks)")
    mrc.add_argument("workload", metavar="WL", help="workload YAML")
    mrc.add_argument("--granule", type=_power_of_two_bytes, metavar="SIZE",
                     help="granule of the curve, e.g. '1 MiB' (default: chosen by trace size)")
    mrc.add_argument("--plot", metavar="FILE", help="draw the curve (PNG)")
    _add_limit_options(mrc)
    mrc.set_defaults(func=_cmd_mrc)

    sweep = sub.add_parser("sweep", help="simulate every combination of hardware settings")
    sweep.add_argument("hardware", metavar="HW", help="base hardware spec YAML")
    sweep.add_argument("workload", metavar="WL", help="workload YAML")
    sweep.add_argument("--set", action="append", required=True, metavar="KEY=V1,V2,...",
                       help="a YAML key path and its values, e.g. 'caches[0].capacity=6MiB,24MiB'"
                            " (repeat for a Cartesian product)")
    _add_sim_options(sweep)
    sweep.add_argument("--jobs", type=_positive_int, default=1, metavar="J",
                       help="simulate points in J local processes")
    sweep.add_argument("--out", metavar="FILE",
                       help="JSON-lines result store: append finished points, reuse stored ones")
    sweep.add_argument("--csv", metavar="FILE", help="write the table as CSV")
    sweep.set_defaults(func=_cmd_sweep)

    from accelsim import reproduce

    project = sub.add_parser(
        "project", help="the paper's Tables 1-3 recomputed from accelsim's graphs, beside the paper's")
    reproduce.add_arguments(project)
    project.set_defaults(func=reproduce.run)

    from accelsim import validate

    val = sub.add_parser(
        "validate", help="predicted vs measured kernel times (DeepBench V100 GEMM and RNN rows)")
    validate.add_arguments(val)
    val.set_defaults(func=validate.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "compare" and len(args.files) < 2:
            raise AccelsimError("compare: expected one or more hardware specs and a workload")
        return int(args.func(args))
    except AccelsimError as exc:
        print(f"accelsim: error: {exc}" if "\n" not in str(exc) else str(exc), file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        # Files the user named that cannot be read or written (outputs, CSVs, plots).
        print(f"accelsim: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
