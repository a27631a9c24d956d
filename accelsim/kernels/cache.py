"""Set-associative multi-level cache simulation over run traces (numba).

The hot loop lives here so that the Python side (``accelsim.cache``) never touches single
lines. Everything crossing this boundary is a numpy array; see ``docs/cache.md`` for the exact
counting semantics, summarised here:

* A request ``(addr, nbytes, is_write, unit)`` entering level ``L`` is split into that level's
  line granules; every granule is one *access* at ``L`` (``ACCESSES``, and ``WRITE_ACCESSES``
  when it is a write). A write hit counts as a hit and refreshes LRU order.
* A miss that allocates *fetches* the whole line from ``L+1`` (``FETCHES``,
  ``BYTES_READ_FROM_BELOW``), except a write that covers the whole line, which allocates
  without a fetch unless a level below is inclusive (read-for-ownership). A write miss without
  write-allocate is forwarded to ``L+1``. Requests to ``L+1`` are served write-back, fetch,
  forwarded write (pycachesim mode: fetch, forwarded write, write-back).
* Replacing a valid line is an ``EVICTION``; a dirty victim is a ``WRITEBACK`` (one full-line
  write request to ``L+1``). Write-through levels forward every written segment to ``L+1``.
  ``WRITES_BELOW`` / ``BYTES_WRITTEN_BELOW`` count all write requests / bytes sent to ``L+1``.
* An inclusive level back-invalidates its victim in all levels above it (all instances if it is
  shared, the requesting unit's instances if private); each removed upper line counts one
  ``INVALIDATIONS`` at the *upper* level, and dirty upper data is merged into the victim.
* Row ``n_levels`` is memory: ``ACCESSES`` = requests reaching memory, ``WRITE_ACCESSES`` = the
  write requests among them, ``BYTES_READ_FROM_BELOW`` = bytes read from memory,
  ``BYTES_WRITTEN_BELOW`` = bytes written to memory.

``compat=1`` reproduces pycachesim's store semantics for cross-checks: a store hit only marks
the line dirty (no access, no hit, no LRU refresh) and every store miss fetches the line.
"""

import numba as nb
import numpy as np

# ---- counter indices (last axis of the output) -------------------------------------------
ACCESSES = 0
HITS = 1
MISSES = 2
EVICTIONS = 3
WRITEBACKS = 4
BYTES_READ_FROM_BELOW = 5
BYTES_WRITTEN_BELOW = 6
INVALIDATIONS = 7
WRITE_ACCESSES = 8
FETCHES = 9
WRITES_BELOW = 10
N_COUNTERS = 11

COUNTER_NAMES = (
    "accesses", "hits", "misses", "evictions", "writebacks", "bytes_read_from_below",
    "bytes_written_below", "invalidations", "write_accesses", "fetches", "writes_below",
)

# ---- replacement policies ---------------------------------------------------------------
# Recency-ordered policies keep each set as a queue (slot 0 = most recent / newest) with the
# valid lines packed at the front; in-place policies keep lines in fixed slots.
POLICY_LRU = 0
POLICY_FIFO = 1
POLICY_MRU = 2
POLICY_RANDOM = 3
POLICY_PLRU = 4
POLICY_LFU = 5

# ---- per-level configuration columns (cfg[level, column]) -------------------------------
CFG_SHIFT = 0  # log2(line_bytes)
CFG_SETS = 1  # sets per instance
CFG_WAYS = 2
CFG_POLICY = 3
CFG_WRITE_BACK = 4  # 1 write-back, 0 write-through
CFG_WRITE_ALLOCATE = 5
CFG_INCLUSIVE = 6
CFG_PRIVATE = 7  # 1: one instance per unit, 0: one shared instance
CFG_TAG_OFFSET = 8  # first slot of this level in the flat state arrays
CFG_SET_MASK = 9  # sets - 1 when sets is a power of two, else -1
N_CFG = 10


# State layout: ``slots[i] = (line << 1) | dirty`` or -1 when invalid (one int64 per line, so a
# move-to-front shifts one array); ``meta`` holds PLRU tree bits (node j of a set at slot j) or
# LFU counts; ``rng`` is a one-element xorshift64 state for the random policy.


@nb.njit(cache=True)
def stack_depth(n_levels: int) -> int:
    """Pending-request stack size: each level keeps at most 3 requests pending."""
    return 3 * (n_levels + 1) + 2


