"""Frozen descriptions of an accelerator: compute, on-chip caches, HBM, interconnect, calibration.

Quantities are stored in base SI units (bytes, bytes/s, Hz, s, FLOP/s); names carry the unit.
These classes know nothing of YAML (`spec` loads them) nor of simulation (`mapping`, `cache`,
`replay` read them).
"""

from __future__ import annotations

import attrs

from accelsim.schema import field
from accelsim.units import DTYPE_BYTES

DTYPES = tuple(DTYPE_BYTES)
REPLACEMENT_POLICIES = ("lru", "fifo", "random", "plru", "lfu")
WRITE_POLICIES = ("write_back", "write_through")
INCLUSION = ("inclusive", "non_inclusive")
SHARING = ("private", "shared")
TOPOLOGIES = ("ring", "switch", "torus2d", "fully_connected")


@attrs.frozen
class MatrixPipe:
    """Dense matrix-multiply throughput for one input dtype (e.g. fp32 FMA pipes, fp16 tensor cores).

    Give either the chip's peak FLOP/s or the MACs per cycle per compute unit (peak is then
    2 * macs * units * clock).
    """

    peak_flop_rate: float | None = field(
        unit="flop_rate", default=None, doc="peak dense FLOP/s of the whole chip for this dtype")
    macs_per_cycle_per_unit: int | None = field(
        default=None, minimum=1, doc="multiply-accumulates per cycle per compute unit")
    accumulate: str = field(default="fp32", choices=DTYPES, doc="accumulation dtype")
    min_tile: int = field(default=1, minimum=1,
                          doc="granule of M, N and K the pipe computes in (e.g. 16 for an MMA)")

    def __attrs_post_init__(self) -> None:
        if (self.peak_flop_rate is None) == (self.macs_per_cycle_per_unit is None):
            raise ValueError("give exactly one of peak_flop_rate and macs_per_cycle_per_unit")


@attrs.frozen
class ComputeSpec:
    """Compute units (SMs, cores): their count, clock, matrix pipes and local (tile) storage."""

    units: int = field(minimum=1, doc="number of compute units (SMs, cores)")
    clock_hz: float = field(unit="frequency", doc="sustained clock of the compute units")
    matrix: dict[str, MatrixPipe] = field(
        doc="matrix throughput per input dtype, e.g. {fp32: ..., fp16: ...}")
    vector_flop_rate: float = field(
        unit="flop_rate", doc="peak elementwise (vector) FLOP/s of the whole chip")
    local_memory_bytes: int = field(
        unit="bytes", doc="scratchpad / shared memory per unit that holds GEMM tiles")
    register_file_bytes: int = field(
        unit="bytes", default=0, doc="register file per unit (0: not modelled)")
    local_memory_bandwidth_bytes_per_cycle: float = field(
        default=0.0, minimum=0.0,
        doc="bytes per cycle one unit's local memory delivers to its pipes; small GEMM tiles "
            "re-read operands from it often enough to be limited by it (0: not modelled)")

    def __attrs_post_init__(self) -> None:
        unknown = sorted(set(self.matrix) - set(DTYPES))
        if unknown:
            raise ValueError(f"matrix: unknown dtype {unknown[0]!r}; expected one of {list(DTYPES)}")
        if not self.matrix:
            raise ValueError("matrix: expected at least one dtype")

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
    capacity_bytes: int = field(unit="bytes", minimum=1, doc="capacity of one instance")
    line_bytes: int = field(unit="bytes", default=128, minimum=1, doc="line size (power of two)")
    ways: int = field(default=16, minimum=0, doc="associativity; 0 means fully associative")
    replacement: str = field(default="lru", choices=REPLACEMENT_POLICIES, doc="replacement policy")
    write_policy: str = field(default="write_back", choices=WRITE_POLICIES, doc="write policy")
    write_allocate: bool = field(default=True, doc="allocate a line on a write miss")
    inclusion: str = field(default="non_inclusive", choices=INCLUSION,
                           doc="inclusive of the levels above, or not")
    sharing: str = field(default="shared", choices=SHARING,
                         doc="private (one instance per compute unit) or shared by all units")
    bandwidth_bytes_per_s: float = field(
        unit="bandwidth", doc="total bandwidth this level serves (summed over instances)")
    latency_s: float = field(unit="time", default=0.0, doc="load-to-use latency")

    def __attrs_post_init__(self) -> None:
        if self.line_bytes & (self.line_bytes - 1):
            raise ValueError(f"line_bytes: expected a power of two, got {self.line_bytes}")
        lines = self.capacity_bytes // self.line_bytes
        if lines < 1:
            raise ValueError("capacity_bytes: expected at least one line")
        if self.ways and lines % self.ways:
            raise ValueError(
                f"ways: expected a divisor of the {lines} lines "
                f"(capacity / line), got {self.ways}")

    @property
    def lines(self) -> int:
        return self.capacity_bytes // self.line_bytes


@attrs.frozen
class MemorySpec:
    """Off-chip memory (HBM): capacity, bandwidth, latency, channels."""

    capacity_bytes: int = field(unit="bytes", minimum=1, doc="memory capacity per chip")
    bandwidth_bytes_per_s: float = field(unit="bandwidth", doc="peak memory bandwidth")
    latency_s: float = field(unit="time", default=0.0, doc="load latency")
    channels: int = field(default=1, minimum=1, doc="independent channels")


@attrs.frozen
class InterconnectSpec:
    """Chip-to-chip links used for gradient all-reduce in data-parallel training."""

    links: int = field(default=1, minimum=0, doc="links per chip")
    link_bandwidth_bytes_per_s: float = field(
        unit="bandwidth", doc="bandwidth of one link, one direction")
    latency_s: float = field(unit="time", default=0.0, doc="per-message latency")
    topology: str = field(default="ring", choices=TOPOLOGIES, doc="how chips are connected")

    @property
    def bandwidth_bytes_per_s(self) -> float:
        return self.links * self.link_bandwidth_bytes_per_s


@attrs.frozen
class Calibration:
    """Achievable fractions of peak and fixed overheads: the knobs that turn peaks into times."""

    compute_efficiency: float = field(
        default=1.0, minimum=0.0, maximum=1.0,
        doc="achievable fraction of peak matrix FLOP/s for a well-shaped kernel")
    vector_efficiency: float = field(
        default=1.0, minimum=0.0, maximum=1.0, doc="achievable fraction of peak vector FLOP/s")
    bandwidth_efficiency: float = field(
        default=1.0, minimum=0.0, maximum=1.0,
        doc="achievable fraction of peak memory bandwidth")
    cache_bandwidth_efficiency: float = field(
        default=1.0, minimum=0.0, maximum=1.0,
        doc="achievable fraction of peak cache bandwidth")
    link_efficiency: float = field(
        default=1.0, minimum=0.0, maximum=1.0, doc="achievable fraction of link bandwidth")
    launch_overhead_s: float = field(unit="time", default=0.0, doc="fixed cost per kernel")


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
        names = [c.name for c in self.caches]
        if len(set(names)) != len(names):
            raise ValueError(f"caches: expected unique level names, got {names}")
        for upper, lower in zip(self.caches, self.caches[1:], strict=False):
            if lower.line_bytes < upper.line_bytes:
                raise ValueError(
                    f"caches: line_bytes of {lower.name} ({lower.line_bytes}) must be >= "
                    f"that of {upper.name} ({upper.line_bytes})")

    @property
    def last_level_cache_bytes(self) -> int:
        if not self.caches:
            return 0
        last = self.caches[-1]
        copies = self.compute.units if last.sharing == "private" else 1
        return last.capacity_bytes * copies
