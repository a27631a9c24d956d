"""Quantities with units: parsing "6 MiB", "900 GB/s", "1.53 GHz", "5 us", "15.7 TFLOP/s".

Decimal prefixes are powers of 1000 (kB, MB, GB), binary prefixes powers of 1024 (KiB, MiB,
GiB). "KB" is ambiguous in the wild and is rejected rather than guessed.
"""

from __future__ import annotations

import math
import re

DECIMAL = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
BINARY = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50}
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "ps": 1e-12,
              "min": 60.0, "h": 3600.0, "d": 86400.0}

_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([^\s\d].*?)?\s*$")


class UnitError(ValueError):
    """A quantity string that does not parse; the message says what was expected.

    `hint` is a short remark to put after what was given, e.g. " (did you mean 'kHz'?)".
    """

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


def _unit_hint(unit: str, valid: list[str]) -> str:
    """' (did you mean ...?)' for a unit written in the wrong case or with bits for bytes."""
    compact = unit.replace(" ", "")
    bits = re.fullmatch(r"([A-Za-z]{0,2}?)(?:b/s|bps|bit/s|bits/s)", compact)
    if bits and bits.group(1).rstrip("i").upper() in ("", "K", "M", "G", "T", "P", "E"):
        prefix = bits.group(1)
        prefix = "k" if prefix in ("k", "K") else prefix[:1].upper() + prefix[1:].lower()
        return (f" (a lowercase 'b' is bits; bandwidths are in bytes: {prefix}B/s is "
                f"{prefix}b/s divided by 8)")
    folded = [v for v in valid if v.lower() == compact.lower()]
    if folded:
        return f" (did you mean '{folded[0]}'? unit prefixes are case-sensitive)"
    return ""


def _split(text: str | int | float, what: str) -> tuple[float, str]:
    if isinstance(text, bool):
        raise UnitError(f"{what}, got boolean {text!r}")
    if isinstance(text, int | float):
        try:
            return float(text), ""
        except OverflowError:
            raise UnitError(f"{what}, got a number of {len(str(text))} digits") from None
    if not isinstance(text, str):
        raise UnitError(f"{what}, got {type(text).__name__} {text!r}")
    match = _QUANTITY.match(text)
    if not match:
        raise UnitError(f"{what}, got {text!r}")
    return float(match.group(1)), (match.group(2) or "").strip()


def _prefix_scale(prefix: str, what: str, original: object) -> float:
    if prefix == "K":
        raise UnitError(f"{what}; 'K' is ambiguous: write 'k' (1000) or 'Ki' (1024), got {original!r}")
    if prefix in BINARY:
        return BINARY[prefix]
    if prefix in DECIMAL:
        return DECIMAL[prefix]
    raise UnitError(f"{what}, got unknown prefix {prefix!r} in {original!r}")


def _finite_nonneg(value: float, what: str, original: object) -> float:
    if not math.isfinite(value) or value < 0:
        raise UnitError(f"{what} (a finite, non-negative number), got {original!r}")
    return value


def parse_bytes(text: str | int | float) -> int:
    """'6 MiB' -> 6291456; a bare number is bytes. Whole numbers stay exact beyond 2**53."""
    what = "a size such as '6 MiB', '32 GB' or a number of bytes"
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise UnitError(f"{what} (a finite, non-negative number), got {text!r}")
        return text
    value, unit = _split(text, what)
    if unit == "":
        scale = 1.0
    else:
        m = re.fullmatch(r"([A-Za-z]{0,2}?)(B|bytes?)", unit)
        if not m:
            valid = [f"{p}B" for p in (*DECIMAL, *BINARY)]
            hint = _unit_hint(unit, valid)
            if not hint and re.fullmatch(r"[A-Za-z]{0,2}?(b|bits?)", unit):
                hint = " (a lowercase 'b' is bits; sizes are in bytes, 'B')"
            raise UnitError(f"{what}, got {text!r}", hint)
        scale = _prefix_scale(m.group(1), what, text)
    nbytes = _finite_nonneg(value * scale, what, text)
    digits = str(text).strip()[: len(str(text).strip()) - len(unit)].strip()
    if digits.isdigit() and scale == int(scale):
        return int(digits) * int(scale)
    whole = round(nbytes)
    if abs(nbytes - whole) > 1e-9 * max(1.0, nbytes):  # '64.4 B' is not rounded silently
        raise UnitError(f"{what} (a whole number of bytes: {nbytes:.6g} is not), got {text!r}")
    return int(whole)


def parse_bandwidth(text: str | int | float) -> float:
    """'900 GB/s' -> 9e11 bytes per second; a bare number is bytes per second."""
    what = "a bandwidth such as '900 GB/s' or '1.5 TiB/s'"
    value, unit = _split(text, what)
    if unit == "":
        return _finite_nonneg(value, what, text)
    m = re.fullmatch(r"([A-Za-z]{0,2}?)B\s*/\s*s", unit) or re.fullmatch(r"([A-Za-z]{0,2}?)Bps", unit)
    if not m:
        valid = [f"{p}B/s" for p in (*DECIMAL, *BINARY)]
        raise UnitError(f"{what}, got {text!r}", _unit_hint(unit, valid))
    return _finite_nonneg(value * _prefix_scale(m.group(1), what, text), what, text)


def _parse_decimal(text: str | int | float, what: str, pattern: str,
                   base: str = "") -> float:
    """A number with a unit `pattern` whose group 1 is an optional decimal prefix."""
    value, unit = _split(text, what)
    if unit == "":
        return _finite_nonneg(value, what, text)
    m = re.fullmatch(pattern, unit)
    if not m:
        raise UnitError(f"{what}, got {text!r}", _unit_hint(unit, [p + base for p in DECIMAL]))
    return _finite_nonneg(value * DECIMAL[m.group(1)], what, text)


