"""Isolated time of one op on one chip, from its mapping and the bytes each memory level moves.

Model (one structure for every op, so `replay` can reproduce it wave by wave):

    isolated_time_s = launch_s + latency_s + waves * (wave_overhead_s + max(wave_compute_s,
                                                         max over levels of port_bytes / waves / bandwidth))

`port_bytes` are a level's bytes less those a level below it delivers straight to the units
(a level that `feeds_compute`, e.g. a large SRAM distributed next to the cores). Latencies are
weighted by where the bytes come from (`first_byte_latency_s`): an op that hits in L2 does not
wait for a farther SRAM. A GEMM's epilogue (its output tile stored, after the addend tile is
read when it accumulates) follows each wave's K loop, in `wave_overhead_s`, unless the kernel
library overlaps it with the next wave (`KernelMenu.overlapped_epilogue`); then only the last
wave's is exposed, in `latency_s`.

A wave is one work item (GEMM tile, stream chunk) on each busy unit; within a wave compute
overlaps the transfers through every level (double-buffered tiles), and the slowest resource
sets the wave's pace. Wave quantization, padded edge tiles, split-K partial sums and operands
re-streamed from MEMORY when they do not fit in cache all enter through `waves`, the padded tile
FLOPs and `level_bytes`. A shared cache level is reached through per-unit ports, so a kernel
that keeps only some units busy gets that share of its bandwidth; MEMORY bandwidth is chip-wide.

`level_bytes` come from the cache simulation when available (`traffic.Traffic` built from its
counters) or from `analytic_traffic`, a tile re-streaming model: an operand panel is fetched
from the next level once if the panels swept between two of its uses fit in the level's
capacity, else once per sweep. No simpy and no cache simulation here.

The same model chooses each GEMM's mapping (`map_op`): among the legal tilings `mapping`
lists, the one this model finds fastest under analytic traffic, which is what a library
heuristic (cuBLAS) approximates with its own performance model.
"""

from __future__ import annotations

import math

import attrs

from accelsim.graph import Op, OpGraph
from accelsim.hardware import HardwareSpec
from accelsim.mapping import (
    GemmMapping,
    Mapping,
    StreamMapping,
    accumulate_bytes,
    gemm_candidates,
    memory_efficiency,
    stream_bytes_estimate,
    stream_mapping,
)
from accelsim.traffic import Traffic
from accelsim.vocabulary import COMPUTE, LATENCY, LAUNCH, MEMORY, SHARED, dtype_bytes

#: Candidates this close to the fastest count as ties in `map_op`.
TIE_FRACTION = 0.01


@attrs.frozen
class OpTiming:
    """Isolated time of one op (alone on the chip) and the parts it is made of (see the module
    docstring); `replay` turns it into the contended time of the op in the step."""

    launch_s: float
    latency_s: float
    waves: int
    units_used: int
    wave_compute_s: float
    level_bytes: dict[str, float]
    level_bandwidth: dict[str, float]
    isolated_time_s: float
    bound: str
    wave_overhead_s: float = 0.0  # per wave, not overlapped: first stage fill
    flops: float = 0.0
    #: bytes crossing each level's port (`port_bytes`): `level_bytes` less what a level below
    #: that feeds the compute units delivers beside it; None: equal to `level_bytes`
    port_bytes: dict[str, float] | None = None

    @property
    def transfer_bytes(self) -> dict[str, float]:
        """Bytes each level's bandwidth must carry (what `replay` transfers)."""
        return self.level_bytes if self.port_bytes is None else self.port_bytes

    def wave_transfer_s(self, level: str) -> float:
        """Time one wave spends moving its share of `level`'s bytes through its port."""
        return self.transfer_bytes[level] / max(self.waves, 1) / self.level_bandwidth[level]


# --- bytes -----------------------------------------------------------------------------------
def gemm_compulsory_bytes(op: Op, dtype: str) -> float:
    """Bytes a GEMM must move to or from memory at least: A and B read, C written, once."""
    eb = dtype_bytes(dtype)
    b = max(op.batch_count, 1)
    return float(b * (op.m * op.k + op.k * op.n + op.m * op.n) * eb)


