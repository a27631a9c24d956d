"""Where each op's work goes on the chip: GEMM tile shapes, split-K, loop order; stream chunks.

A GEMM is cut into output tiles (tile_m x tile_n, optionally split along K); each compute unit
computes one tile at a time, so `ceil(tiles / units)` waves run one after another (wave
quantization). The candidate tiles, K-stage depths and split-K factors are those the spec's
kernel library offers for the GEMM's dtype and operand layout (`HardwareSpec.kernel_library`,
data, with a documented default menu), restricted to tiles whose double-buffered operand panels
fit in the unit's local memory and whose accumulators fit in half its register file, on the
granule of the matrix pipe (16 for tensor cores).

This module lists the legal mappings and times nothing: `timing.map_op` chooses among them
with the timing model (data flows mapping -> timing, never back).
"""

from __future__ import annotations

import math

import attrs

from accelsim.graph import Op
from accelsim.hardware import HardwareSpec
from accelsim.vocabulary import dtype_bytes

#: Bytes one unit streams per chunk of an elementwise / reduction op.
STREAM_CHUNK_BYTES = 64 * 1024
STREAM_KINDS = ("elementwise", "reduce", "softmax", "data", "update")


@attrs.frozen
class GemmMapping:
    """Tiling of one GEMM: tile shape, K split, traversal order and the resulting waves."""

    tile_m: int
    tile_n: int
    tile_k: int
    split_k: int
    loop_order: int  # 0: row-major over output tiles (sweep N inside M), 1: column-major
    units_used: int
    waves: int
    tiles: int  # output tiles x split_k (x batch) = work items


@attrs.frozen
class StreamMapping:
    """Chunking of a streaming op (elementwise, reduce, softmax, data, update) over units."""

    units_used: int
    waves: int
    chunk_bytes: int


#: Where one op's work goes: a GEMM's tiling or a streaming op's chunks.
Mapping = GemmMapping | StreamMapping


def accumulate_bytes(hw: HardwareSpec, dtype: str) -> int:
    """Bytes of one accumulator of the pipe that runs `dtype`."""
    return dtype_bytes(hw.compute.pipe(dtype).accumulate)


def tile_shapes(hw: HardwareSpec, dtype: str, trans_a: bool = False,
                trans_b: bool = False) -> list[tuple[int, int, int]]:
    """(tile_m, tile_n, tile_k) of the library's menu (`kernel_library.menu`) that fit one unit:
    the menu's `stages` operand stages in local memory, accumulators in half the register file (the other half
    holds operand fragments and addresses)."""
    menu = hw.kernel_library.menu(dtype, trans_a, trans_b)
    pipe = hw.compute.pipe(dtype)
    eb = dtype_bytes(dtype)
    acc = accumulate_bytes(hw, dtype)
    rf = hw.compute.register_file_bytes
    local = hw.compute.local_memory_bytes
    granule = pipe.min_tile
    offered = [(tm, tn) for tm, tn in menu.shapes() if tm % granule == 0 and tn % granule == 0]
    if not offered:  # no menu tile on the pipe's granule: the granule itself
        offered = [(granule, granule)]
    shapes = []
    for tm, tn in offered:
        if rf and tm * tn * acc > rf // 2:
            continue
        for tk in menu.tile_k:
            tk = max(tk, granule)
            if menu.stages * (tm + tn) * tk * eb <= local:
                shapes.append((tm, tn, tk))
                break
    if not shapes:  # a tiny local memory: the menu's smallest tile, one granule deep
        tm, tn = min(offered, key=lambda t: (t[0] * t[1], t))
        shapes.append((tm, tn, max(granule, 1)))
    return shapes


