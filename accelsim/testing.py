"""Hypothesis strategies for cache designs and traces, for property tests of your own designs.

Importing this module needs hypothesis (a test dependency) but nothing from accelsim beyond
the cache and trace kernels. Sizes are kept small so that hundreds of examples run in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np
from hypothesis import strategies as st

from accelsim.cache import Trace
from accelsim.hardware import CacheLevelSpec
from accelsim.kernels.trace import elementwise_runs, gemm_runs
from accelsim.vocabulary import (
    INCLUSION_POLICIES,
    PRIVATE,
    REPLACEMENT_POLICIES,
    SHARED,
    SHARING_POLICIES,
    WRITE_POLICIES,
)

__all__ = ["cache_hierarchies", "cache_level", "cache_levels", "elementwise_traces", "gemm_traces", "random_runs",
           "strided_runs", "traces"]

ALL_POLICIES = tuple(REPLACEMENT_POLICIES)
#: Bandwidth given to levels made for cache-only tests (the cache model does not read it).
TEST_LEVEL_BANDWIDTH_BYTES_PER_S = 1e12


def cache_level(name: str, capacity_bytes: int, **fields: object) -> CacheLevelSpec:
    """A `CacheLevelSpec` for cache-only use: the spec's defaults, any bandwidth."""
    fields.setdefault("bandwidth_bytes_per_s", TEST_LEVEL_BANDWIDTH_BYTES_PER_S)
    return CacheLevelSpec(name=name, capacity_bytes=capacity_bytes, **fields)  # type: ignore[arg-type]


