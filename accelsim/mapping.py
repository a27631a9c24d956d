"""Where each op's work goes on the chip: GEMM tile shapes, split-K, loop order; stream chunks.

A GEMM is cut into output tiles (tile_m x tile_n, optionally split along K); each compute unit
computes one tile at a time, so `ceil(tiles / units)` waves run one after another (wave
quantization). The candidate tiles are those whose double-buffered operand panels fit in the
unit's local memory and whose accumulators fit in half its register file, on the granule of the
matrix pipe (16 for tensor cores), like the kernel table of a vendor BLAS.

This module does not time anything itself. To choose among candidates, `map_op` asks the timing
model (imported lazily, `timing` imports this module) which candidate is fastest under analytic
traffic: that is what a library heuristic (cuBLAS) approximates with its own performance model.
"""

from __future__ import annotations

import math

import attrs

from accelsim.graph import Op, OpGraph
from accelsim.hardware import HardwareSpec
from accelsim.units import DTYPE_BYTES

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
#: Candidates this close to the fastest count as ties in `map_op`.
TIE_FRACTION = 0.01


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


def elem_bytes(dtype: str) -> int:
    """Bytes of one element of `dtype` (4 when unknown)."""
    return DTYPE_BYTES.get(dtype, 4)


def accumulate_bytes(hw: HardwareSpec, dtype: str) -> int:
    """Bytes of one accumulator of the pipe that runs `dtype`."""
    return elem_bytes(hw.compute.pipe(dtype).accumulate)


def tile_shapes(hw: HardwareSpec, dtype: str) -> list[tuple[int, int, int]]:
    """(tile_m, tile_n, tile_k) that fit one unit: operand stages in local memory, accumulators
    in half the register file (the other half holds operand fragments and addresses)."""
    pipe = hw.compute.pipe(dtype)
    eb = elem_bytes(dtype)
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
    m, n, k, batch = max(op.m, 1), max(op.n, 1), max(op.k, 1), max(op.batch, 1)
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


def stream_mapping(hw: HardwareSpec, nbytes: float) -> StreamMapping:
    """Chunks of `STREAM_CHUNK_BYTES` dealt round-robin to the units."""
    units = hw.compute.units
    chunks = max(1, math.ceil(nbytes / STREAM_CHUNK_BYTES))
    return StreamMapping(units_used=min(units, chunks), waves=math.ceil(chunks / units),
                         chunk_bytes=STREAM_CHUNK_BYTES)


def stream_bytes_estimate(op: Op, dtype: str) -> float:
    """Bytes of a streaming op when the graph is not at hand: its FLOPs as elements, read twice
    and written once (callers with a graph pass `nbytes=graph.op_bytes(op)` instead)."""
    return 3.0 * max(op.flops, 1.0) * elem_bytes(dtype) + op.extra_bytes


def map_graph(hw: HardwareSpec, graph: OpGraph, dtype: str) -> list[GemmMapping | StreamMapping]:
    """The mapping of every op, computed once per op signature (repeated timesteps are free)."""
    memo: dict[tuple, GemmMapping | StreamMapping] = {}
    out = []
    for op in graph.ops:
        nb = graph.op_bytes(op)
        key = (op.signature, nb if op.kind != "gemm" else 0)
        if key not in memo:
            memo[key] = map_op(hw, op, dtype, nbytes=nb)
        out.append(memo[key])
    return out


def map_op(hw: HardwareSpec, op: Op, dtype: str,
           nbytes: float | None = None) -> GemmMapping | StreamMapping:
    """The mapping of one op: for a GEMM the candidate the timing model finds fastest under
    analytic traffic; for a streaming op, chunks over all units. `nbytes` (bytes read plus
    written, e.g. `graph.op_bytes(op)`) sizes a streaming op."""
    if op.kind != "gemm":
        return stream_mapping(hw, stream_bytes_estimate(op, dtype) if nbytes is None else nbytes)
    from accelsim import timing  # lazy: timing imports mapping

    scored = []
    for cand in gemm_candidates(hw, op, dtype):
        t = timing.op_timing(hw, op, cand, timing.analytic_traffic(hw, op, cand, dtype), dtype)
        scored.append((t.time_s, t.level_bytes.get(timing.HBM, 0.0), cand))
    fastest = min(s[0] for s in scored)
    # Among near-ties (within TIE_FRACTION), take the one moving fewest HBM bytes, then the
    # largest tile: it leaves the most bandwidth to concurrent work, as libraries prefer.
    near = [s for s in scored if s[0] <= fastest * (1.0 + TIE_FRACTION)]
    return min(near, key=lambda s: (s[1], -s[2].tile_m * s[2].tile_n, s[0]))[2]
