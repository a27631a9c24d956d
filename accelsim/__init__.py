"""accelsim: architectural simulator for deep-learning accelerators.

    hw = accelsim.load_hardware("hwspecs/bigcache.yaml")
    wl = accelsim.load_workload("workloads/nmt_frontier.yaml")
    report = accelsim.simulate(hw, wl)

Importing accelsim loads neither numba nor simpy; they load on the first simulation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from accelsim.errors import AccelsimError, SpecError
from accelsim.hardware import HardwareSpec
from accelsim.plan import ParallelPlan
from accelsim.report import Comparison, OpResult, Report, Summary
from accelsim.spec import load_hardware, load_workload
from accelsim.workload import WorkloadSpec

if TYPE_CHECKING:
    from accelsim.graph import OpGraph

__all__ = ["AccelsimError", "Comparison", "HardwareSpec", "OpResult", "ParallelPlan", "Report", "SpecError", "Summary",
           "WorkloadSpec", "build_graph", "load_hardware", "load_workload", "simulate"]
__version__ = "0.1.0"


def simulate(hw: HardwareSpec, wl: WorkloadSpec, *, chips: int = 1, mode: str = "auto",
             graph: OpGraph | None = None, plan: ParallelPlan | str | None = None,
             force: bool = False) -> Report:
    """Replay one training step of `wl` on `chips` copies of `hw`, split by `plan`
    (default: data parallel; "dp=512,pp=4,tp=1" or a `ParallelPlan`); a plan that does not
    fit in memory is reported, not timed, unless `force` (`graph`: the step's algorithmic
    graph when already built)."""
    from accelsim.api import simulate as _simulate

    return _simulate(hw, wl, chips=chips, mode=mode, graph=graph, plan=plan, force=force)


def build_graph(wl: WorkloadSpec) -> OpGraph:
    """The op graph of one training step (forward, backward, update) of `wl`."""
    from accelsim.models import build_graph as _build

    return _build(wl)
