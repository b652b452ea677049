"""Matching: depth walking, time in force, post-only, resting fills, fees, P&L in Deribit's
units, cancels, rejections with Deribit codes, labels, settlement and funding.

Most tests pin a hand-made book on the real market (``set_book``) so that every expected
figure follows from the book and the configured commissions by hand."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from hedger.core.units import HOUR_MS
from hedger.sim import Execution, Market, MatchingEngine, Order, OrderState, Trade, scenario
from hedger.sim.book import price_to_ticks, ticks_to_price
from hedger.sim.errors import (
    InvalidAmountError,
    InvalidArgumentsError,
    InvalidInstrumentError,
    InvalidPriceError,
    NotEnoughFundsError,
    NotOpenOrderError,
    OrderNotFoundError,
    PostOnlyRejectError,
    SimError,
)
from hedger.sim.orders import Retention
from hedger.sim.scenario import FeeSpec

PERP = "BTC-PERPETUAL"
MAKER, TAKER = 0.0002, 0.0005
Levels = list[tuple[float, float]]


def set_book(m: Market, name: str, bids: Levels, asks: Levels, mark: float | None = None) -> int:
    """Replace an instrument's synthetic book (and optionally its mark/index) by hand."""
    i = m.index_of(name)
    inst, q = m.universe.instruments[i], m.quotes
    for levels, ticks, lots, prices, sign in (
        (bids, q.bid_ticks, q.bid_lots, q.bid_price, -1),
        (asks, q.ask_ticks, q.ask_lots, q.ask_price, 1),
    ):
        lots[i] = 0
        last = 0
        for k in range(q.levels):
            if k < len(levels):
                t = price_to_ticks(levels[k][0], inst.tick_size)
                assert t is not None
                ticks[i, k], lots[i, k] = t, round(levels[k][1] / inst.min_trade_amount)
                last = t
            else:
                ticks[i, k] = last + sign * (k + 1)
        prices[i] = ticks_to_price(ticks[i], np.full(q.levels, inst.tick_size))
    if mark is not None:
        m.mark_price[i] = m.index_price[i] = mark
    m.book_version += 1
    return i


@pytest.fixture
def market() -> Market:
    s = scenario("calm")
    return Market(replace(s, fees=FeeSpec(future_taker=TAKER, future_maker=MAKER)), seed=1)


@pytest.fixture
def engine(market: Market) -> MatchingEngine:
    e = MatchingEngine(market)
    e.open_account("alice", {"BTC": 1.0, "ETH": 10.0, "USDC": 100_000.0})
    e.open_account("bob", {"BTC": 1.0, "USDC": 100_000.0})
    return e


ASKS: Levels = [(90000.5, 1000), (90001.0, 2000), (90002.0, 5000)]
BIDS: Levels = [(89999.5, 1000), (89999.0, 2000)]


def _now(e: MatchingEngine) -> int:
    return e.market.now_ms


def test_market_order_walks_the_depth(engine: MatchingEngine) -> None:
    set_book(engine.market, PERP, BIDS, ASKS, mark=90000.0)
    ex = engine.place("alice", PERP, "buy", 2500, order_type="market", now_ms=_now(engine))
    assert [(t.price, t.amount, t.liquidity) for t in ex.trades] == [
        (90000.5, 1000, "T"),
        (90001.0, 1500, "T"),
    ]
    assert ex.order.state is OrderState.FILLED and ex.order.filled_amount == 2500
    assert ex.order.average_price == pytest.approx(
        2500 / (1000 / 90000.5 + 1500 / 90001.0), rel=1e-15
    )
    # What was taken stays taken until the book refreshes.
    again = engine.place("alice", PERP, "buy", 600, order_type="market", now_ms=_now(engine))
    assert [(t.price, t.amount) for t in again.trades] == [(90001.0, 500), (90002.0, 100)]
    book = engine.order_book(engine.market.index_of(PERP))
    assert book["asks"] == [[90002.0, 4900.0]]


def test_market_order_beyond_depth_fills_what_exists_and_cancels_the_rest(
    engine: MatchingEngine,
) -> None:
    set_book(engine.market, PERP, BIDS, ASKS, mark=90000.0)
    ex = engine.place("alice", PERP, "buy", 10_000, order_type="market", now_ms=_now(engine))
    assert ex.order.filled_amount == 8000 and ex.order.state is OrderState.CANCELLED
    assert ex.order.to_deribit()["price"] == "market_price"


