"""Exposure: unit conventions per instrument kind, and factor deltas/gammas by revaluation."""

from __future__ import annotations

import numpy as np
import pytest

from hedger.core.exposure import Position, Quotes, build_book, exposure
from hedger.core.factors import factor_indices, prior_loadings
from hedger.core.instruments import Instrument, Kind
from hedger.core.pricing import black76, year_fraction

NOW = 1_795_000_000_000
DAY = 86_400_000
BTC = Instrument("BTC", Kind.SPOT, "BTC")
ETH = Instrument("ETH", Kind.SPOT, "ETH")
SOL = Instrument("SOL", Kind.SPOT, "SOL")
BTC_PERP = Instrument("BTC-PERPETUAL", Kind.PERP, "BTC", contract_size=10.0, inverse=True)
SOL_LINEAR_PERP = Instrument(
    "SOL_USDC-PERPETUAL", Kind.PERP, "SOL", quote="USDC", contract_size=0.1
)


def _option(
    underlying: str,
    strike: float,
    days: float,
    is_call: bool,
    size: float = 1.0,
    inverse: bool = True,
) -> Instrument:
    return Instrument(
        f"{underlying}-{strike:g}-{'C' if is_call else 'P'}-{days:g}",
        Kind.OPTION,
        underlying,
        contract_size=size,
        inverse=inverse,
        strike=strike,
        expiry_ms=NOW + int(days * DAY),
        is_call=is_call,
    )


PRICES = {"BTC": 90_000.0, "ETH": 3_000.0, "SOL": 150.0, "USDC": 1.0}
VOLS = {"BTC": 0.55, "ETH": 0.65, "SOL": 0.9}


def _quotes(book: object, prices: dict[str, float]) -> Quotes:
    assets = book.assets  # type: ignore[attr-defined]
    asset_of = book.asset_of  # type: ignore[attr-defined]
    asset_price = np.array([prices[a] for a in assets])
    row_price = asset_price[asset_of]
    vols = np.array([VOLS.get(assets[i], np.nan) for i in asset_of])
    return Quotes(row_price, row_price, vols, asset_price)


def _run(
    positions: list[Position],
    factors: tuple[str, ...],
    priors: dict[str, list[float]],
    prices: dict[str, float] = PRICES,
):
    book = build_book(positions, factors)
    loadings, _ = prior_loadings(book.assets, factors, priors)
    return (
        book,
        loadings,
        exposure(book, _quotes(book, prices), loadings, factor_indices(book.assets, factors), NOW),
    )


def test_spot_beta_delta_is_loading_times_usd_delta_in_factor_units() -> None:
    _, _, ex = _run([Position(SOL, 1_000.0)], ("BTC",), {"SOL": [1.3]})
    assert ex.asset_delta_usd[ex.assets.index("SOL")] == pytest.approx(150_000.0)
    assert ex.beta_delta_usd[0] == pytest.approx(1.3 * 150_000.0)
    assert ex.beta_delta[0] == pytest.approx(1.3 * 150_000.0 / 90_000.0)
    assert ex.nav_usd == pytest.approx(150_000.0)
    assert ex.portfolio_beta[0] == pytest.approx(1.3)


def test_short_inverse_perp_has_coin_delta_minus_face_over_price() -> None:
    # 1 BTC of spot hedged by a short of 9,000 contracts x 10 USD face = 90,000 USD.
    positions = [Position(BTC, 1.0), Position(BTC_PERP, -9_000.0, entry_price=90_000.0)]
    _, _, ex = _run(positions, ("BTC",), {})
    assert ex.delta_usd[1] == pytest.approx(-90_000.0)
    assert ex.delta_usd[1] / PRICES["BTC"] == pytest.approx(-1.0)
    assert ex.beta_delta[0] == pytest.approx(0.0, abs=1e-12)
    assert ex.factor_gamma_usd[0, 0] == pytest.approx(0.0, abs=1e-9)


