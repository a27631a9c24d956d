"""Learning-curve projection to frontier size (the paper's Section 3, Table 1).

Generalization error falls as a power law of training-set size m, eps(m) = alpha * m**beta_g
(beta_g < 0), and the parameters needed to fit m samples grow as p(m) = sigma * m**beta_p. So
reaching a desired error from the current one takes (desired/current)**(1/beta_g) times the
data and that growth to the power beta_p times the parameters. A builder's hyperparameter (hidden
size, width, depth) that reaches a projected parameter count is found by root finding on its
parameter count. Pure functions: nothing here knows hardware or builds graphs itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs


@attrs.frozen(kw_only=True)
class LearningCurve:
    """Power-law fits of one domain: error and model size against training samples."""

    alpha: float
    beta_g: float
    sigma: float
    beta_p: float

    def __attrs_post_init__(self) -> None:
        if self.beta_g >= 0:
            raise ValueError(f"beta_g: expected a negative exponent, got {self.beta_g}")

    def error(self, samples: float) -> float:
        """eps(m): generalization error after training on `samples`."""
        return self.alpha * samples ** self.beta_g

    def samples_for_error(self, error: float) -> float:
        """m such that eps(m) = error (the curve's own intercept, alpha)."""
        return (error / self.alpha) ** (1.0 / self.beta_g)

    def params(self, samples: float) -> float:
        """p(m): parameters the curve's fit assigns to `samples`."""
        return self.sigma * samples ** self.beta_p


def data_growth(current_error: float, desired_error: float, beta_g: float) -> float:
    """Factor by which the training set must grow: (desired/current)**(1/beta_g).

    Uses only the exponent, so it is independent of where the curve's intercept lies.
    """
    if current_error <= 0 or desired_error <= 0:
        raise ValueError("errors must be positive")
    return (desired_error / current_error) ** (1.0 / beta_g)


def model_growth(data_growth_factor: float, beta_p: float) -> float:
    """Factor by which parameters grow when the data grows by `data_growth_factor`."""
    return data_growth_factor ** beta_p


@attrs.frozen(kw_only=True)
class Projection:
    """What reaching `desired_error` takes, relative to the current state of the art."""

    data_growth: float
    model_growth: float
    target_samples: float
    target_params: float | None


def project(curve: LearningCurve, current_error: float, desired_error: float,
            current_samples: float, current_params: float | None = None) -> Projection:
    """Project data and model growth from the current to the desired error."""
    growth = data_growth(current_error, desired_error, curve.beta_g)
    m_growth = model_growth(growth, curve.beta_p)
    return Projection(data_growth=growth, model_growth=m_growth,
                      target_samples=current_samples * growth,
                      target_params=None if current_params is None else current_params * m_growth)


def solve_size(params_of: Callable[[int], float], target_params: float, *, low: int = 1,
               high: int | None = None) -> int:
    """The integer size whose parameter count is closest to `target_params`.

    `params_of` must be increasing. Brackets the target by doubling from `low`, bisects to the
    two neighbouring sizes x-1, x with params_of(x-1) < target <= params_of(x), and returns the
    one closer to the target.
    """
    if params_of(low) >= target_params:
        return low
    hi = high or max(2, 2 * low)
    while params_of(hi) < target_params:
        low, hi = hi, hi * 2
        if hi > 1 << 40:
            raise ValueError(f"no size reaches {target_params:.4g} parameters")
    lo = low
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if params_of(mid) >= target_params:
            hi = mid
        else:
            lo = mid
    return min((lo, hi), key=lambda x: abs(params_of(x) - target_params))


def params_of_config(config: Any) -> int:
    """A model config's parameter count, by its closed form (equal to its graph's)."""
    return int(config.params_formula())


def scale_config(config: Any, field_name: str, target_params: float,
                 params_of: Callable[[Any], float] = params_of_config) -> Any:
    """A copy of `config` with integer hyperparameter `field_name` set to reach the target.

    `params_of(config)` defaults to the config's closed form; pass a function that builds the
    graph (e.g. `lambda c: build_graph(WorkloadSpec(..., model=c)).params`) for families without
    one. Dependent fields left unset (e.g. speech's attention width = encoder width / 2) follow.
    """
    def count(x: int) -> float:
        return params_of(attrs.evolve(config, **{field_name: x}))

    return attrs.evolve(config, **{field_name: solve_size(count, target_params)})


def asymptotic_fit(params: list[float], values: list[float],
                   constant: bool = False) -> tuple[float, float]:
    """Least-squares fit values = a*p + c*sqrt(p) (+ k); returns (a, c), Table 2's forms.

    The optional constant absorbs terms that do not grow with the model (e.g. a fixed
    vocabulary's logits), which would otherwise bend the sqrt(p) coefficient negative.
    """
    import numpy as np

    p = np.asarray(params, dtype=float)
    columns = [p, np.sqrt(p)] + ([np.ones_like(p)] if constant else [])
    coef, *_ = np.linalg.lstsq(np.stack(columns, axis=1), np.asarray(values, dtype=float),
                               rcond=None)
    return float(coef[0]), float(coef[1])


def round_sig(x: float, digits: int = 3) -> float:
    """Round to `digits` significant figures (for printing alongside the paper's values)."""
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, digits - 1 - int(math.floor(math.log10(abs(x)))))
