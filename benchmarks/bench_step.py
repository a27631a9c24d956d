"""Benchmark of one simulated training step: wall time (cold and warm numba cache), peak RSS,
and the coalesced-vs-exact trade-off on a reduced NMT.

    python benchmarks/bench_step.py                 # headline + ppopp19_target + reduced NMT
    python benchmarks/bench_step.py --only reduced  # just the coalesced/exact comparison
    python benchmarks/bench_step.py --only sensitivity  # frontier: blocks halved, no steady state
    python benchmarks/bench_step.py --only compare --baseline /path/to/main --repeat 3
        # warm headline of this tree and another checkout, alternating, best of N each
        # (--this-threads 1: also this tree with ACCELSIM_THREADS=1)
    python benchmarks/bench_step.py --only rss --baseline /path/to/main
        # peak RSS and wall time of every shipped workload on ppopp19_target, both trees

Every measurement runs in a fresh Python process (so the peak RSS is that run's, and "cold"
really compiles): cold uses an empty NUMBA_CACHE_DIR, warm reuses it. Results are printed as
Markdown rows for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]

CHILD_STEP = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from accelsim import pipeline
from accelsim.spec import load_hardware, load_workload
hw = load_hardware(sys.argv[1]); wl = load_workload(sys.argv[2])
graph = pipeline.prepare(wl).executed  # build -> fuse, as accelsim.simulate
t1 = time.perf_counter()
res = pipeline.simulate_step(hw, graph, wl.precision, chips=int(sys.argv[3]))
t2 = time.perf_counter()
tr = res.traffic.cache
print(json.dumps({
    "import_build_s": t1 - t0, "simulate_s": t2 - t1, "phases": res.wall_s,
    "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "cpu_s": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
    "ops": len(graph.ops), "step_time_s": res.step_time_s,
    "mode": tr.mode_used if tr else None,
    "hit_rate": tr.step_hit_rate() if tr else {}, "bytes": tr.total_bytes() if tr else {},
    "ops_simulated": int(tr.simulated.sum()) if tr else 0,
    "simulated_accesses": tr.simulated_accesses if tr else 0,
    "shortcuts": list(res.notes), "utilization": res.replayed.utilization}))
"""

CHILD_REDUCED = r"""
import json, sys, time
import attrs
from accelsim import pipeline
from accelsim.spec import load_hardware
from accelsim.models.nmt import NMTConfig
from accelsim.workload import WorkloadSpec
hidden, seq, batch, l2_kib, sram_kib = (int(x) for x in sys.argv[2:7])
hw = load_hardware(sys.argv[1])
l2, sram = hw.caches
hw = attrs.evolve(hw, caches=(attrs.evolve(l2, capacity_bytes=l2_kib * 1024),
                              attrs.evolve(sram, capacity_bytes=sram_kib * 1024)))
graph = pipeline.prepare(WorkloadSpec(name="nmt_reduced", subbatch=batch, model=NMTConfig(
    hidden=hidden, vocab=2000, sequence_length=seq))).executed
maps = pipeline.map_step(hw, graph, "fp32")
pipeline.trace_step(hw, graph, maps, mode="coalesced")  # compile / warm up
out = {}
for mode, kw in (("exact", {}), ("coalesced", {"max_accesses": 1})):
    t = time.perf_counter()
    st = pipeline.trace_step(hw, graph, maps, mode=mode, **kw).cache
    out[mode] = {"wall_s": time.perf_counter() - t, "hit_rate": st.step_hit_rate(),
                 "bytes": st.total_bytes(), "granule": list(st.granule_bytes),
                 "accesses": st.simulated_accesses, "ops_simulated": int(st.simulated.sum()),
                 "ops": st.n_ops}
print(json.dumps(out))
"""


CHILD_SENS = r"""
import json, sys, time
from accelsim import pipeline
from accelsim.spec import load_hardware, load_workload
hw = load_hardware(sys.argv[1])
wl = load_workload(sys.argv[2])
graph = pipeline.prepare(wl).executed  # the executed graph, as accelsim.simulate runs it
maps = pipeline.map_step(hw, graph, wl.precision)
pipeline.trace_step(hw, graph, maps, mode="coalesced")  # compile, warm up
out = {}
for name, kw in (("default", {}), ("min_blocks=512", {"min_blocks": 512}),
                 ("no steady state", {"steady_state": False})):
    t = time.perf_counter()
    st = pipeline.trace_step(hw, graph, maps, mode="coalesced", **kw).cache
    out[name] = {"wall_s": time.perf_counter() - t, "granule": list(st.granule_bytes),
                 "hit_rate": st.step_hit_rate(), "bytes": st.total_bytes(),
                 "accesses": st.simulated_accesses}
print(json.dumps(out))
"""