def compulsory_bytes(op: Op, dtype: str, nbytes: float | None = None) -> float:
    """Smallest number of bytes the op moves through MEMORY (cold caches)."""
    if op.kind == "gemm":
        return gemm_compulsory_bytes(op, dtype)
    return float(stream_bytes_estimate(op, dtype) if nbytes is None else nbytes)


def copy_units(mp: GemmMapping, tiles_per_copy: int) -> int:
    """Units that run one copy of a GEMM (one batch entry or split-K slice) side by side: a
    wave deals the units out copy after copy (the grid's batch and K-slice index varies
    slowest), so a copy's tiles run together on up to all the units the mapping uses."""
    return max(1, min(tiles_per_copy, mp.units_used))


def _gemm_restream_bytes(hw: HardwareSpec, op: Op, mp: GemmMapping, dtype: str,
                         capacity: float) -> float:
    """Reads of A and B from below a cache of `capacity` bytes under the mapping's loop order.

    Order 0 walks output tiles row by row (order 1 is the mirror image): call A the outer and
    B the inner operand. Tiles of one wave advance through K together, so a panel used by
    several tiles of the same wave is fetched once. Reuse across waves needs capacity:
    when whole tile rows fit in a wave, A is fetched once and B once per group of rows, unless
    B (the part of K one split covers) stays resident between groups; when a row spans several
    waves, the A panel is refetched each wave unless it stays resident, and all of B is
    swept once per tile row unless it stays resident.
    """
    eb = dtype_bytes(dtype)
    m, n, k, batch = max(op.m, 1), max(op.n, 1), max(op.k, 1), max(op.batch_count, 1)
    kc = math.ceil(k / mp.split_k)
    ntm, ntn = math.ceil(m / mp.tile_m), math.ceil(n / mp.tile_n)
    units = copy_units(mp, ntm * ntn)
    a_bytes, b_bytes = m * k * eb, n * k * eb
    if mp.loop_order == 0:
        outer_n, inner_n, outer_bytes, inner_bytes = ntm, ntn, a_bytes, b_bytes
        outer_panel, inner_panel = mp.tile_m * kc * eb, mp.tile_n * kc * eb
    else:
        outer_n, inner_n, outer_bytes, inner_bytes = ntn, ntm, b_bytes, a_bytes
        outer_panel, inner_panel = mp.tile_n * kc * eb, mp.tile_m * kc * eb
    inner_chunk = inner_bytes / mp.split_k
    if inner_n <= units:
        rows_per_wave = units // inner_n
        groups = math.ceil(outer_n / rows_per_wave)
        outer_fetch = 1
        resident = inner_chunk + min(outer_n, rows_per_wave) * outer_panel <= capacity
        inner_fetch = 1 if resident else groups
    else:
        waves_per_row = math.ceil(inner_n / units)
        outer_fetch = 1 if outer_panel + units * inner_panel <= capacity else waves_per_row
        inner_fetch = 1 if inner_chunk + outer_panel <= capacity else outer_n
    return float(batch * (outer_bytes * outer_fetch + inner_bytes * inner_fetch))


def _gemm_output_bytes(hw: HardwareSpec, op: Op, mp: GemmMapping, dtype: str) -> float:
    """C written once (and its addend read once when the op accumulates, C = A@B + D); with
    split-K each slice writes partial sums that a reduction reads back."""
    mn = max(op.m, 1) * max(op.n, 1) * max(op.batch_count, 1)
    out = mn * dtype_bytes(dtype) * (2 if op.accumulate else 1)
    if mp.split_k > 1:
        out += 2 * mp.split_k * mn * accumulate_bytes(hw, dtype)
    return float(out)


