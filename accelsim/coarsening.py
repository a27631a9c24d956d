"""Block sizes of the coalesced mode: how coarse a cache simulation may be, and why.

Coalesced simulation replaces each level's line by a block (a power of two of lines), so a
frontier step's ~1e11 line accesses become ~1e7 block accesses. Two different rules choose
the block, for two different uses (docs/cache.md, "Coarsening"):

* `step_block_bytes`: a whole training step (`accelsim.trace`): every level's line times ONE
  power-of-two factor, grown until the first level sees few enough block accesses, but each
  level keeps at least `MIN_BLOCKS_PER_LEVEL` blocks and the state stays bounded.
* `tile_block_bytes`: one isolated GEMM (`accelsim.validate`): the largest power of two that
  divides every tile's bytes, so each tile of the tile-major layout is whole blocks, with at
  least `min_sets` sets left in the level.

`coarse_levels` turns levels and blocks into the block-granular levels the kernel simulates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from accelsim.hardware import CacheLevelSpec
from accelsim.vocabulary import PRIVATE

#: Coalesced mode: blocks grow until the first level sees at most this many block accesses ...
MAX_COALESCED_ACCESSES = 40_000_000
#: ... but every level keeps at least this many blocks.
MIN_BLOCKS_PER_LEVEL = 256
#: ... and the block state (8 B per block) stays below this.
MAX_COALESCED_STATE_BYTES = 256 * 2**20


def state_bytes(levels: Sequence[CacheLevelSpec], n_units: int) -> int:
    """Bytes of simulator state the levels need: 8 B per line (per instance when private)."""
    return sum(8 * lv.lines * (n_units if lv.sharing == PRIVATE else 1) for lv in levels)


def _pow2_floor(x: float) -> int:
    return 1 << max(0, int(math.floor(math.log2(max(1.0, x)))))


def _pow2_ceil(x: float) -> int:
    return 1 << max(0, int(math.ceil(math.log2(max(1.0, x)))))


def step_block_bytes(levels: Sequence[CacheLevelSpec], stream_bytes: float,
                     min_blocks: int = MIN_BLOCKS_PER_LEVEL,
                     max_accesses: float = MAX_COALESCED_ACCESSES,
                     n_units: int = 1) -> list[int]:
    """Block size per level: every level's line times one power-of-two factor.

    One factor for all levels keeps the ratio of granules between levels (a lower level sees
    the requests of the level above whole, as with lines; a bigger lower block would turn the
    next requests into spatial hits that line-granular caches do not have). The factor grows
    until the first level sees at most `max_accesses` blocks of `stream_bytes`, but not beyond
    the point where a level keeps fewer than `min_blocks` blocks (nor fewer than one set) --
    except that it always grows until the block state fits `MAX_COALESCED_STATE_BYTES` (a
    64 GiB level has 2^29 lines of 128 B).
    """
    need = _pow2_ceil(stream_bytes / max_accesses / levels[0].line_bytes)
    cap = min(_pow2_floor(lv.lines / max(min_blocks, lv.ways or 1)) for lv in levels)
    state = _pow2_ceil(state_bytes(levels, n_units) / MAX_COALESCED_STATE_BYTES)
    factor = max(1, min(need, cap), state)
    return [lv.line_bytes * factor for lv in levels]


def coarse_levels(levels: Sequence[CacheLevelSpec], blocks: Sequence[int]
                  ) -> list[CacheLevelSpec]:
    """Levels with block-sized lines; capacity rounded down to whole sets of `ways` blocks
    (fully associative when less than one set fits)."""
    out = []
    for lv, b in zip(levels, blocks, strict=True):
        ways = lv.ways or 0
        n_blocks = max(1, lv.capacity_bytes // b)
        if ways and n_blocks >= ways:
            n_blocks = n_blocks // ways * ways
        else:
            ways = 0
        out.append(attrs.evolve(lv, capacity_bytes=n_blocks * b, line_bytes=b, ways=ways))
    return out


def tile_block_bytes(tile_bytes: Sequence[int], level: CacheLevelSpec,
                     min_sets: int = 64) -> int:
    """Block size for simulating one GEMM's tiles in ``level``.

    The largest power of two that (a) divides every tile's byte size, so in the tile-major
    layout (full-tile slots) each tile is whole, aligned blocks, and (b) leaves the level at
    least ``min_sets`` sets of ``ways`` blocks, so tiles spread over sets roughly as their
    lines would; never below the level's line size.
    """
    ways = level.ways or level.capacity_bytes // level.line_bytes
    block = 1 << 62
    for t in tile_bytes:
        if t > 0:
            block = min(block, t & -t)
    cap = max(1, level.capacity_bytes // (ways * min_sets))
    block = min(block, 1 << (cap.bit_length() - 1))
    return max(block, level.line_bytes)


__all__ = [
    "MAX_COALESCED_ACCESSES", "MAX_COALESCED_STATE_BYTES", "MIN_BLOCKS_PER_LEVEL",
    "coarse_levels", "state_bytes", "step_block_bytes", "tile_block_bytes",
]
