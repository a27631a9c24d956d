"""Where each op's work goes on the chip: GEMM tile shapes, split-K, loop order; stream chunks.

A GEMM is cut into output tiles (tile_m x tile_n, optionally split along K); each compute unit
computes one tile at a time, so `ceil(tiles / units)` waves run one after another (wave
quantization). The candidate tiles are those whose double-buffered operand panels fit in the
unit's local memory and whose accumulators fit in half its register file, on the granule of the
matrix pipe (16 for tensor cores), like the kernel table of a vendor BLAS.

This module lists the legal mappings and times nothing: `timing.map_op` chooses among them
with the timing model (data flows mapping -> timing, never back).
"""

from __future__ import annotations

import math

import attrs

from accelsim.graph import Op
from accelsim.hardware import HardwareSpec
from accelsim.vocabulary import dtype_bytes

#: Tile edges a kernel library offers (elements); a pipe's `min_tile` must divide them.
TILE_EDGES = (32, 64, 128, 256)
#: K-depth of one pipeline stage, largest that fits (elements).
TILE_K_CHOICES = (32, 16, 8)
#: Pipeline stages held in local memory (double buffering).
STAGES = 2
#: Split-K factors considered.
SPLIT_K_CHOICES = (1, 2, 4, 8, 16, 32, 64)
#: Smallest K slice (elements) a split-K work item gets: below this the partial sums cost more
#: than the parallelism gains.
MIN_K_PER_SPLIT = 256
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


def tile_shapes(hw: HardwareSpec, dtype: str) -> list[tuple[int, int, int]]:
    """(tile_m, tile_n, tile_k) that fit one unit: operand stages in local memory, accumulators
    in half the register file (the other half holds operand fragments and addresses)."""
    pipe = hw.compute.pipe(dtype)
    eb = dtype_bytes(dtype)
    acc = accumulate_bytes(hw, dtype)
    rf = hw.compute.register_file_bytes
    local = hw.compute.local_memory_bytes
    edges = [e for e in TILE_EDGES if e % pipe.min_tile == 0] or [pipe.min_tile]
    shapes = []
    for tm in edges:
        for tn in edges:
            if max(tm, tn) > 4 * min(tm, tn):
                continue
            if rf and tm * tn * acc > rf // 2:
                continue
            for tk in TILE_K_CHOICES:
                tk = max(tk, pipe.min_tile)
                if STAGES * (tm + tn) * tk * eb <= local:
                    shapes.append((tm, tn, tk))
                    break
    if not shapes:  # a tiny local memory: the smallest legal tile, single stage
        e = edges[0]
        shapes.append((e, e, max(pipe.min_tile, 1)))
    return shapes


def gemm_candidates(hw: HardwareSpec, op: Op, dtype: str) -> list[GemmMapping]:
    """Every legal (tile, split-K, loop order) mapping of a GEMM op."""
    units = hw.compute.units
    m, n, k, batch = max(op.m, 1), max(op.n, 1), max(op.k, 1), max(op.batch_count, 1)
    out = []
    for tm, tn, tk in tile_shapes(hw, dtype):
        base = math.ceil(m / tm) * math.ceil(n / tn) * batch
        for split in SPLIT_K_CHOICES:
            if split > 1 and (k / split < MIN_K_PER_SPLIT or base >= units):
                break
            tiles = base * split
            for order in (0, 1):
                out.append(GemmMapping(tile_m=tm, tile_n=tn, tile_k=tk, split_k=split,
                                       loop_order=order, units_used=min(tiles, units),
                                       waves=math.ceil(tiles / units), tiles=tiles))
    return out


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
