"""Shared test fixtures: paths to the repository's data and to ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"../shared not found beside the repository (looked in {SHARED})")
    return SHARED


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
