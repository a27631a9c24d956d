"""Reference data ships inside the package, unchanged, and is found through one loader."""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import re
import tomllib
from pathlib import Path

import pytest

from accelsim import refdata

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "accelsim"

#: SHA-256 of each packaged fact file, taken when it was copied from the project's reference set
#: (../shared/reference, ../shared/validation; the P100 rows from docs/data) on 2026-12-02.
#: A change to a fact file must be deliberate: update the hash with the reason in the commit.
REFERENCE_SHA256 = {
    refdata.PAPER_TABLES: "480a2e95ffb00087d335b447fed3350aeca2d33e3754e83c0d82da681eafe76b",
    refdata.CATAMOUNT_MODELS: "c2ca29c6ce09a9264df015b2b7f56d78c5a153a414c7b3a90df4d0c4b2ba5f9c",
    refdata.DEEPBENCH_V100_GEMM: "faccf58ad442781981c25d1f1b47418180b9778e13e702a2fabfe743a5ceb2c3",
    refdata.DEEPBENCH_V100_RNN: "f4e931a387239ac8bd6d8bcd2ee4669d2029c7d7eaeb765064b910e2d3687b1b",
    refdata.DEEPBENCH_P100_README_GEMM:
        "382e4bb5cb963083858adfd0dd00bca5424557af937e16edfe6e0344dee1cf4e",
}
#: Where each file came from in the project's reference set beside the repository (when present,
#: it must still hold the same bytes: a newer upstream copy is then noticed here).
UPSTREAM = {
    refdata.PAPER_TABLES: "reference/ppopp19_tables.yaml",
    refdata.CATAMOUNT_MODELS: "reference/catamount_models.yaml",
    refdata.DEEPBENCH_V100_GEMM: "validation/deepbench_v100_gemm.csv",
    refdata.DEEPBENCH_V100_RNN: "validation/deepbench_v100_rnn.csv",
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", sorted(REFERENCE_SHA256))
def test_packaged_facts_are_the_reference_copies(name: str) -> None:
    assert _sha256(refdata.data_path(name)) == REFERENCE_SHA256[name]
    upstream = REPO.parent / "shared" / UPSTREAM.get(name, "-")
    if upstream.is_file():
        assert _sha256(upstream) == REFERENCE_SHA256[name], f"{upstream} changed upstream"


def test_every_listed_file_ships_and_has_a_hash_or_is_documentation() -> None:
    for name in refdata.FILES:
        assert refdata.data_path(name).stat().st_size > 0
        assert name in REFERENCE_SHA256 or name.endswith("README.md")
    readme = refdata.data_path("deepbench/README.md").read_text()
    assert "Apache-2.0" in readme and "deepbench_p100_readme_gemm.csv" in readme


@pytest.mark.parametrize("name,rows", [(refdata.DEEPBENCH_V100_GEMM, 320),
                                       (refdata.DEEPBENCH_V100_RNN, 106),
                                       (refdata.DEEPBENCH_P100_README_GEMM, 5)])
def test_deepbench_tables_are_complete(name: str, rows: int) -> None:
    with refdata.data_path(name).open(newline="") as fh:
        assert len(list(csv.DictReader(fh))) == rows


def test_yaml_loaders() -> None:
    tables = refdata.paper_tables()
    assert tables["target_accelerator"]["compute_fp32_tflops"] == pytest.approx(15.67)
    tables["target_accelerator"] = None  # a fresh copy each call: callers may edit it
    assert refdata.paper_tables()["target_accelerator"] is not None
    assert refdata.catamount_models()["word_lm"]["base_counts"]["params"] == 104378326


def test_unknown_file_and_unknown_spec_are_clear_errors() -> None:
    with pytest.raises(KeyError, match="ships"):
        refdata.data_path("nope.csv")
    with pytest.raises(FileNotFoundError, match="no shipped hardware spec 'nope'"):
        refdata.hardware_spec_path("nope")
    assert refdata.hardware_spec_path("v100").name == "v100.yaml"


def test_package_data_globs_cover_every_file() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs = config["package-data"]["accelsim"]
    for name in refdata.FILES:
        assert any(fnmatch.fnmatch(f"data/{name}", g) for g in globs), name
    assert config["package-dir"]["accelsim.hwspecs"] == "hwspecs"
    assert config["package-dir"]["accelsim.workloads"] == "workloads"
    assert config["package-data"]["accelsim.workloads"] == ["*.yaml"]


def test_every_shipped_spec_is_found_by_name() -> None:
    """Commands name their default specs through refdata, which finds the repository's files
    here and the wheel's copies (accelsim/hwspecs, accelsim/workloads) when installed."""
    for path in sorted((REPO / "workloads").glob("*.yaml")):
        assert refdata.workload_spec_path(path.stem).resolve() == path.resolve()
    for path in sorted((REPO / "hwspecs").glob("*.yaml")):
        assert refdata.hardware_spec_path(path.stem).resolve() == path.resolve()
    with pytest.raises(FileNotFoundError, match="no shipped workload 'nope'"):
        refdata.workload_spec_path("nope")


def test_no_module_builds_paths_above_the_package() -> None:
    """A path built from the repository layout (`parents[1] / "workloads"`) exists in a clone
    but not in an installed wheel; shipped specs are found through refdata only."""
    pattern = re.compile(r"parents\[1\]|\.parent\.parent\b")
    offenders = [str(p.relative_to(REPO)) for p in PACKAGE.rglob("*.py")
                 if p.name != "refdata.py" and pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_no_module_reads_beside_the_repository() -> None:
    """Nothing in the package looks for ../shared (the reference set is packaged)."""
    pattern = re.compile(r"""\.\./shared|/\s*["']shared["']""")
    offenders = [str(p.relative_to(REPO)) for p in PACKAGE.rglob("*.py")
                 if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_every_package_directory_is_listed_in_pyproject() -> None:
    """pyproject.toml lists packages explicitly (to map hwspecs/ into the wheel): a new
    subpackage must be added there or it would be missing from an installed wheel."""
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())
                 ["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in PACKAGE.rglob("*.py")
             if "__pycache__" not in p.parts}
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages"
