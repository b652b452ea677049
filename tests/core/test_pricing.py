"""Black-76 against QuantLib, its textbook properties, implied vols and Deribit conventions."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest
import QuantLib as ql  # noqa: N813
from hypothesis import given, settings
from hypothesis import strategies as st

from hedger.core.pricing import (
    IVReason,
    black76,
    coin_price,
    deribit_expiry_ms,
    deribit_theta,
    implied_vol,
    intrinsic_value,
    premium_adjusted_delta,
    year_fraction,
)

forwards = st.floats(100.0, 200_000.0)
moneyness = st.floats(-1.5, 1.5)
years = st.floats(1 / 365, 3.0)
vols = st.floats(0.05, 3.0)


def _random_inputs(n: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    f = rng.uniform(100.0, 200_000.0, n)
    k = f * np.exp(rng.normal(0.0, 0.4, n))
    t = rng.uniform(1 / 365, 3.0, n)
    v = rng.uniform(0.05, 3.0, n)
    call = rng.random(n) < 0.5
    return f, k, t, v, call


def test_agrees_with_quantlib_black_calculator() -> None:
    f, k, t, v, call = _random_inputs(2_000, seed=3)
    ours = black76(f, k, t, v, call)
    for i in range(len(f)):
        kind = ql.Option.Call if call[i] else ql.Option.Put
        calc = ql.BlackCalculator(
            ql.PlainVanillaPayoff(kind, k[i]), f[i], v[i] * np.sqrt(t[i]), 1.0
        )
        price = calc.value()
        # QuantLib's normal CDF is accurate to ~1e-16 *absolute* (6e-12 relative at
        # d = -4.8), and F N(d1) - K N(d2) carries that error times F: so 1e-9 relative plus
        # QuantLib's own 1e-15 F, and 1e-12 F below 1e-9 F. The erfc-based reference below
        # checks the wings tightly without that noise.
        if price > 1e-9 * f[i]:
            assert abs(ours.price[i] - price) <= 1e-9 * price + 1e-15 * f[i]
        else:
            assert ours.price[i] == pytest.approx(price, abs=1e-12 * f[i])
        assert ours.delta[i] == pytest.approx(calc.deltaForward(), rel=1e-9, abs=1e-12)
        assert ours.gamma[i] == pytest.approx(calc.gammaForward(), rel=1e-9, abs=1e-18)
        assert ours.vega[i] == pytest.approx(calc.vega(t[i]) * 0.01, rel=1e-9, abs=1e-12 * f[i])
        # QuantLib's thetaPerDay includes discounting terms that vanish at r = 0; use the
        # analytic -F phi(d1) sigma / (2 sqrt t) it is built from, per 365 days.
        assert ours.theta[i] == pytest.approx(
            calc.theta(f[i], t[i]) / 365.0, rel=1e-9, abs=1e-12 * f[i]
        )


def _reference_otm_price(f: float, k: float, t: float, v: float) -> float:
    """The OTM option with math.erfc (correctly rounded to ~1 ulp in the tails)."""
    std = v * math.sqrt(t)
    d1 = math.log(f / k) / std + 0.5 * std
    d2 = d1 - std
    s = 1.0 if k >= f else -1.0

    def cdf(x: float) -> float:
        return 0.5 * math.erfc(-x / math.sqrt(2.0))

    return s * (f * cdf(s * d1) - k * cdf(s * d2))


def test_wing_prices_keep_relative_precision() -> None:
    f, k, t, v, _ = _random_inputs(2_000, seed=4)
    k = f * np.exp(np.random.default_rng(9).normal(0.0, 1.2, len(f)))  # deeper wings
    otm_call = k >= f
    ours = black76(f, k, t, v, otm_call).price
    for i in range(len(f)):
        reference = _reference_otm_price(f[i], k[i], t[i], v[i])
        if reference > 1e-250:
            assert ours[i] == pytest.approx(reference, rel=1e-10)


@settings(max_examples=200, deadline=None)
@given(forwards, moneyness, years, vols)
def test_put_call_parity(f: float, m: float, t: float, v: float) -> None:
    k = f * np.exp(m)
    call, put = black76(f, k, t, v, True), black76(f, k, t, v, False)
    assert float(call.price - put.price) == pytest.approx(f - k, abs=1e-9 * max(f, k))
    assert float(call.delta - put.delta) == pytest.approx(1.0, abs=1e-12)
    assert float(call.gamma) == pytest.approx(float(put.gamma), rel=1e-12)
    assert float(call.vega) == pytest.approx(float(put.vega), rel=1e-12)


@settings(max_examples=200, deadline=None)
@given(forwards, moneyness, years, vols, st.booleans())
def test_bounds_and_signs(f: float, m: float, t: float, v: float, is_call: bool) -> None:
    k = f * np.exp(m)
    g = black76(f, k, t, v, is_call)
    intrinsic = max(f - k, 0.0) if is_call else max(k - f, 0.0)
    assert intrinsic - 1e-9 * f <= float(g.price) <= (f if is_call else k) * (1 + 1e-12)
    assert (0.0 <= float(g.delta) <= 1.0) if is_call else (-1.0 <= float(g.delta) <= 0.0)
    assert float(g.gamma) >= 0.0 and float(g.vega) >= 0.0 and float(g.theta) <= 0.0


@settings(max_examples=200, deadline=None)
@given(forwards, moneyness, years, vols)
def test_call_price_is_monotone(f: float, m: float, t: float, v: float) -> None:
    k = f * np.exp(m)
    base = float(black76(f, k, t, v, True).price)
    assert float(black76(f, k, t, v * 1.1, True).price) >= base
    assert float(black76(f, k, t * 1.1, v, True).price) >= base
    assert float(black76(f, k * 1.05, t, v, True).price) <= base


def test_limits() -> None:
    f, k = np.array([100.0, 100.0]), np.array([80.0, 120.0])
    near_zero_vol = black76(f, k, 1.0, 1e-9, True)
    np.testing.assert_allclose(near_zero_vol.price, [20.0, 0.0], atol=1e-9)
    huge_vol = black76(f, k, 1.0, 50.0, True)
    np.testing.assert_allclose(huge_vol.price, f, rtol=1e-9)


def test_expired_and_zero_vol_are_intrinsic_with_no_greeks() -> None:
    f = np.array([100.0, 100.0, 100.0, 100.0])
    k = np.array([90.0, 110.0, 100.0, 90.0])
    g = black76(f, k, np.array([0.0, 0.0, 0.0, 0.5]), np.array([0.5, 0.5, 0.5, 0.0]), True)
    np.testing.assert_array_equal(g.price, [10.0, 0.0, 0.0, 10.0])
    np.testing.assert_array_equal(g.delta, [1.0, 0.0, 0.5, 1.0])
    np.testing.assert_array_equal(g.gamma + g.vega + g.theta, 0.0)
    put = black76(f, k, 0.0, 0.5, False)
    np.testing.assert_array_equal(put.delta, [0.0, -1.0, -0.5, 0.0])


def test_greeks_are_derivatives_of_the_price() -> None:
    f, k, t, v, call = _random_inputs(200, seed=5)
    g = black76(f, k, t, v, call)
    h = 1e-4 * f
    up, down = black76(f + h, k, t, v, call), black76(f - h, k, t, v, call)
    np.testing.assert_allclose(g.delta, (up.price - down.price) / (2 * h), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(g.gamma, (up.delta - down.delta) / (2 * h), rtol=1e-4, atol=1e-12)
    dv = 1e-5
    vega = (black76(f, k, t, v + dv, call).price - black76(f, k, t, v - dv, call).price) / (2 * dv)
    np.testing.assert_allclose(g.vega, vega * 0.01, rtol=1e-5, atol=1e-9 * f.max())
    dt = 1e-6
    theta = -(black76(f, k, t + dt, v, call).price - black76(f, k, t - dt, v, call).price) / (
        2 * dt
    )
    np.testing.assert_allclose(g.theta, theta / 365.0, rtol=1e-4, atol=1e-9 * f.max())


# --- implied vol ---------------------------------------------------------------------------


def test_implied_vol_round_trip_on_a_grid() -> None:
    f, k, t, v, call = _random_inputs(20_000, seed=11)
    iv = implied_vol(black76(f, k, t, v, call).price, f, k, t, call)
    solved = iv.reason == IVReason.OK
    assert solved.mean() > 0.99
    np.testing.assert_allclose(iv.vol[solved], v[solved], rtol=0, atol=1e-6)
    # What is not solved is said so, never a finite wrong number.
    assert np.all(np.isnan(iv.vol[~solved]))
    assert set(np.unique(iv.reason[~solved])) <= {IVReason.NOT_IDENTIFIABLE}


def test_implied_vol_is_tight_where_the_price_pins_the_vol() -> None:
    rng = np.random.default_rng(2)
    v = rng.uniform(0.05, 5.0, 5_000)
    t = rng.uniform(1 / 365, 2.0, 5_000)
    x = rng.uniform(-2.5, 2.5, 5_000) * v * np.sqrt(t)
    f = np.full(5_000, 50_000.0)
    k = f * np.exp(-x)
    otm_call = k >= f
    iv = implied_vol(black76(f, k, t, v, otm_call).price, f, k, t, otm_call)
    assert np.all(iv.reason == IVReason.OK)
    np.testing.assert_allclose(iv.vol, v, rtol=1e-10)


@settings(max_examples=200, deadline=None)
@given(forwards, st.floats(-3.0, 3.0), years, st.floats(0.05, 3.0))
def test_implied_vol_wings_solve_or_say_why(f: float, m: float, t: float, v: float) -> None:
    k = f * np.exp(m * v * np.sqrt(t) * 2)
    otm_call = k >= f
    price = black76(f, k, t, v, otm_call).price
    iv = implied_vol(price, f, k, t, otm_call)
    if iv.reason[()] == IVReason.OK:
        assert float(iv.vol) == pytest.approx(v, rel=1e-8)
    else:
        assert np.isnan(iv.vol) and price < 1e-280  # only a price lost to underflow


def test_implied_vol_reasons() -> None:
    iv = implied_vol(
        price=[5.0, 100.0, 1.0, np.nan, -1.0, 1.0, 20.0],
        forward=[100, 100, 100, 100, 100, 100, 120],
        strike=[110, 100, 100, 100, 100, 0, 100],
        t_years=[1, 1, 0, 1, 1, 1, 1],
        is_call=[False, True, True, True, True, True, True],
    )
    assert list(iv.reason) == [
        IVReason.BELOW_INTRINSIC,
        IVReason.ABOVE_MAX,
        IVReason.EXPIRED,
        IVReason.BAD_INPUT,
        IVReason.BAD_INPUT,
        IVReason.BAD_INPUT,
        IVReason.NOT_IDENTIFIABLE,
    ]
    assert np.all(np.isnan(iv.vol))


# --- Deribit conventions --------------------------------------------------------------------


def test_expiry_is_0800_utc_and_year_fraction_is_act_365() -> None:
    expiry = deribit_expiry_ms(2026, 12, 25)
    assert datetime.fromtimestamp(expiry / 1000, UTC) == datetime(2026, 12, 25, 8, tzinfo=UTC)
    noon_before = int(datetime(2026, 12, 24, 8, tzinfo=UTC).timestamp() * 1000)
    assert float(year_fraction(noon_before, expiry)) == pytest.approx(1 / 365, rel=1e-15)
    assert float(year_fraction(expiry + 1, expiry)) == 0.0


def test_deribit_theta_caps_the_last_day_at_the_remaining_time_value() -> None:
    f, k = np.array([100.0, 100.0, 100.0]), np.array([100.0, 100.0, 130.0])
    t = np.array([30 / 365, 0.1 / 365, 20 / 365])
    g = black76(f, k, t, 0.8, True)
    theta = deribit_theta(g, f, k, True)
    time_value = g.price - intrinsic_value(f, k, True)
    assert theta[0] == g.theta[0]  # a month out: the 1-day theta
    assert g.theta[1] < -time_value[1]  # inside the last day the rate overstates decay...
    assert theta[1] == pytest.approx(-time_value[1])  # ...so all that is left decays
    assert -time_value[2] <= theta[2] <= 0.0


def test_inverse_option_conventions() -> None:
    g = black76(90_000.0, 100_000.0, 30 / 365, 0.55, True)
    assert float(coin_price(g.price, 90_000.0)) == pytest.approx(float(g.price) / 90_000.0)
    pa = premium_adjusted_delta(g.delta, g.price, 90_000.0)
    assert float(pa) == pytest.approx(float(g.delta) - float(g.price) / 90_000.0)
    assert float(pa) < float(g.delta)