def analytic_traffic(hw: HardwareSpec, op: Op, mapping: Mapping, dtype: str,
                     nbytes: float | None = None, resident_bytes: float = 0.0) -> Traffic:
    """Bytes per level without simulation.

    The level nearest the units serves every tile load (A once per tile column, B once per
    tile row) and the output; each further level and MEMORY see what the level above misses
    under the re-streaming rule. A private level does not share panels between units, so it
    passes tile loads through. `resident_bytes` are input bytes already in the last cache
    level when the op starts (e.g. recurrent weights that fit, read by the previous timestep);
    they are not fetched from MEMORY again. Streaming ops move `nbytes` through every level.
    """
    names = [c.name for c in hw.caches]
    level_bytes: dict[str, float] = {}
    if isinstance(mapping, StreamMapping) or op.kind != "gemm":
        total = float(stream_bytes_estimate(op, dtype) if nbytes is None else nbytes)
        for name in names:
            level_bytes[name] = total
        level_bytes[MEMORY] = max(0.0, total - resident_bytes)
    else:
        eb = dtype_bytes(dtype)
        m, n, k, batch = max(op.m, 1), max(op.n, 1), max(op.k, 1), max(op.batch_count, 1)
        ntm, ntn = math.ceil(m / mapping.tile_m), math.ceil(n / mapping.tile_n)
        tile_loads = float(batch * (ntn * m * k + ntm * n * k) * eb)
        out = _gemm_output_bytes(hw, op, mapping, dtype)
        upper = tile_loads
        for i, lvl in enumerate(hw.caches):
            level_bytes[lvl.name] = upper + out
            if lvl.sharing == SHARED:
                below = _gemm_restream_bytes(hw, op, mapping, dtype, lvl.capacity_bytes)
                upper = min(upper, below)
            if i == len(hw.caches) - 1:
                break
        if not hw.caches:
            upper = _gemm_restream_bytes(hw, op, mapping, dtype, 0.0)
        compulsory_in = float(batch * (m * k + k * n) * eb)
        hbm_in = upper
        if resident_bytes > 0 and upper <= compulsory_in + 1e-9:
            hbm_in = max(0.0, upper - resident_bytes)
        level_bytes[MEMORY] = hbm_in + out
    hit_rate = {}
    chain = [*names, MEMORY]
    for a, b in zip(chain, chain[1:], strict=False):
        served = level_bytes[a]
        hit_rate[a] = 0.0 if served <= 0 else max(0.0, 1.0 - level_bytes[b] / served)
    return Traffic(level_bytes=level_bytes, hit_rate=hit_rate)


# --- time ------------------------------------------------------------------------------------
def level_bandwidths(hw: HardwareSpec, units_used: int) -> dict[str, float]:
    """Achievable bytes/s per level when `units_used` units are busy (efficiency included)."""
    cal = hw.calibration
    share = min(1.0, units_used / hw.compute.units)
    bw = {}
    for lvl in hw.caches:  # reached through per-unit ports, shared or private
        bw[lvl.name] = lvl.bandwidth_bytes_per_s * cal.cache_bandwidth_efficiency * share
    bw[MEMORY] = hw.memory.bandwidth_bytes_per_s * cal.bandwidth_efficiency
    return bw


def port_bytes(hw: HardwareSpec, level_bytes: dict[str, float]) -> dict[str, float]:
    """Bytes crossing each level's port. A level's bytes are what the units (or the level
    above) asked of it; when a level below `feeds_compute`, what that level delivers (its own
    bytes, which include everything below it) reaches the units over its own bandwidth and
    does not cross the ports of the levels between it and the units."""
    out = dict(level_bytes)
    for i, lvl in enumerate(hw.caches):
        feeder = next((c for c in hw.caches[i + 1:] if c.feeds_compute), None)
        if feeder is not None and lvl.name in out:
            out[lvl.name] = max(0.0, out[lvl.name] - level_bytes.get(feeder.name, 0.0))
    return out


def source_latencies_s(hw: HardwareSpec) -> dict[str, float]:
    """Load-to-use latency of a byte served by each level and by MEMORY: a level's own latency,
    no less than the levels its requests pass through first (all levels above it, unless it
    feeds the compute units directly); MEMORY's no less than the last level's."""
    out: dict[str, float] = {}
    above = 0.0
    for lvl in hw.caches:
        out[lvl.name] = lvl.latency_s if lvl.feeds_compute else max(lvl.latency_s, above)
        above = max(above, out[lvl.name])
    out[MEMORY] = max(hw.memory.latency_s, *(out.values())) if out else hw.memory.latency_s
    return out


