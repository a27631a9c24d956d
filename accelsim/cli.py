"""The `accelsim` command: run, compare, plan, check, project, case-study, study, validate,
calibrate, mrc, sweep.

Every error a user can cause (bad YAML, unknown keys, missing files, bad options) is an
`AccelsimError`: printed without a traceback, exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from accelsim.errors import AccelsimError
from accelsim.vocabulary import MODES

EXIT_OK, EXIT_USAGE = 0, 2


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so usage errors get our exit code 2 path."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise AccelsimError(f"{self.prog}: {message}")


def _cmd_check(args: argparse.Namespace) -> int:
    from accelsim import spec
    from accelsim.errors import LocatedError
    from accelsim.estimate import check_chips, check_offload, estimate_work
    from accelsim.workload import WorkloadSpec

    failed = False
    hws: list[tuple[str | None, Any]] = []
    wls: list[tuple[str, Any]] = []
    for path in args.files:
        try:
            kind = spec.kind_of(path)
            obj = spec.load_hardware(path) if kind == "hardware" else spec.load_workload(path)
            if isinstance(obj, WorkloadSpec) and obj.parallel is not None:  # issue 8 plans
                from accelsim.parallel import check_plan

                try:
                    check_plan(obj)
                except AccelsimError as exc:
                    raise AccelsimError(_located(exc, None, path)
                                        if isinstance(exc, LocatedError) else f"{path}: {exc}"
                                        ) from None
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
        lines: list[str] | None = []
        for hw_path, hw in hws or [(None, None)]:
            try:
                if hw is not None:
                    check_chips(hw, args.chips)
                    check_offload(hw, wl)
                est = estimate_work(hw, wl, mode=args.mode, limits=limits)
            except AccelsimError as exc:
                lines = None
                print(_located(exc, hw_path, wl_path), file=sys.stderr)
                break
            assert lines is not None
            lines.append(f"  on {hw_path}: {est.text()}" if hw_path else f"  {est.text()}")
        if lines is None:
            failed = True
            continue
        print(f"{wl_path}: ok (workload '{wl.name}')")
        print("\n".join(lines))
    return EXIT_USAGE if failed else EXIT_OK


def _located(exc: AccelsimError, hw_path: str | None, wl_path: str,
             plan: str | None = None) -> str:
    """A refusal after loading (errors.LocatedError: work too large, the chip count, the plan)
    as `file:line:col: key: expected ..., got ...`; a plan's problem is blamed on `--plan`
    (`plan`) when one is given, else on the workload's `parallel:` section."""
    from accelsim import spec
    from accelsim.errors import Issue, LocatedError

    if not isinstance(exc, LocatedError):
        return str(exc)
    key = exc.key_path
    if exc.spec == "plan" and plan is not None:
        if not plan.endswith((".yaml", ".yml")):
            return f"--plan {plan}: {exc}"
        path, key = plan, key.removeprefix("parallel.")
    else:
        path = hw_path if exc.spec == "hardware" and hw_path else wl_path
    line, col = spec.key_mark(path, key) or (None, None)
    return str(Issue(path, line, col, key, exc.expected, exc.got))


def _simulate(hw, wl, args: argparse.Namespace, hw_path: str, wl_path: str):
    """One design under the options: `--plan` (or the workload's `parallel:`) as given,
    `--chips N` alone the best plan that fits; work bounded by the options' limits, and a
    refusal located in the file to blame."""
    import accelsim
    from accelsim.errors import LocatedError
    from accelsim.estimate import check_arguments

    try:
        graph = check_arguments(hw, wl, chips=args.chips, mode=args.mode, limits=_limits(args))
        plan = getattr(args, "plan", None)
        if plan is None and args.chips > 1 and wl.parallel is None:
            from accelsim import pipeline, planner

            return pipeline.estimate_cost(hw, wl, planner.best(hw, wl, args.chips, mode=args.mode))
        if plan is not None and plan.endswith((".yaml", ".yml")):
            from accelsim import spec

            plan = spec.load_plan(plan)
        return accelsim.simulate(hw, wl, chips=args.chips, mode=args.mode, plan=plan,
                                 force=getattr(args, "force", False), graph=graph,
                                 limits=_limits(args))
    except LocatedError as exc:
        raise AccelsimError(_located(exc, hw_path, wl_path, getattr(args, "plan", None))) from None