def parse_frequency(text: str | int | float) -> float:
    """'1.53 GHz' -> 1.53e9 hertz; a bare number is hertz."""
    return _parse_decimal(text, "a frequency such as '1.53 GHz'", r"([kMGT]?)Hz", "Hz")


def parse_time(text: str | int | float) -> float:
    """'5 us' -> 5e-6 seconds; a bare number is seconds."""
    what = "a time such as '5 us', '2 ms' or a number of seconds"
    value, unit = _split(text, what)
    if unit == "":
        return _finite_nonneg(value, what, text)
    if unit not in TIME_UNITS:
        raise UnitError(f"{what}, got {text!r}", _unit_hint(unit, list(TIME_UNITS)))
    return _finite_nonneg(value * TIME_UNITS[unit], what, text)


def parse_flop_rate(text: str | int | float) -> float:
    """'15.67 TFLOP/s' (also 'TFLOPS') -> 1.567e13 FLOP per second; a bare number is FLOP/s."""
    return _parse_decimal(text, "a compute rate such as '15.7 TFLOP/s'",
                          r"([kMGTPE]?)(?:FLOP\s*/\s*s|FLOPS|OP\s*/\s*s|OPS)", "FLOP/s")


def parse_count(text: str | int | float) -> float:
    """'97.4e9', '18.9 G' or 97400000000 -> a plain (possibly huge) count."""
    what = "a number such as 97.4e9 or '18.9 G'"
    value, unit = _split(text, what)
    if unit == "":
        return _finite_nonneg(value, what, text)
    if unit not in DECIMAL or unit == "":
        raise UnitError(f"{what}, got {text!r}")
    return _finite_nonneg(value * DECIMAL[unit], what, text)


def _si(value: float, unit: str, base: float = 1000.0, prefixes: str = " kMGTPE") -> str:
    scaled = float(value)
    i = 0
    while abs(scaled) >= base and i < len(prefixes) - 1:
        scaled /= base
        i += 1
    prefix = prefixes[i].strip()
    return f"{scaled:.3g} {prefix}{unit}"


def format_bytes(nbytes: float) -> str:
    """Human-readable decimal size (GB = 1e9 B), the convention of the paper's tables."""
    return _si(nbytes, "B")


def format_rate(per_s: float, unit: str) -> str:
    return _si(per_s, f"{unit}/s")


def format_time(seconds: float) -> str:
    """Seconds in the most readable unit, from ns to days."""
    s = float(seconds)
    if s == 0:
        return "0 s"
    if s < 1e-6:
        return f"{s * 1e9:.3g} ns"
    if s < 1e-3:
        return f"{s * 1e6:.3g} us"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    if s < 3600:
        return f"{s:.3g} s"
    if s < 86400 * 2:
        return f"{s / 3600:.3g} h"
    return f"{s / 86400:.3g} days"


_FORMAT_UNITS: dict[str, tuple[list[tuple[str, float]], object]] = {
    "bandwidth": ([(f"{p}B/s", DECIMAL[p]) for p in "EPTGMk"] + [("B/s", 1.0)]
                  + [(f"{p}B/s", BINARY[p]) for p in ("Pi", "Ti", "Gi", "Mi", "Ki")],
                  parse_bandwidth),
    "frequency": ([(f"{p}Hz", DECIMAL[p]) for p in "TGMk"] + [("Hz", 1.0)], parse_frequency),
    "flop_rate": ([(f"{p}FLOP/s", DECIMAL[p]) for p in "EPTGMk"] + [("FLOP/s", 1.0)],
                  parse_flop_rate),
    "time": ([("d", 86400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0), ("ms", 1e-3),
              ("us", 1e-6), ("ns", 1e-9), ("ps", 1e-12)], parse_time),
    "count": ([(p, DECIMAL[p]) for p in "EPTGMk"] + [("", 1.0)], parse_count),
}


def format_quantity(value: float, kind: str) -> str | int | float:
    """The shortest readable text for `value` of unit `kind` that parses back to exactly `value`.

    Used to write spec files people can read ("6 MiB", "900 GB/s", "126 ns") without losing a
    bit: when no prefixed form is exact, the bare base-unit number is returned instead.
    """
    if kind == "bytes":
        n = int(value)
        if n != value or n < 0:
            return value
        scales = [(p, int(BINARY[p])) for p in BINARY] + [(p, int(DECIMAL[p])) for p in "kMGTPE"]
        exact = [(scale, p) for p, scale in scales if n and n % scale == 0]
        if not exact:
            return f"{n} B"
        scale, prefix = max(exact)
        return f"{n // scale} {prefix}B"
    candidates, parse = _FORMAT_UNITS[kind]
    base = next(unit for unit, scale in candidates if scale == 1.0)
    if value == 0:
        return f"0 {base}" if base else 0
    best: tuple[int, str] | None = None
    for unit, scale in candidates:
        scaled = value / scale
        if not 1e-3 <= abs(scaled) < 1e6:
            continue
        for digits in range(1, 18):
            text = f"{scaled:.{digits}g} {unit}".rstrip()
            if "e" not in text and parse(text) == value:  # type: ignore[operator]
                # shortest wins; a number outside [1, 1000) reads worse, so it pays 2 characters
                cost = len(text) + (0 if 1 <= abs(scaled) < 1000 else 2)
                if best is None or cost < best[0]:
                    best = (cost, text)
                break
    if best is None or not _unit_of(best[1]):
        return value
    return best[1]


def _unit_of(text: str) -> str:
    """The unit part of a quantity string ('900 GB/s' -> 'GB/s'; '42' -> '')."""
    match = _QUANTITY.match(text)
    return (match.group(2) or "").strip() if match else ""
