"""Stand-ins for `accelsim.mapping` / `accelsim.timing` used only by these tests.

They follow the documented interface (GemmMapping / StreamMapping fields) with simple fixed
tiles, so the trace and replay tests do not depend on the mapping heuristics.
"""

from __future__ import annotations

import math

import attrs


@attrs.frozen
class FakeGemmMapping:
    tile_m: int
    tile_n: int
    tile_k: int
    split_k: int
    loop_order: int
    units_used: int
    waves: int
    tiles: int


@attrs.frozen
class FakeStreamMapping:
    units_used: int
    waves: int
    chunk_bytes: int


def fake_map_op(hw, op, dtype, tile=(64, 64, 32), chunk_bytes=16384):
    units = hw.compute.units
    if op.kind == "gemm":
        tm, tn, tk = (min(t, max(1, d)) for t, d in zip(tile, (op.m, op.n, op.k), strict=True))
        tiles = math.ceil(op.m / tm) * math.ceil(op.n / tn) * op.batch
        used = min(units, tiles)
        return FakeGemmMapping(tm, tn, tk, 1, 0, used, math.ceil(tiles / used), tiles)
    return FakeStreamMapping(units, 1, chunk_bytes)
