"""Frozen descriptions of an accelerator: compute, on-chip caches, HBM, interconnect, calibration.

Quantities are stored in base SI units (bytes, bytes/s, Hz, s, FLOP/s); names carry the unit.
These classes know nothing of YAML (`spec` loads them) nor of simulation (`mapping`, `cache`,
`replay` read them).
"""

from __future__ import annotations

from typing import Any

import attrs

from accelsim.schema import Violation, check_rules, field, rule
from accelsim.vocabulary import (
    COMPUTE,
    COMPUTE_DTYPES,
    INCLUSION_POLICIES,
    LINKS,
    MEMORY,
    PRIVATE,
    REPLACEMENT_POLICIES,
    SHARED,
    SHARING_POLICIES,
    TOPOLOGIES,
    WRITE_POLICIES,
)

DTYPES = COMPUTE_DTYPES
#: Names the reports use for things that are not cache levels (compared case-insensitively).
RESERVED_LEVEL_NAMES = tuple(dict.fromkeys(n.lower() for n in (MEMORY, "memory", COMPUTE, LINKS)))

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
    # --- per-pipe calibration (issue 10) ---
    efficiency: float | None = field(
        default=None, positive=True, minimum=MIN_EFFICIENCY, maximum=1.0,
        doc="achievable fraction of this pipe's peak for a well-shaped kernel "
            "(default: calibration.compute_efficiency)")

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
                            doc="boost clock of the compute units (the datasheet's peak rates)")
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
    # --- sustained clock (issue 10) ---
    sustained_clock_hz: float | None = field(
        unit="frequency", default=None, positive=True, minimum=MIN_RATE, maximum=MAX_CLOCK_HZ,
        doc="clock the units hold under sustained load within the power limit (a 70 W part runs "
            "well below boost); every matrix pipe's peak scales by sustained / boost. "
            "Default: the boost clock")

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

    @rule
    def _sustained_not_above_boost(clock_hz: float,
                                   sustained_clock_hz: float | None) -> Violation | None:
        """The power limit can only lower the clock."""
        if sustained_clock_hz is not None and not 0 < sustained_clock_hz <= clock_hz:
            return Violation("sustained_clock_hz", f"a clock above 0 and at most the boost clock "
                             f"({clock_hz:g} Hz)", f"{sustained_clock_hz:g} Hz")
        return None

    @property
    def run_clock_hz(self) -> float:
        """The clock kernels run at: the sustained clock when given, else the boost clock."""
        return self.clock_hz if self.sustained_clock_hz is None else self.sustained_clock_hz

    def peak_flop_rate(self, dtype: str) -> float:
        """Peak matrix FLOP/s of the chip for `dtype` at the clock kernels run at (falls back to
        fp32 when not listed)."""
        pipe = self.matrix.get(dtype) or self.matrix.get("fp32") or next(iter(self.matrix.values()))
        if pipe.peak_flop_rate is not None:
            return pipe.peak_flop_rate * (self.run_clock_hz / self.clock_hz)
        assert pipe.macs_per_cycle_per_unit is not None
        return 2.0 * pipe.macs_per_cycle_per_unit * self.units * self.run_clock_hz

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
    inclusion: str = field(default="non_inclusive", choices=INCLUSION_POLICIES,
                           doc="inclusive of the levels above, or not")
    sharing: str = field(default=SHARED, choices=SHARING_POLICIES,
                         doc="private (one instance per compute unit) or shared by all units")
    bandwidth_bytes_per_s: float = field(
        unit="bandwidth", positive=True, minimum=MIN_RATE,
        maximum=MAX_RATE,
        doc="total bandwidth this level serves (summed over instances)")
    latency_s: float = field(unit="time", default=0.0, maximum=MAX_LATENCY_S,
                             doc="load-to-use latency")
    # --- issue 9: a level that serves the compute units directly (bigcache) ---
    feeds_compute: bool = field(
        default=False,
        doc="true: the bytes this level serves reach the compute units over its own "
            "bandwidth, beside the levels above it (a large SRAM distributed next to the "
            "cores), so they do not cross those levels' ports; false: they pass through the "
            "level above, as an L2 miss does")

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
    """Off-chip memory (HBM): capacity, bandwidth, latency."""

    capacity_bytes: int = field(unit="bytes", minimum=1, maximum=MAX_MEMORY_BYTES,
                                doc="memory capacity per chip")
    bandwidth_bytes_per_s: float = field(unit="bandwidth", positive=True, minimum=MIN_RATE,
                                         maximum=MAX_RATE, doc="peak memory bandwidth")
    latency_s: float = field(unit="time", default=0.0, maximum=MAX_LATENCY_S, doc="load latency")