def first_byte_latency_s(hw: HardwareSpec, level_bytes: dict[str, float] | None = None) -> float:
    """Latency of an operand stage, weighted by where the op's bytes come from: each level
    serves its bytes less those the next level supplied it, MEMORY its own bytes
    (`source_latencies_s` per source). Without bytes (or none moved): the slowest source,
    which is what a cold operand from MEMORY pays."""
    lat = source_latencies_s(hw)
    if level_bytes:
        chain = [c.name for c in hw.caches] + [MEMORY]
        served = {}
        for a, b in zip(chain, chain[1:] + [None], strict=True):
            below = level_bytes.get(b, 0.0) if b is not None else 0.0
            served[a] = max(0.0, level_bytes.get(a, 0.0) - below)
        total = sum(served.values())
        if total > 0:
            return sum(lat[name] * nbytes for name, nbytes in served.items()) / total
    return max(lat.values())


def _gemm_pipeline_latency_s(op: Op, mp: GemmMapping, latency_s: float, stages: int) -> float:
    """Little's law on the tile's K loop: with `stages` operand buffers (the kernel library's),
    at most stages - 1 are in flight, so each K step waits at least latency / (stages - 1)
    for its data. Thin tiles with little compute per step are bound by this, not by
    bandwidth."""
    kc = math.ceil(max(op.k, 1) / mp.split_k)
    steps = math.ceil(kc / mp.tile_k)
    return steps * latency_s / max(1, stages - 1)


#: Register tiles a GEMM tile is split into inside a unit: 128 threads for scalar FMA pipes,
#: 4 warps for matrix pipes (a warp owns an MMA fragment), i.e. one 4-warp thread block.
SCALAR_LANES_PER_TILE = 128
MATRIX_LANES_PER_TILE = 4


def local_feed_fraction(hw: HardwareSpec, mp: GemmMapping, dtype: str) -> float:
    """Fraction of the pipe's peak that the unit's local memory can feed for this tile shape.

    Each of the tile's register tiles (threads or warps) reads a row and a column strip of its
    square-ish sub-tile per K step from local memory: bytes per MAC = 2 * elem_bytes *
    sqrt(lanes / (tile_m * tile_n)). Small tiles need more bytes per MAC than local memory
    delivers per cycle, which is why a 32x32 FP32 tile runs well below peak.
    """
    bw = hw.compute.local_memory_bandwidth_bytes_per_cycle
    if bw <= 0:
        return 1.0
    pipe = hw.compute.pipe(dtype)
    lanes = MATRIX_LANES_PER_TILE if pipe.min_tile > 1 else SCALAR_LANES_PER_TILE
    bytes_per_mac = 2.0 * dtype_bytes(dtype) * math.sqrt(lanes / (mp.tile_m * mp.tile_n))
    macs_per_cycle = hw.compute.peak_flop_rate(dtype) / 2.0 / hw.compute.units / hw.compute.run_clock_hz
    return min(1.0, bw / (bytes_per_mac * macs_per_cycle))


def _gemm_wave_compute_s(hw: HardwareSpec, op: Op, mp: GemmMapping, dtype: str) -> float:
    """One tile (padded to the tile shape and the K stage) on one unit at its share of peak,
    slowed when local memory cannot feed the tile shape."""
    kc = math.ceil(max(op.k, 1) / mp.split_k)
    k_padded = math.ceil(kc / mp.tile_k) * mp.tile_k
    tile_flops = 2.0 * mp.tile_m * mp.tile_n * k_padded
    unit_rate = hw.compute.peak_flop_rate(dtype) / hw.compute.units
    rate = unit_rate * hw.compute_efficiency(dtype) * local_feed_fraction(hw, mp, dtype)
    return tile_flops / rate


