"""Hedge-leg margin: liquidation distance signed toward danger, the one-position liquidation
model (linear and inverse, long and short), and the guard's verdict."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from hedger.core.margin import (
    HedgeLegMargin,
    MarginAction,
    MarginPolicy,
    MarginStatus,
    check_margins,
    estimated_liquidation_price,
    liquidation_distance,
    margin_ratio,
    reduce_to_fraction,
)

prices = st.floats(min_value=1e-3, max_value=1e6)
rates = st.floats(min_value=0.0, max_value=0.2)
sizes = st.floats(min_value=1e-3, max_value=1e6)
sides = st.sampled_from([1.0, -1.0])
leverages = st.floats(min_value=1.05, max_value=100.0)


def _equity_and_maintenance(
    qty: float, entry: float, price: float, collateral: float, rate: float, inverse: bool
) -> tuple[float, float]:
    """Equity and maintenance margin at ``price`` in the margin currency, from first
    principles: linear P&L q (X - P) in quote; inverse P&L q (1/P - 1/X) in coin."""
    if inverse:
        return collateral + qty * (1 / entry - 1 / price), rate * abs(qty) / price
    return collateral + qty * (price - entry), rate * abs(qty) * price


def _collateral(qty: float, mark: float, leverage: float, inverse: bool) -> float:
    """Collateral of a leg at ``leverage`` (notional / collateral) at ``mark``."""
    notional = abs(qty) / mark if inverse else abs(qty) * mark
    return notional / leverage


@given(size=sizes, side=sides, mark=prices, rate=rates, leverage=leverages, inverse=st.booleans())
def test_at_the_estimated_liquidation_price_equity_meets_maintenance(
    size: float, side: float, mark: float, rate: float, leverage: float, inverse: bool
) -> None:
    qty = side * size
    collateral = _collateral(qty, mark, leverage, inverse)
    assume(1 / leverage > rate * 1.01)  # the leg starts above maintenance
    liq = estimated_liquidation_price(qty, mark, collateral, rate, inverse)
    if liq is None:
        # Only a long covered to zero, or an inverse short backed by more coin than its face.
        assert (qty > 0 and not inverse and collateral >= qty * mark) or (
            qty < 0 and inverse and collateral >= size / mark
        )
        return
    equity, maintenance = _equity_and_maintenance(qty, mark, liq, collateral, rate, inverse)
    # Equity and maintenance are differences of amounts of the collateral's size.
    assert equity - maintenance == pytest.approx(0.0, abs=1e-9 * collateral)
    # Toward danger: a long is liquidated below the mark, a short above it.
    assert (liq < mark) if qty > 0 else (liq > mark)
    assert liquidation_distance(qty, mark, liq) > 0


@given(size=sizes, mark=prices, rate=rates, leverage=leverages)
def test_an_inverse_short_is_liquidated_on_the_way_up_unless_its_coin_covers_it(
    size: float, mark: float, rate: float, leverage: float
) -> None:
    """The usual hedge: short the coin-margined perp against coin collateral. Backed 1:1 or
    more it has no liquidation price; leveraged, it dies on a rise (unlike a long's fall)."""
    assume(1 / leverage > rate * 1.01)
    covered = estimated_liquidation_price(-size, mark, size / mark, rate, inverse=True)
    assert covered is None
    assert liquidation_distance(-size, mark, covered) == math.inf
    leveraged = estimated_liquidation_price(
        -size, mark, _collateral(size, mark, leverage, True), rate, inverse=True
    )
    assert leveraged is not None and leveraged > mark


@given(mark=prices, move=st.floats(min_value=-0.99, max_value=5.0))
def test_distance_is_signed_toward_danger_and_mirrors_between_long_and_short(
    mark: float, move: float
) -> None:
    liq = mark * (1 + move)
    assume(liq > 0)
    long, short = liquidation_distance(2.0, mark, liq), liquidation_distance(-2.0, mark, liq)
    assert long == pytest.approx(-move) and short == pytest.approx(move)
    # The same price is safe for one side exactly when it is past for the other.
    assert (long > 0) == (short < 0) or move == 0


@given(
    size=sizes,
    side=sides,
    mark=prices,
    rate_share=st.floats(min_value=0.0, max_value=0.9),
    leverage=st.floats(min_value=5.0, max_value=100.0),
    extra=st.floats(min_value=0.005, max_value=0.5),
    inverse=st.booleans(),
)
def test_reducing_to_the_fraction_restores_the_minimum_distance(
    size: float,
    side: float,
    mark: float,
    rate_share: float,
    leverage: float,
    extra: float,
    inverse: bool,
) -> None:
    qty = side * size
    rate = rate_share / leverage  # maintenance below the initial margin, by construction
    collateral = _collateral(qty, mark, leverage, inverse)
    liq = estimated_liquidation_price(qty, mark, collateral, rate, inverse)
    assume(liq is not None)
    distance = liquidation_distance(qty, mark, liq)
    # The floor is drawn above the leg's distance (a breach), not filtered for it.
    target = distance + extra
    kept = reduce_to_fraction(distance, target, rate, long=qty > 0, inverse=inverse)
    assert 0.0 <= kept < 1.0
    assume(kept > 1e-6)
    smaller = estimated_liquidation_price(kept * qty, mark, collateral, rate, inverse)
    after = liquidation_distance(kept * qty, mark, smaller)
    assert after == pytest.approx(target, rel=1e-6, abs=1e-9)


@given(distance=st.floats(min_value=-0.5, max_value=0.5), inverse=st.booleans())
def test_an_unknown_rate_cuts_at_least_as_much_as_a_known_one(
    distance: float, inverse: bool
) -> None:
    for long in (True, False):
        unknown = reduce_to_fraction(distance, 0.6, float("nan"), long=long, inverse=inverse)
        known = reduce_to_fraction(distance, 0.6, 0.01, long=long, inverse=inverse)
        assert unknown <= known + 1e-12


def _leg(qty: float, mark: float, liq: float | None, **extra: float) -> HedgeLegMargin:
    return HedgeLegMargin("deribit", "BTC-PERPETUAL", qty, mark, liq, **extra)  # type: ignore[arg-type]


def test_the_guard_reports_a_breach_by_how_much_and_what_to_keep() -> None:
    policy = MarginPolicy(min_liquidation_distance=0.2, action=MarginAction.REDUCE)
    near = _leg(-10_000.0, 100_000.0, 110_000.0, maintenance_rate=0.005)
    far = HedgeLegMargin("okx", "BTC-USDT-SWAP", -5.0, 100_000.0, 150_000.0)
    check = check_margins([near, far], policy)
    assert check.action is MarginAction.REDUCE
    (breach,) = check.breaches
    assert breach.instrument == "BTC-PERPETUAL" and breach.status is MarginStatus.BREACH
    assert breach.liquidation_distance == pytest.approx(0.1)
    assert breach.shortfall == pytest.approx(0.1)
    # inverse=False here (the default): linear short, m = 0.005.
    assert breach.reduce_to_fraction == pytest.approx((0.1 * 1.005 + 0.005) / (0.2 * 1.005 + 0.005))
    ok = check.readings[1]
    assert (ok.status, ok.shortfall, ok.reduce_to_fraction) == (MarginStatus.OK, 0.0, 1.0)
    assert ok.liquidation_distance == pytest.approx(0.5)


def test_alert_only_keeps_the_leg_and_no_floor_means_no_breach() -> None:
    leg = _leg(3.0, 100.0, 95.0)
    alert = check_margins([leg], MarginPolicy(0.1))
    assert alert.action is MarginAction.ALERT
    assert alert.readings[0].reduce_to_fraction == 1.0
    assert alert.readings[0].shortfall == pytest.approx(0.05)
    off = check_margins([leg], MarginPolicy())
    assert off.action is None and off.readings[0].status is MarginStatus.OK


def test_a_leg_without_a_mark_is_unknown_and_one_without_liquidation_is_safe() -> None:
    check = check_margins(
        [
            _leg(-1.0, float("nan"), 90.0),
            _leg(-1.0, 100.0, None),
            _leg(-1.0, 100.0, 0.0),
            _leg(-1.0, 100.0, float("nan")),  # the venue did not say
        ],
        MarginPolicy(0.5),
    )
    assert [r.status for r in check.readings] == [
        MarginStatus.UNKNOWN,
        MarginStatus.OK,
        MarginStatus.OK,
        MarginStatus.UNKNOWN,
    ]
    assert check.unknown[0].instrument == "BTC-PERPETUAL" and check.action is None
    assert check.readings[1].liquidation_distance == math.inf


def test_margin_ratio_is_the_venues_own_or_maintenance_over_collateral() -> None:
    assert margin_ratio(_leg(1.0, 1.0, None, margin_ratio=0.3)) == 0.3
    assert margin_ratio(_leg(1.0, 1.0, None, maintenance_margin=5.0, collateral=20.0)) == 0.25
    assert math.isnan(margin_ratio(_leg(1.0, 1.0, None, maintenance_margin=5.0)))
    check = check_margins(
        [
            _leg(1.0, 1.0, None, margin_ratio=0.3),
            _leg(1.0, 1.0, None, margin_ratio=0.5),
            HedgeLegMargin("okx", "x", 1.0, 1.0, None),
        ],
        MarginPolicy(),
    )
    ratios = check.venue_margin_ratios()
    assert ratios["deribit"] == 0.5 and math.isnan(ratios["okx"])


@pytest.mark.parametrize("floor", [0.0, 1.0, -0.1])
def test_a_floor_outside_zero_to_one_is_refused(floor: float) -> None:
    with pytest.raises(ValueError, match="min_liquidation_distance"):
        MarginPolicy(floor)
