"""Frozen descriptions of an accelerator: compute, on-chip caches, HBM, interconnect, calibration.

Quantities are stored in base SI units (bytes, bytes/s, Hz, s, FLOP/s); names carry the unit.
These classes know nothing of YAML (`spec` loads them) nor of simulation (`mapping`, `cache`,
`replay` read them).
"""

from __future__ import annotations

import attrs

from accelsim.schema import Violation, check_rules, field, rule
from accelsim.units import DTYPE_BYTES

DTYPES = tuple(DTYPE_BYTES)
REPLACEMENT_POLICIES = ("lru", "fifo", "random", "plru", "lfu")
WRITE_POLICIES = ("write_back", "write_through")
INCLUSION = ("inclusive", "non_inclusive")
SHARING = ("private", "shared")
TOPOLOGIES = ("ring", "switch", "torus2d", "fully_connected")
#: Names the reports use for things that are not cache levels (compared case-insensitively).
RESERVED_LEVEL_NAMES = ("hbm", "memory", "compute", "links")

# Physical ceilings of the inputs (docs/spec-format.md, "Limits"): far beyond any chip, yet low
# enough that products of them stay below 2**63 and sums of times stay finite.
MAX_RATE = 1e21            # FLOP/s of a chip, bytes/s of a level (a zetta-rate)
MIN_RATE = 1.0             # 1 FLOP/s, 1 B/s, 1 Hz: slower is no chip, and times stay finite
MIN_EFFICIENCY = 1e-3      # an achievable fraction of peak below 0.1 % is a broken calibration
MAX_CLOCK_HZ = 1e12        # 1 THz
MAX_LATENCY_S = 1.0        # a load, a message or a kernel launch taking a second is not a chip
MAX_UNITS = 2**20          # compute units, channels, links
MAX_CACHE_BYTES = 2**50    # 1 PiB of SRAM per level instance
MAX_MEMORY_BYTES = 2**60   # 1 EiB of memory per chip


@attrs.frozen
class MatrixPipe:
    """Dense matrix-multiply throughput for one input dtype (e.g. fp32 FMA pipes, fp16 tensor cores).

    Give either the chip's peak FLOP/s or the MACs per cycle per compute unit (peak is then
    2 * macs * units * clock).
    """

    peak_flop_rate: float | None = field(
        unit="flop_rate", default=None, positive=True, minimum=MIN_RATE,
        maximum=MAX_RATE,
        doc="peak dense FLOP/s of the whole chip for this dtype")
    macs_per_cycle_per_unit: int | None = field(
        default=None, minimum=1, maximum=2**20,
            doc="multiply-accumulates per cycle per compute unit")
    accumulate: str = field(default="fp32", choices=DTYPES, doc="accumulation dtype")
    min_tile: int = field(default=1, minimum=1, maximum=2**16,
                          doc="granule of M, N and K the pipe computes in (e.g. 16 for an MMA)")

    def __attrs_post_init__(self) -> None:
        check_rules(self)

    @rule
    def _one_rate(peak_flop_rate: float | None,
                  macs_per_cycle_per_unit: int | None) -> Violation | None:
        """A pipe's peak comes from exactly one source."""
        if (peak_flop_rate is None) == (macs_per_cycle_per_unit is None):
            return Violation("peak_flop_rate",
                             "exactly one of peak_flop_rate and macs_per_cycle_per_unit",
                             "both" if peak_flop_rate is not None else "neither")
        return None


@attrs.frozen
class ComputeSpec:
    """Compute units (SMs, cores): their count, clock, matrix pipes and local (tile) storage."""

    units: int = field(minimum=1, maximum=MAX_UNITS, doc="number of compute units (SMs, cores)")
    clock_hz: float = field(unit="frequency", positive=True, minimum=MIN_RATE,
                            maximum=MAX_CLOCK_HZ,
                            doc="sustained clock of the compute units")
    matrix: dict[str, MatrixPipe] = field(
        keys=DTYPES, doc="matrix throughput per input dtype, e.g. {fp32: ..., fp16: ...}")
    vector_flop_rate: float = field(
        unit="flop_rate", positive=True, minimum=MIN_RATE,
        maximum=MAX_RATE,
        doc="peak elementwise (vector) FLOP/s of the whole chip")
    local_memory_bytes: int = field(
        unit="bytes", maximum=MAX_CACHE_BYTES,
        doc="scratchpad / shared memory per unit that holds GEMM tiles")
    register_file_bytes: int = field(
        unit="bytes", default=0, maximum=MAX_CACHE_BYTES,
        doc="register file per unit (0: not modelled)")
    local_memory_bandwidth_bytes_per_cycle: float = field(
        default=0.0, minimum=0.0, maximum=2**30,
        doc="bytes per cycle one unit's local memory delivers to its pipes; small GEMM tiles "
            "re-read operands from it often enough to be limited by it (0: not modelled)")

    def __attrs_post_init__(self) -> None:
        check_rules(self)

    @rule
    def _local_bandwidth_off_or_real(
            local_memory_bandwidth_bytes_per_cycle: float) -> Violation | None:
        """0 turns the local-memory limit off; otherwise times divide by it."""
        value = local_memory_bandwidth_bytes_per_cycle
        if 0 < value < 1:
            return Violation("local_memory_bandwidth_bytes_per_cycle",
                             "0 (not modelled) or at least 1 byte per cycle", f"{value:g}")
        return None

    @rule
    def _some_dtype(matrix: dict[str, MatrixPipe]) -> Violation | None:
        """A chip multiplies matrices in at least one dtype."""
        if not matrix:
            return Violation("matrix", f"at least one dtype of {list(DTYPES)}", "none")
        return None

    def peak_flop_rate(self, dtype: str) -> float:
        """Peak matrix FLOP/s of the chip for `dtype` (falls back to fp32 when not listed)."""
        pipe = self.matrix.get(dtype) or self.matrix.get("fp32") or next(iter(self.matrix.values()))
        if pipe.peak_flop_rate is not None:
            return pipe.peak_flop_rate
        assert pipe.macs_per_cycle_per_unit is not None
        return 2.0 * pipe.macs_per_cycle_per_unit * self.units * self.clock_hz

    def pipe(self, dtype: str) -> MatrixPipe:
        return self.matrix.get(dtype) or self.matrix.get("fp32") or next(iter(self.matrix.values()))