def _gemm_epilogue_s(hw: HardwareSpec, op: Op, mp: GemmMapping, dtype: str) -> float:
    """One tile's epilogue through the unit's port: the output tile stored, after its addend
    tile is read when the op accumulates (C = A@B + D). Exposed once per wave unless the
    kernel library overlaps it with the next tile (`KernelMenu.overlapped_epilogue`)."""
    cal = hw.calibration
    out_bytes = mp.tile_m * mp.tile_n * (accumulate_bytes(hw, dtype) if mp.split_k > 1
                                         else dtype_bytes(dtype))
    out_bytes *= 2 if op.accumulate and mp.split_k == 1 else 1  # split-K: the reduction reads D
    if hw.caches:
        port = hw.caches[0].bandwidth_bytes_per_s * cal.cache_bandwidth_efficiency
    else:
        port = hw.memory.bandwidth_bytes_per_s * cal.bandwidth_efficiency
    return out_bytes / (port / hw.compute.units)


def op_timing(hw: HardwareSpec, op: Op, mapping: Mapping, traffic: Traffic,
              dtype: str) -> OpTiming:
    """Isolated time of `op` under `mapping` with the bytes per level in `traffic`."""
    cal = hw.calibration
    waves = max(1, mapping.waves)
    units_used = max(1, mapping.units_used)
    bandwidth = level_bandwidths(hw, units_used)
    if isinstance(mapping, GemmMapping):  # the library's loads of K-major operands
        bandwidth[MEMORY] *= memory_efficiency(hw, op, dtype)
    level_bytes = {name: float(traffic.level_bytes.get(name, 0.0)) for name in bandwidth}
    first_byte_s = first_byte_latency_s(hw, level_bytes)
    last_epilogue_s = 0.0  # the epilogue exposed once, after the last wave
    if isinstance(mapping, GemmMapping):
        compute_s = _gemm_wave_compute_s(hw, op, mapping, dtype)
        menu = hw.kernel_library.menu(dtype, op.trans_a, op.trans_b)
        pipeline_s = _gemm_pipeline_latency_s(op, mapping, first_byte_s, menu.stages)
        # The K loop runs at the slower of its arithmetic and its operand round trips.
        wave_compute_s = max(compute_s, pipeline_s)
        # Each wave waits for its first operand stage. Its epilogue follows its K loop, unless
        # the library overlaps it with the next wave's; the last wave's is always exposed.
        wave_overhead_s = first_byte_s
        epilogue_s = _gemm_epilogue_s(hw, op, mapping, dtype)
        if menu.overlapped_epilogue:
            last_epilogue_s = epilogue_s
        else:
            wave_overhead_s += epilogue_s
    else:
        share = units_used / hw.compute.units
        rate = hw.compute.vector_flop_rate * cal.vector_efficiency * share
        wave_compute_s = compute_s = max(op.flops, 0.0) / waves / rate
        pipeline_s = 0.0
        wave_overhead_s = 0.0
    ports = port_bytes(hw, level_bytes)
    transfer = {name: ports[name] / waves / bandwidth[name] for name in bandwidth}
    wave_s = wave_overhead_s + max(wave_compute_s, *transfer.values())
    # Split-K partial sums are added by a second (reduction) kernel: one more launch.
    kernels = 2 if isinstance(mapping, GemmMapping) and mapping.split_k > 1 else 1
    launch_s = kernels * cal.launch_overhead_s
    latency_s = first_byte_s + last_epilogue_s
    isolated_time_s = launch_s + latency_s + waves * wave_s
    # What paces the waves (arithmetic, K-loop round trips, a level's transfers), unless the
    # fixed costs outweigh all the waves together.
    pace = {COMPUTE: compute_s, LATENCY: pipeline_s, **transfer}
    bound = max(pace, key=lambda key: pace[key])
    if launch_s > waves * wave_s:
        bound = LAUNCH
    elif latency_s + waves * wave_overhead_s > waves * pace[bound]:
        bound = LATENCY
    return OpTiming(launch_s=launch_s, latency_s=latency_s, waves=waves, units_used=units_used,
                    wave_compute_s=wave_compute_s, level_bytes=level_bytes,
                    level_bandwidth=bandwidth, isolated_time_s=isolated_time_s, bound=bound,
                    wave_overhead_s=wave_overhead_s, flops=float(op.flops),
                    port_bytes=ports if ports != level_bytes else None)


