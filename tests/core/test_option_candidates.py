"""Option candidates: the filters, per-contract Greeks consistent with the book's exposure,
the premium adjustment of inverse options, and the cost of a contract."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hedger.core.exposure import Exposure, Position
from hedger.core.option_candidates import (
    FactorFrame,
    FloatArray,
    OptionChain,
    book_vega_by_asset,
    contract_greeks,
    option_candidates,
)
from hedger.core.params import CandidateFilter
from hedger.core.pricing import MS_PER_DAY, black76, premium_adjusted_delta, year_fraction

from .chains import (
    BTC_PRICE,
    IV,
    NOW,
    book_exposure,
    chain,
    frame_of,
    option_instrument,
    option_symbol,
    spot,
)

WIDE = CandidateFilter(
    min_days_to_expiry=0.0,
    max_days_to_expiry=1e6,
    min_abs_delta=0.0,
    max_abs_delta=1.0,
    max_relative_spread=10.0,
    max_candidates=10_000,
)


def _btc_frame() -> FactorFrame:
    _, _, result = book_exposure([Position(spot("BTC"), 1.0)], {"BTC": BTC_PRICE})
    return frame_of(result)


FRAME = _btc_frame()


def _symbols(
    flt: CandidateFilter, c: OptionChain | None = None, option_type: str | None = None
) -> set[str]:
    got = option_candidates(c or chain(), flt, FRAME, "BTC", NOW, option_type=option_type)
    return set(got.greeks.symbols)


# --- filters ------------------------------------------------------------------------------------


def test_expiry_window_keeps_only_the_days_asked_for() -> None:
    got = _symbols(replace(WIDE, min_days_to_expiry=10.0, max_days_to_expiry=40.0))
    assert got and all(s.split("-")[1] in ("14D", "30D") for s in got)


def test_delta_range_is_on_the_absolute_black_delta() -> None:
    flt = replace(WIDE, min_abs_delta=0.3, max_abs_delta=0.7)
    result = option_candidates(chain(), flt, FRAME, "BTC", NOW)
    assert len(result.greeks)
    assert np.all((np.abs(result.greeks.delta) >= 0.3) & (np.abs(result.greeks.delta) <= 0.7))
    assert dict(result.excluded)["delta range"] > 0
    # Puts qualify on |delta| too.
    assert any(s.endswith("-P") for s in result.greeks.symbols)


def test_open_interest_and_spread_filters() -> None:
    thin = chain(open_interest=5.0)
    assert _symbols(replace(WIDE, min_open_interest=10.0), thin) == set()
    assert _symbols(replace(WIDE, min_open_interest=1.0), thin)
    unknown = replace(chain(), open_interest=None)
    assert _symbols(replace(WIDE, min_open_interest=1.0), unknown) == set()
    assert _symbols(WIDE, unknown)  # unknown interest passes only a zero minimum
    wide = chain(relative_spread=0.3)
    assert _symbols(replace(WIDE, max_relative_spread=0.25), wide) == set()
    assert _symbols(replace(WIDE, max_relative_spread=0.35), wide)


def test_a_one_sided_book_never_qualifies() -> None:
    c = chain()
    bid = c.bid.copy()
    bid[0] = np.nan
    got = _symbols(WIDE, replace(c, bid=bid))
    assert c.symbols[0] not in got
    assert len(got) == len(c) - 1


def test_underlyings_default_to_the_factor_and_can_be_widened() -> None:
    eth = chain(asset="ETH", forward=2_500.0, strikes=(2_000, 2_500, 3_000))
    _, _, result = book_exposure(
        [Position(spot("ETH"), 1.0)], {"BTC": BTC_PRICE, "ETH": 2_500.0}, loadings={"ETH": [1.2]}
    )
    frame = frame_of(result)
    assert len(option_candidates(eth, WIDE, frame, "BTC", NOW).greeks) == 0
    widened = option_candidates(eth, replace(WIDE, underlyings=("ETH",)), frame, "BTC", NOW)
    assert len(widened.greeks) == len(eth)
    # An ETH option's vega is not BTC's vega, but its delta projects through ETH's loading.
    assert np.all(widened.greeks.vega_usd == 0.0)
    assert np.all(widened.greeks.total_vega_usd > 0.0)


def test_option_type_and_stale_quotes() -> None:
    assert all(s.endswith("-P") for s in _symbols(WIDE, option_type="put"))
    c = chain()
    age = np.zeros(len(c))
    age[:4] = 30.0
    got = option_candidates(replace(c, age_s=age), WIDE, FRAME, "BTC", NOW, stale_after_s=10.0)
    assert not set(c.symbols[:4]) & set(got.greeks.symbols)
    assert ("stale quote", 4) in got.excluded


def test_max_candidates_are_taken_across_expiries() -> None:
    got = option_candidates(chain(), replace(WIDE, max_candidates=8), FRAME, "BTC", NOW)
    assert len(got.greeks) == 8
    expiries = {s.split("-")[1] for s in got.greeks.symbols}
    assert expiries == {"7D", "14D", "30D", "60D"}  # two per expiry, not eight of one


# --- Greeks and cost ----------------------------------------------------------------------------


def _marginal(
    positions: list[Position],
    extra: list[Position],
    prices: dict[str, float],
    loadings: dict[str, list[float]] | None = None,
) -> tuple[Exposure, Exposure, FloatArray, FloatArray]:
    book0, quotes0, e0 = book_exposure(positions, prices, loadings=loadings)
    book1, quotes1, e1 = book_exposure(positions + extra, prices, loadings=loadings)
    vega0 = book_vega_by_asset(book0, quotes0, NOW)
    vega1 = book_vega_by_asset(book1, quotes1, NOW)
    return e0, e1, vega0, vega1


def test_inverse_candidate_moves_the_book_by_its_premium_adjusted_greeks() -> None:
    """Buying one inverse contract adds the option and pays its coin premium out of the
    coin balance (spot): the book's factor Greeks move by exactly the candidate's."""
    c = chain()
    row = c.row_of(option_symbol("BTC", 30, 45_000, False))
    base = [Position(spot("BTC"), 3.0)]
    premium_coin = float(
        black76(BTC_PRICE, 45_000.0, year_fraction(NOW, c.expiry_ms[row]), IV, False).price
        / BTC_PRICE
    )
    bought = [Position(option_instrument(c, row), 1.0), Position(spot("BTC"), -premium_coin)]
    e0, e1, v0, v1 = _marginal(base, bought, {"BTC": BTC_PRICE})
    g = contract_greeks(c, np.array([row]), frame_of(e0), "BTC", NOW)
    assert g.beta_delta_usd[0, 0] == pytest.approx(e1.beta_delta_usd[0] - e0.beta_delta_usd[0])
    assert g.gamma_usd_per_pct[0] == pytest.approx(
        e1.gamma_usd_per_pct[0] - e0.gamma_usd_per_pct[0]
    )
    assert g.vega_usd[0] == pytest.approx(e1.vega_usd - e0.vega_usd)
    assert g.vega_usd[0] == pytest.approx((v1 - v0)[0])
    # ... and the delta is Deribit's premium-adjusted one.
    assert g.beta_delta[0] == pytest.approx(
        float(premium_adjusted_delta(g.delta[0], g.price_usd[0], BTC_PRICE))
    )
    assert g.beta_delta[0] < g.delta[0]


@settings(max_examples=40, deadline=None)
@given(
    strike=st.floats(20_000, 100_000),
    days=st.floats(1.0, 200.0),
    iv=st.floats(0.2, 1.5),
    loading=st.floats(0.2, 2.5),
    call=st.booleans(),
)
def test_linear_alt_candidate_projects_through_the_books_loadings(
    strike: float, days: float, iv: float, loading: float, call: bool
) -> None:
    """A linear SOL option on a BTC factor: its Greeks are what it adds to the exposure."""
    sol = chain(
        asset="SOL",
        forward=150.0,
        days=(days,),
        strikes=(strike / 400.0,),
        iv=iv,
        inverse=False,
    )
    row = int(np.flatnonzero(sol.is_call == call)[0])
    prices = {"BTC": BTC_PRICE, "SOL": 150.0}
    loadings = {"SOL": [loading]}
    base = [Position(spot("SOL"), 100.0), Position(spot("BTC"), 1.0)]
    extra = [Position(option_instrument(sol, row), 2.0)]
    _, _, e_iv = book_exposure(base + extra, prices, loadings=loadings, iv=iv)
    _, _, e0_iv = book_exposure(base, prices, loadings=loadings, iv=iv)
    g = contract_greeks(sol, np.array([row]), frame_of(e0_iv), "BTC", NOW)
    scale = max(1.0, abs(e_iv.beta_delta_usd[0]))
    assert 2 * g.beta_delta_usd[0, 0] == pytest.approx(
        e_iv.beta_delta_usd[0] - e0_iv.beta_delta_usd[0], abs=1e-9 * scale
    )
    # USD per 1%: float noise on a tiny gamma is judged against a dollar, not against itself.
    gamma_scale = max(1.0, abs(e_iv.gamma_usd_per_pct[0]))
    assert 2 * g.gamma_usd_per_pct[0] == pytest.approx(
        e_iv.gamma_usd_per_pct[0] - e0_iv.gamma_usd_per_pct[0], abs=1e-9 * gamma_scale
    )
    assert g.vega_usd[0] == 0.0  # SOL vega is not the BTC factor's


def test_cost_is_half_spread_plus_fee_with_deribits_premium_cap() -> None:
    c = chain(relative_spread=0.04)
    atm = c.row_of(option_symbol("BTC", 30, 50_000, True))
    wing = c.row_of(option_symbol("BTC", 7, 60_000, True))
    g = contract_greeks(c, np.array([atm, wing]), FRAME, "BTC", NOW)
    premium = c.mark[[atm, wing]] * BTC_PRICE
    assert g.premium_usd == pytest.approx(premium)
    assert g.half_spread_usd == pytest.approx(0.02 * premium)
    # ATM: 0.03% of 50k = 15 USD, below 12.5% of its premium; the far wing hits the cap.
    assert g.fee_usd[0] == pytest.approx(0.0003 * BTC_PRICE)
    assert g.fee_usd[1] == pytest.approx(0.125 * premium[1])
    assert g.cost_usd == pytest.approx(g.half_spread_usd + g.fee_usd)


def test_book_vega_by_asset_sums_to_the_exposures_vega() -> None:
    c = chain()
    eth = chain(asset="ETH", forward=2_500.0, strikes=(2_500,))
    positions = [
        Position(option_instrument(c, 3), -4.0),
        Position(option_instrument(c, 17), -2.0),
        Position(option_instrument(eth, 1), 10.0),
    ]
    book, quotes, result = book_exposure(
        positions, {"BTC": BTC_PRICE, "ETH": 2_500.0}, loadings={"ETH": [1.1]}
    )
    by_asset = book_vega_by_asset(book, quotes, NOW)
    assert by_asset.sum() == pytest.approx(result.vega_usd)
    assert by_asset[book.assets.index("BTC")] < 0 < by_asset[book.assets.index("ETH")]


def test_days_to_expiry_are_calendar_days() -> None:
    c = chain(days=(7.0,))
    g = contract_greeks(c, np.arange(len(c)), FRAME, "BTC", NOW)
    assert g.days_to_expiry == pytest.approx(np.full(len(c), 7.0))
    assert (c.expiry_ms[0] - NOW) / MS_PER_DAY == pytest.approx(7.0)
