"""Bybit v5 through the real ccxt ``bybit`` client and ``BybitBroker``: a BTC hedge on the
inverse perpetual (amounts in 1-USD contracts), its ``orderLinkId``, and its lookup by
``orderLinkId`` on the open and then the finished orders, as Bybit's v5 API documents them."""

from __future__ import annotations

from typing import Any

from hedger.config import Venue
from hedger.execution.brokers import BybitBroker
from tests.ccxt_loopback.bybit import API_KEY, SECRET, Bybit
from tests.execution.brokers.conftest import DAEMON, wire

CONFIG = Venue(exchange="bybit", api_key=API_KEY, secret=SECRET, accounts=["unified"])


async def test_an_inverse_btc_hedge_is_placed_and_found_by_its_order_link_id(
    under_test: Any,
) -> None:
    v = await under_test(Bybit(fill_price="90010.5").routes(), CONFIG)
    assert isinstance(v.broker, BybitBroker)
    mark = len(v.server.requests)

    # 0.5 BTC of delta to buy at 90 000: BTCUSD counts 1-USD contracts, so 45 000 of them.
    leg = await v.hedge("BTC/USD:BTC", "buy", 0.5, 90_000.0)

    assert (leg.instrument.venue_id, leg.instrument.inverse, leg.instrument.amount_size) == (
        "BTCUSD",
        True,
        1.0,
    )
    assert leg.amount == 45_000
    assert leg.fill.client_id == f"{DAEMON}-1-0-0"  # orderLinkId: 36 of [A-Za-z0-9_-]
    assert (leg.fill.order.status, leg.fill.order.filled, leg.fill.order.average_price) == (
        "filled",
        45_000,
        90010.5,
    )
    create, *lookup = v.server.since(mark)
    # The account is configured unified: ccxt does not ask /v5/user/query-api first.
    assert (create.method, create.path, create.query) == ("POST", "/v5/order/create", ())
    assert create.json() == {
        "symbol": "BTCUSD",
        "side": "Buy",
        "orderType": "Market",
        "orderLinkId": "alt-book-1-0-0",
        "category": "inverse",
        "qty": "45000",
    }
    # The answer is {orderId, orderLinkId}: the broker looks the order up for its state.
    by_link = [("symbol", "BTCUSD"), ("category", "inverse"), ("orderLinkId", "alt-book-1-0-0")]
    assert wire(lookup) == [
        ("GET", "/v5/order/realtime", by_link),
        ("GET", "/v5/order/history", by_link),
    ]

    mark = len(v.server.requests)
    found = await v.broker.find(leg.fill.client_id, leg.instrument.symbol)
    assert [(o.venue_order_id, o.client_id, o.status, o.filled) for o in found.orders] == [
        (leg.fill.order.venue_order_id, "alt-book-1-0-0", "filled", 45_000)
    ]
    assert wire(v.server.since(mark)) == [
        ("GET", "/v5/order/realtime", by_link),
        ("GET", "/v5/order/history", by_link),
    ]


async def test_an_unknown_order_link_id_is_absent(under_test: Any) -> None:
    v = await under_test(Bybit().routes(), CONFIG)
    assert (await v.broker.find("alt-book-9-0-0", "BTC/USDT:USDT")).orders == []
    asked = [(r.path, r.params["orderLinkId"]) for r in v.server.requests if "order/" in r.path]
    assert asked == [
        ("/v5/order/realtime", "alt-book-9-0-0"),
        ("/v5/order/history", "alt-book-9-0-0"),
    ]


async def test_own_resting_orders_are_listed_for_every_settle_coin(under_test: Any) -> None:
    """Reconciliation's listing: Bybit lists open contract orders per category and settle
    coin, so an inverse (BTC-settled) order is found beside a linear (USDT) one."""
    v = await under_test(Bybit().routes(), CONFIG)
    await v.broker.place("BTC/USD:BTC", "buy", 1000, "alt-book-3-0-0", 60_000.0)
    await v.broker.place("BTC/USDT:USDT", "buy", 0.01, "alt-book-4-0-0", 60_000.0)
    mark = len(v.server.requests)
    listed = await v.broker.open_orders()
    assert sorted((o.client_id, o.symbol, o.status) for o in listed) == [
        ("alt-book-3-0-0", "BTC/USD:BTC", "open"),
        ("alt-book-4-0-0", "BTC/USDT:USDT", "open"),
    ]
    assert wire(v.server.since(mark)) == [
        ("GET", "/v5/order/realtime", [("settleCoin", "BTC"), ("category", "inverse")]),
        ("GET", "/v5/order/realtime", [("settleCoin", "USDT"), ("category", "linear")]),
    ]