@attrs.frozen
class InterconnectSpec:
    """Chip-to-chip links and their topology: what the collectives of a parallel plan run on."""

    links: int = field(default=1, minimum=0, maximum=MAX_UNITS,
                       doc="links per chip (0: a single chip; --chips > 1 needs links)")
    link_bandwidth_bytes_per_s: float = field(
        unit="bandwidth", positive=True, minimum=MIN_RATE,
        maximum=MAX_RATE,
        doc="bandwidth of one link, one direction")
    latency_s: float = field(unit="time", default=0.0, maximum=MAX_LATENCY_S,
                             doc="per-message latency")
    topology: str = field(default="ring", choices=TOPOLOGIES, doc="how chips are connected")
    # --- parallel plans (issue 8): topology shape and the two-level system -----------------
    torus_shape: tuple[int, ...] | None = field(
        default=None, doc="torus2d: chips along each of the two dimensions (their product is "
                          "the chip count); none: the most square factorization of the chips")
    chips_per_node: int | None = field(
        default=None, minimum=1, maximum=MAX_UNITS,
        doc="two_level: chips in one node, joined by `links` (ring); nodes join over the network")
    network_bandwidth_bytes_per_s: float | None = field(
        unit="bandwidth", default=None, positive=True, minimum=MIN_RATE, maximum=MAX_RATE,
        doc="two_level: each chip's bandwidth into the network between nodes, one direction")
    network_latency_s: float = field(
        unit="time", default=0.0, maximum=MAX_LATENCY_S, doc="two_level: per-message latency between nodes")
    host_bandwidth_bytes_per_s: float | None = field(
        unit="bandwidth", default=None, positive=True, minimum=MIN_RATE, maximum=MAX_RATE,
        doc="each chip's link to host memory, one direction (e.g. PCIe 3.0 x16: 15.75 GB/s); "
            "what a plan's `offload` moves over (none: no offload)")
    host_memory_bytes: int | None = field(
        unit="bytes", default=None, maximum=MAX_MEMORY_BYTES,
        doc="host memory available to each chip for offloaded tensors (none: unlimited)")

    @rule
    def _torus_is_two_dimensional(torus_shape: tuple[int, ...] | None) -> Violation | None:
        """A 2-D torus has two dimensions of at least one chip each."""
        if torus_shape is not None and (len(torus_shape) != 2 or min(torus_shape) < 1
                                        or max(torus_shape) > MAX_UNITS):
            return Violation("torus_shape", f"two whole numbers from 1 to {MAX_UNITS}, e.g. "
                             "[32, 64]",
                             str(list(torus_shape)))
        return None

    @rule
    def _two_level_described(topology: str, chips_per_node: int | None,
                             network_bandwidth_bytes_per_s: float | None) -> Violation | None:
        """A two-level system says how many chips a node has and how fast the network is."""
        if topology == "two_level" and chips_per_node is None:
            return Violation("chips_per_node", "a whole number >= 1 for topology two_level",
                             "nothing")
        if topology == "two_level" and network_bandwidth_bytes_per_s is None:
            return Violation("network_bandwidth_bytes_per_s", "a bandwidth for topology two_level",
                             "nothing")
        return None

    def __attrs_post_init__(self) -> None:
        check_rules(self)
    # --- end parallel plans ----------------------------------------------------------------

    @property
    def bandwidth_bytes_per_s(self) -> float:
        return self.links * self.link_bandwidth_bytes_per_s


