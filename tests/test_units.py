import pytest
from hypothesis import given
from hypothesis import strategies as st

from accelsim import units
from accelsim.units import UnitError


@pytest.mark.parametrize("text, expected", [
    ("6 MiB", 6 * 2**20), ("6MiB", 6 * 2**20), ("6 MB", 6_000_000), ("1 kB", 1000),
    ("1 KiB", 1024), ("128 B", 128), (128, 128), ("1.5 GiB", 3 * 2**29), ("2 TB", 2 * 10**12),
    ("32 bytes", 32),
])
def test_parse_bytes(text, expected):
    assert units.parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["6 KB", "6 Kb", "six MiB", "-1 MiB", "1 MHz", True, None, "1 XB"])
def test_parse_bytes_rejects(text):
    with pytest.raises(UnitError):
        units.parse_bytes(text)


def test_kb_message_names_both_alternatives():
    with pytest.raises(UnitError, match="write 'k' \\(1000\\) or 'Ki' \\(1024\\)"):
        units.parse_bytes("96 KB")


@pytest.mark.parametrize("fn, text, expected", [
    (units.parse_bandwidth, "900 GB/s", 9e11), (units.parse_bandwidth, "1 TiB/s", 2.0**40),
    (units.parse_frequency, "1.53 GHz", 1.53e9), (units.parse_time, "5 us", 5e-6),
    (units.parse_time, "2 ms", 2e-3), (units.parse_flop_rate, "15.67 TFLOP/s", 15.67e12),
    (units.parse_flop_rate, "125 TFLOPS", 125e12), (units.parse_count, "97.4e9", 97.4e9),
    (units.parse_count, "18.9 G", 18.9e9),
])
def test_parse_quantities(fn, text, expected):
    assert fn(text) == pytest.approx(expected, rel=1e-12)


@given(st.integers(min_value=0, max_value=2**50), st.sampled_from(["", "Ki", "Mi", "Gi", "k", "M", "G"]))
def test_bytes_scale_exactly(n, prefix):
    scale = {"": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}[prefix]
    assert units.parse_bytes(f"{n} {prefix}B") == pytest.approx(n * scale, rel=1e-15, abs=1)


def test_format_time_readable():
    assert units.format_time(39.8) == "39.8 s"
    assert units.format_time(5e-6) == "5 us"
    assert units.format_time(86400 * 16000) == "1.6e+04 days"