def _limits(args: argparse.Namespace):
    """The work limits the options ask for (accelsim.estimate.WorkLimits)."""
    import attrs

    from accelsim.estimate import LARGE_LIMITS, WorkLimits

    limits = LARGE_LIMITS if args.allow_large else WorkLimits()
    if args.max_graph_ops is not None:
        limits = attrs.evolve(limits, max_graph_ops=args.max_graph_ops)
    return limits


def _check_outputs(args: argparse.Namespace, inputs: Sequence[str], *,
                   plot_dir: bool = False) -> None:
    """Every output path the command will write, checked before any work (accelsim.outputs);
    `plot_dir`: `--plot` names a folder of figures, not one image."""
    from accelsim.outputs import PLOT_EXTENSIONS, check_distinct, check_output, check_output_dir

    paths = {f"--{name}": getattr(args, name, None)
             for name in ("json", "csv", "plot", "out", "timeline", "parquet", "markdown")}
    for option, path in paths.items():
        if path is None:
            continue
        if option == "--plot" and plot_dir:  # `run --plot DIR`: a folder of figures
            check_output_dir(option, path)
            continue
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


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    return _whole_number(text, 1)


def _non_negative_int(text: str) -> int:
    return _whole_number(text, 0)


def _cmd_run(args: argparse.Namespace) -> int:

    from accelsim import pipeline, progress

    _check_outputs(args, [args.hardware, args.workload], plot_dir=True)
    (hw,), wl = _load_pair([args.hardware], args.workload)
    with progress.steps(len(pipeline.STAGE_NAMES), "run", quiet=args.quiet):
        progress.stage("build")
        report = _simulate(hw, wl, args, args.hardware, args.workload)
    print(report.text(top_ops=args.ops))
    if args.json:
        report.to_json(args.json)
        print(f"wrote {args.json}")
    if args.csv:
        report.to_csv(args.csv)
        print(f"wrote {args.csv}")
    if args.timeline:
        report.to_timeline(args.timeline)
        print(f"wrote {args.timeline} (open in ui.perfetto.dev or chrome://tracing)")
    if args.plot:
        from accelsim import plot

        for path in plot.report_figures(report, args.plot):
            print(f"wrote {path}")
    return EXIT_OK


def _cmd_compare(args: argparse.Namespace) -> int:
    import json

    from accelsim.report import comparison_table

    _check_outputs(args, args.files)
    hws, wl = _load_pair(args.files[:-1], args.files[-1])
    from accelsim import pipeline, progress
    from accelsim.errors import LocatedError
    from accelsim.estimate import check_arguments

    graph = None
    for hw, hw_path in zip(hws, args.files[:-1], strict=True):  # every chip before the first run
        try:
            graph = check_arguments(hw, wl, chips=args.chips, mode=args.mode,
                                    limits=_limits(args), graph=graph)
        except LocatedError as exc:
            raise AccelsimError(_located(exc, hw_path, args.files[-1])) from None
    reports = []
    with progress.steps(len(hws) * len(pipeline.STAGE_NAMES), "compare",
                        quiet=args.quiet):  # each chip's stages
        for hw, hw_path in zip(hws, args.files[:-1], strict=True):
            progress.prefix(hw.name)
            progress.stage("build")
            reports.append(_simulate(hw, wl, args, hw_path, args.files[-1]))
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


def _cmd_plan(args: argparse.Namespace) -> int:
    import json

    from accelsim import planner
    from accelsim.errors import LocatedError
    from accelsim.estimate import check_arguments

    _check_outputs(args, [args.hardware, args.workload])
    (hw,), wl = _load_pair([args.hardware], args.workload)
    try:  # the whole step's work bounds every stage's
        check_arguments(hw, wl, mode=args.mode, limits=_limits(args))
    except LocatedError as exc:
        raise AccelsimError(_located(exc, args.hardware, args.workload)) from None
    counts = planner.chip_counts(args.chips, args.max_chips)

    def progress(outcome) -> None:
        p = outcome.report.parallel
        print(f"  {p.plan} on {p.chips} chips: "
              + (f"{outcome.report.summary.step_time_s:.4g} s" if p.timed else "does not fit"),
              file=sys.stderr, flush=True)

    outcomes = planner.search(hw, wl, counts, mode=args.mode, on_plan=progress)
    fits = [o for o in outcomes if o.fits]
    where = f"{args.chips}" + (f"..{args.max_chips}" if args.max_chips else "")
    print(f"accelsim plan: {wl.name} on {where} chips of {hw.name}: {len(outcomes)} plans, "
          f"{len(fits)} fit")
    best_par = fits[0].report.parallel if fits else None
    print(f"verdict: {best_par.verdict}" if best_par is not None else
          "verdict: does not fit: no plan's stages fit in memory (see the shortfalls below)")
    print(planner.table(outcomes))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"schema_version": outcomes[0].report.to_dict()["schema_version"]
                       if outcomes else None,
                       "plans": [o.report.to_dict() | {"ops": []} for o in outcomes]}, fh,
                      indent=1)
        print(f"wrote {args.json}")
    return EXIT_OK


