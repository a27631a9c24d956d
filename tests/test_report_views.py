"""The report in human terms and in notebooks: verdict, durations, time attribution, footprint
roles, DataFrames, HTML, repr, --version, docstrings."""

from __future__ import annotations

import inspect
import math
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import accelsim
from accelsim import plot, report, timeline
from accelsim.cli import main, version
from accelsim.errors import AccelsimError
from accelsim.report import Comparison, OpResult, Report, Summary, format_duration

DAY = 86400.0


def _report(intervals, *, chips=1, step_time_s=None, shortfall=0, bounds=None,
            epoch_time_s=None, roles=None) -> Report:
    """A hand-built report: ops (start, duration, units), optional bounds per op."""
    ops = tuple(OpResult(name=f"op{i}", kind="gemm", phase="forward", shape="[1x1]@[1x1]",
                         flops=2.0, start_s=a, end_s=a + d, time_s=d,
                         bytes={"L2": 4.0, "HBM": 1.0}, hit_rate={"L2": 0.75},
                         bound=(bounds[i] if bounds else "compute"), units=u)
                for i, (a, d, u) in enumerate(intervals))
    step = step_time_s if step_time_s is not None else max((o.end_s for o in ops), default=0.0)
    capacity = 100
    summary = Summary(params=10, flops=2.0 * len(ops), bytes_accessed=1.0, step_time_s=step,
                      peak_flop_rate=1e12, flop_utilization=0.5, hit_rate={"L2": 0.75},
                      level_bytes={"L2": 4.0, "HBM": 1.0}, bound_time_s={},
                      footprint_bytes=capacity + shortfall,
                      footprint_by_role=roles or {"weight": capacity + shortfall},
                      algorithmic_footprint_bytes=capacity + shortfall, capacity_bytes=capacity,
                      shortfall_bytes=shortfall, chips_needed=1 + (shortfall > 0), chips=chips,
                      samples_per_step=96.0, steps_per_epoch=10.0 if epoch_time_s else None,
                      epoch_time_s=epoch_time_s, compute_units=8,
                      level_bandwidth_bytes_per_s={"L2": 1e12, "HBM": 1e11},
                      sample_unit="word-pieces")
    return Report(hardware="chip", workload="wl", ops=ops, summary=summary)


@pytest.mark.parametrize("seconds, text", [
    (1.02e4 * DAY, "28 years"), (6.2 * DAY, "6.2 days"), (DAY, "1 day"), (3600.0, "1 hour"),
    (5400.0, "1.5 hours"), (2.5, "2.5 s"), (3e-4, "300 us"), (400 * 365.25 * DAY, "400 years"),
    (float("inf"), "forever"),
])
def test_durations_use_the_largest_sensible_unit(seconds, text):
    assert format_duration(seconds) == text


def test_verdict_names_bound_fit_and_time_to_train():
    r = _report([(0.0, 1.0, 8), (1.0, 3.0, 8)], bounds=["compute", "HBM"], shortfall=50,
                epoch_time_s=6.2 * DAY)
    v = r.verdict()
    assert v.startswith("HBM bandwidth bound (75 % of the 4 s step)")
    assert "does NOT fit: 150 B footprint in 100 B" in v and "2 chips' memory" in v
    assert v.endswith("one epoch takes 6.2 days on 1 chip")
    lines = r.text().splitlines()
    assert lines[1] == f"verdict: {v}"
    fits = _report([(0.0, 1.0, 8)]).verdict()
    assert "fits in memory" in fits and "epoch" not in fits


def test_text_labels_samples_and_explains_footprint_roles():
    roles = {"weight": 60, "weight_gradient": 70, "activation": 10}
    r = _report([(0.0, 1.0, 8)], epoch_time_s=1.02e4 * DAY, roles=roles)
    text = r.text()
    assert "word-pieces per step" in text and "word-pieces per epoch" in text
    assert "28 years" in text and "days" not in text
    assert "gradients of the parameters" in text and "forward outputs kept" in text
    assert "1.17x the weights" in text  # weight gradient > weights is explained


def test_time_by_category_hand_checked():
    # 0-1 s: A (2 units, compute) and B (6 units, HBM) share; 1-2 s: nothing (4 chips: waiting
    # for the all-reduce); 2-3 s: C (latency) alone.
    r = _report([(0.0, 1.0, 2), (0.0, 1.0, 6), (2.0, 1.0, 1)], chips=4,
                bounds=["compute", "HBM", "latency"])
    assert r.time_by_category() == {"exposed communication": 1.0, "latency": 1.0,
                                    "HBM": 0.75, "compute": 0.25}
    one = _report([(0.0, 1.0, 2), (2.0, 1.0, 1)])
    assert one.time_by_category() == {"compute": 2.0, "idle": 1.0}


