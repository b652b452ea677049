"""Hedge policy: bands, targets, sizing in venue units, lot rounding, cooldown, slicing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hedger.config import Band, BandKind, Factor, HedgeInstrument, HedgePolicy, Target
from hedger.core.exposure import Exposure, Position, Quotes, build_book
from hedger.core.exposure import exposure as compute_exposure
from hedger.core.factors import factor_indices, prior_loadings
from hedger.core.instruments import Instrument, Kind
from hedger.core.policy import (
    Action,
    BandEdges,
    HedgeMarket,
    PolicyResult,
    band_edges,
    band_half_width,
    decide,
    round_to_lot,
    whalley_wilmott_half_width,
)

NOW = 1_795_000_000_000
BTC_PRICE = 50_000.0
ETH_PRICE = 2_500.0
# Deribit BTC-PERPETUAL: ccxt amount in USD, min_trade_amount = tick of amount = 10.
BTC_PERP = HedgeMarket("BTC-PERPETUAL", inverse=True, amount_step=10.0, min_amount=10.0)
BTC_LINEAR = HedgeMarket("BTC_USDC-PERPETUAL", inverse=False, amount_step=0.001, min_amount=0.001)
ETH_LINEAR = HedgeMarket("ETH_USDC-PERPETUAL", inverse=False, amount_step=0.01, min_amount=0.01)
NO_COOLDOWN = HedgePolicy(cooldown=0.0)


def _factor(
    asset: str = "BTC",
    band: Band | None = None,
    target: Target | None = None,
) -> Factor:
    return Factor(
        asset=asset,
        hedge=HedgeInstrument(venue="deribit", symbol=f"{asset}-PERPETUAL"),
        band=band or Band(half_width=0.1),
        target=target or Target(),
    )


def _exposure(
    beta_delta: list[float],
    prices: list[float] | None = None,
    gamma_usd: list[float] | None = None,
    nav_usd: float = 1_000_000.0,
    factors: tuple[str, ...] = ("BTC",),
) -> Exposure:
    """An Exposure with only the fields the policy reads; beta_delta in factor units."""
    price = np.array(prices or [BTC_PRICE, ETH_PRICE][: len(factors)], dtype=np.float64)
    empty = np.zeros(0)
    return Exposure(
        factors=factors,
        assets=factors,
        delta_usd=empty,
        value_usd=empty,
        option_price_usd=empty,
        option_delta=empty,
        option_forward=empty,
        option_size=empty,
        option_inverse=np.zeros(0, dtype=np.bool_),
        asset_price=price,
        asset_delta_usd=np.array(beta_delta) * price,
        asset_cash_gamma_usd=np.zeros(len(factors)),
        loadings=np.eye(len(factors)),
        factor_price=price,
        beta_delta_usd=np.array(beta_delta) * price,
        factor_gamma_usd=np.diag(gamma_usd or [0.0] * len(factors)),
        vega_usd=0.0,
        theta_usd=0.0,
        nav_usd=nav_usd,
    )


def _decide_btc(
    beta_delta: float,
    factor: Factor | None = None,
    market: HedgeMarket = BTC_PERP,
    policy: HedgePolicy = NO_COOLDOWN,
    *,
    exposure: Exposure | None = None,
    last_hedge_ms: dict[str, int] | None = None,
    round_trip_cost: dict[str, float] | None = None,
) -> PolicyResult:
    return decide(
        exposure or _exposure([beta_delta]),
        [factor or _factor()],
        {"BTC": market},
        policy,
        NOW,
        last_hedge_ms=last_hedge_ms,
        round_trip_cost=round_trip_cost,
    )


# --- bands --------------------------------------------------------------------------------------


def test_inside_absolute_band_holds_with_a_reason() -> None:
    result = _decide_btc(0.09)
    assert result.intents == ()
    (decision,) = result.decisions
    assert decision.action is Action.HOLD
    assert decision.reason == "inside band"
    assert decision.deviation == pytest.approx(0.09)
    assert decision.band_half_width == pytest.approx(0.1)


def test_outside_absolute_band_sells_back_to_target_in_usd_amount() -> None:
    result = _decide_btc(0.3)
    (intent,) = result.intents
    assert intent.side == "sell"
    assert intent.symbol == "BTC-PERPETUAL"
    assert intent.amount == pytest.approx(15_000.0)  # 0.3 BTC * 50k, in USD face
    assert intent.notional_usd == pytest.approx(15_000.0)
    assert intent.deviation == pytest.approx(0.3)
    assert intent.band_half_width == pytest.approx(0.1)
    assert intent.target == 0.0
    assert result.decisions[0].action is Action.HEDGE


def test_short_exposure_buys() -> None:
    (intent,) = _decide_btc(-0.3).intents
    assert intent.side == "buy"
    assert intent.amount == pytest.approx(15_000.0)


def test_usd_band_is_converted_at_the_factor_price() -> None:
    factor = _factor(band=Band(half_width=5_000.0, unit="usd"))  # 0.1 BTC at 50k
    assert _decide_btc(0.099, factor).decisions[0].action is Action.HOLD
    decision = _decide_btc(0.101, factor).decisions[0]
    assert decision.action is Action.HEDGE
    assert decision.band_half_width == pytest.approx(0.1)


def test_relative_band_is_a_fraction_of_nav_in_factor_units() -> None:
    factor = _factor(band=Band(kind=BandKind.RELATIVE, half_width=0.01))
    # 1% of 1M NAV = 10k USD = 0.2 BTC
    assert _decide_btc(0.19, factor).decisions[0].action is Action.HOLD
    decision = _decide_btc(0.21, factor).decisions[0]
    assert decision.action is Action.HEDGE
    assert decision.band_half_width == pytest.approx(0.2)


def test_whalley_wilmott_band_matches_the_formula_and_its_floor() -> None:
    band = Band(kind=BandKind.WHALLEY_WILMOTT, risk_aversion=1e-4, min_half_width=0.01)
    price, gamma_per_usd, cost = 50_000.0, 2e-4, 6e-4
    expected = (1.5 * cost * price * gamma_per_usd**2 / 1e-4) ** (1 / 3)
    assert expected > 0.01
    assert band_half_width(band, price, 1e6, gamma_per_usd, cost) == pytest.approx(expected)
    assert band_half_width(band, price, 1e6, 0.0, cost) == 0.01  # no gamma: the floor


def test_whalley_wilmott_band_in_decide_uses_the_books_factor_gamma() -> None:
    band = Band(kind=BandKind.WHALLEY_WILMOTT, risk_aversion=1e-4)
    gamma_per_usd = 2e-4
    book = _exposure([0.0], gamma_usd=[gamma_per_usd * BTC_PRICE**2])
    result = _decide_btc(0.0, _factor(band=band), exposure=book, round_trip_cost={"BTC": 6e-4})
    expected = whalley_wilmott_half_width(BTC_PRICE, gamma_per_usd, 6e-4, 1e-4)
    assert result.decisions[0].band_half_width == pytest.approx(expected)


@given(
    gamma=st.floats(1e-9, 1e-2),
    cost=st.floats(1e-5, 1e-2),
    scale=st.floats(1.1, 100.0),
)
def test_whalley_wilmott_band_grows_as_gamma_two_thirds_and_cost_one_third(
    gamma: float, cost: float, scale: float
) -> None:
    base = whalley_wilmott_half_width(BTC_PRICE, gamma, cost, 1e-4)
    assert whalley_wilmott_half_width(BTC_PRICE, gamma * scale, cost, 1e-4) == pytest.approx(
        base * scale ** (2 / 3), rel=1e-9
    )
    assert whalley_wilmott_half_width(BTC_PRICE, gamma, cost * scale, 1e-4) == pytest.approx(
        base * scale ** (1 / 3), rel=1e-9
    )
    # Sign of gamma does not matter: the band is symmetric in Gamma**2.
    assert whalley_wilmott_half_width(BTC_PRICE, -gamma, cost, 1e-4) == pytest.approx(base)


# --- targets and rebalance modes ----------------------------------------------------------------


def test_rebalance_to_target_versus_band_edge() -> None:
    to_target = _decide_btc(0.5, policy=HedgePolicy(cooldown=0.0, rebalance_to="target"))
    to_edge = _decide_btc(0.5, policy=HedgePolicy(cooldown=0.0, rebalance_to="edge"))
    assert to_target.intents[0].amount == pytest.approx(25_000.0)  # 0.5 BTC
    assert to_edge.intents[0].amount == pytest.approx(20_000.0)  # 0.5 - 0.1 BTC
    below = _decide_btc(-0.5, policy=HedgePolicy(cooldown=0.0, rebalance_to="edge"))
    assert below.intents[0].side == "buy"
    assert below.intents[0].amount == pytest.approx(20_000.0)


def test_beta_target_is_a_fraction_of_nav() -> None:
    factor = _factor(target=Target(kind="beta", value=0.5))
    # 0.5 * 100k NAV = 50k USD = 1 BTC target; beta-delta 1.4 BTC -> sell 0.4 BTC
    result = _decide_btc(1.4, factor, exposure=_exposure([1.4], nav_usd=100_000.0))
    (intent,) = result.intents
    assert intent.target == pytest.approx(1.0)
    assert intent.side == "sell"
    assert intent.amount == pytest.approx(20_000.0)


def test_beta_delta_target_is_in_factor_units() -> None:
    factor = _factor(target=Target(kind="beta_delta", value=-2.0))
    (intent,) = _decide_btc(-1.0, factor).intents
    assert intent.target == -2.0
    assert intent.side == "sell"
    assert intent.amount == pytest.approx(50_000.0)  # 1 BTC


# --- several factors ----------------------------------------------------------------------------


def test_two_factors_are_decided_independently() -> None:
    book = _exposure([0.3, -4.0], factors=("BTC", "ETH"))
    factors = [_factor("BTC"), _factor("ETH", band=Band(half_width=1.0))]
    markets = {"BTC": BTC_PERP, "ETH": ETH_LINEAR}
    result = decide(book, factors, markets, NO_COOLDOWN, NOW)
    by_factor = {i.factor: i for i in result.intents}
    assert by_factor["BTC"].side == "sell"
    assert by_factor["BTC"].amount == pytest.approx(15_000.0)
    assert by_factor["ETH"].side == "buy"
    assert by_factor["ETH"].symbol == "ETH_USDC-PERPETUAL"
    assert by_factor["ETH"].amount == pytest.approx(4.0)  # coin, linear
    assert by_factor["ETH"].notional_usd == pytest.approx(10_000.0)

    eth_book = _exposure([0.3, -0.5], factors=("BTC", "ETH"))
    eth_inside = decide(eth_book, factors, markets, NO_COOLDOWN, NOW)
    assert [i.factor for i in eth_inside.intents] == ["BTC"]
    assert [d.action for d in eth_inside.decisions] == [Action.HEDGE, Action.HOLD]


def test_factors_match_exposure_by_name_not_position() -> None:
    book = _exposure([0.3, -4.0], factors=("BTC", "ETH"))
    factors = [_factor("ETH", band=Band(half_width=1.0)), _factor("BTC")]
    result = decide(book, factors, {"BTC": BTC_PERP, "ETH": ETH_LINEAR}, NO_COOLDOWN, NOW)
    assert [(i.factor, i.side) for i in result.intents] == [("ETH", "buy"), ("BTC", "sell")]


def test_missing_market_metadata_or_factor_is_skipped_with_a_reason() -> None:
    result = decide(_exposure([0.3]), [_factor("BTC"), _factor("ETH")], {}, NO_COOLDOWN, NOW)
    assert result.intents == ()
    assert [(d.action, d.reason) for d in result.decisions] == [
        (Action.SKIP, "no hedge market metadata"),
        (Action.SKIP, "factor not in exposure"),
    ]


def test_hedge_position_already_in_the_exposure_is_not_counted_twice() -> None:
    spot = Instrument("BTC", Kind.SPOT, "BTC")
    perp = Instrument("BTC-PERPETUAL", Kind.PERP, "BTC", contract_size=10.0, inverse=True)
    # 1 BTC spot, already hedged by 2,000 contracts * 10 USD = 20k USD = 0.4 BTC short.
    book = build_book([Position(spot, 1.0), Position(perp, -2_000.0, BTC_PRICE)], ("BTC",))
    loadings, _ = prior_loadings(book.assets, ("BTC",), {})
    prices = np.array([BTC_PRICE])
    quotes = Quotes(prices[book.asset_of], prices[book.asset_of], np.full(2, np.nan), prices)
    real = compute_exposure(book, quotes, loadings, factor_indices(book.assets, ("BTC",)), NOW)
    (intent,) = _decide_btc(0.0, exposure=real).intents
    assert intent.deviation == pytest.approx(0.6)
    assert intent.amount == pytest.approx(30_000.0)  # the remaining 0.6 BTC only


# --- sizing, rounding, minimum, slicing ---------------------------------------------------------


def test_inverse_and_linear_sizing_of_the_same_deviation() -> None:
    (inverse,) = _decide_btc(0.3, market=BTC_PERP).intents
    (linear,) = _decide_btc(0.3, market=BTC_LINEAR).intents
    assert inverse.amount == pytest.approx(15_000.0)  # USD
    assert linear.amount == pytest.approx(0.3)  # BTC
    assert inverse.notional_usd == pytest.approx(linear.notional_usd)


def test_amount_size_scales_venues_that_count_contracts() -> None:
    market = HedgeMarket(
        "BTC-LINEAR-CT", inverse=False, amount_step=1.0, min_amount=1.0, amount_size=0.01
    )
    (intent,) = _decide_btc(0.3, market=market).intents
    assert intent.amount == 30.0
    assert intent.notional_usd == pytest.approx(15_000.0)


def test_amounts_round_toward_zero_to_the_lot() -> None:
    # 0.12345 BTC * 50k = 6,172.5 USD -> 6,170; linear 0.12345 -> 0.123
    (inverse,) = _decide_btc(0.12345).intents
    (linear,) = _decide_btc(0.12345, market=BTC_LINEAR).intents
    assert inverse.amount == 6_170.0
    assert linear.amount == 0.123
    (short,) = _decide_btc(-0.12345).intents
    assert (short.side, short.amount) == ("buy", 6_170.0)


def test_float_noise_does_not_lose_a_whole_lot() -> None:
    assert round_to_lot(0.1 + 0.2, 0.1) == 0.3  # 0.30000000000000004 -> 3 lots, printed 0.3
    assert round_to_lot(2.9999999999999996, 1.0) == 3.0
    assert round_to_lot(-29.999999999999996, 10.0) == -30.0


@given(
    amount=st.floats(-1e7, 1e7, allow_nan=False),
    step=st.sampled_from([10.0, 1.0, 0.1, 0.25, 0.001, 1e-5]),
)
def test_rounding_never_goes_past_the_aim(amount: float, step: float) -> None:
    rounded = round_to_lot(amount, step)
    slack = 1e-9 * step + 1e-12 * abs(amount)  # float noise only, far below a lot
    assert abs(rounded) <= abs(amount) + slack
    assert abs(amount) - abs(rounded) < step + slack
    assert rounded == 0 or math.copysign(1, rounded) == math.copysign(1, amount)
    lots = rounded / step
    assert abs(lots - round(lots)) <= 1e-9 * max(1.0, abs(lots))


def test_below_min_size_is_skipped_with_the_numbers() -> None:
    tight = _factor(band=Band(half_width=1e-6))
    result = _decide_btc(0.00015, tight)  # 7.5 USD < 10 USD minimum
    assert result.intents == ()
    (decision,) = result.decisions
    assert decision.action is Action.SKIP
    assert decision.reason.startswith("below min size")
    assert "7.5" in decision.reason


def test_min_amount_above_the_step_is_enforced() -> None:
    market = HedgeMarket("X", inverse=False, amount_step=0.001, min_amount=0.5)
    assert _decide_btc(0.3, market=market).decisions[0].reason.startswith("below min size")
    assert _decide_btc(0.6, market=market).intents[0].amount == pytest.approx(0.6)


def test_large_hedges_are_sliced_at_max_order_contracts() -> None:
    policy = HedgePolicy(cooldown=0.0, max_order_amount=10_000.0)
    intents = _decide_btc(0.5, policy=policy).intents  # 25,000 USD
    assert [i.amount for i in intents] == [10_000.0, 10_000.0, 5_000.0]
    assert [i.leg for i in intents] == [0, 1, 2]
    assert {i.side for i in intents} == {"sell"}
    assert sum(i.notional_usd for i in intents) == pytest.approx(25_000.0)


def test_slice_remainder_below_min_size_is_dropped_not_rounded_up() -> None:
    market = HedgeMarket("X", inverse=False, amount_step=0.001, min_amount=0.01)
    policy = HedgePolicy(cooldown=0.0, max_order_amount=0.1)
    intents = _decide_btc(0.205, market=market, policy=policy).intents
    assert [i.amount for i in intents] == [0.1, 0.1]


def test_max_order_below_min_size_skips() -> None:
    policy = HedgePolicy(cooldown=0.0, max_order_amount=5.0)
    result = _decide_btc(0.5, policy=policy)
    assert result.intents == ()
    assert "max_order_amount" in result.decisions[0].reason


# --- cooldown -----------------------------------------------------------------------------------


def test_cooldown_blocks_a_new_hedge_of_the_same_factor() -> None:
    policy = HedgePolicy(cooldown=30.0)
    recent = _decide_btc(0.3, policy=policy, last_hedge_ms={"BTC": NOW - 10_000})
    assert recent.intents == ()
    assert recent.decisions[0].action is Action.SKIP
    assert recent.decisions[0].reason.startswith("cooldown")
    later = _decide_btc(0.3, policy=policy, last_hedge_ms={"BTC": NOW - 30_000})
    assert len(later.intents) == 1
    other_factor = _decide_btc(0.3, policy=policy, last_hedge_ms={"ETH": NOW})
    assert len(other_factor.intents) == 1


def test_inside_band_reports_hold_even_during_cooldown() -> None:
    policy = HedgePolicy(cooldown=30.0)
    result = _decide_btc(0.05, policy=policy, last_hedge_ms={"BTC": NOW})
    assert result.decisions[0].action is Action.HOLD


# --- bad numbers --------------------------------------------------------------------------------

NAN, INF = math.nan, math.inf
WW = Band(kind=BandKind.WHALLEY_WILMOTT, risk_aversion=1e-4)
RELATIVE = Band(kind=BandKind.RELATIVE, half_width=0.01)


@pytest.mark.parametrize(
    ("book", "factor", "cost", "named"),
    [
        (_exposure([0.3], prices=[NAN]), _factor(), None, "factor_price"),
        (_exposure([0.3], prices=[INF]), _factor(), None, "factor_price"),
        (_exposure([0.3], prices=[0.0]), _factor(), None, "factor_price"),
        (_exposure([NAN]), _factor(), None, "beta_delta_usd"),
        (_exposure([INF]), _factor(), None, "beta_delta_usd"),
        (_exposure([0.3], gamma_usd=[NAN]), _factor(), None, "factor_gamma_usd"),
        (_exposure([0.3], nav_usd=NAN), _factor(band=RELATIVE), None, "nav_usd"),
        (_exposure([0.3], nav_usd=-5.0), _factor(band=RELATIVE), None, "nav_usd"),
        (_exposure([0.3], nav_usd=NAN), _factor(target=Target(value=0.5)), None, "nav_usd"),
        (_exposure([0.3], nav_usd=0.0), _factor(target=Target(value=0.5)), None, "nav_usd"),
        (_exposure([0.3]), _factor(band=WW), None, "round_trip_cost"),
        (_exposure([0.3]), _factor(band=WW), {"BTC": NAN}, "round_trip_cost"),
        (_exposure([0.3]), _factor(band=WW), {"BTC": INF}, "round_trip_cost"),
        (_exposure([0.3]), _factor(band=WW), {"BTC": -0.001}, "round_trip_cost"),
    ],
)
def test_bad_numbers_never_trade_and_say_which(
    book: Exposure, factor: Factor, cost: dict[str, float] | None, named: str
) -> None:
    result = _decide_btc(0.0, factor, exposure=book, round_trip_cost=cost)
    assert result.intents == ()
    (decision,) = result.decisions
    assert decision.action is Action.SKIP
    assert decision.reason.startswith("bad input")
    assert named in decision.reason


def test_zero_beta_target_does_not_need_a_valid_nav() -> None:
    # NAV only scales a beta target and a relative band; neither is used here.
    result = _decide_btc(0.3, exposure=_exposure([0.3], nav_usd=NAN))
    assert len(result.intents) == 1


def test_hedge_market_rejects_a_bad_lot() -> None:
    with pytest.raises(ValueError, match="amount_step"):
        HedgeMarket("X", inverse=True, amount_step=0.0, min_amount=10.0)
    with pytest.raises(ValueError, match="min_amount"):
        HedgeMarket("X", inverse=True, amount_step=10.0, min_amount=NAN)


# --- band controls: asymmetric bands, hedge ratio, hysteresis -----------------------------------


def test_asymmetric_band_holds_below_what_it_trades_above() -> None:
    factor = _factor(band=Band(half_width=0.1, lower_half_width=0.3))
    above = _decide_btc(0.2, factor)
    assert above.decisions[0].action is Action.HEDGE
    assert above.decisions[0].band_half_width == pytest.approx(0.1)
    below = _decide_btc(-0.2, factor)  # the same distance on the wide side
    assert below.decisions[0].action is Action.HOLD
    assert below.decisions[0].band_half_width == pytest.approx(0.3)  # the side's width
    far_below = _decide_btc(-0.35, factor, policy=HedgePolicy(cooldown=0.0, rebalance_to="edge"))
    (intent,) = far_below.intents
    assert intent.side == "buy"
    assert intent.amount == pytest.approx(2_500.0)  # back to the lower edge: 0.05 BTC
    assert "outside band -0.3/+0.1" in intent.reason
    assert band_edges(factor.band.to_core(), BTC_PRICE, 1e6, 0.0, None) == BandEdges(0.3, 0.1)


def test_the_production_pattern_trade_outside_095_103_return_to_098_100() -> None:
    """Beta target 1 on a 1M NAV at 50k: 20 BTC. Outside 0.95-1.03 of it, trade back to
    0.98-1.00."""
    band = Band(
        kind=BandKind.RELATIVE,
        half_width=0.03,
        lower_half_width=0.05,
        inner_half_width=0.0,
        inner_lower_half_width=0.02,
    )
    factor = _factor(band=band, target=Target(kind="beta", value=1.0))

    def at(beta: float) -> PolicyResult:
        return _decide_btc(0.0, factor, exposure=_exposure([beta * 20.0]))

    assert at(0.96).intents == () and at(1.02).intents == ()
    (buy,) = at(0.94).intents
    assert buy.side == "buy"
    assert buy.amount == pytest.approx(40_000.0)  # 0.94 -> 0.98
    assert "rebalance to inner band -0.4" in buy.reason
    (sell,) = at(1.035).intents
    assert sell.side == "sell"
    assert sell.amount == pytest.approx(35_000.0)  # 1.035 -> 1.00


def _trades_on_a_path(factor: Factor, path: list[float], policy: HedgePolicy) -> int:
    """Drive the policy along ``path`` (the book's beta-delta before any hedge) with the
    hedge's own position carried over, as the engine would: number of trades."""
    hedge_btc, trades = 0.0, 0
    for unhedged in path:
        result = _decide_btc(unhedged + hedge_btc, factor, market=BTC_LINEAR, policy=policy)
        for intent in result.intents:
            hedge_btc += intent.amount if intent.side == "buy" else -intent.amount
            trades += 1
    return trades


def test_hysteresis_does_not_ping_pong_on_one_tick_moves_past_the_edge() -> None:
    # The book's beta-delta leaves the band, then creeps on by one 0.002 BTC tick at a time
    # (with a tick back every other step): 0.11, 0.111, 0.115, 0.115, 0.119, ...
    path = [0.0] + [0.11 + 0.002 * i - 0.003 * (i % 2) for i in range(40)]
    edge = HedgePolicy(cooldown=0.0, rebalance_to="edge")
    plain = _factor(band=Band(half_width=0.1))
    with_inner = _factor(band=Band(half_width=0.1, inner_half_width=0.05))
    # Back to the edge, out again at the next tick: a trade on every other tick.
    assert _trades_on_a_path(plain, path, edge) >= 19
    # Back to the inner edge: 0.05 BTC of room before the next trade.
    assert _trades_on_a_path(with_inner, path, edge) == 2
    (intent,) = _decide_btc(0.11, with_inner, market=BTC_LINEAR, policy=edge).intents
    assert intent.amount == pytest.approx(0.06)  # to the inner band's edge, not the target


@given(ratio=st.floats(0.0, 1.5), deviation=st.floats(0.11, 5.0))
def test_hedge_ratio_sends_that_share_of_the_trade(ratio: float, deviation: float) -> None:
    factor = Factor(
        asset="BTC",
        hedge=HedgeInstrument(venue="deribit", symbol="BTC_USDC-PERPETUAL"),
        band=Band(half_width=0.1),
        hedge_ratio=ratio,
    )
    result = _decide_btc(deviation, factor, market=BTC_LINEAR)
    expected = round_to_lot(ratio * deviation, 0.001)
    if expected < 0.001:
        assert result.intents == ()
        assert result.decisions[0].reason.startswith("below min size")
        return
    (intent,) = result.intents
    assert intent.side == "sell"
    assert intent.amount == pytest.approx(expected)
    if ratio != 1.0:
        assert f"hedge ratio {ratio:.0%}" in intent.reason


def test_hedge_ratio_over_one_overshoots_the_target() -> None:
    factor = Factor(
        asset="BTC",
        hedge=HedgeInstrument(venue="deribit", symbol="BTC-PERPETUAL"),
        band=Band(half_width=0.1),
        hedge_ratio=1.2,
    )
    (intent,) = _decide_btc(0.5, factor).intents
    assert intent.amount == pytest.approx(30_000.0)  # 0.6 BTC for a 0.5 BTC deviation
    half = factor.model_copy(update={"hedge_ratio": 0.5})
    assert _decide_btc(0.5, half).intents[0].amount == pytest.approx(12_500.0)