@nb.njit(cache=True, inline="always")
def _set_index(ln, mask, rec, sets):
    """Set of line `ln`: a mask when the set count is a power of two, else a fast modulo."""
    if mask >= 0:
        return ln & mask
    s = ln - np.int64(ln * rec) * sets
    while s < 0:
        s += sets
    while s >= sets:
        s -= sets
    return s


@nb.njit(cache=True)
def _set_base(cfg, recip, lv, inst, line):
    """First slot of ``line``'s set; avoids a 64-bit division for non-power-of-two sets."""
    sets = cfg[lv, CFG_SETS]
    s = _set_index(line, cfg[lv, CFG_SET_MASK], recip[lv], sets)
    return cfg[lv, CFG_TAG_OFFSET] + (inst * sets + s) * cfg[lv, CFG_WAYS]


@nb.njit(cache=True)
def _remove(slots, meta, base, ways, policy, line):
    """Drop ``line`` from the set at ``base``; return -1 if absent, else its dirty bit."""
    ordered = policy <= POLICY_MRU
    key = (line << 1) | 1
    pos = -1
    for i in range(ways):
        e = slots[base + i]
        if (e | 1) == key:
            pos = i
            break
        if e < 0 and ordered:
            break
    if pos < 0:
        return -1
    was_dirty = slots[base + pos] & 1
    if ordered:
        j = pos
        while j + 1 < ways and slots[base + j + 1] >= 0:
            slots[base + j] = slots[base + j + 1]
            j += 1
        slots[base + j] = -1
    else:
        slots[base + pos] = -1
        if policy == POLICY_LFU:
            meta[base + pos] = 0
    return was_dirty


@nb.njit(cache=True)
def _back_invalidate(cfg, recip, slots, meta, n_units, out, op, lv, unit, victim):
    """Remove every upper-level copy of level ``lv``'s victim line; return 1 if any was dirty."""
    shift = cfg[lv, CFG_SHIFT]
    start = victim << shift
    end = start + (np.int64(1) << shift)
    lv_private = cfg[lv, CFG_PRIVATE]
    any_dirty = 0
    for up in range(lv):
        ushift = cfg[up, CFG_SHIFT]
        ways = cfg[up, CFG_WAYS]
        policy = cfg[up, CFG_POLICY]
        if cfg[up, CFG_PRIVATE] == 0:
            i0 = 0
            i1 = 1
        elif lv_private == 1:
            i0 = unit
            i1 = unit + 1
        else:
            i0 = 0
            i1 = n_units
        for inst in range(i0, i1):
            uline = start >> ushift
            uend = end >> ushift
            while uline < uend:
                base = _set_base(cfg, recip, up, inst, uline)
                d = _remove(slots, meta, base, ways, policy, uline)
                if d >= 0:
                    out[op, up, INVALIDATIONS] += 1
                    if d > 0:
                        any_dirty = 1
                uline += 1
    return any_dirty


