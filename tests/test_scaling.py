"""Learning-curve projection (Table 1) and the size solver."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accelsim import scaling
from accelsim.models.word_lm import WordLMConfig
from accelsim.reproduce import load_tables, table1

TABLES = load_tables()


def test_learning_curve_inverse() -> None:
    curve = scaling.LearningCurve(alpha=13.0, beta_g=-0.066, sigma=9.4e-4, beta_p=0.68)
    m = curve.samples_for_error(2.48)
    assert curve.error(m) == pytest.approx(2.48, rel=1e-12)
    assert curve.params(m) == pytest.approx(9.4e-4 * m ** 0.68, rel=1e-12)


def test_positive_exponent_rejected() -> None:
    with pytest.raises(ValueError, match="beta_g"):
        scaling.LearningCurve(alpha=1.0, beta_g=0.1, sigma=1.0, beta_p=0.5)


def test_project_composes_growths() -> None:
    curve = scaling.LearningCurve(alpha=3.06, beta_g=-0.128, sigma=6.4e-4, beta_p=0.68)
    proj = scaling.project(curve, 28.0, 12.0, current_samples=130e6, current_params=210e6)
    assert proj.data_growth == pytest.approx((12 / 28) ** (1 / -0.128))
    assert proj.model_growth == pytest.approx(proj.data_growth ** 0.68)
    assert proj.target_samples == pytest.approx(130e6 * proj.data_growth)
    assert proj.target_params == pytest.approx(210e6 * proj.model_growth)


@pytest.mark.parametrize("domain", ["word_lm", "nmt", "image"])
def test_table1_growth_within_2_percent(domain: str) -> None:
    row = table1(TABLES)[domain]
    assert row["data_growth"]["ratio"] == pytest.approx(1.0, abs=0.05 if domain == "word_lm"
                                                        else 0.02)
    assert row["model_growth"]["ratio"] == pytest.approx(1.0, abs=0.03 if domain == "word_lm"
                                                         else 0.02)


def test_table1_word_lm_rounding() -> None:
    """The paper rounds word LM's 104x data growth to 100x; its 23x model growth is 23.6."""
    row = table1(TABLES)["word_lm"]
    assert row["data_growth"]["accelsim"] == pytest.approx(104.2, abs=0.1)
    assert row["model_growth"]["accelsim"] == pytest.approx(23.56, abs=0.01)


@pytest.mark.parametrize("domain,from_exponent,paper", [("char_lm", 837, 971),
                                                        ("speech", 19.5, 33)])
def test_table1_inconsistent_domains_show_both_readings(domain: str, from_exponent: float,
                                                        paper: float) -> None:
    """The exponent gives the note's value; Table 3's data (and beta_p) give the paper's."""
    row = table1(TABLES)[domain]
    assert row["data_growth"]["accelsim"] == pytest.approx(from_exponent, rel=0.02)
    assert row["data_growth"]["paper"] == paper
    assert row["data_growth_from_table3"]["ratio"] == pytest.approx(1.0, abs=0.02)
    assert row["model_growth_from_paper_data_growth"]["ratio"] == pytest.approx(1.0, abs=0.02)
    assert "note" in row


def test_solve_size_reaches_word_lm_target() -> None:
    cfg = scaling.scale_config(WordLMConfig(hidden=10), "hidden", 23.8e9)
    below = WordLMConfig(hidden=cfg.hidden - 1).params_formula()
    above = WordLMConfig(hidden=cfg.hidden + 1).params_formula()
    assert below < 23.8e9 < above
    assert abs(cfg.params_formula() - 23.8e9) / 23.8e9 < 1e-3


@given(a=st.integers(1, 50), b=st.integers(0, 1000), target=st.floats(1.0, 1e12))
def test_solve_size_is_a_closest_neighbour(a: int, b: int, target: float) -> None:
    def f(x: int) -> float:
        return a * x * x + b * x

    x = scaling.solve_size(f, target)
    if x > 1:
        assert f(x - 1) < target or abs(f(x - 1) - target) >= abs(f(x) - target)
    assert abs(f(x) - target) <= abs(f(x + 1) - target)
    assert math.isfinite(f(x))