@attrs.frozen
class CacheLevelSpec:
    """One level of the on-chip SRAM hierarchy (level 0 is nearest the compute units)."""

    name: str = field(doc="level name used in reports, e.g. L1, L2")
    capacity_bytes: int = field(unit="bytes", minimum=1, maximum=MAX_CACHE_BYTES,
                                doc="capacity of one instance")
    line_bytes: int = field(unit="bytes", default=128, minimum=1, maximum=MAX_CACHE_BYTES,
                            doc="line size (power of two)")
    ways: int = field(default=16, minimum=0, maximum=2**20,
                      doc="associativity; 0 means fully associative")
    replacement: str = field(default="lru", choices=REPLACEMENT_POLICIES, doc="replacement policy")
    write_policy: str = field(default="write_back", choices=WRITE_POLICIES, doc="write policy")
    write_allocate: bool = field(default=True, doc="allocate a line on a write miss")
    inclusion: str = field(default="non_inclusive", choices=INCLUSION,
                           doc="inclusive of the levels above, or not")
    sharing: str = field(default="shared", choices=SHARING,
                         doc="private (one instance per compute unit) or shared by all units")
    bandwidth_bytes_per_s: float = field(
        unit="bandwidth", positive=True, minimum=MIN_RATE,
        maximum=MAX_RATE,
        doc="total bandwidth this level serves (summed over instances)")
    latency_s: float = field(unit="time", default=0.0, maximum=MAX_LATENCY_S,
                             doc="load-to-use latency")

    def __attrs_post_init__(self) -> None:
        check_rules(self)

    @rule
    def _not_a_reserved_name(name: str) -> Violation | None:
        """Reports key levels, memory, compute and links in one namespace."""
        if name.strip().lower() in RESERVED_LEVEL_NAMES or not name.strip():
            return Violation("name", "a level name other than "
                             f"{', '.join(RESERVED_LEVEL_NAMES)} (any case) and not blank",
                             repr(name))
        return None

    @rule
    def _plru_ways_power_of_two(replacement: str, capacity_bytes: int, line_bytes: int,
                                ways: int) -> Violation | None:
        """Tree pseudo-LRU halves each set down to one way, so a set has 2**k ways."""
        effective = ways or capacity_bytes // max(1, line_bytes)
        if replacement == "plru" and effective & (effective - 1):
            what = f"{effective} (fully associative: every line)" if not ways else str(ways)
            return Violation("ways", "a power of two with replacement plru", what)
        return None

    @rule
    def _line_power_of_two(line_bytes: int) -> Violation | None:
        """Set indexing takes the low address bits, so lines are powers of two."""
        if line_bytes & (line_bytes - 1):
            return Violation("line_bytes", "a power of two", str(line_bytes))
        return None

    @rule
    def _at_least_one_line(capacity_bytes: int, line_bytes: int) -> Violation | None:
        """A cache holds at least one line."""
        if capacity_bytes < line_bytes:
            return Violation("capacity_bytes", f"at least one line ({line_bytes} B)",
                             f"{capacity_bytes} B")
        return None

    @rule
    def _ways_divide_lines(capacity_bytes: int, line_bytes: int, ways: int) -> Violation | None:
        """Lines split evenly into sets of `ways` lines (0 ways: fully associative)."""
        lines = capacity_bytes // line_bytes
        power_of_two = not line_bytes & (line_bytes - 1)
        if power_of_two and lines >= 1 and ways and lines % ways:
            return Violation("ways", f"a divisor of the {lines} lines (capacity / line)",
                             str(ways))
        return None

    @property
    def lines(self) -> int:
        return self.capacity_bytes // self.line_bytes