def test_ioc_takes_up_to_its_limit_and_cancels_the_remainder(engine: MatchingEngine) -> None:
    set_book(engine.market, PERP, BIDS, ASKS, mark=90000.0)
    ex = engine.place(
        "alice",
        PERP,
        "buy",
        5000,
        price=90001.0,
        time_in_force="immediate_or_cancel",
        now_ms=_now(engine),
    )
    assert [(t.price, t.amount) for t in ex.trades] == [(90000.5, 1000), (90001.0, 2000)]
    assert ex.order.state is OrderState.CANCELLED and ex.order.filled_amount == 3000
    assert engine.open_orders("alice") == []


def test_fill_or_kill_is_all_or_nothing(engine: MatchingEngine) -> None:
    set_book(engine.market, PERP, BIDS, ASKS, mark=90000.0)
    before = dict(engine.accounts["alice"].balances)
    killed = engine.place(
        "alice", PERP, "buy", 9000, price=90002.0, time_in_force="fill_or_kill", now_ms=_now(engine)
    )
    assert killed.trades == () and killed.order.state is OrderState.CANCELLED
    assert engine.accounts["alice"].balances == before
    filled = engine.place(
        "alice", PERP, "buy", 8000, price=90002.0, time_in_force="fill_or_kill", now_ms=_now(engine)
    )
    assert filled.order.state is OrderState.FILLED and len(filled.trades) == 3


def test_post_only_that_would_cross_is_rejected_or_moved_inside(engine: MatchingEngine) -> None:
    set_book(engine.market, PERP, BIDS, ASKS, mark=90000.0)
    with pytest.raises(PostOnlyRejectError) as err:
        engine.place("alice", PERP, "buy", 100, price=90000.5, post_only=True, now_ms=_now(engine))
    assert err.value.code == 11054 and err.value.to_deribit()["message"] == "post_only_reject"
    with pytest.raises(PostOnlyRejectError):
        engine.place("alice", PERP, "sell", 100, price=89999.5, post_only=True, now_ms=_now(engine))
    moved = engine.place(
        "alice",
        PERP,
        "buy",
        100,
        price=90001.0,
        post_only=True,
        reject_post_only=False,
        now_ms=_now(engine),
    )
    assert moved.trades == () and moved.order.price == 90000.0
    assert moved.order.state is OrderState.OPEN
    assert engine.orders == {moved.order.order_id: moved.order}  # rejections left no trace


def test_resting_limit_fills_as_maker_when_the_market_crosses_it(engine: MatchingEngine) -> None:
    m = engine.market
    set_book(m, PERP, BIDS, ASKS, mark=90000.0)
    ex = engine.place("alice", PERP, "buy", 100, price=89990.0, label="rest-1", now_ms=_now(engine))
    assert ex.trades == () and engine.open_orders("alice") == [ex.order]
    assert engine.advance(_now(engine)).trades == ()
    btc = engine.accounts["alice"].balances["BTC"]
    set_book(
        m, PERP, [(89980.0, 1000)], [(89985.0, 50), (89990.0, 30), (89995.0, 500)], mark=89987.0
    )
    events = engine.advance(_now(engine) + 1)
    assert [(t.price, t.amount, t.liquidity) for t in events.trades] == [
        (89990.0, 50, "M"),
        (89990.0, 30, "M"),
    ]
    assert sum(t.fee for t in events.trades) == pytest.approx(MAKER * 80 / 89990.0, rel=1e-12)
    assert engine.accounts["alice"].balances["BTC"] == pytest.approx(
        btc - MAKER * 80 / 89990.0, rel=1e-15
    )
    assert events.orders == (ex.order,) and events.accounts == {"alice"}
    assert ex.order.state is OrderState.OPEN and ex.order.filled_amount == 80
    set_book(m, PERP, [(89970.0, 1000)], [(89975.0, 1000)], mark=89972.0)
    last = engine.advance(_now(engine) + 2).trades
    assert [(t.price, t.amount) for t in last] == [(89990.0, 20)]
    assert ex.order.state is OrderState.FILLED and engine.open_orders("alice") == []


