"""Protective puts: bought at the configured tenor and moneyness against a share of the
long beta-delta, held between rolls, rolled before expiry and on delta drift."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from hedger.core.exposure import Position
from hedger.core.instruments import Instrument, Kind
from hedger.core.option_candidates import OptionChain, contract_greeks, option_candidates
from hedger.core.option_hedge import (
    OptionHedgeInputs,
    OptionHedgeParams,
    decide_option_hedges,
    option_key,
)
from hedger.core.option_legs import OptionDecision
from hedger.core.params import (
    Band,
    CandidateFilter,
    Factor,
    HedgeMode,
    HedgePolicy,
    OptionHedge,
    ProtectivePut,
)
from hedger.core.policy import Action, HedgeMarket
from hedger.core.protective_put import choose_put

from .chains import BTC_PRICE, NOW, book_exposure, chain, frame_of, option_instrument, spot
from .chains import option_symbol as sym

PERP = HedgeMarket("BTC-PERPETUAL", inverse=True, amount_step=10.0, min_amount=10.0)
PUTS = ProtectivePut(coverage=0.5, moneyness=0.9, tenor_days=30.0, roll_days=5.0, delta_drift=0.25)
FILTER = CandidateFilter(min_days_to_expiry=2.0, max_days_to_expiry=90.0, min_abs_delta=0.01)


def _decide(
    c: OptionChain,
    spot_btc: float,
    perp_usd: float = 0.0,
    params: ProtectivePut = PUTS,
    last_hedge_ms: dict[str, int] | None = None,
) -> OptionDecision:
    """The book: ``spot_btc`` coins, the hedge's puts (the chain's hedge amounts, their coin
    premium already paid out of the balance) and a perp short of ``perp_usd`` face."""
    held = c.held()
    positions = [Position(spot("BTC"), spot_btc)]
    rows = np.flatnonzero(held)
    if len(rows):
        frame = frame_of(book_exposure(positions, {"BTC": BTC_PRICE})[2])
        g = contract_greeks(c, rows, frame, "BTC", NOW)
        premium_coin = float(held[rows] @ g.price_usd) / BTC_PRICE
        positions[0] = Position(spot("BTC"), spot_btc - premium_coin)
        positions += [Position(option_instrument(c, int(r)), float(held[r])) for r in rows]
    if perp_usd:
        perp = Instrument("BTC-PERPETUAL", Kind.PERP, "BTC", inverse=True)
        positions.append(Position(perp, perp_usd, BTC_PRICE))
    book, quotes, result = book_exposure(positions, {"BTC": BTC_PRICE})
    inputs = OptionHedgeInputs(
        exposure=result,
        book=book,
        quotes=quotes,
        chain=c,
        hedge_amount=np.array([perp_usd]),
        round_trip_cost={"BTC": 0.0005},
        now_ms=NOW,
    )
    hedge = OptionHedge(mode=HedgeMode.PROTECTIVE_PUT, candidates=FILTER, protective_put=params)
    (decision,) = decide_option_hedges(
        inputs,
        [Factor("BTC", band=Band(half_width=0.1))],
        {"BTC": PERP},
        HedgePolicy(cooldown=0.0),
        OptionHedgeParams({"BTC": hedge}),
        last_hedge_ms or {},
    )
    return decision


def _put_delta(c: OptionChain, symbol: str) -> float:
    frame = frame_of(book_exposure([Position(spot("BTC"), 1.0)], {"BTC": BTC_PRICE})[2])
    g = contract_greeks(c, np.array([c.row_of(symbol)]), frame, "BTC", NOW)
    return float(g.beta_delta[0])


def test_buys_puts_at_the_tenor_and_moneyness_against_the_covered_share() -> None:
    c = chain()
    decision = _decide(c, spot_btc=10.0)
    assert decision.mode is HedgeMode.PROTECTIVE_PUT
    assert decision.action is Action.HEDGE
    assert decision.reason == "open: no puts held, aim -5"
    (leg,) = decision.legs
    chosen = sym("BTC", 30, 45_000, False)  # 30 days, strike 0.9 x 50,000
    assert (leg.symbol, leg.side) == (chosen, "buy")
    per_contract = _put_delta(c, chosen)
    aim = -0.5 * 10.0
    # Rounded toward zero to the 0.1 lot: never more protection than asked, at most a lot less.
    assert aim <= leg.amount * per_contract < aim - 0.1 * per_contract
    assert decision.after is not None
    assert decision.after.beta_delta == pytest.approx(10.0 + leg.amount * per_contract)


def test_the_perp_and_the_hedges_own_options_are_not_protected() -> None:
    """A perp short already hedging the book does not shrink the floor."""
    c = chain()
    with_perp = _decide(c, spot_btc=10.0, perp_usd=-400_000.0)  # 8 BTC short on the perp
    without = _decide(c, spot_btc=10.0)
    assert [leg.amount for leg in with_perp.legs] == [leg.amount for leg in without.legs]


def test_held_puts_near_the_aim_are_held() -> None:
    chosen = sym("BTC", 30, 45_000, False)
    c = chain()
    qty = round(-5.0 / _put_delta(c, chosen), 1)
    decision = _decide(chain(held={chosen: qty}), spot_btc=10.0)
    assert decision.action is Action.HOLD
    assert decision.legs == ()
    assert "hold the aim -5" in decision.reason


def test_a_put_near_expiry_is_rolled_to_the_tenor() -> None:
    expiring = sym("BTC", 7, 45_000, False)
    roll_soon = ProtectivePut(coverage=0.5, moneyness=0.9, tenor_days=30.0, roll_days=8.0)
    decision = _decide(chain(held={expiring: 20.0}), spot_btc=10.0, params=roll_soon)
    assert decision.action is Action.HEDGE
    assert decision.reason.startswith(f"roll: {expiring} expires in 7 d < roll_days 8")
    sell, buy = decision.legs
    assert (sell.symbol, sell.side, sell.amount, sell.leg) == (expiring, "sell", 20.0, 0)
    assert (buy.symbol, buy.side, buy.leg) == (sym("BTC", 30, 45_000, False), "buy", 1)


def test_delta_drift_trades_the_chosen_put_by_the_difference_only() -> None:
    chosen = sym("BTC", 30, 45_000, False)
    c = chain()
    qty = round(-5.0 / _put_delta(c, chosen), 1)  # covers 10 BTC at 50%
    decision = _decide(chain(held={chosen: qty}), spot_btc=20.0)  # the holdings doubled
    assert decision.reason.startswith("delta drift")
    (leg,) = decision.legs
    assert (leg.symbol, leg.side) == (chosen, "buy")
    assert leg.amount == pytest.approx(qty, abs=0.2)  # the difference, not a new full set


def test_without_a_long_book_the_puts_are_sold() -> None:
    chosen = sym("BTC", 30, 45_000, False)
    decision = _decide(chain(held={chosen: 10.0}), spot_btc=-3.0)
    (leg,) = decision.legs
    assert (leg.symbol, leg.side, leg.amount) == (chosen, "sell", 10.0)
    flat = _decide(chain(), spot_btc=-3.0)
    assert flat.action is Action.HOLD and flat.legs == ()


def test_no_put_in_the_window_is_a_skip_with_what_was_excluded() -> None:
    c = chain(days=(120.0,))
    decision = _decide(c, spot_btc=10.0)
    assert decision.action is Action.SKIP
    assert "no put candidate" in decision.reason and "expiry window" in decision.reason


def test_no_new_decision_while_the_last_legs_are_worked() -> None:
    recent = {option_key("BTC"): NOW - 10_000}
    decision = _decide(chain(), spot_btc=10.0, last_hedge_ms=recent)
    assert decision.action is Action.SKIP
    assert decision.reason.startswith("option legs still worked")
    later = _decide(chain(), spot_btc=10.0, last_hedge_ms={option_key("BTC"): NOW - 61_000})
    assert later.action is Action.HEDGE


def test_a_drift_the_perps_band_absorbs_does_not_trade_options() -> None:
    """Small aims must not ping-pong: a put mismatch inside the factor's band (0.1 BTC) is
    left to the perp, even when it is more than ``delta_drift`` of the aim."""
    chosen = sym("BTC", 30, 45_000, False)
    qty = round(-0.2 / _put_delta(chain(), chosen), 1)  # 0.7 puts: -0.19 BTC
    held = qty * _put_delta(chain(), chosen)
    aim = -0.5 * 0.55
    assert 0.25 * abs(aim) < abs(held - aim) < 0.1  # beyond the drift, inside the band
    decision = _decide(chain(held={chosen: qty}), spot_btc=0.55)
    assert decision.action is Action.HOLD
    far = _decide(chain(held={chosen: qty}), spot_btc=0.9)  # aim -0.45: 0.25 apart
    assert far.reason.startswith("delta drift")


def test_a_held_strike_is_kept_until_another_is_clearly_nearer() -> None:
    # Forward 47,400: 45k is 0.949 of it, 50k is 1.055; the aim is at-the-money.
    c = chain(forward=47_400.0, held={sym("BTC", 30, 50_000, False): 5.0})
    frame = frame_of(book_exposure([Position(spot("BTC"), 1.0)], {"BTC": 47_400.0})[2])
    candidates = option_candidates(c, FILTER, frame, "BTC", NOW, option_type="put")
    atm = ProtectivePut(moneyness=1.0, tenor_days=30.0, restrike_moneyness=0.05)
    held = np.array([c.row_of(sym("BTC", 30, 50_000, False))])

    def chosen(params: ProtectivePut, rows: NDArray[np.intp] | None) -> str:
        i = choose_put(candidates, c, params, rows)
        assert i is not None
        return candidates.greeks.symbols[i]

    assert chosen(atm, None) == sym("BTC", 30, 45_000, False)  # nearest, fresh
    assert chosen(atm, held) == sym("BTC", 30, 50_000, False)  # held, barely farther
    strict = ProtectivePut(moneyness=1.0, tenor_days=30.0, restrike_moneyness=0.0)
    assert chosen(strict, held) == sym("BTC", 30, 45_000, False)