@attrs.frozen
class Calibration:
    """Achievable fractions of peak and fixed overheads: the knobs that turn peaks into times.

    The defaults are the V100 spec's values (compute efficiency, launch and RNN overheads
    fitted on its DeepBench tables with cuBLAS and cuDNN; docs/validation.md): losses of a GPU
    software stack rather than of one chip, so a datasheet spec that omits `calibration:`
    predicts like a GPU with that stack, not like an ideal machine. An ideal chip sets every
    efficiency to 1.0 and every overhead to 0 (`Calibration.ideal`)."""

    compute_efficiency: float = field(
        default=0.88, positive=True, minimum=MIN_EFFICIENCY, maximum=1.0,
        doc="achievable fraction of peak matrix FLOP/s for a well-shaped kernel (instruction "
            "issue and scheduling losses the kernel library cannot hide); default: the V100 cuBLAS fit "
            "(docs/validation.md); an ideal chip: 1.0")
    vector_efficiency: float = field(
        default=0.9, positive=True, minimum=MIN_EFFICIENCY, maximum=1.0,
        doc="achievable fraction of peak vector (elementwise) FLOP/s; default: the V100 "
            "value (docs/validation.md); an ideal chip: 1.0")
    bandwidth_efficiency: float = field(
        default=0.9, positive=True, minimum=MIN_EFFICIENCY, maximum=1.0,
        doc="achievable fraction of peak memory bandwidth (refresh, bank and read/write "
            "turnaround: STREAM reaches ~810 of the V100's 900 GB/s); default: the V100 value "
            "(docs/validation.md); an ideal chip: 1.0")
    cache_bandwidth_efficiency: float = field(
        default=0.9, positive=True, minimum=MIN_EFFICIENCY, maximum=1.0,
        doc="achievable fraction of each cache level's peak bandwidth (bank conflicts, "
            "interconnect contention); default: the V100 value (docs/validation.md); an ideal "
            "chip: 1.0")
    link_efficiency: float = field(
        default=0.8, positive=True, minimum=MIN_EFFICIENCY, maximum=1.0,
        doc="achievable fraction of link bandwidth (packet headers, flow control, the "
            "collective library's protocol); default: the V100 NVLink value "
            "(docs/validation.md); an ideal chip: 1.0")
    launch_overhead_s: float = field(
        unit="time", default=6.5e-6, maximum=MAX_LATENCY_S,
        doc="fixed cost per kernel (host-side launch and the device's kernel start and "
            "drain); default: the V100 CUDA fit (docs/validation.md); an ideal chip: 0")
    # --- recurrent library calls (issue 10): used by `validate`'s RNN model ---
    rnn_step_overhead_s: float = field(
        unit="time", default=20e-6, minimum=0.0, maximum=MAX_LATENCY_S,
        doc="host-side work and synchronisation per timestep of one recurrent library call "
            "(cuDNN), beyond the step's own kernel launches; default: the V100 cuDNN fit "
            "(docs/validation.md); an ideal chip: 0")
    rnn_call_overhead_s: float = field(
        unit="time", default=50e-6, minimum=0.0, maximum=MAX_LATENCY_S,
        doc="fixed host-side setup of one recurrent library call before its first kernel; "
            "default: the V100 cuDNN fit (docs/validation.md); an ideal chip: 0")

    @classmethod
    def ideal(cls, **overrides: float) -> Calibration:
        """Peak rates and no overheads (with `overrides`): a machine without a software
        stack's losses, for hand-derived timings and the datasheet-only bound."""
        values = {"compute_efficiency": 1.0, "vector_efficiency": 1.0,
                  "bandwidth_efficiency": 1.0, "cache_bandwidth_efficiency": 1.0,
                  "link_efficiency": 1.0, "launch_overhead_s": 0.0, "rnn_step_overhead_s": 0.0,
                  "rnn_call_overhead_s": 0.0}
        return cls(**{**values, **overrides})