@nb.njit(cache=True)
def _run(addr, nbytes, is_write, unit, op_start, level0, cfg, recip, slots, meta, rng, n_units,
         compat, out, pshift, pmask, part):
    """Serve runs ``op_start[o]:op_start[o+1]`` entering ``level0``, charging op ``o``.

    Each run is served completely, depth first, with an explicit stack whose rows are
    (level, unit, is_write, next_byte, end_byte). A line's follow-up requests to the level below
    are pushed above the parent, so they complete before the parent's next line, as in hardware
    that blocks on a miss. Everything on the per-line path is written out in this one function
    (numba increfs array arguments on every call, which costs more than a cache lookup), and
    only the counters that cannot be derived are counted here (see ``_derive``).
    A one-line read (or write into a write-back level) at a recency-ordered entry level is
    looked up before any stack work: a hit needs nothing else (1.5x on L1-resident traces); a
    miss enters the general path without scanning the set again.
    """
    n_levels = cfg.shape[0]
    stk = np.empty((stack_depth(n_levels), 5), np.int64)
    # entry level, hoisted for the read-hit fast path
    u0 = np.uint64(level0)
    shift0 = cfg[u0, CFG_SHIFT]
    ways0 = cfg[u0, CFG_WAYS]
    sets0 = cfg[u0, CFG_SETS]
    mask0 = cfg[u0, CFG_SET_MASK]
    off0 = cfg[u0, CFG_TAG_OFFSET]
    private0 = cfg[u0, CFG_PRIVATE] == 1
    rec0 = recip[u0]
    fast0 = cfg[u0, CFG_POLICY] <= POLICY_MRU
    mtf0 = cfg[u0, CFG_POLICY] != POLICY_FIFO
    wfast0 = cfg[u0, CFG_WRITE_BACK] == 1 and compat == 0  # a write hit only dirties
    for op in range(op_start.shape[0] - 1):
        uop = np.uint64(op)
        for r in range(op_start[op], op_start[op + 1]):
            if nbytes[r] <= 0:
                continue
            next_a = addr[r]
            r_end = addr[r] + nbytes[r]
            while next_a < r_end:
                # the run's piece in one partition chunk (the whole run when unpartitioned)
                ra = next_a
                rend = r_end
                if pmask != 0:
                    chunk_end = ((ra >> pshift) + 1) << pshift
                    if chunk_end < rend:
                        rend = chunk_end
                    next_a = rend
                    if ((ra >> pshift) & pmask) != part:
                        continue
                else:
                    next_a = rend
                line0 = ra >> shift0
                w0 = is_write[r]
                if fast0 and (w0 == 0 or wfast0) and line0 == (rend - 1) >> shift0:
                    # a one-line read (or write-back write) that hits at the entry level needs
                    # nothing else
                    s0 = _set_index(line0, mask0, rec0, sets0)
                    inst0 = np.int64(unit[r]) if private0 else 0
                    ub0 = np.uint64(off0 + (inst0 * sets0 + s0) * ways0)
                    key0 = (line0 << 1) | 1
                    hit0 = -1
                    free0 = ways0
                    for i in range(ways0):
                        e = slots[ub0 + np.uint64(i)]
                        if (e | 1) == key0:
                            hit0 = i
                            break
                        if e < 0:
                            free0 = i
                            break
                    known_miss = hit0 < 0  # the general path below need not scan again
                    if hit0 >= 0:
                        out[uop, u0, HITS] += 1
                        if mtf0 and hit0 > 0:
                            e = slots[ub0 + np.uint64(hit0)]
                            for j in range(hit0, 0, -1):
                                slots[ub0 + np.uint64(j)] = slots[ub0 + np.uint64(j - 1)]
                            slots[ub0] = e
                            hit0 = 0
                        if w0:
                            out[uop, u0, WRITE_ACCESSES] += 1
                            slots[ub0 + np.uint64(hit0)] |= 1
                        continue
                else:
                    known_miss = False
                    free0 = ways0
                stk[0, 0] = level0
                stk[0, 1] = unit[r]
                stk[0, 2] = is_write[r]
                stk[0, 3] = ra
                stk[0, 4] = rend
                sp = 1
                while sp > 0:
                    t = sp - 1
                    ut = np.uint64(t)
                    lv = stk[ut, 0]
                    u = stk[ut, 1]
                    w = stk[ut, 2]
                    cur = stk[ut, 3]
                    end = stk[ut, 4]
                    ulv = np.uint64(lv)
                    shift = cfg[ulv, CFG_SHIFT]
                    line = cur >> shift
                    line_start = line << shift
                    line_end = line_start + (np.int64(1) << shift)
                    seg_end = end if end < line_end else line_end
                    if seg_end >= end:
                        sp -= 1
                    else:
                        stk[ut, 3] = seg_end

                    ways = cfg[ulv, CFG_WAYS]
                    policy = cfg[ulv, CFG_POLICY]
                    wb = cfg[ulv, CFG_WRITE_BACK]
                    inst = u if cfg[ulv, CFG_PRIVATE] else 0
                    sets = cfg[ulv, CFG_SETS]
                    s = _set_index(line, cfg[ulv, CFG_SET_MASK], recip[ulv], sets)
                    base = cfg[ulv, CFG_TAG_OFFSET] + (inst * sets + s) * ways
                    ordered = policy <= POLICY_MRU
                    key = (line << 1) | 1

                    ub = np.uint64(base)
                    pos = -1
                    free = ways
                    if known_miss:
                        free = free0  # the fast path above already scanned this set
                        known_miss = False
                    else:
                        for i in range(ways):
                            e = slots[ub + np.uint64(i)]
                            if (e | 1) == key:
                                pos = i
                                break
                            if e < 0:
                                if free == ways:
                                    free = i
                                if ordered:
                                    break

                    push_wb = np.int64(-1)  # victim line to write back
                    push_fwd = False  # forward the written segment
                    push_fetch = False
                    if pos >= 0:
                        # ---------------- hit ----------------
                        if w and compat:
                            # pycachesim: a store hit only marks the line dirty
                            if wb:
                                slots[base + pos] |= 1
                            else:
                                push_fwd = True
                        else:
                            out[uop, ulv, HITS] += 1
                            if policy == POLICY_LRU or policy == POLICY_MRU:
                                if pos > 0:
                                    e = slots[ub + np.uint64(pos)]
                                    for j in range(pos, 0, -1):
                                        slots[ub + np.uint64(j)] = slots[ub + np.uint64(j - 1)]
                                    slots[ub] = e
                                    pos = 0
                            elif policy == POLICY_PLRU:
                                node = pos + ways
                                while node > 1:
                                    parent = node >> 1
                                    meta[base + parent] = 1 - (node & 1)
                                    node = parent
                            elif policy == POLICY_LFU:
                                meta[base + pos] += 1
                            if w:
                                out[uop, ulv, WRITE_ACCESSES] += 1
                                if wb:
                                    slots[base + pos] |= 1
                                else:
                                    push_fwd = True
                    else:
                        # ---------------- miss ----------------
                        out[uop, ulv, MISSES] += 1
                        if w:
                            out[uop, ulv, WRITE_ACCESSES] += 1
                        if w and cfg[ulv, CFG_WRITE_ALLOCATE] == 0:
                            push_fwd = True
                        else:
                            victim = np.int64(-1)
                            if ordered:
                                if free < ways:
                                    slot_from = free  # shift the packed prefix down by one
                                elif policy == POLICY_MRU:
                                    slot_from = 0  # replace the most recent line in place
                                    victim = slots[base]
                                else:
                                    slot_from = ways - 1
                                    victim = slots[base + ways - 1]
                                for j in range(slot_from, 0, -1):
                                    slots[ub + np.uint64(j)] = slots[ub + np.uint64(j - 1)]
                                slot = 0
                            else:
                                if free < ways:
                                    slot = free
                                elif policy == POLICY_RANDOM:
                                    x = rng[0]
                                    x ^= x << np.uint64(13)
                                    x ^= x >> np.uint64(7)
                                    x ^= x << np.uint64(17)
                                    rng[0] = x
                                    slot = np.int64(x % np.uint64(ways))
                                elif policy == POLICY_PLRU:
                                    node = 1
                                    while node < ways:
                                        node = 2 * node + meta[base + node]
                                    slot = node - ways
                                else:  # LFU: least count, lowest slot on ties
                                    slot = 0
                                    best = meta[base]
                                    for i in range(1, ways):
                                        if meta[base + i] < best:
                                            best = meta[base + i]
                                            slot = i
                                if free >= ways:
                                    victim = slots[base + slot]
                                if policy == POLICY_PLRU:
                                    node = slot + ways
                                    while node > 1:
                                        parent = node >> 1
                                        meta[base + parent] = 1 - (node & 1)
                                        node = parent
                                elif policy == POLICY_LFU:
                                    meta[base + slot] = 1
                            slots[ub + np.uint64(slot)] = (line << 1) | (1 if (w and wb) else 0)

                            if victim >= 0:
                                out[uop, ulv, EVICTIONS] += 1
                                vline = victim >> 1
                                vdirty = victim & 1
                                if cfg[ulv, CFG_INCLUSIVE] and lv > 0:
                                    if _back_invalidate(cfg, recip, slots, meta, n_units, out, op,
                                                        lv, u, vline):
                                        vdirty = 1
                                if vdirty:
                                    push_wb = vline
                            push_fwd = w and not wb
                            # A whole-line write needs no data, unless an inclusive level below
                            # must allocate the line too (read-for-ownership).
                            push_fetch = True
                            if w and not compat and cur == line_start and seg_end == line_end:
                                push_fetch = False
                                for lb in range(lv + 1, n_levels):
                                    if cfg[lb, CFG_INCLUSIVE] == 1:
                                        push_fetch = True

                    if push_fetch:
                        out[uop, ulv, FETCHES] += 1
                    if push_wb >= 0:
                        out[uop, ulv, WRITEBACKS] += 1
                        out[uop, ulv, WRITES_BELOW] += 1
                        out[uop, ulv, BYTES_WRITTEN_BELOW] += line_end - line_start
                    if push_fwd:
                        out[uop, ulv, WRITES_BELOW] += 1
                        out[uop, ulv, BYTES_WRITTEN_BELOW] += seg_end - cur
                    nxt = lv + 1
                    if nxt == n_levels:
                        continue  # memory: its row is derived from these counters
                    # Push in reverse order of service: write-back, fetch, forwarded write. The
                    # victim's data leaves first, while the levels below still hold it (an
                    # inclusive level further down could otherwise evict it while the fetch
                    # passes, and its late write-back would then evict the fetched line). In
                    # pycachesim mode: fetch, forwarded write, write-back, as pycachesim does.
                    wb_first = compat == 0 or cfg[nxt, CFG_INCLUSIVE] == 1
                    if wb_first:
                        if push_fwd:
                            sp = _push(stk, sp, nxt, u, 1, cur, seg_end)
                        if push_fetch:
                            sp = _push(stk, sp, nxt, u, 0, line_start, line_end)
                    if push_wb >= 0:
                        sp = _push(stk, sp, nxt, u, 1, push_wb << shift, (push_wb + 1) << shift)
                    if not wb_first:
                        if push_fwd:
                            sp = _push(stk, sp, nxt, u, 1, cur, seg_end)
                        if push_fetch:
                            sp = _push(stk, sp, nxt, u, 0, line_start, line_end)