def test_resting_limit_fills_on_the_simulated_market() -> None:
    m = Market(scenario("stress"), seed=3)
    e = MatchingEngine(m)
    e.open_account("alice", {"BTC": 1.0})
    i = m.index_of(PERP)
    limit = float(m.quotes.bid_price[i, 0]) - 200.0
    order = e.place("alice", PERP, "buy", 1000, price=limit, now_ms=m.now_ms).order
    trades = []
    for _ in range(24 * 60):
        m.step(m.now_ms + 60_000)
        trades += e.advance(m.now_ms).trades
        if order.state is OrderState.FILLED:
            break
    assert order.state is OrderState.FILLED
    assert all(t.liquidity == "M" and t.price == limit for t in trades)
    assert sum(t.amount for t in trades) == 1000


def test_inverse_perp_round_trip_pnl_in_coin(engine: MatchingEngine) -> None:
    m = engine.market
    set_book(m, PERP, BIDS, ASKS, mark=90000.0)
    engine.place("alice", PERP, "buy", 2500, order_type="market", now_ms=_now(engine))
    # By hand: 1000 USD at 90000.5 and 1500 at 90001 cost 1000/90000.5 + 1500/90001 BTC.
    coin_in = 1000 / 90000.5 + 1500 / 90001.0
    fees = TAKER * coin_in
    set_book(m, PERP, [(95000.0, 5000)], [(95000.5, 5000)], mark=95000.2)
    summary = engine.account_summary("alice", "BTC")
    assert summary.futures_pl == pytest.approx(coin_in - 2500 / 95000.2, rel=1e-12)
    assert summary.equity == pytest.approx(1.0 - fees + coin_in - 2500 / 95000.2, rel=1e-12)
    engine.place("alice", PERP, "sell", 2500, order_type="market", now_ms=_now(engine))
    realized = coin_in - 2500 / 95000.0  # size * (1/entry - 1/exit), entry harmonic
    fees += TAKER * 2500 / 95000.0
    assert engine.accounts["alice"].balances["BTC"] == pytest.approx(
        1.0 + realized - fees, rel=1e-14
    )
    pos = engine.accounts["alice"].positions[m.index_of(PERP)]
    assert pos.size == 0 and pos.realized_pnl == pytest.approx(realized, rel=1e-12)
    (row,) = engine.positions("alice", currency="BTC")
    assert row["direction"] == "zero" and row["realized_profit_loss"] == pytest.approx(realized)


def test_linear_perp_round_trip_pnl_in_usdc(engine: MatchingEngine) -> None:
    m, name = engine.market, "SOL_USDC-PERPETUAL"
    set_book(m, name, [(149.99, 100)], [(150.0, 100)], mark=150.0)
    engine.place("alice", name, "buy", 10, order_type="market", now_ms=_now(engine))
    set_book(m, name, [(160.0, 100)], [(160.01, 100)], mark=160.0)
    engine.place("alice", name, "sell", 10, order_type="market", now_ms=_now(engine))
    expected = 100_000.0 + 10 * (160.0 - 150.0) - TAKER * 10 * (150.0 + 160.0)
    assert engine.accounts["alice"].balances["USDC"] == pytest.approx(expected, rel=1e-14)


def test_option_premium_and_fee_in_coin_and_in_usdc(engine: MatchingEngine) -> None:
    m = engine.market
    fees = m.scenario.fees
    call = "BTC-25DEC26-90000-C"
    i = m.index_of(call)
    ask = float(m.quotes.ask_price[i, 0])
    t = engine.place("alice", call, "buy", 0.5, order_type="market", now_ms=_now(engine)).trades[0]
    fee = min(fees.option_taker, fees.option_fee_cap * ask) * 0.5
    assert (t.price, t.fee, t.fee_currency) == (ask, pytest.approx(fee), "BTC")
    assert engine.accounts["alice"].balances["BTC"] == pytest.approx(
        1.0 - 0.5 * ask - fee, rel=1e-14
    )
    put = next(
        n for n in m.universe.by_name if n.startswith("SOL_USDC-25DEC26") and n.endswith("-P")
    )
    j = m.index_of(put)
    ask, index = float(m.quotes.ask_price[j, 0]), float(m.index_price[j])
    t = engine.place("alice", put, "buy", 2, order_type="market", now_ms=_now(engine)).trades[0]
    fee = min(fees.option_taker * index, fees.option_fee_cap * ask) * 2
    assert (t.fee, t.fee_currency) == (pytest.approx(fee), "USDC")
    assert engine.accounts["alice"].balances["USDC"] == pytest.approx(
        100_000.0 - 2 * ask - fee, rel=1e-14
    )
    summary = engine.account_summary("alice", "BTC")
    assert summary.options_value == pytest.approx(0.5 * float(m.mark_price[i]))


