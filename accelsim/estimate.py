"""How much work a simulation will be, known before any of it is done, and the limits on it.

A spec can be valid field by field and still ask for hours of simulation or more memory than
the machine has: an NMT with sequence length 1e6 is a graph of 1e8 ops, a hidden size of 1e6
makes address streams of petabytes, and `--mode exact` on a 64 GiB SRAM needs gigabytes of
line state. `estimate_work` bounds these numbers cheaply, in the flow after the graph and
before mapping is simulated:

1. graph ops, from the workload alone by a per-family formula (an upper bound, tested against
   the built graphs), so that a graph too large to build is refused without building it;
2. tensor bytes (the step's address space), from the built graph;
3. cache accesses per mode: line accesses of the exact mode, block accesses of the coalesced
   mode, and the cache state either needs, from the mapped graph (mapping is cheap and numba
   free, so `accelsim check` can run this too). Coalesced mode reuses settled timesteps; a
   step whose plain count is past the limit is recounted that way (`steady_stream_bytes`,
   which loads the trace module and its numba kernels only then).

`check_work` raises `WorkTooLarge` naming the estimate, the limit and the option that raises
it. Limits are a `WorkLimits` (API keyword `limits=`; CLI `--max-graph-ops`, `--allow-large`).
The exact-mode limits are the cache model's own (`trace.EXACT_MAX_*`; tested equal), which no
option lifts: beyond them the coalesced mode is the way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs

from accelsim.coarsening import step_block_bytes
from accelsim.collectives import topology_violation
from accelsim.errors import AccelsimError, LocatedError, SpecTypeError, WorkTooLarge
from accelsim.graph import OpGraph
from accelsim.hardware import CacheLevelSpec, HardwareSpec
from accelsim.units import format_bytes
from accelsim.vocabulary import MODES, PRIVATE, dtype_bytes
from accelsim.workload import WorkloadSpec

# The cache model's thresholds (accelsim.trace; equal values are tested, so that this module
# stays free of numba and `accelsim check` stays fast).
AUTO_EXACT_MAX_LINE_ACCESSES = 30_000_000
AUTO_EXACT_MAX_STATE_BYTES = 512 * 2**20
EXACT_MAX_STATE_BYTES = 2 * 2**30
EXACT_MAX_LINE_ACCESSES = 1e9

#: Python memory per op of a built graph (op, its tensors, mapping and timing records),
#: measured on the shipped workloads (speech_frontier: ~49k ops) and rounded up.
GRAPH_BYTES_PER_OP = 8192


@attrs.frozen(kw_only=True)
class WorkLimits:
    """What a simulation may cost before it is refused (see the module doc)."""

    #: Ops of the training-step graph. 1e6 is 20x the largest shipped workload (speech,
    #: 49k ops) and takes about a minute to build, map and replay.
    max_graph_ops: int = 1_000_000
    #: Bytes of all tensors of the step (the address space the trace lays out; int64 addresses).
    max_tensor_bytes: int = 2**50
    #: Block (coalesced) or line (exact) accesses the cache model simulates, ~30 s of kernel
    #: per 1e9: 1e10 is a few minutes. Coalesced mode counts the accesses of repeated
    #: timesteps it reuses only once they settle (`steady_stream_bytes`).
    max_cache_accesses: float = 1e10

    def __attrs_post_init__(self) -> None:
        for f in attrs.fields(type(self)):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise AccelsimError(f"limits.{f.name}: expected a positive number, got {value!r}")


#: `--allow-large`: everything a 64-bit address space and a patient user allow.
LARGE_LIMITS = WorkLimits(max_graph_ops=50_000_000, max_tensor_bytes=2**60,
                          max_cache_accesses=1e13)


@attrs.frozen(kw_only=True)
class WorkEstimate:
    """Upper-bound estimates of one step's simulation work (None: not computed, e.g. no hw)."""

    graph_ops_bound: int
    graph_ops: int | None = None
    graph_memory_bytes: float | None = None
    tensor_bytes: int | None = None
    stream_bytes: float | None = None
    mode: str | None = None
    exact_line_accesses: float | None = None
    exact_state_bytes: int | None = None
    coalesced_block_accesses: float | None = None
    coalesced_state_bytes: int | None = None

    def text(self) -> str:
        """One line for `accelsim check`."""
        parts = [f"{self.graph_ops or self.graph_ops_bound:,} graph ops"]
        if self.tensor_bytes is not None:
            parts.append(f"{format_bytes(self.tensor_bytes)} of tensors")
        if self.mode is not None:
            acc = (self.exact_line_accesses if self.mode == "exact"
                   else self.coalesced_block_accesses)
            state = self.exact_state_bytes if self.mode == "exact" else self.coalesced_state_bytes
            parts.append(f"{self.mode} mode: ~{acc:.3g} cache accesses, "
                         f"{format_bytes(state or 0)} of cache state")
        return ", ".join(parts)