@nb.njit(cache=True, inline="always")
def _push(stk, sp, level, unit, write, start, end):
    """Push a request (level, unit, is_write, byte range) for a level below; new stack top."""
    i = np.uint64(sp)
    stk[i, 0] = level
    stk[i, 1] = unit
    stk[i, 2] = write
    stk[i, 3] = start
    stk[i, 4] = end
    return sp + 1


# The two LRU kernels below write their move-to-front search out in place: the same loop as an
# inlined helper (one `(e | 1) == key` test for both) measured 8-12 % slower on
# benchmarks/bench_cache.py (2026-11-27), so the near-copies are deliberate.
@nb.njit(cache=True)
def _run_lru_reads(addr, nbytes, unit, op_start, cfg, recip, slots, out, pshift, pmask, part):
    """``_run`` specialised to reads through LRU, non-inclusive levels holding no dirty line.

    The caller (``accelsim.cache``) checks those conditions; then a request never writes, never
    evicts a dirty line and never back-invalidates, so a level-0 granule is one chain of
    lookups, level by level, until the first hit: no request stack. Each lookup moves the line
    to the front of its set in the same pass that searches it (the scanned entries shift down
    by one until the line, a free way or the end of the set is reached); what is counted is
    HITS, MISSES and EVICTIONS, FETCHES = MISSES is filled in per op. Counters and states are
    identical to ``_run`` (property-tested).
    """
    n_levels = cfg.shape[0]
    shifts = cfg[:, CFG_SHIFT].copy()
    waysv = cfg[:, CFG_WAYS].copy()
    setsv = cfg[:, CFG_SETS].copy()
    masks = cfg[:, CFG_SET_MASK].copy()
    offs = cfg[:, CFG_TAG_OFFSET].copy()
    privs = cfg[:, CFG_PRIVATE].copy()
    shift0 = shifts[0]
    ways0 = waysv[0]
    sets0 = setsv[0]
    mask0 = masks[0]
    rec0 = recip[0]
    for op in range(op_start.shape[0] - 1):
        uop = np.uint64(op)
        hits0 = 0
        misses0 = 0
        evict0 = 0
        for r in range(op_start[op], op_start[op + 1]):
            nbr = nbytes[r]
            if nbr <= 0:
                continue
            a = addr[r]
            line = a >> shift0
            last = (a + nbr - 1) >> shift0
            u = np.int64(unit[r])
            ioff0 = offs[0] + (u * sets0 * ways0 if privs[0] else 0)
            while line <= last:
                cur = line
                line += 1
                if pmask != 0 and (((cur << shift0) >> pshift) & pmask) != part:
                    continue  # another partition's line
                s = _set_index(cur, mask0, rec0, sets0)
                ub = np.uint64(ioff0 + s * ways0)
                key = cur << 1
                carry = key
                i = 0
                while True:
                    ui = ub + np.uint64(i)
                    e = slots[ui]
                    slots[ui] = carry
                    if e == key:
                        break
                    if e < 0:
                        break
                    i += 1
                    if i == ways0:
                        break
                    carry = e
                if e == key:
                    hits0 += 1
                    continue
                misses0 += 1
                if e >= 0:
                    evict0 += 1
                byte = cur << shift0
                for lv in range(1, n_levels):
                    ulv = np.uint64(lv)
                    ways = waysv[ulv]
                    sets = setsv[ulv]
                    ln = byte >> shifts[ulv]
                    mask = masks[ulv]
                    s = _set_index(ln, mask, recip[ulv], sets)
                    inst = u if privs[ulv] else 0
                    ub = np.uint64(offs[ulv] + (inst * sets + s) * ways)
                    key = ln << 1
                    carry = key
                    i = 0
                    while True:
                        ui = ub + np.uint64(i)
                        e = slots[ui]
                        slots[ui] = carry
                        if e == key:
                            break
                        if e < 0:
                            break
                        i += 1
                        if i == ways:
                            break
                        carry = e
                    if e == key:
                        out[uop, ulv, HITS] += 1
                        break
                    out[uop, ulv, MISSES] += 1
                    if e >= 0:
                        out[uop, ulv, EVICTIONS] += 1
        out[uop, 0, HITS] += hits0
        out[uop, 0, MISSES] += misses0
        out[uop, 0, EVICTIONS] += evict0
        for lv in range(n_levels):
            out[uop, lv, FETCHES] = out[uop, lv, MISSES]