@attrs.frozen
class MemorySpec:
    """Off-chip memory (HBM): capacity, bandwidth, latency, channels."""

    capacity_bytes: int = field(unit="bytes", minimum=1, maximum=MAX_MEMORY_BYTES,
                                doc="memory capacity per chip")
    bandwidth_bytes_per_s: float = field(unit="bandwidth", positive=True, minimum=MIN_RATE,
        maximum=MAX_RATE,
                                         doc="peak memory bandwidth")
    latency_s: float = field(unit="time", default=0.0, maximum=MAX_LATENCY_S, doc="load latency")
    channels: int = field(default=1, minimum=1, maximum=MAX_UNITS, doc="independent channels")


@attrs.frozen
class InterconnectSpec:
    """Chip-to-chip links used for gradient all-reduce in data-parallel training."""

    links: int = field(default=1, minimum=0, maximum=MAX_UNITS,
                       doc="links per chip (0: a single chip; --chips > 1 needs links)")
    link_bandwidth_bytes_per_s: float = field(
        unit="bandwidth", positive=True, minimum=MIN_RATE,
        maximum=MAX_RATE,
        doc="bandwidth of one link, one direction")
    latency_s: float = field(unit="time", default=0.0, maximum=MAX_LATENCY_S,
                             doc="per-message latency")
    topology: str = field(default="ring", choices=TOPOLOGIES, doc="how chips are connected")

    @property
    def bandwidth_bytes_per_s(self) -> float:
        return self.links * self.link_bandwidth_bytes_per_s


@attrs.frozen
class Calibration:
    """Achievable fractions of peak and fixed overheads: the knobs that turn peaks into times."""

    compute_efficiency: float = field(
        default=1.0, positive=True, minimum=MIN_EFFICIENCY, maximum=1.0,
        doc="achievable fraction of peak matrix FLOP/s for a well-shaped kernel")
    vector_efficiency: float = field(
        default=1.0, positive=True, minimum=MIN_EFFICIENCY, maximum=1.0,
            doc="achievable fraction of peak vector FLOP/s")
    bandwidth_efficiency: float = field(
        default=1.0, positive=True, minimum=MIN_EFFICIENCY, maximum=1.0,
        doc="achievable fraction of peak memory bandwidth")
    cache_bandwidth_efficiency: float = field(
        default=1.0, positive=True, minimum=MIN_EFFICIENCY, maximum=1.0,
        doc="achievable fraction of peak cache bandwidth")
    link_efficiency: float = field(
        default=1.0, positive=True, minimum=MIN_EFFICIENCY, maximum=1.0,
            doc="achievable fraction of link bandwidth")
    launch_overhead_s: float = field(unit="time", default=0.0, maximum=MAX_LATENCY_S,
                                     doc="fixed cost per kernel")


@attrs.frozen
class HardwareSpec:
    """A whole accelerator chip; `chips` of them train data-parallel."""

    name: str = field(doc="short name used in reports")
    compute: ComputeSpec = field(doc="compute units")
    caches: tuple[CacheLevelSpec, ...] = field(doc="on-chip cache levels, nearest first")
    memory: MemorySpec = field(doc="off-chip memory")
    interconnect: InterconnectSpec = field(doc="chip-to-chip links")
    calibration: Calibration = field(factory=Calibration, doc="achievable fractions and overheads")
    description: str = field(default="", doc="free text")

    def __attrs_post_init__(self) -> None:
        check_rules(self)

    @rule
    def _some_cache(caches: tuple[CacheLevelSpec, ...]) -> Violation | None:
        """Every op's traffic goes through the on-chip hierarchy, so there is a first level."""
        if not caches:
            return Violation("caches", "at least one cache level", "none")
        return None

    @rule
    def _private_above_shared(caches: tuple[CacheLevelSpec, ...]) -> Violation | None:
        """Per-unit copies feed a shared level, not the other way round (the cache model's order)."""
        for i in range(1, len(caches)):
            if caches[i].sharing == "private" and caches[i - 1].sharing == "shared":
                return Violation("caches", f"shared below {caches[i - 1].name} (shared): a "
                                 "private level is only allowed above every shared one",
                                 "private", at=(i, "sharing"))
        return None

    @rule
    def _unique_level_names(caches: tuple[CacheLevelSpec, ...]) -> Violation | None:
        """Reports key hit rates by level name, so names are unique."""
        names = [c.name for c in caches]
        for i, name in enumerate(names):
            if name in names[:i]:
                return Violation("caches", f"a name no earlier level has ({', '.join(names[:i])})",
                                 repr(name), at=(i, "name"))
        return None

    @rule
    def _lines_grow_outward(caches: tuple[CacheLevelSpec, ...]) -> Violation | None:
        """A level's line is at least as long as the line of the level above it."""
        for i in range(1, len(caches)):
            upper, lower = caches[i - 1], caches[i]
            if lower.line_bytes < upper.line_bytes:
                return Violation("caches", f"a line at least as long as {upper.name}'s "
                                 f"({upper.line_bytes} B)", f"{lower.line_bytes} B",
                                 at=(i, "line_bytes"))
        return None

    @property
    def last_level_cache_bytes(self) -> int:
        if not self.caches:
            return 0
        last = self.caches[-1]
        copies = self.compute.units if last.sharing == "private" else 1
        return last.capacity_bytes * copies
