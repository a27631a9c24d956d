"""Access streams of each op: the byte runs a GEMM's tiles or a streaming op's chunks issue.

The second concern of tracing a step (`accelsim.trace`): given the tensors' addresses
(`trace_layout`) and each op's mapping, the runs in the order the units issue them. GEMM
runs come from the numba kernel `kernels.trace.gemm_runs`; batching, the fused epilogue's
reads, split-K partial sums and the tile reads a wave shares are added here.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator, Sequence

import attrs
import numpy as np

from accelsim.graph import Op, OpGraph
from accelsim.kernels.trace import (
    TEMPLATE_SHIFT,
    expand_batches,
    gemm_runs,
    granules_covered,
    rebase,
)
from accelsim.mapping import GemmMapping, Mapping, StreamMapping
from accelsim.trace_layout import align_up, allocate
from accelsim.vocabulary import dtype_bytes


def op_elem_bytes(graph: OpGraph, op: Op) -> int:
    """Bytes of one element of the op's first operand."""
    tid = op.inputs[0] if op.inputs else op.outputs[0]
    return dtype_bytes(graph.tensors[tid].dtype)


@attrs.frozen
class OpRuns:
    """Byte runs of one op, plus first-level hits taken out of the trace (shared tile reads)."""

    addr: np.ndarray
    nbytes: np.ndarray
    is_write: np.ndarray
    unit: np.ndarray
    hit_blocks: float = 0.0
    hit_bytes: float = 0.0
    hit_lines: float = 0.0


class RunTemplates:
    """The tile runs of GEMMs already traced in a step, reused for GEMMs of the same shape.

    Consecutive timesteps of a recurrent layer run GEMMs of one shape and mapping on other
    tensors: their tile runs differ only by each operand's base address. A template holds
    the runs of one (shape, mapping, operand-base residues) with operand ``t`` at
    ``t << TEMPLATE_SHIFT`` plus its base's residue modulo the granule, so that any later GEMM
    with the same key gets exactly its own runs by moving each run to its operand's base
    (`kernels.trace.rebase`), and the wave-duplicate hits (counted in granules and lines,
    which only the residues decide) carry over unchanged. Least recently used templates are
    dropped beyond `max_bytes`.
    """

    def __init__(self, max_bytes: int = 192 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, tuple] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple) -> tuple | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
            self.hits += 1
        else:
            self.misses += 1
        return item

    def put(self, key: tuple, item: tuple) -> None:
        size = sum(a.nbytes for a in item[:4])
        if size > self.max_bytes:
            return
        self._items[key] = item
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self._bytes -= sum(a.nbytes for a in old[:4])