@nb.njit(cache=True)
def _run_lru_wb(addr, nbytes, is_write, unit, op_start, cfg, recip, slots, out, pshift, pmask,
                part):
    """``_run`` specialised to LRU, write-back, write-allocate, non-inclusive levels (not
    pycachesim mode), reads and writes, any state.

    A granule's requests to the level below are at most a write-back of the victim (served
    first) and a fetch, each one granule of the level below. The current request is kept in
    registers; only a fetch waiting behind a write-back is pushed on a small stack, so reads
    run as one chain of lookups. Lookup and move-to-front are one pass as in
    ``_run_lru_reads``. Counters and states are identical to ``_run`` (property-tested).
    """
    n_levels = cfg.shape[0]
    shifts = cfg[:, CFG_SHIFT].copy()
    waysv = cfg[:, CFG_WAYS].copy()
    setsv = cfg[:, CFG_SETS].copy()
    masks = cfg[:, CFG_SET_MASK].copy()
    offs = cfg[:, CFG_TAG_OFFSET].copy()
    privs = cfg[:, CFG_PRIVATE].copy()
    pend_lv = np.empty(n_levels + 1, np.int64)
    pend_byte = np.empty(n_levels + 1, np.int64)
    shift0 = shifts[0]
    for op in range(op_start.shape[0] - 1):
        uop = np.uint64(op)
        for r in range(op_start[op], op_start[op + 1]):
            nbr = nbytes[r]
            if nbr <= 0:
                continue
            a = addr[r]
            end = a + nbr
            line0 = a >> shift0
            last0 = (end - 1) >> shift0
            u = np.int64(unit[r])
            w0 = np.int64(is_write[r] != 0)
            while line0 <= last0:
                # current request: level lv, byte address of its granule, write flag, whether
                # a write covers the granule's whole line
                lv = 0
                byte = line0 << shift0
                line0 += 1
                if pmask != 0 and ((byte >> pshift) & pmask) != part:
                    continue  # another partition's line
                w = w0
                whole = w0 == 1 and byte >= a and byte + (np.int64(1) << shift0) <= end
                sp = 0
                while True:
                    ulv = np.uint64(lv)
                    shift = shifts[ulv]
                    ways = waysv[ulv]
                    sets = setsv[ulv]
                    ln = byte >> shift
                    mask = masks[ulv]
                    s = _set_index(ln, mask, recip[ulv], sets)
                    inst = u if privs[ulv] else 0
                    ub = np.uint64(offs[ulv] + (inst * sets + s) * ways)
                    key = (ln << 1) | 1
                    carry = ln << 1
                    i = 0
                    while True:
                        ui = ub + np.uint64(i)
                        e = slots[ui]
                        slots[ui] = carry
                        if (e | 1) == key:
                            break
                        if e < 0:
                            break
                        i += 1
                        if i == ways:
                            break
                        carry = e
                    nxt = lv + 1
                    if (e | 1) == key:
                        out[uop, ulv, HITS] += 1
                        slots[ub] = e | w
                        if w:
                            out[uop, ulv, WRITE_ACCESSES] += 1
                        fetch = False
                        wb = False
                    else:
                        out[uop, ulv, MISSES] += 1
                        slots[ub] = (ln << 1) | w
                        if w:
                            out[uop, ulv, WRITE_ACCESSES] += 1
                        wb = False
                        if e >= 0:
                            out[uop, ulv, EVICTIONS] += 1
                            if e & 1:
                                wb = True
                                out[uop, ulv, WRITEBACKS] += 1
                                out[uop, ulv, WRITES_BELOW] += 1
                                out[uop, ulv, BYTES_WRITTEN_BELOW] += np.int64(1) << shift
                        fetch = not whole
                        if fetch:
                            out[uop, ulv, FETCHES] += 1
                    if nxt < n_levels and wb:
                        if fetch:
                            pend_lv[sp] = nxt
                            pend_byte[sp] = ln << shift
                            sp += 1
                        # the victim's write-back: a whole line of this level
                        whole = shifts[nxt] == shift
                        byte = (e >> 1) << shift
                        w = 1
                        lv = nxt
                    elif nxt < n_levels and fetch:
                        byte = ln << shift
                        w = 0
                        whole = False
                        lv = nxt
                    elif sp > 0:
                        sp -= 1
                        lv = pend_lv[sp]
                        byte = pend_byte[sp]
                        w = 0
                        whole = False
                    else:
                        break


