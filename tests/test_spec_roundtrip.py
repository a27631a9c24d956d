"""Specs survive YAML: dump then load gives an equal object; quantities format and parse exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accelsim import spec, units
from accelsim.spec_strategies import (
    YAML_TRAPS,
    cache_level_specs,
    hardware_specs,
    specs_of,
    workload_specs,
)
from accelsim.workload import DatasetSpec

REPO = Path(__file__).resolve().parents[1]
SHIPPED_HW = sorted((REPO / "hwspecs").glob("*.yaml"))
SHIPPED_WL = sorted((REPO / "workloads").glob("*.yaml"))
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(hardware_specs(), st.booleans())
def test_hardware_roundtrip(hw, with_units):
    assert spec.hardware_from_yaml(spec.dump_yaml(hw, with_units=with_units)) == hw


@PROPERTY
@given(workload_specs(), st.booleans())
def test_workload_roundtrip(wl, with_units):
    assert spec.workload_from_yaml(spec.dump_yaml(wl, with_units=with_units)) == wl


@PROPERTY
@given(cache_level_specs())
def test_cache_levels_obey_their_rules(level):
    assert level.line_bytes & (level.line_bytes - 1) == 0
    assert level.ways == 0 or level.lines % level.ways == 0


def test_strategies_reach_the_yaml_traps():
    """The name strategy really produces trap words (else the round trip proves little)."""
    seen = set()

    @settings(max_examples=300, deadline=None)
    @given(specs_of(DatasetSpec))
    def collect(ds):
        seen.add(ds.unit)

    collect()
    assert seen & {"yes", "no", "null", "1e9", "~"} & set(YAML_TRAPS), seen


# --- units ------------------------------------------------------------------------------------
_PARSE = {"bytes": units.parse_bytes, "bandwidth": units.parse_bandwidth,
          "frequency": units.parse_frequency, "time": units.parse_time,
          "flop_rate": units.parse_flop_rate, "count": units.parse_count}
_finite = st.floats(min_value=0, max_value=1e30, allow_nan=False, allow_infinity=False)


@PROPERTY
@given(st.sampled_from(sorted(set(_PARSE) - {"bytes"})), st.one_of(
    _finite, st.builds(lambda n, e: n * 10.0**e, st.integers(0, 10**6), st.integers(-12, 15))))
def test_format_then_parse_is_exact(kind, value):
    assert _PARSE[kind](units.format_quantity(value, kind)) == value


@PROPERTY
@given(st.one_of(st.integers(0, 2**70),
                 st.builds(lambda n, e: n * 1024**e, st.integers(0, 4096), st.integers(0, 5))))
def test_format_then_parse_bytes_is_exact(n):
    assert units.parse_bytes(units.format_quantity(n, "bytes")) == n


@pytest.mark.parametrize("value, kind, text", [
    (6 * 2**20, "bytes", "6 MiB"), (32 * 10**9, "bytes", "32 GB"), (128, "bytes", "128 B"),
    (9e11, "bandwidth", "900 GB/s"), (2.0**40, "bandwidth", "1 TiB/s"),
    (1.53e9, "frequency", "1.53 GHz"), (units.parse_time("126 ns"), "time", "126 ns"),
    (15.67e12, "flop_rate", "15.67 TFLOP/s"), (0.0, "time", "0 s"),
])
def test_format_is_readable(value, kind, text):
    assert units.format_quantity(value, kind) == text


@PROPERTY
@given(st.integers(0, 2**50))
def test_decimal_and_binary_kilo(n):
    assert units.parse_bytes(f"{n} kB") == 1000 * n
    assert units.parse_bytes(f"{n} KiB") == 1024 * n
    assert units.parse_bandwidth(f"{n} kB/s") == 1000.0 * n
    with pytest.raises(units.UnitError, match="ambiguous"):
        units.parse_bytes(f"{n} KB")


# --- shipped files ----------------------------------------------------------------------------
@pytest.mark.parametrize("path", SHIPPED_HW, ids=lambda p: p.name)
def test_shipped_hardware_loads_and_roundtrips(path):
    hw = spec.load_hardware(path)
    assert spec.hardware_from_yaml(spec.dump_yaml(hw)) == hw
    assert spec.hardware_from_yaml(spec.dump_yaml(hw, with_units=False)) == hw


@pytest.mark.parametrize("path", SHIPPED_WL, ids=lambda p: p.name)
def test_shipped_workloads_load_and_roundtrip(path):
    wl = spec.load_workload(path)
    assert spec.workload_from_yaml(spec.dump_yaml(wl)) == wl
    assert spec.workload_from_yaml(spec.dump_yaml(wl, with_units=False)) == wl


def test_shipped_files_exist():
    assert len(SHIPPED_HW) >= 6 and SHIPPED_WL
