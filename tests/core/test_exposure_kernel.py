"""The fused Black-76 kernel behind exposure() against the reference black76(), and
exposure() against the same aggregation written plainly on black76()."""

from __future__ import annotations

import numpy as np
import pytest

from hedger.core.exposure import Position, Quotes, build_book, exposure
from hedger.core.factors import factor_indices, prior_loadings
from hedger.core.instruments import Instrument, Kind
from hedger.core.pricing import black76, black76_kernel, year_fraction

NOW = 1_795_000_000_000
DAY = 86_400_000
REL = 1e-12


def _wide_inputs(n: int, seed: int) -> tuple[np.ndarray, ...]:
    """Deep wings, tiny and huge total std, expired and zero-vol options, NaN vols."""
    rng = np.random.default_rng(seed)
    f = rng.uniform(0.5, 200_000.0, n)
    k = f * np.exp(rng.normal(0.0, 1.0, n))
    t = rng.choice([0.0, -0.01, 1e-6, 1 / 365, 0.1, 1.0, 3.0], n) * rng.uniform(0.5, 1.5, n)
    v = rng.uniform(0.01, 3.0, n)
    v[rng.random(n) < 0.05] = 0.0
    v[rng.random(n) < 0.02] = np.nan
    at_money = rng.random(n) < 0.05
    k[at_money] = f[at_money]
    call = rng.random(n) < 0.5
    return f, k, t, v, call


def _assert_close(ours: np.ndarray, ref: np.ndarray, scale: np.ndarray) -> None:
    """Relative agreement, with an absolute floor at rounding of the option's scale."""
    tol = REL * np.abs(ref) + 1e-15 * scale
    bad = ~(np.abs(ours - ref) <= tol)
    assert not bad.any(), (ours[bad][:5], ref[bad][:5])


@pytest.mark.parametrize("seed", range(5))
def test_kernel_equals_reference_black76(seed: int) -> None:
    f, k, t, v, call = _wide_inputs(4_000, seed)
    ref = black76(f, k, t, v, call)
    omega = np.where(call, 1.0, -1.0)
    price, delta, f_pdf, std, rates = black76_kernel(f, k, t, v, omega)
    scale = np.maximum(f, k)
    _assert_close(price, ref.price, scale)
    _assert_close(delta, ref.delta, np.ones_like(f))
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = f_pdf / (f * f * std)
    _assert_close(gamma, ref.gamma, 1.0 / f)
    _assert_close(0.01 * f_pdf * rates[0], ref.vega, scale)
    _assert_close(-f_pdf * rates[1] / 730.0, ref.theta, scale)
    assert np.all(np.isfinite(rates)) and np.all(np.isfinite(std))


def test_kernel_skips_the_clamp_only_when_told() -> None:
    f, k, t, v, call = _wide_inputs(500, seed=9)
    live = t > 0
    omega = np.where(call, 1.0, -1.0)
    clamped = black76_kernel(f[live], k[live], t[live], v[live], omega[live])
    trusted = black76_kernel(f[live], k[live], t[live], v[live], omega[live], min_t_positive=True)
    for a, b in zip(clamped, trusted, strict=True):
        np.testing.assert_array_equal(a, b)


def test_kernel_on_no_options() -> None:
    empty = np.empty(0)
    price, delta, f_pdf, std, rates = black76_kernel(empty, empty, empty, empty, empty)
    assert price.shape == delta.shape == f_pdf.shape == std.shape == (0,)
    assert rates.shape == (2, 0)