@nb.njit(cache=True)
def _derive(out, cfg):
    """Fill the counters implied by the counted ones.

    ACCESSES = HITS + MISSES (in compat mode a store hit is neither); BYTES_READ_FROM_BELOW =
    FETCHES whole lines; every request sent below one level lands in one line of the next,
    so memory's row is the last level's requests and bytes.
    """
    n_levels = cfg.shape[0]
    last = n_levels - 1
    for op in range(out.shape[0]):
        for lv in range(n_levels):
            out[op, lv, ACCESSES] = out[op, lv, HITS] + out[op, lv, MISSES]
            out[op, lv, BYTES_READ_FROM_BELOW] = out[op, lv, FETCHES] << cfg[lv, CFG_SHIFT]
        out[op, n_levels, ACCESSES] = out[op, last, FETCHES] + out[op, last, WRITES_BELOW]
        out[op, n_levels, WRITE_ACCESSES] = out[op, last, WRITES_BELOW]
        out[op, n_levels, BYTES_READ_FROM_BELOW] = out[op, last, BYTES_READ_FROM_BELOW]
        out[op, n_levels, BYTES_WRITTEN_BELOW] = out[op, last, BYTES_WRITTEN_BELOW]


@nb.njit(cache=True)
def simulate(addr: np.ndarray, nbytes: np.ndarray, is_write: np.ndarray, unit: np.ndarray,
             op_start: np.ndarray, cfg: np.ndarray, recip: np.ndarray, slots: np.ndarray,
             meta: np.ndarray, rng: np.ndarray, n_units: int, compat: int) -> np.ndarray:
    """Run a trace of byte runs through the hierarchy, updating the state arrays in place.

    Returns int64[n_ops, n_levels + 1, N_COUNTERS]; runs ``op_start[o]:op_start[o+1]`` are
    charged to op ``o``. Runs with ``nbytes <= 0`` are skipped.
    """
    out = np.zeros((op_start.shape[0] - 1, cfg.shape[0] + 1, N_COUNTERS), np.int64)
    _run(addr, nbytes, is_write, unit, op_start, 0, cfg, recip, slots, meta, rng, n_units,
         compat, out, 0, 0, 0)
    _derive(out, cfg)
    return out


