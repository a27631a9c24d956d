"""Every broken file in tests/data/bad/ is reported by `accelsim check` exactly as expected.yaml says.

Each expected line is the whole `file:line:col: key.path: expected ..., got ...` message, and the
number of reported lines must match too, so a problem that hides another (or a new spurious one)
fails the test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim import hardware, spec, workload
from accelsim.cli import main
from accelsim.models import FAMILIES

DATA = Path(__file__).resolve().parent / "data"
BAD = DATA / "bad"
GOOD = DATA / "good"
REPO = Path(__file__).resolve().parents[1]
EXPECTED: dict[str, list[str]] = yaml.safe_load((BAD / "expected.yaml").read_text(encoding="utf-8"))
BAD_FILES = sorted(p.name for p in BAD.glob("*.yaml") if p.name != "expected.yaml")

_CLASSES = {c.__name__: c for c in (
    hardware.HardwareSpec, hardware.ComputeSpec, hardware.CacheLevelSpec, hardware.MemorySpec,
    hardware.InterconnectSpec, hardware.Calibration, hardware.MatrixPipe,
    workload.WorkloadSpec, workload.DatasetSpec)}
_CLASSES.update({f.config_class.__name__: f.config_class for f in FAMILIES.values()})


def _expand(line: str) -> str:
    """Fill {families} and {keys:Class}, which track the registry and the spec classes."""
    def keys(match: re.Match) -> str:
        cls = _CLASSES[match.group(1)]
        names = [spec.yaml_key(f.name) for f in attrs.fields(cls)]
        if any(f.config_class is cls for f in FAMILIES.values()):
            names.append("family")
        return str(names)

    line = re.sub(r"\{keys:(\w+)\}", keys, line)
    return line.replace("{families}", str(sorted(FAMILIES)))


def test_corpus_is_complete():
    assert len(BAD_FILES) >= 35 + 150  # 71 from before issue 12, 176 added for it
    assert sorted(EXPECTED) == BAD_FILES, "every broken file needs expected lines, and vice versa"


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_file_reported_exactly(name, capsys, monkeypatch):
    monkeypatch.chdir(BAD)
    code = main(["check", name])
    out, err = capsys.readouterr()
    assert code == 2, out + err
    assert "Traceback" not in out + err
    assert f"{name}: ok" not in out
    reported = [line for line in err.splitlines() if line.startswith(name)]
    expected = [_expand(line) for line in EXPECTED[name]]
    for line in expected:
        assert line in reported, f"missing:\n  {line}\nreported:\n  " + "\n  ".join(reported)
    assert len(reported) == len(expected), "\n".join(reported)


def test_several_files_all_reported(capsys, monkeypatch):
    monkeypatch.chdir(BAD)
    assert main(["check", "hw_zero_units.yaml", "wl_zero_subbatch.yaml"]) == 2
    err = capsys.readouterr().err
    assert "hw_zero_units.yaml:4:10: compute.units" in err
    assert "wl_zero_subbatch.yaml:6:11: subbatch" in err


def test_missing_file_is_reported(capsys, tmp_path):
    assert main(["check", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'nope.yaml'}: <document>: expected an existing file, got no such file" in err


def test_console_script_path_exits_2_without_traceback():
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "accelsim", "check", str(BAD / "hw_three_problems.yaml"),
         str(BAD / "not_utf8.yaml")], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "caches[0].ways: expected a divisor of the 1024 lines" in proc.stderr
    assert "not_utf8.yaml:2:17: <document>: expected UTF-8 text" in proc.stderr


# --- files that look suspicious to PyYAML but are valid ---------------------------------------
def test_yaml_traps_load_as_written():
    hw = spec.load_hardware(GOOD / "yaml_traps.yaml")
    assert hw.name == "yes"
    assert hw.description == "no"
    assert hw.compute.units == 4
    assert hw.memory.bandwidth_bytes_per_s == 3.35e12


def test_workload_yaml_traps_load_as_written():
    wl = spec.load_workload(GOOD / "wl_yaml_traps.yaml")
    assert (wl.name, wl.description, wl.dataset.unit) == ("no", "yes", "off")
    assert (wl.model.hidden, wl.model.vocab, wl.subbatch) == (2048, 36548, 100)
    assert wl.dataset.samples == 3.35e12


def test_dataset_size_in_e_notation_loads():
    wl = spec.load_workload(GOOD / "tiny_wl.yaml")
    assert wl.dataset is not None and wl.dataset.samples == 1e9


def test_merge_keys_follow_the_yaml_spec():
    hw = spec.load_hardware(GOOD / "merge_anchors.yaml")
    l1, l2 = hw.caches
    assert (l1.name, l1.ways, l1.capacity_bytes) == ("L1", 8, 64 * 1024)
    assert (l2.name, l2.ways, l2.capacity_bytes) == ("L2", 16, 2**20)
    assert l2.line_bytes == l1.line_bytes == 64 and l2.bandwidth_bytes_per_s == 1e12
    # `<<: [a, b]`: the first mapping wins for keys both give; keys only b gives still merge.
    assert hw.interconnect.links == 4
    assert hw.interconnect.topology == "switch"
    assert hw.interconnect.latency_s == 1e-6


def test_integers_load_exactly():
    big = 2**59 + 1  # beyond float precision (2**53), below the 1 EiB ceiling
    text = (GOOD / "tiny_hw.yaml").read_text(encoding="utf-8").replace(
        "  capacity: 16 GiB\n", f"  capacity: {big}\n")
    assert spec.hardware_from_yaml(text).memory.capacity_bytes == big


def test_alias_bomb_is_an_error_not_a_hang():
    levels = "\n".join(f"l{i}: &l{i} {{<<: [{', '.join([f'*l{i - 1}'] * 9)}]}}"
                       for i in range(1, 9))
    text = "l0: &l0 {links: 1}\n" + levels + "\ninterconnect:\n  <<: *l8\n"
    with pytest.raises(spec.SpecError, match="alias bomb"):
        spec.hardware_from_yaml(text)


@pytest.mark.parametrize("path", sorted(GOOD.glob("*.yaml")), ids=lambda p: p.name)
def test_good_files_check_ok(path, capsys):
    assert main(["check", str(path)]) == 0
    assert f"{path}: ok" in capsys.readouterr().out


# --- the loader fails only with SpecError, whatever the damage --------------------------------
_SOURCES = [p.read_text(encoding="utf-8") for p in sorted(GOOD.glob("*.yaml"))]
_TOKENS = ["", " ", ":", "- ", "[", "}", "*a", "&a ", "<<: ", "\t", "null", "~", "yes", "1e999",
           "-5", ".nan", "!!int ", "'", '"', "\n", "#", "? ", "|", "---", "KB", "GiB/s", "\x00",
           "99999999999999999999999", "{a: 1}"]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(_SOURCES), st.lists(st.tuples(st.integers(0, 10**6),
                                                     st.integers(0, 10**6),
                                                     st.sampled_from(_TOKENS)), max_size=3))
def test_damaged_files_fail_only_with_spec_error(source, edits):
    text = source
    for where, cut, token in edits:
        i = where % (len(text) + 1)
        text = text[:i] + token + text[i + cut % 3:]
    for load in (spec.hardware_from_yaml, spec.workload_from_yaml):
        try:
            load(text, "f.yaml")
        except spec.SpecError as exc:
            assert exc.issues and all(str(i).startswith("f.yaml") for i in exc.issues)


# --- cross-field rules keep raising for objects built in code ---------------------------------
def test_rules_still_raise_on_direct_construction():
    with pytest.raises(ValueError, match=r"^ways: expected a divisor of the 1024 lines"):
        hardware.CacheLevelSpec(name="L1", capacity_bytes=65536, line_bytes=64, ways=7,
                                bandwidth_bytes_per_s=1e12)
    with pytest.raises(ValueError, match="^matrix: expected keys among"):
        hardware.ComputeSpec(units=1, clock_hz=1e9, vector_flop_rate=1.0, local_memory_bytes=1,
                             matrix={"fp23": hardware.MatrixPipe(peak_flop_rate=1.0)})
    with pytest.raises(ValueError, match="^peak_flop_rate: expected exactly one"):
        hardware.MatrixPipe()


# --- interconnect rules that need the chip count or the workload's plan: `check --chips N`
# refuses them, located, exactly as `run` does (before simulating) ---
_PAIR_CASES = {
    "torus": ("  topology: torus2d\n  torus_shape: [3, 5]\n", "", 23, 16,
              "interconnect.torus_shape: expected two dimensions whose product is the 4 chips, "
              "got [3, 5] (holds 15 chips, not 4)"),
    "two_level": ("  topology: two_level\n  chips_per_node: 3\n  network_bandwidth: 25 GB/s\n",
                  "", 23, 19, "interconnect.chips_per_node: expected a divisor of the 4 chips "
                  "(they split into whole nodes), got 3"),
    "fully_connected": ("  topology: fully_connected\n  links: 2\n", "", 23, 10,
                        "interconnect.links: expected at least 3 links per chip to join 4 chips "
                        "fully connected, got 2 (joins at most 3 chips, not 4)"),
    "offload": ("", "parallel:\n  data: 4\n  offload: [weights]\n", 21, 3,
                "interconnect.host_bandwidth: expected a bandwidth for small_nmt's plan, which "
                "offloads ['weights'], got nothing"),
}


@pytest.mark.parametrize("case", sorted(_PAIR_CASES))
@pytest.mark.parametrize("command", ["check", "run"])
def test_chip_count_rules_located_by_check_and_run(case, command, tmp_path, capsys):
    hw_extra, wl_extra, line, col, message = _PAIR_CASES[case]
    hw_path, wl_path = tmp_path / "hw.yaml", tmp_path / "wl.yaml"
    hw_path.write_text((GOOD / "tiny_hw.yaml").read_text(encoding="utf-8") + hw_extra,
                       encoding="utf-8")
    wl_path.write_text((GOOD / "tiny_wl.yaml").read_text(encoding="utf-8") + wl_extra,
                       encoding="utf-8")
    argv = ([command, "--chips", "4", str(hw_path), str(wl_path)] if command == "check" else
            [command, str(hw_path), str(wl_path), "--chips", "4"])
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, out + err
    assert "Traceback" not in out + err
    assert f"{hw_path}:{line}:{col}: {message}" in err
