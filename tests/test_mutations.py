"""Random damage to the shipped specs never makes `check` or `run` fail with a traceback.

Hypothesis mutates a shipped hardware spec (and the tiny workload): deletes keys, swaps a
value's type, sets numeric extremes and unit garbage. `accelsim check` and, when the pair
passes it, `accelsim run` (in-process) must exit 0 or 2, and `run` must not fail where
`check` (given the same options) passed. The deadline bounds each example.
"""

from __future__ import annotations

import contextlib
import copy
import io
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accelsim.cli import main

REPO = Path(__file__).resolve().parents[1]
HARDWARE = {p.stem: yaml.safe_load(p.read_text(encoding="utf-8"))
            for p in sorted((REPO / "hwspecs").glob("*.yaml"))}
TINY = {"name": "nmt_tiny",
        "model": {"family": "nmt", "hidden": 64, "vocab": 500, "sequence_length": 3},
        "subbatch": 8, "precision": "fp32", "optimizer": "sgd",
        "dataset": {"samples": 1e6, "unit": "word-pieces"}}

#: The shipped specs leave the fields added by parallel plans, sustained clocks, per-pipe
#: calibration and banked SRAM unset, so a V100 with every one of them given (valid for 1 or
#: 2 chips) and a tiny workload with a plan are mutated too.
_FULL = copy.deepcopy(HARDWARE["v100"])
_FULL["name"] = "v100_all_fields"
_FULL["compute"]["sustained_clock"] = "1.4 GHz"
_FULL["compute"]["matrix"]["fp32"]["efficiency"] = 0.9
_FULL["interconnect"].update({
    "topology": "two_level", "chips_per_node": 2, "network_bandwidth": "25 GB/s",
    "network_latency": "5 us", "torus_shape": [1, 2], "host_bandwidth": "16 GB/s",
    "host_memory": "64 GiB"})
_FULL["technology"].update({"sram_bank_bytes": "1 MiB", "wire_energy_pj_per_bit_per_mm": 0.1})
HARDWARE[_FULL["name"]] = _FULL
TINY_PLAN = copy.deepcopy(TINY) | {
    "name": "nmt_tiny_plan", "recurrent_execution": "framework",
    "parallel": {"pipeline": 1, "tensor": 1, "microbatches": 2, "schedule": "auto",
                 "shard_embedding": False, "offload": ["optimizer_state"]}}

#: Replacement values: numeric extremes, zero and negatives, fractions, other types, nulls,
#: unit garbage and near-miss units.
VALUES = st.sampled_from([
    0, -1, 1, 2, 3, 7, 0.5, 64.4, 1e300, -1e300, 1e-300, 2**63 - 1, 2**63, 10**12, 2**20 + 1,
    float("inf"), float("nan"), True, False, None, "", [], {}, [1], {"a": 1}, "x", "yes",
    "0 B", "0.5 B", "64.4 B", "1 PiB", "2048 PiB", "1 KHz", "0 GHz", "5 THz", "900 Gb/s",
    "0 GB/s", "1e30 B/s", "1 TFLOP", "0 TFLOP/s", "1e303 d", "1 h", "-5 us", "\x00", "HBM",
    "memory", "plru", "private", "shared", "lfu", "write_through", "inclusive", "torus2d",
])


def _paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    out = []
    if isinstance(data, dict):
        for k, v in data.items():
            out.append(prefix + (k,))
            out += _paths(v, prefix + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out.append(prefix + (i,))
            out += _paths(v, prefix + (i,))
    return out


@st.composite
def _mutated(draw, base: Any) -> Any:
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(VALUES)
    return data


@st.composite
def _cases(draw):
    name = draw(st.sampled_from(sorted(HARDWARE)))
    hw = draw(st.one_of(_mutated(HARDWARE[name]), st.just(HARDWARE[name])))
    base = draw(st.sampled_from([TINY, TINY_PLAN]))
    wl = draw(st.one_of(st.just(base), _mutated(base))) if draw(st.booleans()) else base
    chips = draw(st.sampled_from([1, 1, 2]))
    mode = draw(st.sampled_from(["auto", "auto", "exact", "coalesced"]))
    return hw, wl, chips, mode


def _run(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue() + err.getvalue()


@pytest.mark.slow
@settings(max_examples=150, deadline=timedelta(seconds=60), derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_cases())
def test_mutated_specs_exit_0_or_2(case):
    hw, wl, chips, mode = case
    with tempfile.TemporaryDirectory() as tmp:
        hw_path, wl_path = Path(tmp) / "hw.yaml", Path(tmp) / "wl.yaml"
        hw_path.write_text(yaml.safe_dump(hw, allow_unicode=True), encoding="utf-8")
        wl_path.write_text(yaml.safe_dump(wl, allow_unicode=True), encoding="utf-8")
        code, text = _run(["check", "--mode", mode, "--chips", str(chips), str(hw_path),
                           str(wl_path)])
        assert code in (0, 2), text
        assert "Traceback" not in text
        if code == 0:
            code, text = _run(["run", str(hw_path), str(wl_path), "--chips", str(chips),
                               "--mode", mode])
            assert code == 0, f"check passed, run refused:\n{text}"