@nb.njit(cache=True)
def simulate_lru_reads(addr: np.ndarray, nbytes: np.ndarray, unit: np.ndarray,
                       op_start: np.ndarray, cfg: np.ndarray, recip: np.ndarray,
                       slots: np.ndarray) -> np.ndarray:
    """``simulate`` for a read-only trace when every level is LRU and non-inclusive and no
    line is dirty (the caller checks); identical results, no request stack."""
    out = np.zeros((op_start.shape[0] - 1, cfg.shape[0] + 1, N_COUNTERS), np.int64)
    _run_lru_reads(addr, nbytes, unit, op_start, cfg, recip, slots, out, 0, 0, 0)
    _derive(out, cfg)
    return out


@nb.njit(cache=True)
def simulate_lru_wb(addr: np.ndarray, nbytes: np.ndarray, is_write: np.ndarray,
                    unit: np.ndarray, op_start: np.ndarray, cfg: np.ndarray, recip: np.ndarray,
                    slots: np.ndarray) -> np.ndarray:
    """``simulate`` when every level is LRU, write-back, write-allocate and non-inclusive
    and ``compat`` is 0 (the caller checks); identical results."""
    out = np.zeros((op_start.shape[0] - 1, cfg.shape[0] + 1, N_COUNTERS), np.int64)
    _run_lru_wb(addr, nbytes, is_write, unit, op_start, cfg, recip, slots, out, 0, 0, 0)
    _derive(out, cfg)
    return out


