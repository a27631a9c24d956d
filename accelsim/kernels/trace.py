"""Address streams of tiled kernels as byte runs (numba).

A *run* is ``(addr, nbytes, is_write, unit)``: one contiguous access by one compute unit.
Emitting runs instead of lines keeps traces 1-2 orders of magnitude smaller; the cache kernel
splits runs into each level's line granules. Every generator counts first and then fills
preallocated arrays, so no Python list grows per run.
"""

import numba as nb
import numpy as np


@nb.njit(cache=True, inline="always")
def _cdiv(a, b):
    return (a + b - 1) // b


@nb.njit(cache=True)
def _tile_runs(emit, out_a, out_n, out_w, out_u, pos, base, rows, cols, r0, r1, c0, c1,
               tr, tc, transposed, tile_major, elem_bytes, is_write, u):
    """Runs of the logical tile [r0:r1, c0:c1] of a rows x cols matrix; returns the new pos.

    Row-major storage (``transposed`` stores the matrix as cols x rows) emits one run per
    contiguous segment. Tile-major storage gives every tile a full tr x tc slot, tile row by
    tile row, so every tile starts at a multiple of the tile size (what block-granular
    simulation needs); an edge tile is a shorter run at the start of its slot.
    """
    if tile_major:
        ti = r0 // tr
        tj = c0 // tc
        off = (ti * ((cols + tc - 1) // tc) + tj) * tr * tc
        if emit:
            out_a[pos] = base + off * elem_bytes
            out_n[pos] = (r1 - r0) * (c1 - c0) * elem_bytes
            out_w[pos] = is_write
            out_u[pos] = u
        return pos + 1
    if not transposed:
        if emit:
            seg = (c1 - c0) * elem_bytes
            for r in range(r0, r1):
                out_a[pos] = base + (r * cols + c0) * elem_bytes
                out_n[pos] = seg
                out_w[pos] = is_write
                out_u[pos] = u
                pos += 1
            return pos
        return pos + (r1 - r0)
    if emit:
        seg = (r1 - r0) * elem_bytes
        for c in range(c0, c1):
            out_a[pos] = base + (c * rows + r0) * elem_bytes
            out_n[pos] = seg
            out_w[pos] = is_write
            out_u[pos] = u
            pos += 1
        return pos
    return pos + (c1 - c0)


@nb.njit(cache=True)
def _gemm_pass(emit, out_a, out_n, out_w, out_u, m, n, k, tile_m, tile_n, tile_k, elem_bytes,
               a_base, b_base, c_base, a_trans, b_trans, loop_order, n_units, tile_major):
    tiles_m = _cdiv(m, tile_m)
    tiles_n = _cdiv(n, tile_n)
    tiles_k = _cdiv(k, tile_k)
    n_tiles = tiles_m * tiles_n
    pos = 0
    for w0 in range(0, n_tiles, n_units):
        w1 = min(w0 + n_units, n_tiles)
        for kk in range(tiles_k):
            k0 = kk * tile_k
            k1 = min(k0 + tile_k, k)
            for t in range(w0, w1):
                if loop_order == 0:
                    mi = t // tiles_n
                    ni = t % tiles_n
                else:
                    ni = t // tiles_m
                    mi = t % tiles_m
                u = t - w0
                m0 = mi * tile_m
                m1 = min(m0 + tile_m, m)
                n0 = ni * tile_n
                n1 = min(n0 + tile_n, n)
                pos = _tile_runs(emit, out_a, out_n, out_w, out_u, pos, a_base, m, k,
                                 m0, m1, k0, k1, tile_m, tile_k, a_trans, tile_major,
                                 elem_bytes, 0, u)
                pos = _tile_runs(emit, out_a, out_n, out_w, out_u, pos, b_base, k, n,
                                 k0, k1, n0, n1, tile_k, tile_n, b_trans, tile_major,
                                 elem_bytes, 0, u)
        for t in range(w0, w1):
            if loop_order == 0:
                mi = t // tiles_n
                ni = t % tiles_n
            else:
                ni = t // tiles_m
                mi = t % tiles_m
            m0 = mi * tile_m
            n0 = ni * tile_n
            pos = _tile_runs(emit, out_a, out_n, out_w, out_u, pos, c_base, m, n,
                             m0, min(m0 + tile_m, m), n0, min(n0 + tile_n, n), tile_m, tile_n,
                             False, tile_major, elem_bytes, 1, t - w0)
    return pos


@nb.njit(cache=True)
def gemm_runs(m: int, n: int, k: int, tile_m: int, tile_n: int, tile_k: int, elem_bytes: int,
              a_base: int, b_base: int, c_base: int, a_trans: bool, b_trans: bool,
              loop_order: int, n_units: int, tile_major: bool
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Runs of C[m,n] = op(A)[m,k] @ op(B)[k,n] computed tile by tile on ``n_units`` units.

    Output tiles go to units round-robin in waves of ``n_units`` (tile order: ``loop_order``
    0 = row-major over (mi, ni), 1 = column-major). Within a wave the units advance in lockstep
    one k-step at a time (each reads its A tile, then its B tile); then each unit writes its C
    tile once. ``tile_major`` stores every tensor tile by tile in full-tile slots (one run
    per tile, tile (i, j) at ``base + (i * tile_cols + j) * tile_bytes``); otherwise
    storage is row-major (A as [k, m] when ``a_trans``, B as [n, k] when ``b_trans``) and a
    tile is one run per contiguous row segment. Returns (addr int64, nbytes int64,
    is_write uint8, unit int32).
    """
    e = np.empty(0, np.int64)
    ew = np.empty(0, np.uint8)
    eu = np.empty(0, np.int32)
    total = _gemm_pass(False, e, e, ew, eu, m, n, k, tile_m, tile_n, tile_k, elem_bytes,
                       a_base, b_base, c_base, a_trans, b_trans, loop_order, n_units, tile_major)
    addr = np.empty(total, np.int64)
    nbytes = np.empty(total, np.int64)
    is_write = np.empty(total, np.uint8)
    unit = np.empty(total, np.int32)
    _gemm_pass(True, addr, nbytes, is_write, unit, m, n, k, tile_m, tile_n, tile_k, elem_bytes,
               a_base, b_base, c_base, a_trans, b_trans, loop_order, n_units, tile_major)
    return addr, nbytes, is_write, unit


@nb.njit(cache=True)
def elementwise_runs(in_bases: np.ndarray, out_bases: np.ndarray, n_elems: int, elem_bytes: int,
                     n_units: int, chunk_bytes: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Streaming elementwise op: chunk ``c`` of every tensor goes to unit ``c % n_units``.

    For each chunk the unit reads the chunk of each input, then writes the chunk of each
    output. Returns (addr, nbytes, is_write, unit).
    """
    total_bytes = n_elems * elem_bytes
    n_chunks = _cdiv(total_bytes, chunk_bytes) if total_bytes > 0 else 0
    n_in = in_bases.shape[0]
    n_out = out_bases.shape[0]
    total = n_chunks * (n_in + n_out)
    addr = np.empty(total, np.int64)
    nbytes = np.empty(total, np.int64)
    is_write = np.empty(total, np.uint8)
    unit = np.empty(total, np.int32)
    pos = 0
    for c in range(n_chunks):
        off = c * chunk_bytes
        size = min(chunk_bytes, total_bytes - off)
        u = c % n_units
        for i in range(n_in):
            addr[pos] = in_bases[i] + off
            nbytes[pos] = size
            is_write[pos] = 0
            unit[pos] = u
            pos += 1
        for i in range(n_out):
            addr[pos] = out_bases[i] + off
            nbytes[pos] = size
            is_write[pos] = 1
            unit[pos] = u
            pos += 1
    return addr, nbytes, is_write, unit


@nb.njit(cache=True)
def expand_lines(addr: np.ndarray, nbytes: np.ndarray, line_bytes: int) -> np.ndarray:
    """Line indices touched by each run, in order (one entry per line granule)."""
    shift = np.int64(0)
    while (np.int64(1) << shift) < line_bytes:
        shift += 1
    total = 0
    for r in range(addr.shape[0]):
        if nbytes[r] > 0:
            total += ((addr[r] + nbytes[r] - 1) >> shift) - (addr[r] >> shift) + 1
    out = np.empty(total, np.int64)
    pos = 0
    for r in range(addr.shape[0]):
        if nbytes[r] > 0:
            first = addr[r] >> shift
            last = (addr[r] + nbytes[r] - 1) >> shift
            for x in range(first, last + 1):
                out[pos] = x
                pos += 1
    return out



#: Template traces (`accelsim.trace_runs.RunTemplates`) keep operand ``t`` of a GEMM at
#: ``t << TEMPLATE_SHIFT`` plus its base's residue, so that each run's operand is
#: ``addr >> TEMPLATE_SHIFT``; `rebase` moves every run to its operand's real base.
TEMPLATE_SHIFT = 40


@nb.njit(cache=True)
def rebase(addr: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """``addr + delta[addr >> TEMPLATE_SHIFT]``: a template's runs at the real bases."""
    out = np.empty_like(addr)
    for i in range(addr.shape[0]):
        a = addr[i]
        out[i] = a + delta[a >> TEMPLATE_SHIFT]
    return out


@nb.njit(cache=True)
def granules_covered(addr: np.ndarray, nbytes: np.ndarray, shift: int) -> int:
    """``sum((addr + nbytes - 1) >> shift) - sum(addr >> shift) + len(addr)``, in one pass."""
    total = addr.shape[0]
    for i in range(addr.shape[0]):
        total += ((addr[i] + nbytes[i] - 1) >> shift) - (addr[i] >> shift)
    return total


@nb.njit(cache=True)
def expand_batches(addr: np.ndarray, nbytes: np.ndarray, is_write: np.ndarray,
                   unit: np.ndarray, stride: np.ndarray, batch: int, tiles: int, units: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The runs of one GEMM repeated for ``batch`` GEMMs: copy ``b`` moves run ``r`` by
    ``b * stride[r]`` and gives it unit ``(unit[r] + b * tiles) % units``."""
    n = addr.shape[0]
    out_a = np.empty(batch * n, np.int64)
    out_n = np.empty(batch * n, np.int64)
    out_w = np.empty(batch * n, np.uint8)
    out_u = np.empty(batch * n, np.int32)
    for b in range(batch):
        o = b * n
        for r in range(n):
            out_a[o + r] = addr[r] + b * stride[r]
            out_n[o + r] = nbytes[r]
            out_w[o + r] = is_write[r]
            out_u[o + r] = (np.int64(unit[r]) + b * tiles) % units
    return out_a, out_n, out_w, out_u
