"""The names accelsim uses for one concept each: levels, resources, modes, policies, dtypes.

Specs (`hardware`, `workload`), the cache kernels' Python face (`cache`), the step
(`trace`, `timing`, `replay`) and the report all take their names from here, so a level,
policy or mode is spelled the same everywhere and a list cannot drift between modules.
Nothing here imports another accelsim module except `errors`.
"""

from __future__ import annotations

from accelsim.errors import AccelsimError

# --- resources and levels, as reports key them ------------------------------------------------
#: The off-chip memory level: the last row of every per-level table (bytes, counters) and a
#: possible `bound` of an op. Cache levels take their names from the hardware spec.
MEMORY = "HBM"
#: The compute units as a replayed resource (utilization, busy time) and as an op's `bound`.
COMPUTE = "compute"
#: The chip-to-chip links as a replayed resource (data-parallel all-reduce).
LINKS = "links"
#: What else can bound an op besides compute, a cache level and MEMORY (`timing.op_timing`).
LATENCY = "latency"
LAUNCH = "launch"
#: Names a cache level may not take: they would collide with these keys in reports.
RESERVED_LEVEL_NAMES = (MEMORY, COMPUTE, LINKS, LATENCY, LAUNCH)

# --- simulation modes -------------------------------------------------------------------------
#: How the step goes through the caches: ``exact`` (line-granular), ``coalesced`` (blocks,
#: steady-state reuse) or ``auto`` (exact when small enough). See docs/replay.md.
MODES = ("auto", "exact", "coalesced")
#: How a recurrent layer's weight gradient runs (workload `recurrent_execution`,
#: `accelsim.fusion.execute`): ``library`` as cuDNN (one GEMM over all timesteps) or
#: ``framework`` (one GEMM per timestep adding into the running sum).
RECURRENT_EXECUTIONS = ("library", "framework")

# --- cache level policies (hardware spec choices; `cache` maps them to kernel codes) ---------
REPLACEMENT_POLICIES = ("lru", "fifo", "mru", "random", "plru", "lfu")
WRITE_POLICIES = ("write_back", "write_through")
INCLUSION_POLICIES = ("inclusive", "non_inclusive")
#: A cache level with one instance per compute unit, or one instance all units share.
PRIVATE, SHARED = "private", 'shared'
SHARING_POLICIES = (PRIVATE, SHARED)
TOPOLOGIES = ("ring", "switch", "torus2d", "fully_connected", "two_level")

# --- dtypes -----------------------------------------------------------------------------------
#: Bytes per element of every dtype a tensor may have.
DTYPE_BYTES = {"fp64": 8, "fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1,
               "int32": 4}
#: Dtypes a workload may train in and a matrix pipe may multiply or accumulate in
#: (int32 is storage only: token ids and labels).
COMPUTE_DTYPES = ("fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "int8")


def dtype_bytes(dtype: str) -> int:
    """Bytes of one element of `dtype`; an unknown dtype is an error, never a guess."""
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise AccelsimError(f"dtype: expected one of {list(DTYPE_BYTES)}, got {dtype!r}") from None


__all__ = [
    "COMPUTE", "COMPUTE_DTYPES", "DTYPE_BYTES", "INCLUSION_POLICIES", "LATENCY", "LAUNCH", "LINKS",
    "MEMORY", "MODES", "RECURRENT_EXECUTIONS", "REPLACEMENT_POLICIES", "RESERVED_LEVEL_NAMES", "SHARING_POLICIES",
    "PRIVATE", "SHARED",
    "TOPOLOGIES", "WRITE_POLICIES", "dtype_bytes",
]