def run_child(code: str, args: list[str], cache_dir: str,
              root: pathlib.Path = ROOT, extra_env: dict[str, str] | None = None
              ) -> tuple[dict, float]:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, PYTHONPATH=str(root), **(extra_env or {}))
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=root,
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def bench_headline(hw_name: str, wl: str, chips: int) -> None:
    hw = str(ROOT / "hwspecs" / f"{hw_name}.yaml")
    with tempfile.TemporaryDirectory(prefix="numba-cold-") as cache:
        cold, cold_wall = run_child(CHILD_STEP, [hw, wl, str(chips)], cache)
        warm, warm_wall = run_child(CHILD_STEP, [hw, wl, str(chips)], cache)
    rates = ", ".join(f"{k} {v:.3f}" for k, v in warm["hit_rate"].items())
    print(f"| {hw_name} | {pathlib.Path(wl).stem} | {warm['ops']} | {cold_wall:.1f} | "
          f"{warm_wall:.1f} | {max(cold['maxrss_mb'], warm['maxrss_mb']):.0f} | "
          f"{warm['mode']} | {warm['ops_simulated']} | {warm['simulated_accesses'] / 1e6:.0f} M "
          f"| {rates} | {warm['bytes'].get('HBM', 0) / 1e12:.2f} TB | "
          f"{warm['step_time_s']:.3f} s |")
    print("    warm phases (s): " + ", ".join(f"{k} {v:.2f}" for k, v in warm["phases"].items())
          + f"; import+build {warm['import_build_s']:.2f}")
    for s in warm["shortcuts"]:
        print(f"    shortcut: {s}")


def bench_reduced(cfg: tuple[int, int, int, int, int]) -> None:
    hw = str(ROOT / "hwspecs" / "bigcache.yaml")
    with tempfile.TemporaryDirectory(prefix="numba-") as cache:
        out, _ = run_child(CHILD_REDUCED, [hw, *map(str, cfg)], cache)
    ex, co = out["exact"], out["coalesced"]
    diff = ", ".join(f"{k} {100 * (co['hit_rate'][k] - v):+.2f}"
                     for k, v in ex["hit_rate"].items())
    rates = ", ".join(f"{k} {v:.3f}" for k, v in ex["hit_rate"].items())
    h, s, b, l2, sram = cfg
    print(f"| h={h} s={s} b={b}, L2 {l2} KiB, SRAM {sram} KiB | {ex['ops']} | "
          f"{ex['wall_s']:.2f} | {co['wall_s']:.3f} | {ex['wall_s'] / co['wall_s']:.1f}x | "
          f"{ex['accesses'] / co['accesses']:.1f}x | {co['granule']} | {co['ops_simulated']} | "
          f"{rates} | {diff} | {co['bytes']['HBM'] / ex['bytes']['HBM']:.3f} |")


def bench_sensitivity(hw_name: str, wl: str) -> None:
    """How much the frontier result moves with the shortcuts: blocks halved, steady state off."""
    with tempfile.TemporaryDirectory(prefix="numba-") as cache:
        out, _ = run_child(CHILD_SENS, [str(ROOT / "hwspecs" / f"{hw_name}.yaml"), wl], cache)
    for name, r in out.items():
        rates = ", ".join(f"{k} {v:.4f}" for k, v in r["hit_rate"].items())
        print(f"| {hw_name} | {name} | {r['granule'][0] // 1024} KiB | {r['wall_s']:.1f} | "
              f"{r['accesses'] / 1e6:.0f} M | {rates} | {r['bytes']['HBM'] / 1e12:.3f} TB |")


