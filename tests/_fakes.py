"""Fixed mappings for the trace tests: real `GemmMapping` / `StreamMapping` records with simple
fixed tiles (not the ones `timing.map_op` would choose), so the trace tests do not depend on the
mapping heuristics.
"""

from __future__ import annotations

import math

from accelsim.mapping import GemmMapping, Mapping, StreamMapping


def fake_map_op(hw, op, dtype, tile=(64, 64, 32), chunk_bytes=16384) -> Mapping:
    units = hw.compute.units
    if op.kind == "gemm":
        tm, tn, tk = (min(t, max(1, d)) for t, d in zip(tile, (op.m, op.n, op.k), strict=True))
        tiles = math.ceil(op.m / tm) * math.ceil(op.n / tn) * op.batch_count
        used = min(units, tiles)
        return GemmMapping(tm, tn, tk, 1, 0, used, math.ceil(tiles / used), tiles)
    return StreamMapping(units, 1, chunk_bytes)