def test_spot_moves_both_balances(engine: MatchingEngine) -> None:
    m = engine.market
    set_book(m, "BTC_USDC", [(89990.0, 5)], [(90010.0, 5)], mark=90000.0)
    engine.place("alice", "BTC_USDC", "buy", 0.1, order_type="market", now_ms=_now(engine))
    fee = m.scenario.fees.spot_taker * 0.1 * 90010.0
    assert engine.accounts["alice"].balances["USDC"] == pytest.approx(100_000.0 - 9001.0 - fee)
    assert engine.accounts["alice"].balances["BTC"] == pytest.approx(1.1)
    with pytest.raises(NotEnoughFundsError):
        engine.place("alice", "BTC_USDC", "sell", 1.2, order_type="market", now_ms=_now(engine))


def test_not_enough_funds_refuses_risk_but_not_reduction(engine: MatchingEngine) -> None:
    m = engine.market
    set_book(m, PERP, [(89999.5, 1_000_000)], [(90000.5, 1_000_000)], mark=90000.0)
    engine.open_account("poor", {"BTC": 0.01})
    before = dict(engine.orders)
    with pytest.raises(NotEnoughFundsError) as err:
        engine.place("poor", PERP, "buy", 100_000, order_type="market", now_ms=_now(engine))
    assert err.value.code == 10009 and engine.orders == before
    engine.place("poor", PERP, "buy", 20_000, order_type="market", now_ms=_now(engine))
    engine.accounts["poor"].balances["BTC"] = 0.0
    with pytest.raises(NotEnoughFundsError):
        engine.place("poor", PERP, "buy", 10, order_type="market", now_ms=_now(engine))
    ex = engine.place(
        "poor", PERP, "sell", 20_000, order_type="market", reduce_only=True, now_ms=_now(engine)
    )
    assert ex.order.state is OrderState.FILLED
    with pytest.raises(NotEnoughFundsError):
        engine.place(
            "poor", "BTC-25DEC26-90000-C", "buy", 1, order_type="market", now_ms=_now(engine)
        )


def test_resting_orders_reserve_funds(engine: MatchingEngine) -> None:
    engine.open_account("carol", {"BTC": 0.01})
    # 0.02 initial margin on 20000 USD at ~90000 is ~0.0044 BTC per order: two fit, three not.
    for _ in range(2):
        engine.place("carol", PERP, "buy", 20_000, price=80_000.0, now_ms=_now(engine))
    with pytest.raises(NotEnoughFundsError):
        engine.place("carol", PERP, "buy", 20_000, price=80_000.0, now_ms=_now(engine))
    assert engine.account_summary("carol", "BTC").open_orders_margin == pytest.approx(
        2 * 0.02 * 20_000 / 80_000
    )


def test_cancel_and_order_lookup(engine: MatchingEngine) -> None:
    o = engine.place(
        "alice", PERP, "buy", 100, price=80_000.0, label="cid-1", now_ms=_now(engine)
    ).order
    assert engine.get_order_state("alice", o.order_id) is o
    with pytest.raises(OrderNotFoundError):
        engine.get_order_state("bob", o.order_id)
    with pytest.raises(OrderNotFoundError):
        engine.cancel("bob", o.order_id, _now(engine))
    cancelled = engine.cancel("alice", o.order_id, _now(engine) + 5)
    assert (
        cancelled.state is OrderState.CANCELLED
        and cancelled.last_update_timestamp == _now(engine) + 5
    )
    assert engine.open_orders("alice") == []
    with pytest.raises(NotOpenOrderError):
        engine.cancel("alice", o.order_id, _now(engine))
    with pytest.raises(OrderNotFoundError) as err:
        engine.cancel("alice", "ORD-999", _now(engine))
    assert err.value.to_deribit()["code"] == 10004


def test_labels_are_kept_and_found(engine: MatchingEngine) -> None:
    label = "hedger-paper-000042-0-1"
    set_book(engine.market, PERP, BIDS, ASKS, mark=90000.0)
    ex = engine.place(
        "alice", PERP, "buy", 100, order_type="market", label=label, now_ms=_now(engine)
    )
    assert engine.orders_by_label("alice", label) == [ex.order]
    assert engine.orders_by_label("bob", label) == []
    assert ex.order.to_deribit()["label"] == label and ex.trades[0].to_deribit()["label"] == label
    with pytest.raises(InvalidArgumentsError):
        engine.place(
            "alice", PERP, "buy", 100, order_type="market", label="x" * 65, now_ms=_now(engine)
        )