# --- kernel library: the GEMM kernels a chip's vendor library offers -------------
#: Operand layouts of a GEMM, as BLAS names them: op(A) then op(B), N (as stored) or T.
GEMM_LAYOUTS = ("NN", "NT", "TN", "TT")
#: Keys of `kernel_library.menus`: a dtype (every layout) or `<dtype>_<layout>` (one layout).
KERNEL_MENU_KEYS = DTYPES + tuple(f"{d}_{lay}" for d in DTYPES for lay in GEMM_LAYOUTS)
MAX_TILE_EDGE = 2**16


@attrs.frozen
class KernelMenu:
    """The GEMM kernels a library offers for one dtype (or one dtype and layout): output tile
    shapes, K-stage depths and split-K factors. The mapper chooses only among these, and only
    tiles whose operand stages fit the unit's local memory and whose accumulators fit half its
    register file. Defaults: the menu of a generic tiled BLAS (CUTLASS-like), documented in
    docs/spec-format.md; a spec without `kernel_library` uses it for every dtype."""

    tile_edges: tuple[int, ...] = field(
        default=(32, 64, 128, 256),
        doc="tile_m and tile_n values (elements) combined into tiles, unless `tiles` lists the "
            "shapes; a pipe's min_tile must divide an edge for the edge to be used")
    max_aspect: int = field(
        default=4, minimum=1, maximum=MAX_TILE_EDGE,
        doc="longest over shortest side of a tile built from tile_edges")
    tiles: tuple[tuple[int, ...], ...] | None = field(
        default=None,
        doc="explicit [tile_m, tile_n] shapes the library offers (e.g. [[256, 128], [128, 128]]); "
            "none: every pair of tile_edges within max_aspect")
    tile_k: tuple[int, ...] = field(
        default=(32, 16, 8),
        doc="K depths of one operand stage (elements), preferred first: a tile takes the "
            "first that fits local memory")
    split_k: tuple[int, ...] = field(
        default=(1, 2, 4, 8, 16, 32, 64),
        doc="split-K factors offered, ascending from 1 ([1]: no split-K kernels); split-K is "
            "used only when the unsplit tiles leave units idle")
    min_k_per_split: int = field(
        default=256, minimum=1, maximum=2**31,
        doc="smallest K slice (elements) one split-K work item gets")
    stages: int = field(
        default=2, minimum=2, maximum=16,
        doc="operand stages a kernel holds in local memory: 2 is double buffering (CUTLASS "
            "1.x, cuBLAS on Volta); multistage kernels (cp.async on Ampere) keep 3-5. A tile "
            "must fit all stages, and stages - 1 of them are in flight while one is consumed")

    k_major_memory_efficiency: float = field(
        default=1.0, positive=True, minimum=MIN_EFFICIENCY, maximum=1.0,
        doc="fraction of the achievable memory bandwidth these kernels reach on an operand "
            "stored with K contiguous (row-major A, or B used transposed): each K stage reads "
            "a short run of tile_k elements from every row of the tile, which DRAM serves "
            "less efficiently than the long runs of an M- or N-contiguous operand "
            "(1: no difference)")
    k_major_aligned_stride_bytes: int = field(
        default=0, minimum=0, maximum=2**31,
        doc="leading-dimension alignment the library's fastest K-major kernels need: a "
            "K-contiguous operand whose row stride (K x element bytes) is not a multiple of it "
            "streams at k_major_unaligned_memory_efficiency instead (0: no such kernels)")
    k_major_unaligned_memory_efficiency: float = field(
        default=1.0, positive=True, minimum=MIN_EFFICIENCY, maximum=1.0,
        doc="fraction of the achievable memory bandwidth reached on a K-contiguous operand "
            "whose row stride is not a multiple of k_major_aligned_stride_bytes")

    overlapped_epilogue: bool = field(
        default=False,
        doc="whether a unit overlaps one tile's epilogue (reading C when the GEMM accumulates, "
            "writing it) with its next tile's K loop. false: the epilogue runs after the K "
            "loop on every wave, as in CUTLASS 1.x and cuBLAS's Volta/Turing kernels, whose "
            "large tiles leave one thread block per unit; true: only the last wave's epilogue "
            "is exposed (persistent, warp-specialized kernels)")

    def __attrs_post_init__(self) -> None:
        check_rules(self)

    @rule
    def _edges_positive(tile_edges: tuple[int, ...]) -> Violation | None:
        """Tiles are whole numbers of elements."""
        for i, e in enumerate(tile_edges):
            if not 1 <= e <= MAX_TILE_EDGE:
                return Violation("tile_edges", f"an edge from 1 to {MAX_TILE_EDGE} elements",
                                 f"{e}", at=(i,))
        if not tile_edges:
            return Violation("tile_edges", "at least one edge", "none")
        return None

    @rule
    def _tiles_are_pairs(tiles: tuple[tuple[int, ...], ...] | None) -> Violation | None:
        """A tile is [tile_m, tile_n]."""
        if tiles is None:
            return None
        if not tiles:
            return Violation("tiles", "at least one [tile_m, tile_n] shape", "none")
        for i, t in enumerate(tiles):
            if len(t) != 2 or not all(1 <= e <= MAX_TILE_EDGE for e in t):
                return Violation("tiles", f"a [tile_m, tile_n] pair of edges from 1 to "
                                 f"{MAX_TILE_EDGE}", str(list(t)), at=(i,))
        return None

    @rule
    def _tile_k_positive(tile_k: tuple[int, ...]) -> Violation | None:
        """A stage is at least one element deep."""
        if not tile_k:
            return Violation("tile_k", "at least one depth", "none")
        for i, k in enumerate(tile_k):
            if not 1 <= k <= MAX_TILE_EDGE:
                return Violation("tile_k", f"a depth from 1 to {MAX_TILE_EDGE} elements", f"{k}",
                                 at=(i,))
        return None

    @rule
    def _split_k_ascending_from_one(split_k: tuple[int, ...]) -> Violation | None:
        """The unsplit kernel is always offered; factors grow (the mapper stops at the first
        factor whose K slice is too thin)."""
        if not split_k or split_k[0] != 1:
            return Violation("split_k", "factors starting with 1 (the unsplit kernel)",
                             str(list(split_k)))
        for i in range(1, len(split_k)):
            if not split_k[i - 1] < split_k[i] <= 2**16:
                return Violation("split_k", f"a factor above {split_k[i - 1]} and at most 65536",
                                 f"{split_k[i]}", at=(i,))
        return None

    def shapes(self) -> list[tuple[int, int]]:
        """(tile_m, tile_n) pairs offered, in menu order."""
        if self.tiles is not None:
            return [(t[0], t[1]) for t in self.tiles]
        return [(tm, tn) for tm in self.tile_edges for tn in self.tile_edges
                if max(tm, tn) <= self.max_aspect * min(tm, tn)]


