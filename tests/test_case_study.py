"""Table 5 (the paper's Section 6 word LM case study) held in tolerance bands.

The reasons each band sits where it does are in docs/reproduction.md ("Table 5"); in short,
the case-study vocabulary (a 59.5 GB embedding) is not given and cannot be recovered
consistently with the 9.89 s step, so memory, days and utilization rows differ for the reasons
written beside each band.
"""

from __future__ import annotations

import pytest

from accelsim import case_study, reproduce
from accelsim.models import build_graph
from accelsim.spec import load_hardware, load_workload


def test_projection_step_and_speedup_within_5_percent(repo):
    tables = reproduce.load_tables()
    text = tables["word_lm_case_study"]["text"]
    hw = load_hardware(repo / "hwspecs/ppopp19_target.yaml")
    roof = reproduce.Roofline(peak_flop_rate=hw.compute.peak_flop_rate("fp32"),
                              bandwidth_bytes_per_s=hw.memory.bandwidth_bytes_per_s)
    after = build_graph(load_workload(repo / "workloads/word_lm_case_study.yaml"))
    before = build_graph(load_workload(repo / "workloads/word_lm_frontier.yaml"))
    step = roof.step_s(after.flops, after.bytes_accessed)
    speedup = roof.step_s(before.flops, before.bytes_accessed) / step
    assert step == pytest.approx(text["roofline_step_seconds_after_projection"], rel=0.05)
    assert speedup == pytest.approx(text["projection_speedup"], rel=0.05)


@pytest.mark.slow
def test_table5_rows_in_their_bands(repo):
    result = case_study.rows(repo / "hwspecs/ppopp19_target.yaml",
                             repo / "workloads/word_lm_case_study.yaml",
                             repo / "workloads/word_lm_frontier.yaml")
    by = {r["stage"]: r for r in result["rows"]}
    for row in by.values():  # the plan's shape is the paper's exactly
        assert row["ratio"]["accelerators"] == 1 and row["ratio"]["batch"] == 1
    roof = by["best-case roofline baseline"]["ratio"]
    assert roof["util"] == pytest.approx(1.0, abs=0.01)  # compute bound, 80 % by definition
    # 3.1x fewer steps per epoch than the paper's 2707 days at 9.89 s imply (words per step)
    assert 0.28 < roof["days"] < 0.36
    # no 59.5 GB embedding (vocabulary not given): a third of the paper's 113.8 GB
    assert 0.3 < roof["mem_gb"] < 0.42
    cache = by["cache-hierarchy-aware baseline"]
    # the simulated L2 keeps the LSTMP GEMMs compute bound (71 %) where the paper's
    # re-streaming model gives 46 %
    assert 1.3 < cache["ratio"]["util"] < 1.8 and cache["fits"] is False
    for name in ("data parallelism (option 1)", "data parallelism (option 2)"):
        row = by[name]
        assert row["fits"] is False  # as in the paper, data parallelism alone does not fit
        # a 2 B-parameter all-reduce hides behind backward; the paper's 125.7 GB does not
        assert 1.6 < row["ratio"]["util"] < 2.3
    layer = by["+ layer parallelism (4x)"]
    assert layer["fits"] is True  # 4-way layer parallelism makes every stage fit
    # the LSTM stages hold every timestep's activations: 1.33x the paper's 17 GB
    assert all(1.1 < r < 1.6 for r in layer["ratio"]["mem_gb"][1:3])
    # two of four stages (embedding, softmax) nearly idle with the small vocabulary
    assert layer["bubble"] == pytest.approx(0.5, abs=0.05)
    shard = by["+ shard the embedding layer"]
    assert shard["fits"] is True
    assert shard["mem_gb"][0] >= layer["mem_gb"][0]  # stage 0 holds a shard of every table
    # 2048 layer-parallel chips train about as fast as 1024 data-parallel ones (paper: 7.2 vs 6.2)
    assert layer["days"] / by["data parallelism (option 1)"]["days"] == pytest.approx(1.0, abs=0.3)