def _random_book(seed: int) -> tuple[list[Position], dict[str, float], np.ndarray]:
    rng = np.random.default_rng(seed)
    prices = {"BTC": 90_000.0, "ETH": 3_000.0, "SOL": 150.0}
    positions: list[Position] = []
    for i in range(600):
        underlying = ("BTC", "ETH", "SOL")[i % 3]
        spot = prices[underlying]
        days = float(rng.choice([-2.0, 0.0, 0.01, 1.0, 7.0, 90.0, 365.0, 1_000.0]))
        inst = Instrument(
            f"{underlying}-{i}",
            Kind.OPTION,
            underlying,
            contract_size=float(rng.choice([1.0, 0.1, 10.0])),
            inverse=bool(rng.random() < 0.5),
            strike=float(spot * np.exp(rng.normal(0.0, 1.0))),
            expiry_ms=NOW + int(days * DAY),
            is_call=bool(rng.random() < 0.5),
        )
        positions.append(Position(inst, float(rng.normal(0.0, 5.0))))
    for i in range(60):
        underlying = ("BTC", "ETH", "SOL")[i % 3]
        inst = (
            Instrument(f"{underlying}-SPOT-{i}", Kind.SPOT, underlying)
            if i % 2
            else Instrument(
                f"{underlying}-PERP-{i}", Kind.PERP, underlying, contract_size=10.0, inverse=True
            )
        )
        positions.append(Position(inst, float(rng.normal(0.0, 100.0)), entry_price=1.0))
    vols = np.where(
        [p.instrument.kind is Kind.OPTION for p in positions],
        rng.uniform(0.05, 2.5, len(positions)),
        np.nan,
    )
    vols[rng.random(len(positions)) < 0.03] = 0.0
    return positions, prices, vols


@pytest.mark.parametrize("seed", range(3))
def test_exposure_equals_the_plain_aggregation_of_black76(seed: int) -> None:
    positions, prices, vols = _random_book(seed)
    factors = ("BTC", "ETH")
    book = build_book(positions, factors)
    asset_price = np.array([prices[a] for a in book.assets])
    rng = np.random.default_rng(100 + seed)
    row_price = asset_price[book.asset_of]
    forward = row_price * rng.uniform(0.98, 1.02, len(row_price))  # per-expiry futures
    quotes = Quotes(row_price, forward, vols, asset_price)
    loadings, _ = prior_loadings(book.assets, factors, {"SOL": [0.9, 0.6]})
    ex = exposure(book, quotes, loadings, factor_indices(book.assets, factors), NOW)

    opt = book.option_rows
    f = forward[opt]
    g = black76(
        f,
        book.option_strike,
        year_fraction(NOW, book.option_expiry_ms),
        vols[opt],
        book.option_is_call,
    )
    size = book.option_size
    scale = np.maximum(f, book.option_strike)
    _assert_close(ex.option_price_usd, g.price, scale)
    _assert_close(ex.option_delta, g.delta, np.ones_like(f))
    np.testing.assert_array_equal(ex.option_forward, f)
    _assert_close(ex.delta_usd[opt], size * f * g.delta, np.abs(size) * f)
    _assert_close(ex.value_usd[opt], size * g.price, np.abs(size) * scale)
    n_assets = len(book.assets)
    cash_gamma = np.bincount(book.option_asset_of, size * f * f * g.gamma, minlength=n_assets)
    gross = np.bincount(book.option_asset_of, np.abs(size) * scale, minlength=n_assets)
    _assert_close(ex.asset_cash_gamma_usd, cash_gamma, gross)
    gross_total = float(np.abs(size) @ scale)
    assert ex.vega_usd == pytest.approx(float(size @ g.vega), rel=REL, abs=1e-15 * gross_total)
    assert ex.theta_usd == pytest.approx(float(size @ g.theta), rel=REL, abs=1e-15 * gross_total)
    assert np.all(np.isfinite(ex.factor_gamma_usd)) and np.isfinite(ex.nav_usd)


def test_each_exposure_owns_its_arrays() -> None:
    """Scratch is per call: an Exposure kept from an earlier tick does not change."""
    positions, prices, vols = _random_book(7)
    book = build_book(positions, ("BTC",))
    asset_price = np.array([prices[a] for a in book.assets])
    row_price = asset_price[book.asset_of]
    loadings, _ = prior_loadings(book.assets, ("BTC",), {})
    idx = factor_indices(book.assets, ("BTC",))
    first = exposure(book, Quotes(row_price, row_price, vols, asset_price), loadings, idx, NOW)
    kept = [first.option_price_usd.copy(), first.delta_usd.copy(), first.asset_cash_gamma_usd]
    kept[2] = kept[2].copy()
    exposure(book, Quotes(row_price * 1.1, row_price * 1.1, vols, asset_price), loadings, idx, NOW)
    np.testing.assert_array_equal(first.option_price_usd, kept[0])
    np.testing.assert_array_equal(first.delta_usd, kept[1])
    np.testing.assert_array_equal(first.asset_cash_gamma_usd, kept[2])