@attrs.frozen
class KernelLibrary:
    """The vendor library's GEMM kernels per dtype and layout (library choices, not chip
    physics: thin-GEMM tiles and split-K availability differ between libraries and versions)."""

    default: KernelMenu = field(factory=KernelMenu,
                                doc="menu of every dtype and layout not in `menus`")
    menus: dict[str, KernelMenu] = field(
        factory=dict, keys=KERNEL_MENU_KEYS,
        doc="menus per dtype (e.g. fp16) or per dtype and layout (e.g. fp16_TN: op(A) "
            "transposed, B as stored); the most specific key applies")

    def menu(self, dtype: str, trans_a: bool = False, trans_b: bool = False) -> KernelMenu:
        """The menu of a GEMM of `dtype` with these operand layouts."""
        layout = ("T" if trans_a else "N") + ("T" if trans_b else "N")
        return (self.menus.get(f"{dtype}_{layout}") or self.menus.get(dtype) or self.default)


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
    technology: TechnologySpec | None = field(
        default=None, doc="process node and energy, area and cost constants (accelsim.energy); "
        "without it no energy, area or cost is estimated")
    kernel_library: KernelLibrary = field(
        factory=KernelLibrary, doc="GEMM tile shapes and split-K factors the chip's kernel "
        "library offers, per dtype and layout (default: a generic tiled-BLAS menu)")

    def __attrs_post_init__(self) -> None:
        check_rules(self)

    def compute_efficiency(self, dtype: str) -> float:
        """Achievable fraction of the `dtype` pipe's peak: the pipe's own, else the chip's."""
        own = self.compute.pipe(dtype).efficiency
        return self.calibration.compute_efficiency if own is None else own

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
            if caches[i].sharing == PRIVATE and caches[i - 1].sharing == SHARED:
                return Violation("caches", f"shared below {caches[i - 1].name} (shared): a "
                                 "private level is only allowed above every shared one",
                                 PRIVATE, at=(i, "sharing"))
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

    @rule
    def _memory_stacks_stated(technology: TechnologySpec | None) -> Violation | None:
        """Stacks are the design's, not the node's: a technology section must state them."""
        if technology is not None and technology.hbm_stacks is None:
            return Violation("technology", "a section that states hbm_stacks (memory stacks on "
                             "the die)", "none", at=("hbm_stacks",))
        return None

    @property
    def last_level_cache_bytes(self) -> int:
        """On-chip bytes of the outermost cache level, all its copies (0 without caches)."""
        if not self.caches:
            return 0
        last = self.caches[-1]
        copies = self.compute.units if last.sharing == PRIVATE else 1
        return last.capacity_bytes * copies