@nb.njit(cache=True)
def flush(cfg: np.ndarray, recip: np.ndarray, slots: np.ndarray, meta: np.ndarray,
          rng: np.ndarray, n_units: int, compat: int) -> np.ndarray:
    """Write every dirty line back, nearest level first, leaving lines valid and clean.

    Returns int64[1, n_levels + 1, N_COUNTERS]. Going top-down lets data flushed from level L
    land in L+1 and then leave L+1 in the same call. Level L's dirty lines are collected and
    cleaned first, then written to L+1; that cannot dirty L again (data only flows down).
    """
    n_levels = cfg.shape[0]
    out = np.zeros((1, n_levels + 1, N_COUNTERS), np.int64)
    for lv in range(n_levels):
        shift = cfg[lv, CFG_SHIFT]
        per_inst = cfg[lv, CFG_SETS] * cfg[lv, CFG_WAYS]
        off = cfg[lv, CFG_TAG_OFFSET]
        size = per_inst * (n_units if cfg[lv, CFG_PRIVATE] else 1)
        n_dirty = 0
        for i in range(off, off + size):
            if slots[i] >= 0 and (slots[i] & 1):
                n_dirty += 1
        addr = np.empty(n_dirty, np.int64)
        units = np.empty(n_dirty, np.int32)
        j = 0
        for i in range(off, off + size):
            e = slots[i]
            if e >= 0 and (e & 1):
                slots[i] = e ^ 1
                addr[j] = (e >> 1) << shift
                units[j] = (i - off) // per_inst
                j += 1
        out[0, lv, WRITEBACKS] += n_dirty
        out[0, lv, WRITES_BELOW] += n_dirty
        out[0, lv, BYTES_WRITTEN_BELOW] += n_dirty << shift
        if lv + 1 < n_levels:
            _run(addr, np.full(n_dirty, np.int64(1) << shift, np.int64),
                 np.ones(n_dirty, np.uint8), units, np.array([0, n_dirty], np.int64), lv + 1,
                 cfg, recip, slots, meta, rng, n_units, compat, out, 0, 0, 0)
    _derive(out, cfg)
    return out


# ---- set-partitioned simulation -----------------------------------------------------------
# A level-0 granule at byte address b belongs to partition (b >> pshift) & pmask. When every
# level's set index determines that partition (the caller, `accelsim.cache`, checks), requests
# of different partitions touch disjoint sets at every level (a fetch, write-back or
# back-invalidation stays at the address range of its line, inside one partition chunk), so
# each partition can be simulated alone, in program order, by its own thread on the shared
# state arrays; the per-op counters of all partitions sum to the serial counters exactly.
# The kernels release the GIL; `_derive` is linear, so partial counters are derived each.
@nb.njit(cache=True, nogil=True)
def simulate_part(addr: np.ndarray, nbytes: np.ndarray, is_write: np.ndarray, unit: np.ndarray,
                  op_start: np.ndarray, cfg: np.ndarray, recip: np.ndarray, slots: np.ndarray,
                  meta: np.ndarray, rng: np.ndarray, n_units: int, compat: int, pshift: int,
                  pmask: int, part: int) -> np.ndarray:
    """``simulate`` restricted to the granules of partition ``part``."""
    out = np.zeros((op_start.shape[0] - 1, cfg.shape[0] + 1, N_COUNTERS), np.int64)
    _run(addr, nbytes, is_write, unit, op_start, 0, cfg, recip, slots, meta, rng, n_units,
         compat, out, pshift, pmask, part)
    _derive(out, cfg)
    return out


@nb.njit(cache=True, nogil=True)
def simulate_lru_reads_part(addr: np.ndarray, nbytes: np.ndarray, unit: np.ndarray,
                            op_start: np.ndarray, cfg: np.ndarray, recip: np.ndarray,
                            slots: np.ndarray, pshift: int, pmask: int, part: int
                            ) -> np.ndarray:
    """``simulate_lru_reads`` restricted to the granules of partition ``part``."""
    out = np.zeros((op_start.shape[0] - 1, cfg.shape[0] + 1, N_COUNTERS), np.int64)
    _run_lru_reads(addr, nbytes, unit, op_start, cfg, recip, slots, out, pshift, pmask, part)
    _derive(out, cfg)
    return out


@nb.njit(cache=True, nogil=True)
def simulate_lru_wb_part(addr: np.ndarray, nbytes: np.ndarray, is_write: np.ndarray,
                         unit: np.ndarray, op_start: np.ndarray, cfg: np.ndarray,
                         recip: np.ndarray, slots: np.ndarray, pshift: int, pmask: int,
                         part: int) -> np.ndarray:
    """``simulate_lru_wb`` restricted to the granules of partition ``part``."""
    out = np.zeros((op_start.shape[0] - 1, cfg.shape[0] + 1, N_COUNTERS), np.int64)
    _run_lru_wb(addr, nbytes, is_write, unit, op_start, cfg, recip, slots, out, pshift, pmask,
                part)
    _derive(out, cfg)
    return out