@pytest.mark.parametrize(
    ("name", "amount", "price", "error", "code"),
    [
        (PERP, 15, 80_000.0, InvalidAmountError, 10021),
        (PERP, 0, 80_000.0, InvalidAmountError, 10021),
        (PERP, -10, 80_000.0, InvalidAmountError, 10021),
        ("BTC-25DEC26-90000-C", 0.25, 0.05, InvalidAmountError, 10021),
        (PERP, 10, 80_000.3, InvalidPriceError, 10023),
        (PERP, 10, None, InvalidPriceError, 10023),
        (PERP, 10, -1.0, InvalidPriceError, 10023),
        ("BTC-25DEC26-90000-C", 0.1, 0.00005, InvalidPriceError, 10023),
        ("BTC-PERPETUAL-X", 10, 80_000.0, InvalidInstrumentError, 10020),
    ],
)
def test_invalid_requests_are_rejected_with_deribit_codes(
    engine: MatchingEngine,
    name: str,
    amount: float,
    price: float | None,
    error: type[SimError],
    code: int,
) -> None:
    with pytest.raises(error) as err:
        engine.place("alice", name, "buy", amount, price=price, now_ms=_now(engine))
    assert err.value.code == code
    assert engine.orders == {}


def test_reduce_only_clips_and_refuses_to_open(engine: MatchingEngine) -> None:
    set_book(engine.market, PERP, BIDS, ASKS, mark=90000.0)
    with pytest.raises(InvalidAmountError):
        engine.place(
            "alice", PERP, "sell", 100, order_type="market", reduce_only=True, now_ms=_now(engine)
        )
    engine.place("alice", PERP, "buy", 300, order_type="market", now_ms=_now(engine))
    ex = engine.place(
        "alice", PERP, "sell", 1000, order_type="market", reduce_only=True, now_ms=_now(engine)
    )
    assert ex.order.amount == 300 and ex.order.state is OrderState.FILLED


def test_expiry_settles_positions_and_cancels_orders(engine: MatchingEngine) -> None:
    m = engine.market
    first = int(m.universe.expiry_ms.min())
    u = m.universe
    itm_call = min(
        (i for i in u.options if u.expiry_ms[i] == first and u.is_call[i] and u.asset[i] == 0),
        key=lambda i: u.strike[i],
    )
    name = m.universe.instruments[itm_call].instrument_name
    engine.place("alice", name, "buy", 1, order_type="market", now_ms=_now(engine))
    resting = engine.place("alice", name, "buy", 1, price=0.0001, now_ms=_now(engine)).order
    btc = engine.accounts["alice"].balances["BTC"]
    m.step(first + 1)
    events = engine.advance(first + 1)
    s, k = float(m.delivery_price[itm_call]), float(m.universe.strike[itm_call])
    assert engine.accounts["alice"].balances["BTC"] == pytest.approx(
        btc + max(s - k, 0.0) / s, rel=1e-12
    )
    assert itm_call not in engine.accounts["alice"].positions
    assert resting.state is OrderState.CANCELLED and resting in events.orders
    assert resting.cancel_reason == "instrument_expired"


def test_funding_accrues_to_perp_positions() -> None:
    m = Market(scenario("trend"), seed=5)
    e = MatchingEngine(m)
    e.open_account("alice", {"BTC": 1.0})
    e.place("alice", PERP, "buy", 10_000, order_type="market", now_ms=m.now_ms)
    i = m.index_of(PERP)
    row = int(m.perp_row[i])
    btc = e.accounts["alice"].balances["BTC"]
    expected = 0.0
    for _ in range(16):
        m.step(m.now_ms + HOUR_MS)
        expected -= 10_000 / float(m.index_price[i]) * float(m.funding.current[row]) / 8
        e.advance(m.now_ms)
    assert expected < 0  # the trend scenario's premium makes longs pay
    assert e.accounts["alice"].balances["BTC"] == pytest.approx(btc + expected, rel=1e-12)
    assert e.accounts["alice"].positions[i].funding == pytest.approx(expected, rel=1e-12)