# --- technology: energy, area and cost (issue 14) -------------------------------------------
# Per-node defaults live in accelsim/data/technology_nodes.yaml (with their sources); a spec's
# `technology` section names its node and may override any value for its own design.

#: Ceilings of the technology constants: far beyond any process, low enough that energies,
#: areas and costs built from them stay finite (and die counts fit an integer).
MAX_ENERGY_PJ = 1e6            # per FLOP, byte or bit (today: ~0.01-10 pJ)
MAX_POWER_W = 1e6              # leakage per mm^2 / per MiB (mW) / per memory stack
MAX_AREA = 1e6                 # um^2 of a bit cell or MAC, mm^2 of a die, PHY or wafer
MAX_AREA_FACTOR = 1e3          # MAC array area over its bare datapaths
MAX_WAFER_DIAMETER_MM = 1e4
MAX_USD = 1e12                 # a wafer, a GB of memory, a kWh
MAX_DEFECTS_PER_CM2 = 1e6
MAX_YEARS = 1e3
MAX_EPOCHS = 1e6

#: Values that something divides by or takes a root of: zero is as wrong as negative there.
_TECHNOLOGY_POSITIVE = ("sram_bitcell_area_um2", "sram_array_efficiency", "wafer_diameter_mm",
                        "reticle_limit_mm2", "wafer_usable_area_mm2", "amortization_years")