def bench_compare(baseline: pathlib.Path, repeat: int, chips: int,
                  designs: tuple[str, ...] = ("bigcache", "ppopp19_target"),
                  this_threads: tuple[str, ...] = ()) -> None:
    """Warm headline (bigcache and ppopp19_target x nmt_frontier) of this tree and of
    `baseline`, runs alternating so that both see the same machine load; best of `repeat`.
    Each entry of `this_threads` adds this tree once more with that `$ACCELSIM_THREADS`.
    Per run: wall s / CPU s of the child process / 1-minute load average before it."""
    wl = str(ROOT / "workloads" / "nmt_frontier.yaml")
    trees: dict[str, tuple[pathlib.Path, dict[str, str]]] = {
        "baseline": (baseline, {}), "this": (ROOT, {})}
    for n in this_threads:
        trees[f"this, ACCELSIM_THREADS={n}"] = (ROOT, {"ACCELSIM_THREADS": n})
    print("| hardware | tree | warm s / CPU s / load (each run) | best warm s | CPU s (best run) "
          "| trace s (best run) | peak RSS MB | step time | HBM bytes | ops simulated |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for hw_name in designs:
        hw = str(ROOT / "hwspecs" / f"{hw_name}.yaml")
        runs: dict[str, list[tuple[float, dict, float]]] = {k: [] for k in trees}
        with tempfile.TemporaryDirectory() as c0, tempfile.TemporaryDirectory() as c1:
            caches = {name: c0 if root == baseline else c1 for name, (root, _) in trees.items()}
            for name, (root, env) in trees.items():  # compile (cold) once per tree
                if name in ("baseline", "this"):
                    run_child(CHILD_STEP, [hw, wl, str(chips)], caches[name], root, env)
            for _ in range(repeat):
                for name, (root, env) in trees.items():
                    load = os.getloadavg()[0]
                    out, wall = run_child(CHILD_STEP, [hw, wl, str(chips)], caches[name], root,
                                          env)
                    runs[name].append((wall, out, load))
        best = {}
        for name in trees:
            wall, out, _ = min(runs[name], key=lambda r: r[0])
            best[name] = wall
            each = ", ".join(f"{w:.1f}/{o['cpu_s']:.1f}/{ld:.1f}" for w, o, ld in runs[name])
            print(f"| {hw_name} | {name} | {each} | {wall:.1f} | {out['cpu_s']:.1f} | "
                  f"{out['phases']['trace']:.1f} | "
                  f"{max(o['maxrss_mb'] for _, o, _ in runs[name]):.0f} | "
                  f"{out['step_time_s']:.4f} s | {out['bytes'].get('HBM', 0) / 1e12:.4f} TB | "
                  f"{out['ops_simulated']} of {out['ops']} |", flush=True)
        for name in trees:
            if name != "baseline":
                print(f"    {hw_name}: baseline / {name} = {best['baseline'] / best[name]:.2f}x")


def bench_rss(baseline: pathlib.Path | None, chips: int) -> None:
    """Peak RSS and wall time of one step of every shipped workload on ppopp19_target."""
    hw = str(ROOT / "hwspecs" / "ppopp19_target.yaml")
    trees = {"this": ROOT} if baseline is None else {"baseline": baseline, "this": ROOT}
    cols = " | ".join(f"{t} RSS MB | {t} wall s | {t} ops simulated | {t} step s | {t} HBM TB"
                      for t in trees)
    print(f"| workload | {cols} |")
    print("|---|" + "---|" * (5 * len(trees)))
    with tempfile.TemporaryDirectory() as c0, tempfile.TemporaryDirectory() as c1:
        caches = dict(zip(trees, (c0, c1), strict=False))
        for wl in sorted((ROOT / "workloads").glob("*.yaml")):
            cells = []
            for name, root in trees.items():
                out, wall = run_child(CHILD_STEP, [hw, str(wl), str(chips)], caches[name], root)
                cells.append(f"{out['maxrss_mb']:.0f} | {wall:.1f} | "
                             f"{out['ops_simulated']} of {out['ops']} | "
                             f"{out['step_time_s']:.6g} | "
                             f"{out['bytes'].get('HBM', 0) / 1e12:.6g}")
            print(f"| {wl.stem} | {' | '.join(cells)} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["headline", "reduced", "sensitivity", "compare", "rss"],
                    default=None)
    ap.add_argument("--chips", type=int, default=1)
    ap.add_argument("--baseline", type=pathlib.Path, default=None,
                    help="another checkout (e.g. main) for --only compare / rss")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--hw", nargs="+", default=["bigcache", "ppopp19_target"],
                    help="designs for --only compare")
    ap.add_argument("--this-threads", nargs="*", default=[],
                    help="--only compare: also run this tree with each $ACCELSIM_THREADS")
    args = ap.parse_args()
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu_model()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.only == "compare":
        if args.baseline is None:
            raise SystemExit("--only compare needs --baseline DIR")
        bench_compare(args.baseline.resolve(), args.repeat, args.chips, tuple(args.hw),
                      tuple(args.this_threads))
        return
    if args.only == "rss":
        bench_rss(args.baseline.resolve() if args.baseline else None, args.chips)
        return
    wl = str(ROOT / "workloads" / "nmt_frontier.yaml")
    if args.only in (None, "headline"):
        print("| hardware | workload | ops | cold s | warm s | peak RSS MB | mode | ops simulated "
              "| block accesses | hit rate | HBM bytes | step time |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for hw_name in ("bigcache", "ppopp19_target"):
            bench_headline(hw_name, wl, args.chips)
    if args.only in (None, "sensitivity"):
        print("| hardware | variant | block | cache sim s | block accesses | hit rate | HBM |")
        print("|---|---|---|---|---|---|---|")
        for hw_name in ("ppopp19_target", "bigcache"):
            bench_sensitivity(hw_name, wl)
    if args.only in (None, "reduced"):
        print("| reduced NMT | ops | exact s | coalesced s | speed-up | fewer accesses | "
              "blocks (B) | ops simulated | exact hit rate | coalesced - exact (pp) | "
              "HBM bytes ratio |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for cfg in ((384, 5, 32, 512, 8192), (256, 12, 16, 256, 2048),
                    (512, 8, 16, 1024, 16384)):
            bench_reduced(cfg)


if __name__ == "__main__":
    main()