def _script(seed: int) -> list[dict[str, object]]:
    m = Market(scenario("stress-switching"), seed=seed)
    e = MatchingEngine(m)
    e.open_account("a", {"BTC": 2.0, "USDC": 1e6})
    for k in range(50):
        m.step(m.now_ms + 30_000)
        e.advance(m.now_ms)
        i = m.index_of(PERP)
        px = float(m.quotes.bid_price[i, 0]) - 10.0 * (k % 5)
        e.place("a", PERP, "buy" if k % 2 else "sell", 100 * (1 + k % 3), price=px, now_ms=m.now_ms)
        if k % 7 == 0:
            e.place("a", "SOL_USDC-PERPETUAL", "buy", 1.5, order_type="market", now_ms=m.now_ms)
    trades = e.user_trades("a")
    return [t.to_deribit() for t in trades] + [o.to_deribit() for o in e.orders.values()]


def test_matching_is_deterministic() -> None:
    a = _script(11)
    assert a == _script(11) and len(a) > 60
    assert a != _script(12)


def test_fills_show_in_the_ticker(engine: MatchingEngine) -> None:
    m = engine.market
    i = set_book(m, PERP, BIDS, ASKS, mark=90000.0)
    assert m.ticker(i)["last_price"] is None
    engine.place("alice", PERP, "buy", 1000, order_type="market", now_ms=_now(engine))
    tk = m.ticker(i)
    assert tk["last_price"] == 90000.5
    stats = tk["stats"]
    assert isinstance(stats, dict)
    assert stats["volume"] == pytest.approx(1000 / 90000.5)  # Deribit: in base coin
    assert stats["volume_usd"] == 1000.0


# -- the order store: indexes and retention ------------------------------------------------

DEEP_ASKS: Levels = [(90000.5, 1e9)]
DEEP_BIDS: Levels = [(89999.5, 1e9)]


def _retaining(market: Market, retention: Retention) -> MatchingEngine:
    e = MatchingEngine(market, retention)
    e.open_account("alice", {"BTC": 10.0, "ETH": 10.0, "USDC": 100_000.0})
    e.open_account("bob", {"BTC": 10.0, "USDC": 100_000.0})
    set_book(market, PERP, DEEP_BIDS, DEEP_ASKS, mark=90000.0)
    return e


