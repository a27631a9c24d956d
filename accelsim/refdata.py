"""Reference data shipped inside the package: the one place that finds and reads it.

The facts accelsim is checked against travel with the code, so a fresh clone or an installed
wheel runs every command and test with nothing beside it (accelsim/data/, package data):

- `ppopp19_tables.yaml`: Tables 1-4 of Hestness, Ardalani, Diamos, "Beyond Human-Level
  Accuracy: Computational Challenges in Deep Learning" (PPoPP 2019), as published.
- `catamount_models.yaml`: the paper's graph tool Catamount (github.com/baidu-research/catamount,
  tag ppopp-2019-artifact, Apache-2.0): model configurations and exact base-configuration counts.
- `deepbench/`: DeepBench (github.com/baidu-research/DeepBench, Apache-2.0) training kernel
  times: the V100 GEMM and RNN tables and the P100 rows of DeepBench's README
  (`deepbench/README.md` gives the columns and sources).

Hardware specs (`hwspecs/*.yaml`) and workloads (`workloads/*.yaml`) belong to the repository;
an installed wheel carries them as `accelsim/hwspecs` and `accelsim/workloads` (pyproject.toml
maps the directories), so `hardware_spec_path` and `workload_spec_path` find them in either
layout.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

PAPER_TABLES = "ppopp19_tables.yaml"
CATAMOUNT_MODELS = "catamount_models.yaml"
DEEPBENCH_V100_GEMM = "deepbench/deepbench_v100_gemm.csv"
DEEPBENCH_V100_RNN = "deepbench/deepbench_v100_rnn.csv"
DEEPBENCH_P100_README_GEMM = "deepbench/deepbench_p100_readme_gemm.csv"
#: Every reference file the package ships (relative to accelsim/data).
FILES = (PAPER_TABLES, CATAMOUNT_MODELS, DEEPBENCH_V100_GEMM, DEEPBENCH_V100_RNN,
         DEEPBENCH_P100_README_GEMM, "deepbench/README.md")

_PACKAGE_DIR = Path(__file__).resolve().parent


def data_path(name: str) -> Path:
    """Filesystem path of the packaged reference file `name` (one of `FILES`)."""
    if name not in FILES:
        raise KeyError(f"no packaged reference file {name!r}; the package ships {list(FILES)}")
    resource = resources.files("accelsim").joinpath("data", *name.split("/"))
    if not isinstance(resource, Path):  # a zipped install: not supported by the CSV readers
        raise FileNotFoundError(f"reference file {name} is not on the filesystem ({resource})")
    return resource


def _yaml(name: str) -> Any:
    with data_path(name).open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@functools.cache
def _paper_tables() -> dict:
    return _yaml(PAPER_TABLES)


def paper_tables() -> dict:
    """The PPoPP 2019 paper's tables, as published (a fresh copy; callers may edit it)."""
    import copy

    return copy.deepcopy(_paper_tables())


def catamount_models() -> dict:
    """Catamount's per-domain configurations and exact base-configuration counts."""
    return _yaml(CATAMOUNT_MODELS)


def hardware_spec_path(name: str) -> Path:
    """Path of a shipped hardware spec, e.g. `hardware_spec_path("v100")`: the installed copy
    (accelsim/hwspecs) when present, else the repository's hwspecs/ above the package."""
    return _shipped_spec_path("hwspecs", name, "hardware spec")


def workload_spec_path(name: str) -> Path:
    """Path of a shipped workload, e.g. `workload_spec_path("nmt_frontier")`: the installed
    copy (accelsim/workloads) when present, else the repository's workloads/."""
    return _shipped_spec_path("workloads", name, "workload")


def _shipped_spec_path(folder_name: str, name: str, what: str) -> Path:
    for folder in (_PACKAGE_DIR / folder_name, _PACKAGE_DIR.parent / folder_name):
        path = folder / f"{name}.yaml"
        if path.is_file():
            return path
    raise FileNotFoundError(f"no shipped {what} {name!r} (looked in "
                            f"accelsim/{folder_name} and the repository's {folder_name}/)")
