"""`accelsim project`: Table 3 roofline and graph counts against the paper."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from accelsim import refdata, reproduce
from accelsim.models import build_graph
from accelsim.models.nmt import NMTConfig
from accelsim.spec import load_workload
from accelsim.workload import WorkloadSpec

TABLES = reproduce.load_tables()
PAPER3 = TABLES["projected_training"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def roofline() -> reproduce.Roofline:
    return reproduce.load_roofline(TABLES)


def test_roofline_reads_table4_hardware(roofline: reproduce.Roofline) -> None:
    assert roofline.peak_flop_rate == pytest.approx(15.67e12)
    assert roofline.bandwidth_bytes_per_s == pytest.approx(898e9)
    assert (roofline.compute_efficiency, roofline.bandwidth_efficiency) == (0.8, 0.7)


def test_tables_from_a_file_equal_the_packaged_copy() -> None:
    path = refdata.data_path(refdata.PAPER_TABLES)
    assert reproduce.load_tables(path) == TABLES == refdata.paper_tables()


@pytest.mark.parametrize("domain", sorted(PAPER3))
def test_roofline_on_paper_counts_matches_table3(domain: str,
                                                 roofline: reproduce.Roofline) -> None:
    row = PAPER3[domain]
    step_s = roofline.step_s(row["tflops_per_step"] * 1e12, row["tb_accessed_per_step"] * 1e12)
    assert step_s == pytest.approx(row["step_seconds"], rel=0.05)


@pytest.mark.parametrize("name,domain", [("word_lm_frontier", "word_lm"),
                                         ("char_lm_frontier", "char_lm"),
                                         ("speech_frontier", "speech")])
def test_frontier_graph_flops_match_table3(name: str, domain: str) -> None:
    wl = load_workload(ROOT / "workloads" / f"{name}.yaml")
    g = build_graph(wl)
    assert wl.subbatch == PAPER3[domain]["subbatch"]
    assert g.params == pytest.approx(PAPER3[domain]["params"], rel=0.01)
    assert g.flops / 1e12 == pytest.approx(PAPER3[domain]["tflops_per_step"], rel=0.10)


#: accelsim's frontier-NMT FLOPs at 26 word pieces / Table 3's 499 TF, measured with
#: workloads/nmt_frontier.yaml when the NMT builder was matched to Catamount (docs/reproduction.md).
MEASURED_NMT26_FLOPS_OVER_TABLE3 = 0.52


def test_nmt_table3_flops_need_50_word_pieces() -> None:
    """At Catamount's 26 word pieces the graph gives Table 2's 149 FLOPs/param/sample (270 TF),
    ~0.52x Table 3's 499 TF; 50 word pieces reproduce Table 3's FLOPs, bytes and footprint,
    so the headline workload uses 50 (issue 9) and the 26-piece point has its own file."""
    paper = PAPER3["nmt"]
    headline = load_workload(ROOT / "workloads" / "nmt_frontier.yaml")
    assert headline.model.sequence_length == 50
    assert build_graph(headline).flops / 1e12 == pytest.approx(paper["tflops_per_step"],
                                                               rel=0.02)
    wl = load_workload(ROOT / "workloads" / "nmt_frontier_catamount26.yaml")
    g26 = build_graph(wl)
    per_param = g26.flops / (wl.subbatch * g26.params)
    assert per_param == pytest.approx(149, rel=0.05)
    assert g26.flops / 1e12 / paper["tflops_per_step"] == pytest.approx(MEASURED_NMT26_FLOPS_OVER_TABLE3,
                                                                  abs=0.01)
    g50 = build_graph(WorkloadSpec(name="nmt50", model=NMTConfig(hidden=22350,
                                                                sequence_length=50),
                                   subbatch=wl.subbatch))
    assert g50.flops / 1e12 == pytest.approx(paper["tflops_per_step"], rel=0.02)
    assert g50.bytes_accessed / 1e12 == pytest.approx(paper["tb_accessed_per_step"], rel=0.06)
    assert g50.minimal_footprint_bytes() / 1e9 == pytest.approx(paper["min_footprint_gb"],
                                                                rel=0.02)


def test_parse_coefficients() -> None:
    got = reproduce.parse_coefficients(TABLES["asymptotic_requirements"]["word_lm"])
    assert got == {"flops_per_param_per_sample": 481.0, "bytes_per_param": 1755.0,
                   "bytes_per_param_sqrt_term": 30784.0, "min_footprint_bytes_per_param": 11.94}


# slow: 11.5 s alone on the 2-core CI machine (--durations, 2026-12-02), over 20 s when it is shared.
@pytest.mark.slow
def test_project_command_writes_tables(tmp_path, capsys) -> None:
    out = tmp_path / "project.json"
    args = argparse.Namespace(tables=None, hardware=None, sweep_points=2, json=str(out),
                              plot=str(tmp_path / "figs"))
    assert reproduce.run(args) == 0
    text = capsys.readouterr().out
    for heading in ("Table 1", "Table 2", "Table 3", "paper's note"):
        assert heading in text
    doc = json.loads(out.read_text())
    assert set(doc["table1"]) == {"word_lm", "char_lm", "nmt", "speech", "image"}
    rows = {(r["domain"], r["reading"]): r for r in doc["table3"]}
    assert len({d for d, _ in rows}) == 5
    for row in doc["table3"]:
        assert row["params"]["ratio"] == pytest.approx(1.0, abs=0.01)
        assert row["step_seconds_from_paper_counts"]["ratio"] == pytest.approx(1.0, abs=0.05)
    assert doc["table2"]["char_lm"]["flops_per_param_per_sample"]["ratio"] == pytest.approx(
        1.0, abs=0.05)
    figs = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert figs == ["fig10_min_footprint.png", "fig7_flops_per_sample.png",
                    "fig8_bytes_per_step.png", "fig9_operational_intensity.png"]