def _taker(e: MatchingEngine, k: int, label: str, now_ms: int | None = None) -> Execution:
    """Order k of a stream: alice and bob in turn, each buying then selling 10 USD."""
    who, side = ("alice", "bob")[k % 2], ("buy", "sell")[k // 2 % 2]
    now = _now(e) if now_ms is None else now_ms
    return e.place(who, PERP, side, 10, order_type="market", label=label, now_ms=now)


def test_label_lookups_stay_correct_across_retention(market: Market) -> None:
    e = _retaining(market, Retention(max_orders=50))
    resting = e.place("alice", PERP, "buy", 100, price=80_000.0, label="resting", now_ms=_now(e))
    placed = [_taker(e, k, f"cid-{k % 7}").order for k in range(300)]

    kept = list(e.orders)
    assert len(kept) == 50
    assert kept == [resting.order.order_id] + [o.order_id for o in placed[-49:]]
    for who in ("alice", "bob"):
        for n in range(7):
            expected = [o for o in placed[-49:] if o.account == who and o.label == f"cid-{n}"]
            assert expected and e.orders_by_label(who, f"cid-{n}") == expected
    assert e.orders_by_label("alice", "resting") == [resting.order]  # open: never dropped
    with pytest.raises(OrderNotFoundError):
        e.get_order_state(placed[0].account, placed[0].order_id)
    for who in ("alice", "bob"):
        assert {t.order_id for t in e.user_trades(who)} <= set(kept)
        assert len(e.user_trades(who)) == sum(e.orders[o].account == who for o in kept[1:])

    # Once closed, the resting order ages out like any other.
    e.cancel("alice", resting.order.order_id, _now(e))
    for k in range(300, 350):
        _taker(e, k, "late")
    assert e.orders_by_label("alice", "resting") == []
    assert resting.order.order_id not in e.orders
    assert len(e.orders_by_label("alice", "late")) + len(e.orders_by_label("bob", "late")) == 50


def test_the_stores_stay_bounded_over_many_orders(market: Market) -> None:
    e = _retaining(market, Retention(max_orders=100))
    peak = {"orders": 0, "open_orders": 0, "labels": 0, "trades": 0}
    for k in range(5_000):
        _taker(e, k, f"cid-{k}")  # a label each: the label index must shrink too
        if k % 100 == 0:
            rest = e.place("bob", PERP, "buy", 10, price=80_000.0, label=f"r-{k}", now_ms=_now(e))
            if k % 200 == 0:
                e.cancel("bob", rest.order.order_id, _now(e))
        counts = e.store.counts()
        peak = {name: max(n, getattr(counts, name)) for name, n in peak.items()}
    assert peak["orders"] == peak["labels"] == 100 and peak["trades"] <= 100
    counts = e.store.counts()
    assert counts.open_orders == len(e.open_orders("bob")) == 25  # open orders are all kept
    assert counts.trades == len(e.user_trades("alice")) + len(e.user_trades("bob")) == 75


def test_closed_orders_older_than_the_age_bound_are_dropped(market: Market) -> None:
    e = _retaining(market, Retention(max_orders=1_000_000, max_age_ms=60_000))
    t0 = _now(e)
    old = [_taker(e, k, "old", now_ms=t0).order for k in range(10)]
    resting = e.place("alice", PERP, "buy", 10, price=80_000.0, label="r", now_ms=t0).order
    e.advance(t0 + 60_000)
    assert len(e.orders) == 11  # not older than the bound yet
    e.advance(t0 + 60_001)
    assert list(e.orders) == [resting.order_id]
    assert e.orders_by_label("alice", "old") == [] and e.user_trades("alice") == []
    assert all(o.order_id not in e.orders for o in old)
    assert e.orders_by_label("alice", "r") == [resting]


def test_retention_refuses_a_bound_that_keeps_nothing() -> None:
    with pytest.raises(ValueError, match="max_orders"):
        Retention(max_orders=0)
    with pytest.raises(ValueError, match="max_age_ms"):
        Retention(max_age_ms=0)


class _Reads:
    """Stands in for one field of a slots dataclass and counts its reads: how many orders
    (or trades) a lookup examined, whatever the machine's speed."""

    def __init__(self, slot: Any) -> None:
        self.slot, self.count = slot, 0

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        if obj is None:
            return self
        self.count += 1
        return self.slot.__get__(obj, owner)

    def __set__(self, obj: object, value: object) -> None:
        self.slot.__set__(obj, value)


def _reads(monkeypatch: pytest.MonkeyPatch, cls: type, *names: str) -> list[_Reads]:
    readers = [_Reads(cls.__dict__[name]) for name in names]
    for name, reader in zip(names, readers, strict=True):
        monkeypatch.setattr(cls, name, reader)
    return readers


def test_lookups_examine_only_the_orders_they_return(
    market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    e = _retaining(market, Retention())
    mine = e.place("alice", PERP, "buy", 10, price=80_000.0, label="mine", now_ms=_now(e)).order
    for k in range(2_000):
        _taker(e, k, "mine" if k % 4 in (0, 1) else f"other-{k}")  # bob's "mine" too
        if k % 4 == 0:
            e.place("bob", PERP, "buy", 10, price=80_000.0, label="b", now_ms=_now(e))
            e.place("alice", "ETH-PERPETUAL", "buy", 1, price=1_000.0, now_ms=_now(e))
    order_fields = _reads(monkeypatch, Order, "account", "label", "instrument")
    trade_fields = _reads(monkeypatch, Trade, "account", "order_id")

    def examined() -> list[int]:
        counts = [r.count for r in (*order_fields, *trade_fields)]
        for r in (*order_fields, *trade_fields):
            r.count = 0
        return counts

    found = e.orders_by_label("alice", "mine")
    assert examined() == [0, 0, 0, 0, 0]  # not one of the 3,001 orders scanned
    assert len(found) == 501 and found[0] is mine

    on_perp = e.open_orders("alice", instrument_name=PERP)
    assert examined() == [0, 0, 1, 0, 0] and on_perp == [mine]  # one currency check

    in_btc = e.open_orders("alice", currency="BTC")
    assert examined() == [0, 0, 501, 0, 0] and in_btc == [mine]  # alice's, not bob's 500

    bobs = e.orders_by_label("bob", "b")[0].order_id
    assert e.order_trades("bob", bobs) == []
    assert examined() == [1, 0, 0, 0, 0]  # the account check of the order asked for

    trades = e.user_trades("alice")
    assert examined()[3] == 0 and len(trades) == 1_000  # bob's 1,000 trades not looked at