def test_inverse_perp_nav_counts_pnl_from_entry() -> None:
    positions = [Position(BTC_PERP, 1_000.0, entry_price=80_000.0)]  # long 10,000 USD face
    _, _, ex = _run(positions, ("BTC",), {})
    # coin P&L face*(1/80k - 1/90k), valued at 90k
    expected = 10_000.0 * (1 / 80_000 - 1 / 90_000) * 90_000
    assert ex.nav_usd == pytest.approx(expected)


def test_linear_perp_uses_contract_size() -> None:
    _, _, ex = _run([Position(SOL_LINEAR_PERP, 50.0)], ("BTC",), {"SOL": [1.2]})
    assert ex.asset_delta_coin[ex.assets.index("SOL")] == pytest.approx(5.0)
    assert ex.beta_delta_usd[0] == pytest.approx(1.2 * 5.0 * 150.0)


def test_option_rows_use_black76_on_the_underlying_price() -> None:
    call = _option("BTC", 100_000.0, 30.0, True)
    _, _, ex = _run([Position(call, -5.0)], ("BTC",), {})
    g = black76(
        np.array([90_000.0]),
        np.array([100_000.0]),
        year_fraction(NOW, np.array([float(call.expiry_ms)])),
        np.array([0.55]),
        np.array([True]),
    )
    assert ex.delta_usd[0] == pytest.approx(-5.0 * g.delta[0] * 90_000.0)
    assert ex.vega_usd == pytest.approx(-5.0 * g.vega[0])
    assert ex.theta_usd == pytest.approx(-5.0 * g.theta[0])
    assert ex.value_usd[0] == pytest.approx(-5.0 * g.price[0])
    assert ex.premium_adjusted_delta_coin[0] == pytest.approx(
        -5.0 * (g.delta[0] - g.price[0] / 90_000.0)
    )
    assert ex.gamma_per_usd[0] == pytest.approx(-5.0 * g.gamma[0])


def test_linear_option_multiplier_scales_every_greek() -> None:
    one = _run(
        [Position(_option("SOL", 160.0, 20.0, False, 1.0, False), 1.0)], ("BTC",), {"SOL": [1.0]}
    )[2]
    ten = _run(
        [Position(_option("SOL", 160.0, 20.0, False, 10.0, False), 1.0)], ("BTC",), {"SOL": [1.0]}
    )[2]
    assert ten.beta_delta_usd[0] == pytest.approx(10 * one.beta_delta_usd[0])
    assert ten.vega_usd == pytest.approx(10 * one.vega_usd)
    assert ten.factor_gamma_usd[0, 0] == pytest.approx(10 * one.factor_gamma_usd[0, 0])


def test_cash_has_no_loading_and_counts_in_nav() -> None:
    usdc = Instrument("USDC", Kind.SPOT, "USDC")
    _, _, ex = _run([Position(usdc, 50_000.0), Position(SOL, 100.0)], ("BTC",), {"SOL": [1.0]})
    assert ex.beta_delta_usd[0] == pytest.approx(15_000.0)
    assert ex.nav_usd == pytest.approx(65_000.0)


# --- factor delta and gamma by full revaluation ------------------------------------------------


def _book_value(positions: list[Position], prices: dict[str, float]) -> float:
    """Independent revaluation, position by position (no shared code with exposure())."""
    total = 0.0
    for p in positions:
        inst, s = p.instrument, prices[p.instrument.underlying]
        size = p.qty * inst.contract_size
        if inst.kind is Kind.SPOT:
            total += size * s
        elif inst.kind is Kind.OPTION:
            t = (inst.expiry_ms - NOW) / (365 * DAY)  # type: ignore[operator]
            g = black76(
                np.array([s]),
                np.array([inst.strike]),
                np.array([t]),
                np.array([VOLS[inst.underlying]]),
                np.array([bool(inst.is_call)]),
            )
            total += size * float(g.price[0])
        elif inst.inverse:
            total += size * (s / p.entry_price - 1.0)  # type: ignore[operator]
        else:
            total += size * (s - p.entry_price)  # type: ignore[operator]
    return total


