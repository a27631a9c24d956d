"""Every shipped workload file loads, builds, cites its source, and matches its closed form."""

from __future__ import annotations

from pathlib import Path

import pytest

from accelsim.models import build_graph
from accelsim.spec import load_workload

WORKLOADS = sorted((Path(__file__).resolve().parents[1] / "workloads").glob("*.yaml"))
DOMAINS = ("word_lm", "char_lm", "nmt", "speech", "resnet")


def test_every_domain_has_current_and_frontier() -> None:
    names = {p.stem for p in WORKLOADS}
    for domain in DOMAINS:
        assert {f"{domain}_current", f"{domain}_frontier"} <= names
    assert {"transformer_gpt3_175b", "transformer_small"} <= names


@pytest.mark.parametrize("path", WORKLOADS, ids=[p.stem for p in WORKLOADS])
def test_workload_builds_and_cites_its_source(path: Path) -> None:
    assert path.read_text(encoding="utf-8").startswith("#"), "first line: where numbers come from"
    wl = load_workload(path)
    assert wl.name == path.stem
    if "char_lm" in path.stem or "speech" in path.stem:
        return  # large unrolled graphs: built in test_reproduce / test_models_catamount
    g = build_graph(wl)
    assert g.params == wl.model.params_formula()
    assert wl.dataset is not None and wl.dataset.samples > 0


@pytest.mark.parametrize("domain", DOMAINS)
def test_frontier_is_larger_than_current(domain: str) -> None:
    root = WORKLOADS[0].parent
    current = load_workload(root / f"{domain}_current.yaml")
    frontier = load_workload(root / f"{domain}_frontier.yaml")
    growth = frontier.model.params_formula() / current.model.params_formula()
    assert growth > 5
    assert frontier.dataset.samples > 30 * current.dataset.samples