def gemm_candidates(hw: HardwareSpec, op: Op, dtype: str) -> list[GemmMapping]:
    """Every legal (tile, split-K, loop order) mapping of a GEMM op on the library's menu."""
    units = hw.compute.units
    menu = hw.kernel_library.menu(dtype, op.trans_a, op.trans_b)
    m, n, k, batch = max(op.m, 1), max(op.n, 1), max(op.k, 1), max(op.batch_count, 1)
    out = []
    for tm, tn, tk in tile_shapes(hw, dtype, op.trans_a, op.trans_b):
        base = math.ceil(m / tm) * math.ceil(n / tn) * batch
        for split in menu.split_k:
            if split > 1 and (k / split < menu.min_k_per_split or base >= units):
                break
            tiles = base * split
            for order in (0, 1):
                out.append(GemmMapping(tile_m=tm, tile_n=tn, tile_k=tk, split_k=split,
                                       loop_order=order, units_used=min(tiles, units),
                                       waves=math.ceil(tiles / units), tiles=tiles))
    return out


def k_major_operands(op: Op) -> tuple[bool, bool]:
    """Whether A and B are stored with K contiguous (row-major storage: A as [m, k] unless
    `trans_a`, B as [n, k] when `trans_b`)."""
    return not op.trans_a, op.trans_b


def memory_efficiency(hw: HardwareSpec, op: Op, dtype: str) -> float:
    """Fraction of the achievable memory bandwidth a GEMM's kernel reaches: the operand bytes
    stored K-contiguous move at the library's `k_major_memory_efficiency` (or at
    `k_major_unaligned_memory_efficiency` when their row stride, K x element bytes, is not a
    multiple of `k_major_aligned_stride_bytes`), the rest (and C) at full rate, weighted by
    their compulsory bytes (a harmonic mean: time adds)."""
    menu = hw.kernel_library.menu(dtype, op.trans_a, op.trans_b)
    m, n, k = max(op.m, 1), max(op.n, 1), max(op.k, 1)
    eff = menu.k_major_memory_efficiency
    aligned = menu.k_major_aligned_stride_bytes
    if aligned and (k * dtype_bytes(dtype)) % aligned:  # the row stride of a K-major operand
        eff = menu.k_major_unaligned_memory_efficiency
    if eff >= 1.0 or op.kind != "gemm":
        return 1.0
    a_major, b_major = k_major_operands(op)
    slow = m * k * a_major + k * n * b_major
    total = m * k + k * n + m * n
    return 1.0 / (slow / total / eff + (total - slow) / total)


def padding_waste(hw: HardwareSpec, op: Op, mp: GemmMapping, dtype: str) -> float:
    """Fraction of a GEMM's tile work that pads beyond its shape rounded up to the pipe's
    granule (`min_tile`; 1 for scalar pipes): edge tiles larger than what is left of M or N,
    and K slices padded to the stage depth. Padding up to the granule is the pipe's, not the
    mapping's, so it is not counted."""
    g = max(1, hw.compute.pipe(dtype).min_tile)
    m, n, k = max(op.m, 1), max(op.n, 1), max(op.k, 1)
    kc = math.ceil(k / mp.split_k)

    def up(x: int, q: int) -> int:
        return math.ceil(x / q) * q

    needed = up(m, g) * up(n, g) * up(kc, g)
    padded = up(m, mp.tile_m) * up(n, mp.tile_n) * max(up(kc, mp.tile_k), up(kc, g))
    return max(0.0, 1.0 - needed / padded)


def stream_mapping(hw: HardwareSpec, nbytes: float) -> StreamMapping:
    """Chunks of `STREAM_CHUNK_BYTES` dealt round-robin to the units."""
    units = hw.compute.units
    chunks = max(1, math.ceil(nbytes / STREAM_CHUNK_BYTES))
    return StreamMapping(units_used=min(units, chunks), waves=math.ceil(chunks / units),
                         chunk_bytes=STREAM_CHUNK_BYTES)


def stream_bytes_estimate(op: Op, dtype: str) -> float:
    """Bytes of a streaming op when the graph is not at hand: its FLOPs as elements, read twice
    and written once (callers with a graph pass `nbytes=graph.op_bytes(op)` instead)."""
    return 3.0 * max(op.flops, 1.0) * dtype_bytes(dtype) + op.extra_bytes