def _shocked(loadings: dict[str, list[float]], factor_moves: np.ndarray) -> dict[str, float]:
    # log-return model: asset log-return = B . factor log-returns
    x = np.log1p(factor_moves)
    return {a: PRICES[a] * float(np.exp(np.dot(loadings[a], x))) for a in loadings}


MIXED = [
    Position(SOL, 2_000.0),
    Position(_option("SOL", 140.0, 25.0, False, 1.0, False), 300.0),
    Position(_option("SOL", 170.0, 60.0, True, 1.0, False), -150.0),
    Position(_option("ETH", 3_200.0, 10.0, True), -40.0),
    Position(_option("BTC", 85_000.0, 45.0, False), 8.0),
    Position(ETH, 25.0),
    Position(BTC_PERP, -2_000.0, entry_price=90_000.0),
]


@pytest.mark.parametrize("factors", [("BTC",), ("BTC", "ETH")])
def test_factor_delta_and_gamma_match_revaluation(factors: tuple[str, ...]) -> None:
    priors = {"SOL": [1.4] if len(factors) == 1 else [0.9, 0.7], "ETH": [1.2]}
    book, loadings, ex = _run(MIXED, factors, priors)
    row_of = {a: loadings[i] for i, a in enumerate(book.assets)}
    k = len(factors)
    h = 1e-4

    def value(move: np.ndarray) -> float:
        return _book_value(MIXED, _shocked(row_of, move))

    base = value(np.zeros(k))
    for i in range(k):
        up, down = np.zeros(k), np.zeros(k)
        up[i], down[i] = h, -h
        numeric_delta = (value(up) - value(down)) / (2 * h)
        assert ex.beta_delta_usd[i] == pytest.approx(numeric_delta, rel=1e-6)
        for j in range(k):
            e_i, e_j = np.eye(k)[i] * h, np.eye(k)[j] * h
            numeric_gamma = (
                value(e_i + e_j) - value(e_i - e_j) - value(-e_i + e_j) + value(-e_i - e_j)
            ) / (4 * h * h)
            scale = max(abs(numeric_gamma), abs(base) * 1e-3)
            assert ex.factor_gamma_usd[i, j] == pytest.approx(numeric_gamma, abs=2e-3 * scale)


def test_one_factor_beta_gamma_matches_the_log_return_formula() -> None:
    opt = _option("SOL", 150.0, 30.0, True, 1.0, False)
    _, _, ex = _run([Position(opt, 100.0)], ("BTC",), {"SOL": [1.5]})
    g = black76(
        np.array([150.0]),
        np.array([150.0]),
        np.array([30 / 365]),
        np.array([0.9]),
        np.array([True]),
    )
    beta, s = 1.5, 150.0
    expected = 100 * (beta**2 * g.gamma[0] * s * s + beta * (beta - 1) * g.delta[0] * s)
    assert ex.factor_gamma_usd[0, 0] == pytest.approx(expected, rel=1e-12)
    assert ex.gamma_usd_per_pct[0] == pytest.approx(0.01 * expected)


def test_second_factor_is_configuration_not_a_rewrite() -> None:
    # With ETH's loading on BTC moved to an ETH factor, K = 2 splits the same USD delta.
    _, _, one = _run([Position(SOL, 1_000.0)], ("BTC",), {"SOL": [1.5]})
    _, _, two = _run([Position(SOL, 1_000.0)], ("BTC", "ETH"), {"SOL": [0.9, 0.6]})
    assert one.beta_delta_usd.shape == (1,) and two.beta_delta_usd.shape == (2,)
    assert two.beta_delta_usd.sum() == pytest.approx(one.beta_delta_usd[0])
    assert two.beta_delta[1] == pytest.approx(0.6 * 150_000.0 / 3_000.0)
