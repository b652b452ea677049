from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hedger.backtest.metrics import (
    max_drawdown,
    share_outside_band,
    tracking_error,
    variance_reduction,
)

PNL = st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=50)


def test_variance_reduction_of_a_half_hedge() -> None:
    unhedged = np.array([1.0, -1.0, 2.0, -2.0])
    # Var(0.5 x) = Var(x) / 4: three quarters of the variance removed.
    assert variance_reduction(0.5 * unhedged, unhedged) == pytest.approx(0.75)


def test_variance_reduction_can_be_negative_when_the_hedge_adds_risk() -> None:
    unhedged = np.array([1.0, -1.0, 1.0, -1.0])
    assert variance_reduction(3.0 * unhedged, unhedged) == pytest.approx(-8.0)


def test_variance_reduction_is_nan_without_unhedged_risk() -> None:
    assert math.isnan(variance_reduction(np.array([1.0, 2.0]), np.zeros(2)))


@given(PNL, st.floats(0.0, 1.0))
def test_variance_reduction_of_a_scaled_hedge(values: list[float], keep: float) -> None:
    unhedged = np.array(values)
    if not np.var(unhedged) > 1e-9:
        return
    assert variance_reduction(keep * unhedged, unhedged) == pytest.approx(1 - keep**2, abs=1e-9)


def test_max_drawdown_from_the_running_peak() -> None:
    # cumulative: 0, 5, 2, 8, 1, 4 -> worst fall 8 -> 1.
    assert max_drawdown(np.array([5.0, -3.0, 6.0, -7.0, 3.0])) == 7.0


def test_max_drawdown_counts_a_loss_from_the_start() -> None:
    assert max_drawdown(np.array([-2.0, -1.0, 4.0])) == 3.0
    assert max_drawdown(np.array([1.0, 2.0])) == 0.0


@given(PNL)
def test_max_drawdown_bounds(values: list[float]) -> None:
    pnl = np.array(values)
    dd = max_drawdown(pnl)
    assert dd >= 0.0
    assert dd <= np.abs(pnl).sum() + 1e-6


def test_tracking_error_ignores_missing_bars() -> None:
    beta_delta = np.array([1.0, 3.0, np.nan, 1.0, 3.0])
    target = np.array([0.0, 0.0, 0.0, 0.0, 0.0])
    assert tracking_error(beta_delta, target) == pytest.approx(1.0)


def test_share_outside_band_counts_a_bar_once_for_any_factor() -> None:
    outside = np.array([[True, True], [False, True], [False, False], [False, False]])
    assert share_outside_band(outside) == 0.5


def test_too_short_a_run_has_no_statistics() -> None:
    one = np.array([1.0])
    assert math.isnan(variance_reduction(one, one))
    assert math.isnan(tracking_error(one, np.zeros(1)))