# --- graph ops from the workload alone ----------------------------------------------------
def _speech_ops(c: Any) -> int:
    steps, layer_steps = c.encoder_steps, 0
    for layer in range(c.encoder_layers):
        if layer:
            steps = max(1, steps // 2)
        if steps == 1:  # every later layer runs one step too
            layer_steps += c.encoder_layers - layer
            break
        layer_steps += steps
    return 256 + 80 * layer_steps + 140 * c.output_steps


#: Upper bounds on the ops of each family's graph (forward, backward, update), in the
#: structural counts only (widths do not add ops). Fitted to built graphs with a margin and
#: tested on every shipped workload and on random small configs (tests/test_estimate.py).
OP_COUNT_BOUNDS: dict[str, Callable[[Any], int]] = {
    "char_lm": lambda c: 64 + 32 * c.sequence_length * c.recurrence_depth + 8 * c.sequence_length,
    "nmt": lambda c: 64 + 80 * c.sequence_length + 72 * (c.target_length or c.sequence_length),
    "resnet": lambda c: 64 + 14 * c.depth,
    "speech": _speech_ops,
    "transformer": lambda c: 64 + 72 * c.layers,
    "word_lm": lambda c: 64 + 36 * c.layers * c.sequence_length + 32 * c.layers
    + 8 * c.sequence_length,
    # LSTMP (issue 8): a word LM whose cells add a recurrent projection (~38 ops a layer-step)
    "word_lm_lstmp": lambda c: 64 + 40 * c.layers * c.sequence_length + 32 * c.layers
    + 8 * c.sequence_length,
}


def graph_ops_bound(wl: WorkloadSpec) -> int:
    """An upper bound on the ops of `wl`'s step graph, without building it."""
    from accelsim.models import family_of

    family = family_of(wl.model).name
    bound = OP_COUNT_BOUNDS.get(family)
    if bound is None:  # a new family without a formula: no bound before building
        return 0
    return int(bound(wl.model))


# --- cache work of a mapped graph -----------------------------------------------------------
def op_stream_bytes(graph: OpGraph, mappings: list[Any], dtype: str) -> list[float]:
    """Bytes each op's access stream carries (tile re-reads included), as the trace counts them.

    The same numbers as `trace.estimated_bytes` (tested equal), kept here so that estimating
    does not load the numba kernels.
    """
    out = []
    for op, mp in zip(graph.ops, mappings, strict=True):
        if op.kind == "gemm" and hasattr(mp, "tile_m") and len(op.inputs) >= 2:
            e = dtype_bytes(graph.tensors[op.inputs[0]].dtype)
            tm, tn = max(1, min(int(mp.tile_m), op.m)), max(1, min(int(mp.tile_n), op.n))
            out.append(float(op.batch_count * e * (op.m * op.k * math.ceil(op.n / tn)
                                             + op.k * op.n * math.ceil(op.m / tm) + op.m * op.n)))
        else:
            out.append(float(max(0, sum(graph.tensors[t].nbytes
                                        for t in (*op.inputs, *op.outputs)) + op.extra_bytes)))
    return out


def stream_bytes(graph: OpGraph, mappings: list[Any], dtype: str) -> float:
    """Bytes of the whole step's access streams (`op_stream_bytes` summed)."""
    return float(sum(op_stream_bytes(graph, mappings, dtype)))


def steady_stream_bytes(graph: OpGraph, per_op: list[float]) -> float:
    """Stream bytes the coalesced mode simulates: repeated timesteps past the first few are
    reused, not simulated (as `trace.step_traffic` assumes when sizing its blocks).

    Finding the repeats needs `trace.periodic_regions`, which loads the numba kernels, so it
    is called only for steps whose plain estimate is beyond a limit.
    """
    from accelsim.trace_steady import op_keys, periodic_regions

    sim = list(per_op)
    for region in periodic_regions(op_keys(graph)):
        s, p, reps = region.start, region.period, region.repeats
        sim[s + 4 * p:s + (reps - 1) * p] = [0.0] * max(0, (reps - 5) * p)
    return float(sum(sim))


def state_bytes(levels: tuple[CacheLevelSpec, ...], n_units: int, factor: int = 1) -> int:
    """Bytes of cache state (8 per line or block) of the hierarchy, with blocks `factor` lines."""
    return sum(8 * (lv.lines // factor) * (n_units if lv.sharing == PRIVATE else 1)
               for lv in levels)


def coalesced_factor(levels: tuple[CacheLevelSpec, ...], stream: float, n_units: int) -> int:
    """Lines per block of the coalesced mode (`coarsening.step_block_bytes`)."""
    return step_block_bytes(levels, stream, n_units=n_units)[0] // levels[0].line_bytes


# --- the estimate and the check -------------------------------------------------------------
def estimate_work(hw: HardwareSpec | None, wl: WorkloadSpec, *, mode: str = "auto",
                  limits: WorkLimits | None = None, graph: OpGraph | None = None
                  ) -> WorkEstimate:
    """Estimate `wl` (on `hw`, when given) step by step, refusing as soon as a limit is passed.

    Raises `WorkTooLarge` beyond `limits`; the graph is built only when its bound fits.
    """
    return _estimate(hw, wl, mode, limits or WorkLimits(), graph)[0]


def check_arguments(hw: Any, wl: Any, *, chips: Any = 1, mode: Any = "auto",
                    limits: Any = None, graph: Any = None) -> OpGraph:
    """Check a simulation's arguments and its estimated work; the step graph, built once.

    Every public entry point calls this first, so a wrong argument is an `AccelsimError`
    (`SpecTypeError` for a wrong type) with the CLI's wording, never an AttributeError later.
    """
    check_specs(hw, wl)
    check_chips(hw, chips)
    check_offload(hw, wl)
    check_mode(mode)
    if limits is not None and not isinstance(limits, WorkLimits):
        raise SpecTypeError(f"limits: expected an accelsim.estimate.WorkLimits, got "
                            f"{type(limits).__name__}")
    if graph is not None and not isinstance(graph, OpGraph):
        raise SpecTypeError(f"graph: expected an OpGraph, got {type(graph).__name__}")
    return _estimate(hw, wl, mode, limits or WorkLimits(), graph)[1]


def check_specs(hw: Any, wl: Any) -> None:
    """`hw` a HardwareSpec and `wl` a WorkloadSpec (naming a swap when they are swapped)."""
    if isinstance(hw, WorkloadSpec) and isinstance(wl, HardwareSpec):
        raise SpecTypeError("hw, wl: expected a HardwareSpec then a WorkloadSpec, got them "
                            "swapped (simulate(hw, wl))")
    if not isinstance(hw, HardwareSpec):
        raise SpecTypeError(f"hw: expected a HardwareSpec (accelsim.load_hardware(path)), got "
                            f"{_what(hw)}")
    if not isinstance(wl, WorkloadSpec):
        raise SpecTypeError(f"wl: expected a WorkloadSpec (accelsim.load_workload(path)), got "
                            f"{_what(wl)}")


def _what(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, str):
        return f"the string {value!r} (load the file first)"
    return type(value).__name__


def _estimate(hw: HardwareSpec | None, wl: WorkloadSpec, mode: str, limits: WorkLimits,
              graph: OpGraph | None) -> tuple[WorkEstimate, OpGraph]:
    bound = graph_ops_bound(wl)
    ops_option = "--max-graph-ops N or --allow-large"
    if bound > limits.max_graph_ops:
        raise _refusal(wl, hw, "model", f"a step graph of at most {limits.max_graph_ops:,} ops",
                       f"about {bound:,} (an upper bound from the model's structure)", ops_option)
    from accelsim.fusion import fuse_gemm_accumulate
    from accelsim.models import build_graph

    graph = graph if graph is not None else build_graph(wl)
    n_ops = len(graph.ops)
    if n_ops > limits.max_graph_ops:
        raise _refusal(wl, hw, "model", f"a step graph of at most {limits.max_graph_ops:,} ops",
                       f"{n_ops:,}", ops_option)
    tensor_bytes = sum(int(t.nbytes) for t in graph.tensors)
    if tensor_bytes > limits.max_tensor_bytes:
        raise _refusal(wl, hw, "model", f"at most {_bytes(limits.max_tensor_bytes)} of tensors "
                       "in one step", _bytes(tensor_bytes), "--allow-large")
    est = WorkEstimate(graph_ops_bound=bound, graph_ops=n_ops,
                       graph_memory_bytes=float(n_ops * GRAPH_BYTES_PER_OP),
                       tensor_bytes=tensor_bytes)
    if hw is None:
        return est, graph
    from accelsim.reuse import run_exact
    from accelsim.timing import map_graph

    executed, _ = run_exact(fuse_gemm_accumulate, graph)  # once per graph in a sweep worker
    per_op = op_stream_bytes(executed, map_graph(hw, executed, wl.precision), wl.precision)
    stream = float(sum(per_op))
    levels, n_units = hw.caches, hw.compute.units
    lines = stream / levels[0].line_bytes
    exact_state = state_bytes(levels, n_units)
    factor = coalesced_factor(levels, stream, n_units)
    blocks = stream / (levels[0].line_bytes * factor)
    chosen = mode
    if mode == "auto":
        chosen = ("exact" if lines <= AUTO_EXACT_MAX_LINE_ACCESSES
                  and exact_state <= AUTO_EXACT_MAX_STATE_BYTES else "coalesced")
    est = attrs.evolve(est, stream_bytes=stream, mode=chosen, exact_line_accesses=lines,
                       exact_state_bytes=exact_state, coalesced_block_accesses=blocks,
                       coalesced_state_bytes=state_bytes(levels, n_units, factor))
    coalesce = "--mode coalesced or --mode auto"
    if chosen == "exact":
        if lines > EXACT_MAX_LINE_ACCESSES:
            raise _refusal(wl, hw, "model", f"at most {EXACT_MAX_LINE_ACCESSES:.3g} line "
                           "accesses in --mode exact (the cache model's own limit)",
                           f"~{lines:.3g}", coalesce)
        if exact_state > EXACT_MAX_STATE_BYTES:
            raise _refusal(wl, hw, "caches", f"at most {EXACT_MAX_STATE_BYTES / 2**30:.3g} GiB "
                           "of line state in --mode exact (the cache model's own limit)",
                           f"{exact_state / 2**30:.3g} GiB "
                           f"({', '.join(lv.name for lv in levels)})", coalesce)
    if chosen == "coalesced" and blocks > limits.max_cache_accesses:
        # repeated timesteps are simulated a few times, not all: count what will be
        simulated = steady_stream_bytes(executed, per_op)
        factor = coalesced_factor(levels, simulated, n_units)
        blocks = simulated / (levels[0].line_bytes * factor)
        est = attrs.evolve(est, coalesced_block_accesses=blocks,
                           coalesced_state_bytes=state_bytes(levels, n_units, factor))
    accesses = lines if chosen == "exact" else blocks
    if accesses > limits.max_cache_accesses:
        what = "line" if chosen == "exact" else "block"
        raise _refusal(wl, hw, "model", f"at most {limits.max_cache_accesses:.3g} {what} "
                       f"accesses of the cache model in {chosen} mode", f"~{accesses:.3g}",
                       "--allow-large")
    return est, graph


def _bytes(n: float) -> str:
    return f"{n / 2**50:.4g} PiB" if n >= 2**40 else format_bytes(n)


def _refusal(wl: WorkloadSpec, hw: HardwareSpec | None, key: str, expected: str, got: str,
             option: str) -> WorkTooLarge:
    """The error for a pair beyond a limit: what it would take, the limit, how to go ahead."""
    subject = f"{wl.name} on {hw.name}" if hw is not None else wl.name
    api = "" if option.startswith("--mode") else ", or limits=WorkLimits(...) in Python"
    return WorkTooLarge(subject, "hardware" if key == "caches" else "workload", key, expected,
                        f"{got} for {subject} (refused before simulating; to go ahead use "
                        f"{option}{api})")


def check_chips(hw: HardwareSpec, chips: Any) -> int:  # noqa: D103
    """`chips` as a positive int, with links to reduce gradients over when there are several."""
    if isinstance(chips, bool) or not isinstance(chips, int) or chips < 1:
        raise AccelsimError(f"chips: expected a positive integer, got {chips!r}")
    if chips > 1 and hw.interconnect.links < 1:
        raise AccelsimError(f"{hw.name}: interconnect.links: expected at least 1 link to "
                            f"all-reduce gradients over {chips} chips, got 0")
    problem = topology_violation(hw, chips)  # a run-time rule of the interconnect, located
    if problem is not None:
        raise LocatedError(hw.name, "hardware", problem.path(), problem.expected, problem.got)
    return chips


def check_offload(hw: HardwareSpec, wl: WorkloadSpec) -> None:
    """A workload whose `parallel:` plan offloads tensors needs a chip with a host link."""
    plan = wl.parallel
    if plan is not None and plan.offload and hw.interconnect.host_bandwidth_bytes_per_s is None:
        raise LocatedError(hw.name, "hardware", "interconnect.host_bandwidth",
                           f"a bandwidth for {wl.name}'s plan, which offloads "
                           f"{list(plan.offload)}", "nothing")


def check_mode(mode: Any) -> str:
    """`mode` one of MODES."""
    if not isinstance(mode, str) or mode not in MODES:
        raise AccelsimError(f"mode: expected one of {list(MODES)}, got {mode!r}")
    return mode
