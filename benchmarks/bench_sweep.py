"""Sweep throughput: word_lm_current on ppopp19_target over L2 capacity x HBM bandwidth x compute
efficiency, in process and on a Dask LocalCluster of 1 and 2 workers.

    python benchmarks/bench_sweep.py                     # 2 x 2 x 2 = 8 points per engine
    python benchmarks/bench_sweep.py --values 3          # 3 x 3 x 3 = 27 points per engine
    python benchmarks/bench_sweep.py --values 10 --engines dask2   # the 1,000-point sweep
    python benchmarks/bench_sweep.py --root /work/main   # the same grid on another checkout

Points that agree on everything the cache simulation reads (the L2, the units, the mappings)
share one cache simulation (`accelsim.reuse`); the "cache sims" column is how many ran.

Each engine runs the same grid from scratch (no store), in a fresh Python process, so process
start, numba cache loading and cluster start are inside the measured wall time, as a user sees
them. Prints Markdown rows for benchmarks/RESULTS.md, with the points per hour and the
extrapolated time of 1,000 points (points are independent, so time grows linearly with the
count once the workers are warm; the fixed start cost is stated apart).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import re
import resource
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]

# The first three of each axis are the earlier 8- and 27-point grids; --values 10 uses all.
CAPACITIES = ["6MiB", "24MiB", "96MiB", "2MiB", "4MiB", "8MiB", "12MiB", "16MiB", "32MiB",
              "48MiB"]
BANDWIDTHS = ["900GB/s", "1800GB/s", "450GB/s", "600GB/s", "750GB/s", "1050GB/s", "1200GB/s",
              "1350GB/s", "1500GB/s", "1650GB/s"]
EFFICIENCIES = ["0.86", "0.6", "1.0", "0.55", "0.65", "0.7", "0.75", "0.8", "0.9", "0.95"]

PROGRESS: list[str] = []

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import accelsim
from accelsim import dse
hw = accelsim.load_hardware(sys.argv[1]); wl = accelsim.load_workload(sys.argv[2])
settings = json.loads(sys.argv[3]); jobs = int(sys.argv[4])
finished = []
log = open(sys.argv[5], "a") if len(sys.argv) > 5 else None  # progress, for long runs
def on_point(p):
    finished.append(time.perf_counter() - t0)
    if log is not None:
        log.write(f"{len(finished)} {finished[-1]:.1f}\n"); log.flush()
result = dse.sweep(hw, wl, settings, jobs=jobs, on_point=on_point)
print(json.dumps({"wall_s": time.perf_counter() - t0, "finished_s": finished,
                  "points": len(result), "notes": list(result.notes),
                  "step_times_s": [p.summary["step_time_s"] for p in result]}))
"""


def run(settings: dict, jobs: int, root: pathlib.Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT / "hwspecs/ppopp19_target.yaml"),
                          str(ROOT / "workloads/word_lm_current.yaml"), json.dumps(settings),
                          str(jobs), *PROGRESS], env=env, capture_output=True, text=True, check=True,
                         timeout=3 * 3600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cache_sims(notes: list[str]) -> str:
    """How many cache simulations ran, from the sweep's reuse note ("-": not reported)."""
    for note in notes:
        m = re.search(r"reuse: cache simulation run (\d+) times", note)
        if m:
            return m.group(1)
    return "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--values", type=int, default=2, help="values per axis (1 to 10)")
    ap.add_argument("--engines", default="inprocess,dask1,dask2")
    ap.add_argument("--root", default=str(ROOT), help="accelsim checkout to measure")
    ap.add_argument("--progress", metavar="FILE", help="append 'points seconds' per finished point")
    args = ap.parse_args()
    if args.progress:
        PROGRESS.append(args.progress)
    root = pathlib.Path(args.root)
    n = args.values
    settings = {"caches[0].capacity": CAPACITIES[:n], "memory.bandwidth": BANDWIDTHS[:n],
                "calibration.compute_efficiency": EFFICIENCIES[:n]}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f} at start")
    print(f"code: {root}")
    print("| engine | points | cache sims | wall s | CPU s (all processes) | first point s | "
          "steady s/point | points/hour | 1,000 points (extrapolated) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    same = None
    notes: dict[str, list[str]] = {}
    for engine in args.engines.split(","):
        # dask1: a 1-worker LocalCluster passed as client= (jobs=1 would run in process).
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        res = run_one_worker(settings, root) if engine == "dask1" else run(
            settings, {"inprocess": 1, "dask2": 2}[engine], root)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        fin = sorted(res["finished_s"])
        steady = (fin[-1] - fin[0]) / max(1, len(fin) - 1)
        per_hour = 3600 / steady if steady > 0 else float("inf")
        thousand = fin[0] + 999 * steady
        print(f"| {engine} | {res['points']} | {_cache_sims(res['notes'])} | "
              f"{res['wall_s']:.1f} | {cpu:.1f} | {fin[0]:.1f} | "
              f"{steady:.2f} | {per_hour:.0f} | {thousand / 60:.1f} min |", flush=True)
        if same is None:
            same = res["step_times_s"]
        assert res["step_times_s"] == same, "engines disagree"
        notes[engine] = [n for n in res["notes"] if n.startswith(("reuse:", "engine:"))]
    print(f"load average {os.getloadavg()[0]:.2f} at end")
    for engine, lines in notes.items():
        print(f"{engine}: " + " | ".join(lines))


CHILD_ONE_WORKER = CHILD.replace(
    "result = dse.sweep(hw, wl, settings, jobs=jobs, on_point=on_point)",
    "import logging\nfrom distributed import LocalCluster, Client\n"
    "cluster = LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None, "
    "silence_logs=logging.ERROR)\nclient = Client(cluster)\n"
    "result = dse.sweep(hw, wl, settings, client=client, on_point=on_point)")


def run_one_worker(settings: dict, root: pathlib.Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", CHILD_ONE_WORKER,
                          str(ROOT / "hwspecs/ppopp19_target.yaml"),
                          str(ROOT / "workloads/word_lm_current.yaml"), json.dumps(settings), "1",
                          *PROGRESS],
                         env=env, capture_output=True, text=True, check=True, timeout=3 * 3600)
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