@attrs.frozen
class TechnologySpec:
    """Process node and the energy, area and cost constants of the design.

    Every value but `node` is optional: unset (null) values come from the node's row of
    accelsim/data/technology_nodes.yaml, where each default cites its source.
    """

    node: str = field(doc="process node, a row of accelsim/data/technology_nodes.yaml, e.g. 12nm")
    # energy
    matrix_energy_pj_per_flop: dict[str, float] | None = field(
        default=None, keys=DTYPES, doc="energy per FLOP of the matrix pipes per input dtype, "
        "operand delivery from the register file included (pJ)")
    vector_energy_pj_per_flop: float | None = field(
        default=None, maximum=MAX_ENERGY_PJ, minimum=0.0, doc="energy per FLOP of elementwise (vector) ops (pJ)")
    sram_energy_pj_per_byte_at_1mib: float | None = field(
        default=None, maximum=MAX_ENERGY_PJ, minimum=0.0,
        doc="energy per byte read or written in a 1 MiB SRAM array (pJ); other capacities "
            "scale by (capacity / 1 MiB) ** sram_energy_capacity_exponent")
    sram_energy_capacity_exponent: float | None = field(
        default=None, minimum=0.0, maximum=1.0,
        doc="how energy per access grows with array capacity (0.5: wire length ~ sqrt(area))")
    sram_bank_bytes: int | None = field(
        default=None, unit="bytes", minimum=1, maximum=MAX_CACHE_BYTES,
        doc="capacity of one SRAM bank: a larger cache level is built of such banks, an access "
            "reads one bank (the capacity law at this size) and crosses the on-chip network to it")
    wire_energy_pj_per_bit_per_mm: float | None = field(
        default=None, maximum=MAX_ENERGY_PJ, minimum=0.0,
        doc="on-chip wire energy per bit moved one mm (pJ): the network between a level's banks")
    hbm_energy_pj_per_bit: float | None = field(
        default=None, maximum=MAX_ENERGY_PJ, minimum=0.0, doc="off-chip memory energy per bit moved (pJ)")
    link_energy_pj_per_bit: float | None = field(
        default=None, maximum=MAX_ENERGY_PJ, minimum=0.0, doc="chip-to-chip link energy per bit sent (pJ)")
    # static power
    logic_leakage_w_per_mm2: float | None = field(
        default=None, maximum=MAX_POWER_W, minimum=0.0, doc="static power of compute-unit logic per mm^2 (W)")
    sram_leakage_mw_per_mib: float | None = field(
        default=None, maximum=MAX_POWER_W, minimum=0.0, doc="static power of SRAM per MiB (mW)")
    hbm_static_w_per_stack: float | None = field(
        default=None, maximum=MAX_POWER_W, minimum=0.0, doc="background power of one memory stack and its PHY (W)")
    # area
    sram_bitcell_area_um2: float | None = field(
        default=None, maximum=MAX_AREA, minimum=0.0, doc="area of one SRAM bit cell (um^2)")
    sram_array_efficiency: float | None = field(
        default=None, minimum=0.0, maximum=1.0,
        doc="fraction of an SRAM macro's area that is bit cells (the rest: decoders, sense "
            "amplifiers, redundancy, routing)")
    mac_area_um2: dict[str, float] | None = field(
        default=None, keys=DTYPES, doc="area of one multiply-accumulate datapath per input dtype (um^2)")
    unit_base_area_mm2: float | None = field(
        default=None, maximum=MAX_AREA, minimum=0.0,
        doc="logic area of one compute unit apart from its MAC arrays (schedulers, load/store, "
            "special functions, the chip's uncore shared out per unit) (mm^2)")
    mac_area_factor: float | None = field(
        default=None, maximum=MAX_AREA_FACTOR, minimum=1.0,
        doc="area of a MAC array with its operand delivery / its bare MAC datapaths")
    hbm_phy_area_mm2: float | None = field(
        default=None, maximum=MAX_AREA, minimum=0.0, doc="die area of one memory stack's PHY and controller (mm^2)")
    link_phy_area_mm2: float | None = field(
        default=None, maximum=MAX_AREA, minimum=0.0, doc="die area of one chip-to-chip link's SerDes (mm^2)")
    die_units: int | None = field(
        default=None, maximum=MAX_UNITS, minimum=1,
        doc="compute units on the die, including units disabled for yield (default: compute.units)")
    hbm_stacks: int | None = field(
        default=None, minimum=0, maximum=1024,
        doc="memory stacks (PHYs) on the die: a property of the design, not of the node "
            "(required in a hardware spec's technology section)")
    # buildability and cost
    reticle_limit_mm2: float | None = field(
        default=None, maximum=MAX_AREA, minimum=0.0, doc="largest die one lithography exposure prints (mm^2)")
    max_dies_per_package: int | None = field(
        default=None, maximum=MAX_UNITS, minimum=1, doc="reticle-sized dies one package can join; beyond: wafer scale")
    wafer_usable_area_mm2: float | None = field(
        default=None, maximum=MAX_AREA, minimum=0.0, doc="largest square a wafer-scale design can use (mm^2)")
    wafer_diameter_mm: float | None = field(default=None, maximum=MAX_WAFER_DIAMETER_MM, minimum=0.0, doc="wafer diameter (mm)")
    wafer_cost_usd: float | None = field(
        default=None, maximum=MAX_USD, minimum=0.0, doc="price of one processed wafer at this node (USD)")
    defect_density_per_cm2: float | None = field(
        default=None, maximum=MAX_DEFECTS_PER_CM2, minimum=0.0, doc="killer defects per cm^2 (Murphy yield model)")
    hbm_cost_usd_per_gb: float | None = field(
        default=None, maximum=MAX_USD, minimum=0.0, doc="price of off-chip memory per GB (USD)")
    amortization_years: float | None = field(
        default=None, maximum=MAX_YEARS, minimum=0.0, doc="years over which a chip's price is spread")
    energy_price_usd_per_kwh: float | None = field(
        default=None, maximum=MAX_USD, minimum=0.0, doc="price of electricity (USD per kWh)")
    training_epochs: float | None = field(
        default=None, maximum=MAX_EPOCHS, minimum=0.0, doc="epochs of the dataset in one training run")

    def __attrs_post_init__(self) -> None:
        check_rules(self)

    @rule
    def _positive(sram_bitcell_area_um2: float | None, sram_array_efficiency: float | None,
                  wafer_diameter_mm: float | None, reticle_limit_mm2: float | None,
                  wafer_usable_area_mm2: float | None,
                  amortization_years: float | None) -> Violation | None:
        """Areas, the wafer and the amortization period are divided by: zero is no value."""
        given = dict(zip(_TECHNOLOGY_POSITIVE, (
            sram_bitcell_area_um2, sram_array_efficiency, wafer_diameter_mm, reticle_limit_mm2,
            wafer_usable_area_mm2, amortization_years), strict=True))
        for name, value in given.items():
            if value is not None and value <= 0:
                return Violation(name, "a value > 0 (it is divided by)", repr(value))
        return None

    @rule
    def _per_dtype_bounded(matrix_energy_pj_per_flop: dict[str, float] | None,
                           mac_area_um2: dict[str, float] | None) -> Violation | None:
        """Per-dtype energies and areas obey the same ceilings as the scalar ones."""
        for name, table, cap in (("matrix_energy_pj_per_flop", matrix_energy_pj_per_flop,
                                  MAX_ENERGY_PJ), ("mac_area_um2", mac_area_um2, MAX_AREA)):
            for dtype, value in (table or {}).items():
                if not 0 <= value <= cap:
                    return Violation(name, f"a value from 0 to {cap:g}", repr(value), at=(dtype,))
        return None

    def resolved(self, defaults: TechnologySpec) -> TechnologySpec:
        """This spec with every unset value taken from `defaults` (its node's row).

        Per-dtype tables merge key by key, so a spec can override one dtype's energy.
        """
        values: dict[str, Any] = {}
        for f in attrs.fields(TechnologySpec):
            mine, theirs = getattr(self, f.name), getattr(defaults, f.name)
            if isinstance(mine, dict) and isinstance(theirs, dict):
                values[f.name] = {**theirs, **mine}
            else:
                values[f.name] = theirs if mine is None else mine
        return TechnologySpec(**values)


@attrs.frozen
class TechnologyTable:
    """The packaged per-node defaults (accelsim/data/technology_nodes.yaml)."""

    common: TechnologySpec = field(doc="values every node shares unless its row gives its own")
    nodes: dict[str, TechnologySpec] = field(doc="one row per process node")
# --- end technology -------------------------------------------------------------------------
