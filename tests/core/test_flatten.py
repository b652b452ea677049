from __future__ import annotations

import pytest

from hedger.core.flatten import flatten_intents
from hedger.core.policy import HedgeMarket

INVERSE = HedgeMarket("BTC-PERPETUAL", inverse=True, amount_step=10.0, min_amount=10.0)
LINEAR = HedgeMarket("ETH_USDC-PERPETUAL", inverse=False, amount_step=0.001, min_amount=0.001)


def test_a_short_hedge_is_bought_back_in_slices() -> None:
    intents = flatten_intents("BTC", INVERSE, -25_005.0, 50_000.0, max_order_amount=10_000.0)
    assert [(i.side, i.amount) for i in intents] == [
        ("buy", 10_000.0),
        ("buy", 10_000.0),
        ("buy", 5_000.0),
    ]
    assert [i.leg for i in intents] == [0, 1, 2]
    assert sum(i.notional_usd for i in intents) == pytest.approx(25_000.0)  # inverse: face


def test_a_long_linear_hedge_is_sold_and_priced_in_usd() -> None:
    (intent,) = flatten_intents("ETH", LINEAR, 2.5, 3_000.0, max_order_amount=None)
    assert (intent.side, intent.amount) == ("sell", 2.5)
    assert intent.notional_usd == pytest.approx(7_500.0)


def test_less_than_a_lot_stays_open_rather_than_flipping() -> None:
    assert flatten_intents("BTC", INVERSE, 7.0, 50_000.0, max_order_amount=None) == []
    assert flatten_intents("BTC", INVERSE, 0.0, 50_000.0, max_order_amount=None) == []


def test_no_price_refuses_instead_of_guessing_a_notional() -> None:
    with pytest.raises(ValueError, match="BTC"):
        flatten_intents("BTC", INVERSE, 1_000.0, float("nan"), max_order_amount=None)