_OPS = st.lists(st.tuples(st.integers(0, 40).map(lambda x: x * 1e-3),
                          st.integers(0, 15).map(lambda x: x * 1e-3), st.integers(1, 8),
                          st.sampled_from(["compute", "L2", "HBM", "latency", "launch"])),
                max_size=25)


@settings(max_examples=80, deadline=None)
@given(_OPS, st.integers(1, 4), st.integers(0, 10))
def test_every_second_of_the_step_is_attributed_once(ops, chips, tail_ms):
    end = max((a + d for a, d, _, _ in ops), default=0.0)
    r = _report([(a, d, u) for a, d, u, _ in ops], chips=chips,
                step_time_s=end + tail_ms * 1e-3, bounds=[b for *_, b in ops])
    cats = r.time_by_category()
    assert math.isclose(sum(cats.values()), r.summary.step_time_s, rel_tol=1e-9, abs_tol=1e-12)
    assert all(v > 0 for v in cats.values())
    gaps = sum(t1 - t0 for t0, t1 in timeline.idle_intervals(r.ops, r.summary.step_time_s))
    gap_name = "exposed communication" if chips > 1 else "idle"
    assert math.isclose(cats.get(gap_name, 0.0), gaps, rel_tol=1e-9, abs_tol=1e-12)


def test_dataframes(monkeypatch):
    pytest.importorskip("pandas")
    r = _report([(0.0, 1.0, 8), (1.0, 2.0, 4)])
    df = r.to_dataframe()
    assert len(df) == 2 and list(df["time_s"]) == [1.0, 2.0]
    assert {"bytes_L2", "bytes_HBM", "hit_rate_L2", "bound"} <= set(df.columns)
    sf = r.summary_frame()
    assert sf.index.tolist() == ["chip"] and sf.loc["chip", "hit_rate_L2"] == 0.75
    assert sf.loc["chip", "step_time_s"] == 3.0
    both = Comparison([r, r]).summary_frame()
    assert len(both) == 2
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if the extra were not installed
    with pytest.raises(AccelsimError, match=r"pip install 'accelsim\[pandas\]'"):
        r.to_dataframe()


def test_html_and_repr_are_short_and_say_what_matters():
    ops = [(i * 1e-3, 1e-3, 8) for i in range(5000)]
    r = _report(ops, epoch_time_s=DAY)
    assert len(repr(r)) < 300 and "5000 ops" in repr(r)
    page = r._repr_html_()
    summary_rows, op_rows = (t.split("</tbody>")[0].count("<tr>") for t in page.split("<tbody>")[1:])
    assert op_rows == 10 and summary_rows >= 8
    assert "verdict" not in page and r.verdict().split(";")[0] in page
    assert "top 10 of 5000 ops" in page and len(page) < 10_000
    c = Comparison([r, r])
    assert "Comparison of 2 designs" in repr(c)
    assert c._repr_html_().count("<li>") == 2 and "step time" in c._repr_html_()
    assert c.text().startswith("accelsim compare: wl")


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"accelsim {version()}"
    assert version() == accelsim.__version__


def _public(obj):
    for name, member in vars(obj).items():
        if name.startswith("_"):
            continue
        if inspect.isfunction(member) or isinstance(member, property) or inspect.isclass(member):
            yield name, member


@pytest.mark.parametrize("module", [report, timeline, plot, accelsim])
def test_every_public_name_has_a_docstring(module):
    names = getattr(module, "__all__", None) or [n for n, _ in _public(module)]
    missing = []
    for name in names:
        obj = getattr(module, name)
        if getattr(obj, "__module__", module.__name__) != module.__name__ and module is not accelsim:
            continue  # imported from elsewhere
        if not inspect.getdoc(obj):
            missing.append(name)
        if inspect.isclass(obj):
            missing += [f"{name}.{m}" for m, member in _public(obj)
                        if not inspect.getdoc(member.fget if isinstance(member, property)
                                              else member)]
    assert not missing, f"no docstring: {missing}"


def test_report_schema_doc_names_every_field():
    """docs/report-schema.md (generated by docs/gen_report_schema.py) names every field."""
    import attrs

    doc = (__import__("pathlib").Path(__file__).resolve().parents[1] / "docs"
           / "report-schema.md").read_text(encoding="utf-8")
    for cls in (Summary, OpResult):
        for f in attrs.fields(cls):
            assert f"`{f.name}`" in doc, f"{cls.__name__}.{f.name} is not in report-schema.md"