def gemm_op_runs(graph: OpGraph, op: Op, mapping: GemmMapping, bases: np.ndarray,
                 tile_major: bool, min_run_bytes: int, max_runs: int, scratch_base: int,
                 shared_bytes: int = 0, granule: int = 0, line_bytes: int = 0,
                 templates: RunTemplates | None = None) -> OpRuns:
    """Runs of one (batched) GEMM from its tiles; see `accelsim.kernels.trace.gemm_runs`.

    Coalesced mode (`min_run_bytes` > 0) merges k-steps into runs of at least that size. Units
    of a wave that read the same A (or B) tile at the same k-step hit in a shared first level
    once one of them has fetched it, as long as one k-step of the wave (its distinct tiles,
    `wave_step_bytes`) fits in it twice
    (`shared_bytes` = its capacity, 0 when private). Then those repeated reads are taken out of
    the trace and counted as hits (`OpRuns.hit_*`), which keeps that sharing exact when k-steps
    are merged; when a k-step does not fit, k-steps are merged only while they still fit.
    `templates` reuses the tile runs of an earlier GEMM of the same shape (`RunTemplates`).
    """
    e = op_elem_bytes(graph, op)
    m, n, k = max(op.m, 1), max(op.n, 1), max(op.k, 1)
    tm = max(1, min(mapping.tile_m, m))
    tn = max(1, min(mapping.tile_n, n))
    tk = max(1, min(mapping.tile_k, k))
    units = max(1, mapping.units_used)
    order = mapping.loop_order
    split_k = max(1, mapping.split_k)
    tiles_m, tiles_n = math.ceil(m / tm), math.ceil(n / tn)
    tiles = tiles_m * tiles_n
    dedup = False
    if min_run_bytes > 0:
        step_bytes = wave_step_bytes(tiles_m, tiles_n, min(units, tiles), tm, tn, tk * e,
                                     order)  # the distinct tiles one k-step of a wave reads
        dedup = tile_major and shared_bytes > 0 and 2 * step_bytes <= shared_bytes
        # merge k-steps until each A and B tile run spans `min_run_bytes`
        f = max(1, math.ceil(min_run_bytes / (min(tm, tn) * tk * e)))
        if not dedup and shared_bytes > 0:
            f = max(1, min(f, shared_bytes // max(1, 2 * step_bytes)))
        tk = min(k, tk * f)
        est = op.batch_count * tiles * (2 * math.ceil(k / tk) + 1)
        if est > max_runs:
            # fewer, longer runs: a multiple of the merged k-step, so that runs still cover
            # whole blocks (runs sharing a block would hide misses from the block-to-line
            # scaling of the op's bytes)
            need = math.ceil(k * 2 * op.batch_count * tiles / max(1, max_runs - tiles))
            tk = min(k, max(tk, math.ceil(need / tk) * tk))
    a_id, b_id = op.inputs[0], op.inputs[1]
    c_id = op.outputs[0]
    a0, b0, c0 = int(bases[a_id]), int(bases[b_id]), int(bases[c_id])
    b0 += op.b_row_offset * n * e  # a recurrent step reads the rows its hoisted GEMM did not
    tiled = (m, n, k, tm, tn, tk, e, op.trans_a, op.trans_b, order, units, tile_major, dedup)
    # templates need every operand offset below 2^TEMPLATE_SHIFT and a power-of-two granule
    span = (max(m, k) + max(tm, tk, tn)) * (max(k, n) + max(tm, tk, tn)) * e
    use = (templates is not None and granule > 0 and granule & (granule - 1) == 0
           and 0 < line_bytes <= granule and line_bytes & (line_bytes - 1) == 0
           and span < 1 << (TEMPLATE_SHIFT - 1))
    if use:
        assert templates is not None
        real = np.array([a0, b0, c0], np.int64)
        resid = real % granule
        key = (*tiled, *resid.tolist(), granule, line_bytes)
        item = templates.get(key)
        if item is None:
            at = resid + (np.arange(3, dtype=np.int64) << TEMPLATE_SHIFT)
            item = _tile_runs(*tiled, int(at[0]), int(at[1]), int(at[2]), granule, line_bytes)
            templates.put(key, item)
        t_addr, nbytes, is_write, unit, hit_blocks, hit_bytes, hit_lines = item
        addr = rebase(t_addr, real - (resid + (np.arange(3, dtype=np.int64) << TEMPLATE_SHIFT)))
    else:
        addr, nbytes, is_write, unit, hit_blocks, hit_bytes, hit_lines = _tile_runs(
            *tiled, a0, b0, c0, granule, line_bytes)
    hit_blocks *= op.batch_count
    hit_lines *= op.batch_count
    hit_bytes *= op.batch_count
    if op.batch_count > 1:
        strides = np.array([m * k * e, k * n * e, m * n * e], np.int64)
        which = np.where(addr >= c0, 2, 0)
        which = np.where((addr >= b0) & (addr < b0 + strides[1]), 1, which)
        which = np.where((addr >= a0) & (addr < a0 + strides[0]), 0, which)
        addr, nbytes, is_write, unit = expand_batches(addr, nbytes, is_write, unit,
                                                      strides[which], op.batch_count, tiles,
                                                      units)
    if op.accumulate:
        addr, nbytes, is_write, unit = epilogue_reads(addr, nbytes, is_write, unit, c0,
                                                      int(bases[op.inputs[2]]))
    if split_k > 1:
        # each K slice writes its partial sums to a workspace that a reduction reads back (as
        # `timing` counts them); the tiles themselves are traced over the whole K
        c_bytes = op.batch_count * m * n * e
        extra = np.arange(split_k, dtype=np.int64) * align_up(c_bytes, 4096) + scratch_base
        addr = np.concatenate([addr, extra, extra])
        nbytes = np.concatenate([nbytes, np.full(2 * split_k, c_bytes, np.int64)])
        is_write = np.concatenate([is_write, np.ones(split_k, np.uint8),
                                   np.zeros(split_k, np.uint8)])
        unit = np.concatenate([unit, (np.arange(2 * split_k) % units).astype(np.int32)])
    return OpRuns(addr, nbytes, is_write, unit, hit_blocks, hit_bytes, hit_lines)


def _tile_runs(m: int, n: int, k: int, tm: int, tn: int, tk: int, e: int, trans_a: bool,
               trans_b: bool, order: int, units: int, tile_major: bool, dedup: bool, a0: int,
               b0: int, c0: int, granule: int, line_bytes: int) -> tuple:
    """Runs of one GEMM of the batch (`gemm_runs`) without the wave's repeated tile reads
    when `dedup`; (addr, nbytes, is_write, unit, hit blocks, hit bytes, hit lines)."""
    addr, nbytes, is_write, unit = gemm_runs(m, n, k, tm, tn, tk, e, a0, b0, c0, trans_a,
                                             trans_b, order, units, tile_major)
    hit_blocks = hit_bytes = hit_lines = 0.0
    if dedup:
        tiles_m, tiles_n = math.ceil(m / tm), math.ceil(n / tn)
        dup = wave_duplicates(tiles_m, tiles_n, math.ceil(k / tk), min(units, tiles_m * tiles_n),
                              order)
        if dup.shape[0] != addr.shape[0]:  # a run order the mask does not describe: keep all
            dup = np.zeros(addr.shape[0], bool)
        if dup.any():
            da, dn = addr[dup], nbytes[dup]
            hit_blocks = float(blocks_covered(da, dn, granule))
            hit_lines = float(blocks_covered(da, dn, line_bytes))
            hit_bytes = float(dn.sum())
            keep = ~dup
            addr, nbytes, is_write, unit = addr[keep], nbytes[keep], is_write[keep], unit[keep]
    return addr, nbytes, is_write, unit, hit_blocks, hit_bytes, hit_lines


def wave_step_bytes(tiles_m: int, tiles_n: int, wave_tiles: int, tm: int, tn: int,
                    k_step_bytes_per_row: int, order: int) -> int:
    """Bytes of the distinct A and B tiles one k-step of a full wave reads: a wave of
    `wave_tiles` output tiles in loop order `order` spans whole tile rows (or columns) and
    shares each A row tile (B column tile) among the tiles of its row (column)."""
    inner = tiles_n if order == 0 else tiles_m
    outer_tiles = min(math.ceil(wave_tiles / max(1, inner)) + 1, tiles_m if order == 0
                      else tiles_n)
    inner_tiles = min(wave_tiles, inner)
    rows, cols = (outer_tiles, inner_tiles) if order == 0 else (inner_tiles, outer_tiles)
    return (rows * tm + cols * tn) * k_step_bytes_per_row


def epilogue_reads(addr: np.ndarray, nbytes: np.ndarray, is_write: np.ndarray,
                   unit: np.ndarray, c_base: int, d_base: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """C = A@B + D: before each C-tile write the epilogue reads the same tile of D."""
    copies = np.where(is_write == 1, 2, 1)
    idx = np.repeat(np.arange(addr.shape[0]), copies)
    first = np.ones(idx.shape[0], bool)
    first[1:] = idx[1:] != idx[:-1]
    read_d = first & (is_write[idx] == 1)  # the first copy of a write becomes the D read
    new_addr = addr[idx].copy()
    new_addr[read_d] += d_base - c_base
    new_write = is_write[idx].copy()
    new_write[read_d] = 0
    return new_addr, nbytes[idx], new_write, unit[idx]


def wave_duplicates(tiles_m: int, tiles_n: int, tiles_k: int, units: int,
                    order: int) -> np.ndarray:
    """Mask of the runs `gemm_runs` (tile-major) emits that re-read, in the same wave and
    k-step, an A or B tile another unit of the wave read before (see its run order: per wave,
    per k-step, each tile's A run then B run; then each tile's C run)."""
    n_tiles = tiles_m * tiles_n
    period = tiles_n if order == 0 else tiles_m  # the pattern depends on w0 modulo this
    memo: dict[tuple[int, int], np.ndarray] = {}
    parts = []
    for w0 in range(0, n_tiles, units):
        nt = min(units, n_tiles - w0)
        key = (w0 % period, nt)
        if key not in memo:
            t = np.arange(w0, w0 + nt)
            if order == 0:
                mi, ni = t // tiles_n, t % tiles_n
            else:
                ni, mi = t // tiles_m, t % tiles_m
            reads = np.empty(2 * nt, bool)
            reads[0::2] = repeats_earlier(mi)
            reads[1::2] = repeats_earlier(ni)
            memo[key] = np.concatenate([np.tile(reads, tiles_k), np.zeros(nt, bool)])
        parts.append(memo[key])
    return np.concatenate(parts) if parts else np.zeros(0, bool)


def repeats_earlier(values: np.ndarray) -> np.ndarray:
    """True where the value already occurred earlier in the array."""
    _, first = np.unique(values, return_index=True)
    out = np.ones(values.shape[0], bool)
    out[first] = False
    return out


def blocks_covered(addr: np.ndarray, nbytes: np.ndarray, granule: int) -> int:
    """Granules of `granule` bytes the runs cover, counted per run."""
    if addr.shape[0] == 0 or granule <= 0:
        return 0
    return int(granules_covered(addr, nbytes, granule.bit_length() - 1))


def stream_op_runs(graph: OpGraph, op: Op, mapping: Mapping, bases: np.ndarray,
                   chunk_bytes: int, max_runs: int, granule: int,
                   scratch_base: int = 0) -> OpRuns:
    """Streaming op: chunk c of every input, then chunk c of every output, on unit c % units.

    Tensors of different sizes are cut into the same number of chunks (a broadcast bias is
    read piece by piece alongside its activation), so an op reads each input and writes each
    output exactly once, as `OpGraph.op_bytes` counts. Chunk boundaries fall on `granule`
    (line or block) multiples, so neighbouring chunks do not share a granule. A negative
    `Op.extra_bytes` (a gather reads only the rows it copies) shrinks the largest input to a
    sample spread evenly over it; a positive one is read from a workspace at `scratch_base`.
    """
    ids = [t for t in op.inputs] + [t for t in op.outputs]
    writes = [False] * len(op.inputs) + [True] * len(op.outputs)
    sizes = [graph.tensors[t].nbytes for t in ids]
    tb = [int(bases[t]) for t in ids]
    touch = list(sizes)
    extra = int(op.extra_bytes)
    if extra < 0 and op.inputs:
        big = max(range(len(op.inputs)), key=lambda k: sizes[k])
        touch[big] = max(0, sizes[big] + extra)
    elif extra > 0:
        sizes.append(extra)
        touch.append(extra)
        tb.append(int(scratch_base))
        writes.append(False)
    if not sizes or max(sizes) == 0:
        empty = np.zeros(0, np.int64)
        return OpRuns(empty, empty, np.zeros(0, np.uint8), np.zeros(0, np.int32))
    size_a, touch_a = np.array(sizes, np.int64), np.array(touch, np.int64)
    units = max(1, mapping.units_used)
    chunk = max(1, int(chunk_bytes))
    n_chunks = max(1, math.ceil(int(size_a.max()) / chunk))
    n_chunks = min(n_chunks, max(1, max_runs // len(sizes)))
    c = np.arange(n_chunks + 1, dtype=np.int64)[:, None]
    bounds = c * size_a[None, :] // n_chunks // granule * granule  # [n_chunks+1, tensors]
    bounds[-1] = size_a
    seg = c * touch_a[None, :] // n_chunks // granule * granule
    seg[-1] = touch_a
    lo = bounds[:-1]
    length = np.minimum(np.diff(seg, axis=0), np.diff(bounds, axis=0))
    addr = (np.array(tb, np.int64)[None, :] + lo).ravel()
    nbytes = length.ravel()
    is_write = np.broadcast_to(np.array(writes, np.uint8)[None, :], lo.shape).ravel()
    unit = np.broadcast_to((np.arange(n_chunks) % units).astype(np.int32)[:, None],
                           lo.shape).ravel()
    keep = nbytes > 0
    return OpRuns(addr[keep], nbytes[keep], np.ascontiguousarray(is_write[keep]),
                 np.ascontiguousarray(unit[keep]))


def iter_step_runs(graph: OpGraph, mappings: Sequence[Mapping], dtype: str, granule_bytes: int,
                   max_runs_per_op: int = 200_000) -> Iterator[OpRuns]:
    """Each op's access runs in program order (tile-major layout, runs >= `granule_bytes`).

    For one-pass analyses of the step's address stream, such as the miss-ratio curve: no
    cache state, no steady-state shortcut. A generator, so a caller can reduce each op's
    runs (e.g. to granule ids) without holding the whole step's runs at once.
    """
    layout = allocate(graph, granule_bytes)
    scratch = align_up(layout.size_bytes, granule_bytes)
    for op, mp in zip(graph.ops, mappings, strict=True):
        if isinstance(mp, GemmMapping) and is_traced_gemm(op, mp):
            yield gemm_op_runs(graph, op, mp, layout.bases, tile_major=True,
                               min_run_bytes=granule_bytes, max_runs=max_runs_per_op,
                               scratch_base=scratch)
        else:
            chunk = max(mp.chunk_bytes if isinstance(mp, StreamMapping) else 0, granule_bytes)
            yield stream_op_runs(graph, op, mp, layout.bases, chunk, max_runs_per_op,
                                 granule_bytes, scratch)


def is_traced_gemm(op: Op, mapping: Mapping) -> bool:
    """A GEMM traced tile by tile (a GEMM without both operands streams like other ops)."""
    return op.kind == "gemm" and isinstance(mapping, GemmMapping) and len(op.inputs) >= 2


def estimated_bytes(graph: OpGraph, mappings: Sequence[Mapping], dtype: str) -> np.ndarray:
    """Bytes each op's access stream will carry (tile re-reads included), without tracing."""
    out = np.empty(len(graph.ops), np.float64)
    for i, (op, mp) in enumerate(zip(graph.ops, mappings, strict=True)):
        if is_traced_gemm(op, mp):
            assert isinstance(mp, GemmMapping)
            e = op_elem_bytes(graph, op)
            tm, tn = max(1, min(mp.tile_m, op.m)), max(1, min(mp.tile_n, op.n))
            out[i] = op.batch_count * e * (op.m * op.k * math.ceil(op.n / tn)
                                     + op.k * op.n * math.ceil(op.m / tm) + op.m * op.n)
        else:
            out[i] = max(0, sum(graph.tensors[t].nbytes for t in (*op.inputs, *op.outputs))
                         + op.extra_bytes)
    return out


__all__ = [
    "OpRuns", "RunTemplates", "blocks_covered", "epilogue_reads", "estimated_bytes", "gemm_op_runs",
    "is_traced_gemm", "iter_step_runs", "op_elem_bytes", "repeats_earlier", "stream_op_runs",
    "wave_duplicates", "wave_step_bytes",
]
