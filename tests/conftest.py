"""Shared test fixtures and helpers: repository paths, a tiny workload, a hand-countable chip,
and stand-in mappings. Tests reach helpers through fixtures, never by importing test modules."""

from __future__ import annotations

import math
import types
from pathlib import Path

import pytest

from accelsim.graph import Op
from accelsim.hardware import (
    CacheLevelSpec,
    Calibration,
    ComputeSpec,
    HardwareSpec,
    InterconnectSpec,
    MatrixPipe,
    MemorySpec,
)
from accelsim.mapping import GemmMapping, Mapping, StreamMapping

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


#: A workload small enough to simulate in a second, for end-to-end command tests.
TINY_NMT = """\
name: nmt_tiny
model: {family: nmt, hidden: 64, vocab: 500, sequence_length: 3}
subbatch: 8
precision: fp32
optimizer: sgd
dataset: {samples: 1e6, unit: word-pieces}
"""


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> str:
    """Path of the tiny NMT workload file."""
    path = tmp_path_factory.mktemp("wl") / "nmt_tiny.yaml"
    path.write_text(TINY_NMT)
    return str(path)


# --- a chip and ops small enough to count tiles, waves and bytes by hand ----------------------
def _tiny_hw(units: int = 4, local_bytes: int = 16 * 1024, rf_bytes: int = 64 * 1024,
            l2_bytes: int = 64 * 1024) -> HardwareSpec:
    """A chip small enough to count tiles and waves by hand."""
    return HardwareSpec(
        name="tiny",
        compute=ComputeSpec(units=units, clock_hz=1e9,
                            matrix={"fp32": MatrixPipe(macs_per_cycle_per_unit=64),
                                    "fp16": MatrixPipe(macs_per_cycle_per_unit=256, min_tile=16)},
                            vector_flop_rate=1e11, local_memory_bytes=local_bytes,
                            register_file_bytes=rf_bytes),
        caches=(CacheLevelSpec(name="L2", capacity_bytes=l2_bytes, line_bytes=128, ways=16,
                               bandwidth_bytes_per_s=1e11, latency_s=1e-7),),
        memory=MemorySpec(capacity_bytes=2**30, bandwidth_bytes_per_s=5e10, latency_s=2e-7),
        interconnect=InterconnectSpec(link_bandwidth_bytes_per_s=1e10),
        calibration=Calibration.ideal(launch_overhead_s=1e-6))


def _gemm(m: int, n: int, k: int, batch: int = 1) -> Op:
    return Op(id=0, name="g", kind="gemm", phase="forward", inputs=(), outputs=(),
              flops=2.0 * m * n * k * batch, m=m, n=n, k=k, batch_count=batch)


@pytest.fixture(scope="session")
def tiny_hw():
    """`tiny_hw(units=4, local_bytes=..., rf_bytes=..., l2_bytes=...)` -> HardwareSpec."""
    return _tiny_hw


@pytest.fixture(scope="session")
def gemm():
    """`gemm(m, n, k, batch=1)` -> a stand-alone GEMM Op."""
    return _gemm


# --- fixed mappings for the trace tests -------------------------------------------------------
# Real `GemmMapping` / `StreamMapping` records with simple fixed tiles (not the ones
# `timing.map_op` would choose), so the trace and replay tests do not depend on the mapping
# heuristics.
def fake_map_op(hw: HardwareSpec, op: Op, dtype: str, tile: tuple[int, int, int] = (64, 64, 32),
                chunk_bytes: int = 16384) -> Mapping:
    units = hw.compute.units
    if op.kind == "gemm":
        tm, tn, tk = (min(t, max(1, d)) for t, d in zip(tile, (op.m, op.n, op.k), strict=True))
        tiles = math.ceil(op.m / tm) * math.ceil(op.n / tn) * op.batch_count
        used = min(units, tiles)
        return GemmMapping(tm, tn, tk, 1, 0, used, math.ceil(tiles / used), tiles)
    return StreamMapping(units, 1, chunk_bytes)


@pytest.fixture(scope="session")
def fakes() -> types.SimpleNamespace:
    """`fakes.fake_map_op(hw, op, dtype)`: a fixed mapping of one op."""
    return types.SimpleNamespace(fake_map_op=fake_map_op)