def lower_bound_s(hw: HardwareSpec, op: Op, dtype: str, nbytes: float | None = None) -> float:
    """max(FLOPs / peak FLOP/s, compulsory bytes / peak bandwidth): no op can beat it."""
    peak = (hw.compute.peak_flop_rate(dtype) if op.kind == "gemm"
            else hw.compute.vector_flop_rate)
    return max(op.flops / peak,
               compulsory_bytes(op, dtype, nbytes) / hw.memory.bandwidth_bytes_per_s)


# --- mapping choice ----------------------------------------------------------------------------
def map_op(hw: HardwareSpec, op: Op, dtype: str, nbytes: float | None = None,
           resident_bytes: float = 0.0) -> Mapping:
    """The mapping of one op: for a GEMM the candidate (`mapping.gemm_candidates`) this model
    finds fastest under analytic traffic; for a streaming op, chunks over all units. `nbytes`
    (bytes read plus written, e.g. `graph.op_bytes(op)`) sizes a streaming op;
    `resident_bytes` are operand bytes already in the last cache level (`analytic_traffic`),
    so candidates are scored on where their operands actually come from."""
    if op.kind != "gemm":
        return stream_mapping(hw, stream_bytes_estimate(op, dtype) if nbytes is None else nbytes)
    scored = []
    for cand in gemm_candidates(hw, op, dtype):
        traffic = analytic_traffic(hw, op, cand, dtype, resident_bytes=resident_bytes)
        t = op_timing(hw, op, cand, traffic, dtype)
        scored.append((t.isolated_time_s, t.level_bytes.get(MEMORY, 0.0), cand))
    fastest = min(s[0] for s in scored)
    # Among near-ties (within TIE_FRACTION), take the one moving fewest HBM bytes, then the
    # largest tile: it leaves the most bandwidth to concurrent work, as libraries prefer.
    near = [s for s in scored if s[0] <= fastest * (1.0 + TIE_FRACTION)]
    return min(near, key=lambda s: (s[1], -s[2].tile_m * s[2].tile_n, s[0]))[2]


def resident_weight_bytes(hw: HardwareSpec, graph: OpGraph, op: Op, seen: set[int]) -> float:
    """Weight bytes a GEMM reads that an earlier op of the step read already and that fit in
    the last shared cache level: a recurrent layer's kernel at timestep t + 1 (what a large
    SRAM keeps resident). The cache simulation decides the real traffic; this is what the
    mapper assumes when it scores candidates."""
    last = hw.caches[-1] if hw.caches else None
    if op.kind != "gemm" or last is None or last.sharing != SHARED:
        return 0.0
    eb = dtype_bytes(graph.tensors[op.inputs[1]].dtype) if len(op.inputs) > 1 else 0
    operand = {0: op.m * op.k * eb, 1: op.k * op.n * eb}
    out = 0.0
    for i, t in enumerate(op.inputs[:2]):
        tensor = graph.tensors[t]
        if tensor.role == "weight" and t in seen and tensor.nbytes <= last.capacity_bytes:
            out += min(tensor.nbytes, operand[i] * max(op.batch_count, 1))
    return float(out)


def map_graph(hw: HardwareSpec, graph: OpGraph, dtype: str) -> list[Mapping]:
    """The mapping of every op, computed once per (op signature, resident bytes): repeated
    timesteps are free. A GEMM whose weight an earlier op read and the last cache level holds
    is scored with that weight resident (`resident_weight_bytes`)."""
    memo: dict[tuple, Mapping] = {}
    seen: set[int] = set()
    out = []
    for op in graph.ops:
        nb = graph.op_bytes(op)
        resident = resident_weight_bytes(hw, graph, op, seen)
        key = (op.signature, nb if op.kind != "gemm" else 0, resident)
        if key not in memo:
            memo[key] = map_op(hw, op, dtype, nbytes=nb, resident_bytes=resident)
        out.append(memo[key])
        seen.update(op.inputs)
    return out
