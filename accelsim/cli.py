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

    failed = False
    for path in args.files:
        try:
            kind = spec.kind_of(path)
            obj = spec.load_hardware(path) if kind == "hardware" else spec.load_workload(path)
        except AccelsimError as exc:
            failed = True
            print(exc, file=sys.stderr)
            continue
        print(f"{path}: ok ({kind} '{obj.name}')")
    return EXIT_USAGE if failed else EXIT_OK


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
    import accelsim

    (hw,), wl = _load_pair([args.hardware], args.workload)
    report = accelsim.simulate(hw, wl, chips=args.chips, mode=args.mode)
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

    import accelsim
    from accelsim.report import comparison_table

    hws, wl = _load_pair(args.files[:-1], args.files[-1])
    reports = [accelsim.simulate(hw, wl, chips=args.chips, mode=args.mode) for hw in hws]
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

    (hw,), wl = _load_pair([args.hardware], args.workload)
    curve = miss_ratio_curve(hw, wl, granule_bytes=args.granule)
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
    import os
    import signal

    from accelsim import dse, progress

    settings: dict[str, list[str]] = {}
    for text in args.set:
        key, values = dse.parse_set(text)
        if key in settings:
            raise AccelsimError(f"--set {text}: {key} is already set by another --set")
        settings[key] = values
    # Output paths first: a typo must not cost a sweep.
    for path, option, suffixes in ((args.out, "--out", ()), (args.csv, "--csv", ()),
                                   (args.parquet, "--parquet", ()),
                                   (args.plot, "--plot", (".png", ".pdf", ".svg"))):
        if path:
            dse.check_output(path, option, suffixes)
    if args.parquet:
        dse.check_parquet()
    (hw,), wl = _load_pair([args.hardware], args.workload)
    the_plan = dse.plan(hw, wl, settings, chips=args.chips or 1, mode=args.mode)
    if args.plot:
        dse.plot_axes(the_plan.axes)
    jobs = args.jobs or os.cpu_count() or 1

    bar = progress.bar(0, "sweep", quiet=True)  # silent until the points to simulate are known

    def on_start(n: int) -> None:
        nonlocal bar
        bar = progress.bar(n, "sweep", quiet=args.quiet, unit="point")

    def on_point(point) -> None:
        bar.update()
        bar.set_postfix_str("last " + ", ".join(f"{k}={v}" for k, v in point.settings.items()))

    def terminate(signum, frame) -> None:  # SIGTERM: unwind like Ctrl-C, closing the workers
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        result = dse.run(the_plan, jobs=jobs, store=args.out, scheduler=args.scheduler,
                         on_start=on_start, on_point=on_point)
    finally:
        bar.close()
        signal.signal(signal.SIGTERM, previous)
    n = len(result)
    print(f"accelsim sweep: {wl.name} on {hw.name}, {n} points"
          + (f" x {args.chips} chips" if (args.chips or 1) > 1 else "")
          + (f"; {result.reused} reused from {args.out}" if args.out else "")
          + f"; {result.simulated} simulated in {result.elapsed_s:.1f} s")
    print(dse.table(result.points))
    for note in result.notes:
        print(f"note: {note}")
    if args.out:
        print(f"appended {result.simulated} points to {args.out}")
    if args.csv:
        dse.to_csv(result.points, args.csv)
        print(f"wrote {args.csv}")
    if args.parquet:
        dse.to_parquet(result.points, args.parquet)
        print(f"wrote {args.parquet}")
    if args.plot:
        print(f"wrote {dse.plot(result, args.plot, title=f'{wl.name} on {hw.name} variants')}")
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="accelsim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    check = sub.add_parser("check", help="validate hardware and workload YAML files")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(func=_cmd_check)

    run = sub.add_parser("run", help="simulate one training step of a workload on a chip")
    run.add_argument("hardware", metavar="HW", help="hardware spec YAML")
    run.add_argument("workload", metavar="WL", help="workload YAML")
    _add_sim_options(run)
    run.add_argument("--ops", type=int, default=15, metavar="N",
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
    mrc.set_defaults(func=_cmd_mrc)

    sweep = sub.add_parser(
        "sweep", help="simulate every combination of hardware, workload and chips settings",
        description="KEY is a YAML key path in the hardware spec (caches[0].capacity), in the "
                    "workload (subbatch, model.hidden, precision) or the word chips; prefix it "
                    "with 'hardware.' or 'workload.' where both files have the key (name).")
    sweep.add_argument("hardware", metavar="HW", help="base hardware spec YAML")
    sweep.add_argument("workload", metavar="WL", help="base workload YAML")
    sweep.add_argument("--set", action="append", required=True, metavar="KEY=V1,V2,...",
                       help="a key path and its values, e.g. 'caches[0].capacity=6MiB,24MiB', "
                            "'subbatch=8,32', 'chips=1,4' (repeat for a Cartesian product)")
    sweep.add_argument("--chips", type=_positive_int, default=None,
                       help="data-parallel chips of every point (or sweep them: --set chips=...)")
    sweep.add_argument("--mode", choices=("auto", "exact", "coalesced"), default="auto",
                       help="cache simulation granularity: lines, blocks, or chosen by size")
    sweep.add_argument("--jobs", type=_positive_int, default=None, metavar="J",
                       help="local worker processes (a Dask LocalCluster; default: the number "
                            "of cores; 1: in this process)")
    sweep.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on an existing Dask cluster, e.g. tcp://10.0.0.5:8786")
    sweep.add_argument("--out", metavar="FILE",
                       help="JSON-lines result store: append finished points, reuse stored ones")
    sweep.add_argument("--csv", metavar="FILE", help="write the results as CSV")
    sweep.add_argument("--parquet", metavar="FILE",
                       help="write the results as Parquet (needs the pandas extra)")
    sweep.add_argument("--plot", metavar="FILE",
                       help="draw the Pareto front against a capacity/bandwidth axis and a heat "
                            "map of two axes (PNG, PDF or SVG)")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
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