@st.composite
def cache_levels(draw: st.DrawFn, name: str = "L1", line_bytes: Sequence[int] = (16, 32, 64),
                 max_lines: int = 32, policies: Sequence[str] = ALL_POLICIES,
                 write_policies: Sequence[str] = WRITE_POLICIES,
                 inclusion: Sequence[str] = INCLUSION_POLICIES,
                 sharing: Sequence[str] = SHARING_POLICIES) -> CacheLevelSpec:
    """One valid level (``ways`` 0 = fully associative; plru gets power-of-two ways)."""
    line = draw(st.sampled_from(list(line_bytes)))
    policy = draw(st.sampled_from(list(policies)))
    if policy == "plru":
        ways = 1 << draw(st.integers(0, max(0, max_lines.bit_length() - 1)))
        sets = 1 << draw(st.integers(0, max(0, (max_lines // ways).bit_length() - 1)))
    else:
        ways = draw(st.integers(1, max_lines))
        sets = draw(st.integers(1, max(1, max_lines // ways)))
    lines = ways * sets
    return cache_level(
        name=name, capacity_bytes=lines * line, line_bytes=line,
        ways=0 if sets == 1 and draw(st.booleans()) else ways,
        replacement=policy,
        write_policy=draw(st.sampled_from(list(write_policies))),
        write_allocate=draw(st.booleans()),
        inclusion=draw(st.sampled_from(list(inclusion))),
        sharing=draw(st.sampled_from(list(sharing))),
    )


@st.composite
def cache_hierarchies(draw: st.DrawFn, max_levels: int = 3, max_units: int = 3,
                      policies: Sequence[str] = ALL_POLICIES,
                      write_policies: Sequence[str] = WRITE_POLICIES,
                      inclusion: Sequence[str] = INCLUSION_POLICIES,
                      write_allocate: bool | None = None,
                      ) -> tuple[list[CacheLevelSpec], int]:
    """(levels, n_units): line sizes never shrink downwards and no private level sits below a
    shared one (what ``CacheHierarchy`` accepts)."""
    n_levels = draw(st.integers(1, max_levels))
    n_units = draw(st.integers(1, max_units))
    levels: list[CacheLevelSpec] = []
    line = draw(st.sampled_from([16, 32]))
    shared_seen = False
    for i in range(n_levels):
        if i:
            line = line * draw(st.sampled_from([1, 1, 2]))
        sharing = (SHARED,) if shared_seen else (PRIVATE, SHARED)
        lvl = draw(cache_levels(name=f"L{i + 1}", line_bytes=(line,), max_lines=8 * (i + 1) ** 2,
                                policies=policies, write_policies=write_policies,
                                inclusion=inclusion, sharing=sharing))
        if write_allocate is not None:
            lvl = attrs.evolve(lvl, write_allocate=write_allocate)
        shared_seen = shared_seen or lvl.sharing == SHARED
        levels.append(lvl)
    return levels, n_units


@st.composite
def random_runs(draw: st.DrawFn, n_units: int = 1, max_runs: int = 60,
                span_bytes: int = 4096, max_run_bytes: int = 130,
                writes: bool = True) -> tuple[np.ndarray, ...]:
    """Runs at random addresses in [0, span_bytes) (small span = lots of reuse)."""
    n = draw(st.integers(1, max_runs))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    addr = rng.integers(0, span_bytes, n).astype(np.int64)
    nbytes = rng.integers(1, max_run_bytes + 1, n).astype(np.int64)
    is_write = (rng.random(n) < (0.3 if writes else 0.0)).astype(np.uint8)
    unit = rng.integers(0, n_units, n).astype(np.int32)
    return addr, nbytes, is_write, unit


@st.composite
def strided_runs(draw: st.DrawFn, n_units: int = 1, max_runs: int = 60,
                 writes: bool = True) -> tuple[np.ndarray, ...]:
    """A few passes over a strided stream (conflict-miss patterns)."""
    count = draw(st.integers(1, max(1, max_runs // 3)))
    stride = draw(st.sampled_from([8, 16, 64, 128, 256, 1024]))
    size = draw(st.integers(1, 64))
    passes = draw(st.integers(1, 3))
    start = draw(st.integers(0, 1024))
    one = start + stride * np.arange(count, dtype=np.int64)
    addr = np.tile(one, passes)
    n = addr.shape[0]
    is_write = np.zeros(n, np.uint8)
    if writes and draw(st.booleans()):
        is_write[-count:] = 1
    unit = (np.arange(n) % n_units).astype(np.int32)
    return addr, np.full(n, size, np.int64), is_write, unit


@st.composite
def gemm_traces(draw: st.DrawFn, n_units: int = 1, max_dim: int = 24,
                tile_major: bool | None = None) -> tuple[np.ndarray, ...]:
    """Runs of a small tiled GEMM from ``gemm_runs`` (partial edge tiles included)."""
    m, n, k = (draw(st.integers(1, max_dim)) for _ in range(3))
    tm, tn, tk = (draw(st.integers(1, 8)) for _ in range(3))
    eb = draw(st.sampled_from([1, 2, 4]))
    a_base = draw(st.integers(0, 3)) * 64
    b_base = a_base + m * k * eb + draw(st.integers(0, 2)) * 64
    c_base = b_base + k * n * eb + draw(st.integers(0, 2)) * 64
    tmaj = draw(st.booleans()) if tile_major is None else tile_major
    return gemm_runs(m, n, k, tm, tn, tk, eb, a_base, b_base, c_base, draw(st.booleans()),
                     draw(st.booleans()), draw(st.integers(0, 1)), n_units, tmaj)


@st.composite
def elementwise_traces(draw: st.DrawFn, n_units: int = 1) -> tuple[np.ndarray, ...]:
    """Runs of a streaming elementwise op with 1-3 inputs and 1-2 outputs."""
    n_in = draw(st.integers(1, 3))
    n_out = draw(st.integers(1, 2))
    n_elems = draw(st.integers(1, 300))
    eb = draw(st.sampled_from([2, 4]))
    size = n_elems * eb
    bases = np.arange(n_in + n_out, dtype=np.int64) * (size + draw(st.integers(0, 64)))
    return elementwise_runs(bases[:n_in], bases[n_in:], n_elems, eb, n_units,
                            draw(st.sampled_from([16, 64, 100, 256])))


@st.composite
def traces(draw: st.DrawFn, n_units: int = 1, max_ops: int = 3,
           kinds: Sequence[str] = ("random", "strided", "gemm", "elementwise"),
           writes: bool = True) -> Trace:
    """A trace of 1..max_ops ops, each drawn from ``kinds``; ``writes=False`` gives
    load-only traces (what pycachesim cross-checks need)."""
    ops = []
    for _ in range(draw(st.integers(1, max_ops))):
        kind = draw(st.sampled_from(list(kinds)))
        if kind == "random":
            runs = draw(random_runs(n_units=n_units, writes=writes))
        elif kind == "strided":
            runs = draw(strided_runs(n_units=n_units, writes=writes))
        elif kind == "gemm":
            runs = draw(gemm_traces(n_units=n_units))
        else:
            runs = draw(elementwise_traces(n_units=n_units))
        addr, nbytes, is_write, unit = runs
        if not writes:
            is_write = np.zeros_like(is_write)
        ops.append(Trace.single_op(addr, nbytes, is_write, unit))
    return Trace.concat(ops)


# Spec strategies live beside the spec loader; re-exported so `accelsim.testing` is the one
# public place for property-test strategies (hardware specs, workloads, caches, traces).
from accelsim.spec_strategies import (  # noqa: E402
    cache_level_specs,
    hardware_specs,
    model_configs,
    workload_specs,
)

__all__ += ["cache_level_specs", "hardware_specs", "model_configs", "workload_specs"]