def _add_plan_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plan", metavar="PLAN",
                   help="parallel plan, e.g. 'dp=512,pp=4,tp=1,shard_embedding=true', or a plan "
                        "YAML file (default with --chips N: the best plan that fits)")
    p.add_argument("--force", action="store_true",
                   help="time a plan even when it does not fit in memory (labelled FORCED)")


def _cmd_mrc(args: argparse.Namespace) -> int:
    import accelsim
    from accelsim import progress
    from accelsim.api import miss_ratio_curve
    from accelsim.units import format_bytes

    _check_outputs(args, [args.hardware, args.workload])
    (hw,), wl = _load_pair([args.hardware], args.workload)
    with progress.steps(5, "mrc", quiet=args.quiet):  # build, fuse, map, addresses, curve
        progress.stage("build")
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
        from accelsim.fusion import execute

        marks = [(f"{hw.name} {format_bytes(llc)}", llc)] if llc else []
        executed, _ = execute(accelsim.build_graph(wl), wl.recurrent_execution)  # as replayed
        print("wrote", plot.miss_ratio_curve(
            curve.capacity_bytes, curve.hit_rate, args.plot, marks=marks,
            footprint_bytes=executed.minimal_footprint_bytes(),
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
    # metric axes of an energy/cost Pareto plot (issue 14), checked before any simulation
    axes = dse.parse_axes(args.axes) if args.axes else None
    _check_outputs(args, [args.hardware, args.workload])
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
    if args.plot and axes is not None:  # two metrics, e.g. time to train vs cost (issue 14)
        from accelsim import plot

        metrics = dse.pareto_values(result.points, *axes)
        labels = [", ".join(p.settings.values()) for p in result.points]
        drawn = plot.sweep_pareto(labels, metrics, dse.pareto_front(metrics), args.plot,
                                  x_label=dse.PARETO_AXES[axes[0]][0],
                                  y_label=dse.PARETO_AXES[axes[1]][0],
                                  title=f"{wl.name} on {hw.name}: {', '.join(settings)}")
        print(f"wrote {drawn}")
    elif args.plot:  # time against the swept resource axis, and a heat map of two axes
        print(f"wrote {dse.plot(result, args.plot, title=f'{wl.name} on {hw.name} variants')}")
    return EXIT_OK


# --- progress and output checks of validate and project ---
def _with_progress(command: Any, desc: str, unit: str, *, inputs: Sequence[str],
                   plot_dir: bool = False) -> Any:
    """`command(args)` after its output paths are checked, inside a bar that the work's
    `progress.stage` calls advance (a count without a total: rows, model sizes)."""
    def run(args: argparse.Namespace) -> int:
        from accelsim import progress

        _check_outputs(args, [p for p in (getattr(args, name, None) for name in inputs) if p],
                       plot_dir=plot_dir)
        with progress.steps(None, desc, quiet=args.quiet, unit=unit):
            return int(command(args))
    return run


def _add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bar")
# --- end progress and output checks ---


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
    p.add_argument("--mode", choices=MODES, default="auto",
                   help="cache simulation granularity: lines, blocks, or chosen by size")
    _add_limit_options(p)


def _add_limit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-graph-ops", type=_positive_int, metavar="N",
                   help="refuse workloads whose step graph has more ops (default 1,000,000)")
    p.add_argument("--allow-large", action="store_true",
                   help="raise every work limit to what 64-bit addresses allow "
                        "(accelsim.estimate.LARGE_LIMITS); exact-mode limits stay")


def version() -> str:
    """The installed package's version (its metadata), else the source tree's `__version__`."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _metadata_version

    try:
        return _metadata_version("accelsim")
    except PackageNotFoundError:
        import accelsim

        return accelsim.__version__


def build_parser() -> argparse.ArgumentParser:
    """The `accelsim` argument parser: one subcommand per command."""
    parser = _Parser(prog="accelsim", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"accelsim {version()}")
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
    _add_plan_options(run)
    run.add_argument("--ops", type=_non_negative_int, default=15, metavar="N",
                     help="show the N slowest ops (0: all)")
    run.add_argument("--json", metavar="FILE", help="write the report as JSON")
    run.add_argument("--csv", metavar="FILE", help="write the per-op table as CSV")
    run.add_argument("--timeline", metavar="FILE",
                     help="write the step as a Chrome/Perfetto trace-event JSON file")
    run.add_argument("--plot", metavar="DIR",
                     help="draw the roofline, breakdown and timeline Gantt (PNGs in DIR)")
    _add_quiet(run)
    run.set_defaults(func=_cmd_run)

    compare = sub.add_parser("compare", help="one workload on several chips, side by side")
    compare.add_argument("files", nargs="+", metavar="HW... WL",
                         help="hardware specs, then one workload")
    _add_sim_options(compare)
    _add_plan_options(compare)
    compare.add_argument("--json", metavar="FILE", help="write all reports as JSON")
    compare.add_argument("--plot", metavar="FILE", help="draw the comparison (PNG)")
    _add_quiet(compare)
    compare.set_defaults(func=_cmd_compare)

    plan = sub.add_parser("plan", help="every parallel plan for N chips: feasible ones, ranked "
                                       "by time to train")
    plan.add_argument("hardware", metavar="HW", help="hardware spec YAML")
    plan.add_argument("workload", metavar="WL", help="workload YAML")
    plan.add_argument("--chips", type=_positive_int, required=True, help="chips to split over")
    plan.add_argument("--max-chips", type=_positive_int, metavar="M",
                      help="also try 2N, 4N, ... chips up to M")
    plan.add_argument("--mode", choices=MODES, default="auto",
                      help="cache simulation granularity")
    _add_limit_options(plan)
    plan.add_argument("--json", metavar="FILE", help="write every plan's report as JSON")
    plan.set_defaults(func=_cmd_plan)

    mrc = sub.add_parser("mrc", help="miss-ratio curve: hit rate against cache size, one pass")
    mrc.add_argument("hardware", metavar="HW", help="hardware spec YAML (sets tiles and marks)")
    mrc.add_argument("workload", metavar="WL", help="workload YAML")
    mrc.add_argument("--granule", type=_power_of_two_bytes, metavar="SIZE",
                     help="granule of the curve, e.g. '1 MiB' (default: chosen by trace size)")
    mrc.add_argument("--plot", metavar="FILE", help="draw the curve (PNG)")
    _add_limit_options(mrc)
    _add_quiet(mrc)
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
    sweep.add_argument("--axes", default=None, metavar="X,Y",
                       help="with --plot: draw these two metrics and their Pareto front instead, "
                            "two of step_time, time_to_train, cost, energy, power, area, "
                            "chip_cost (e.g. time_to_train,cost)")
    sweep.set_defaults(func=_cmd_sweep)

    from accelsim import reproduce

    project = sub.add_parser(
        "project", help="the paper's Tables 1-3 recomputed from accelsim's graphs, beside the paper's")
    reproduce.add_arguments(project)
    _add_quiet(project)
    project.set_defaults(func=_with_progress(reproduce.run, "project", "step",
                                             inputs=("tables", "hardware"), plot_dir=True))

    from accelsim import case_study

    case = sub.add_parser(
        "case-study", help="the paper's Table 5 (LSTMP word LM, data and layer parallel) "
                           "recomputed, beside the paper's rows")
    case_study.add_arguments(case)
    case.set_defaults(func=case_study.run)

    # --- study (the paper's memory argument) ---
    from accelsim import study

    stu = sub.add_parser(
        "study", help="the paper's memory argument: step time and utilization against subbatch "
        "and cache size on several designs, Table 5's cache-aware row, roofline floors")
    study.add_arguments(stu)
    stu.set_defaults(func=study.run)
    # --- end study ---

    from accelsim import validate

    val = sub.add_parser(
        "validate", help="predicted vs measured kernel times of any device (DeepBench GEMM and "
        "RNN columns; default: the packaged V100 tables)")
    validate.add_arguments(val)
    val.set_defaults(func=_with_progress(validate.run, "validate", "row",
                                         inputs=("hardware", "gemm_csv", "rnn_csv")))

    # --- calibrate (issue 10) ---
    from accelsim import calibrate

    cal = sub.add_parser(
        "calibrate", help="fit a spec's calibration knobs to a chip's measured kernel times "
        "(bounded least squares on log error, k-fold cross-validation over shapes)")
    calibrate.add_arguments(cal)
    cal.set_defaults(func=calibrate.run)
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
