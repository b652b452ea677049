"""Binance USD-M through the real ccxt ``binanceusdm`` client and ``BinanceBroker``: a BTC
hedge on the USDT perpetual, its ``newClientOrderId``, and its lookup by
``origClientOrderId``, as Binance's futures API documents them."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from hedger.config import Venue
from hedger.execution.brokers import BinanceBroker
from tests.ccxt_loopback import binanceusdm
from tests.ccxt_loopback.binanceusdm import API_KEY, SECRET, BinanceUsdm
from tests.execution.brokers.conftest import DAEMON, wire

CONFIG = Venue(exchange="binanceusdm", api_key=API_KEY, secret=SECRET)


async def test_a_btc_hedge_is_placed_and_found_by_its_client_id(under_test: Any) -> None:
    venue = BinanceUsdm(fill_price="90012.30")
    v = await under_test(venue.routes(), CONFIG)
    assert isinstance(v.broker, BinanceBroker)
    mark = len(v.server.requests)

    # 0.56789 BTC of beta-delta to sell: BTCUSDT counts BTC (contract size 1), lot 0.001.
    leg = await v.hedge("BTC/USDT:USDT", "sell", 0.56789, 90_000.0)

    assert (leg.instrument.venue_id, leg.instrument.asset, leg.instrument.amount_size) == (
        "BTCUSDT",
        "BTC",
        1.0,
    )
    assert leg.amount == 0.567
    assert leg.fill.client_id == f"{DAEMON}-1-0-0"  # newClientOrderId: 36 of [.A-Z:/a-z0-9_-]
    assert (leg.fill.order.status, leg.fill.order.filled, leg.fill.order.average_price) == (
        "filled",
        0.567,
        90012.3,
    )
    (placed,) = v.server.since(mark)
    assert (placed.method, placed.path, placed.query) == ("POST", "/fapi/v1/order", ())
    form = placed.form()
    assert [k for k, _ in form] == [
        "timestamp", "symbol", "side", "newClientOrderId", "newOrderRespType", "type",
        "quantity", "recvWindow", "signature",
    ]  # fmt: skip
    assert {k: v for k, v in form if k not in ("timestamp", "signature")} == {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "newClientOrderId": "alt-book-1-0-0",
        "newOrderRespType": "RESULT",
        "type": "MARKET",
        "quantity": "0.567",
        "recvWindow": "10000",
    }
    assert placed.headers["Content-Type"] == "application/x-www-form-urlencoded"

    mark = len(v.server.requests)
    found = await v.broker.find(leg.fill.client_id, leg.instrument.symbol)
    assert [(o.venue_order_id, o.client_id, o.status) for o in found.orders] == [
        (leg.fill.order.venue_order_id, "alt-book-1-0-0", "filled")
    ]
    assert wire(v.server.since(mark)) == [
        (
            "GET",
            "/fapi/v1/order",
            [
                ("timestamp", "*"),
                ("symbol", "BTCUSDT"),
                ("origClientOrderId", "alt-book-1-0-0"),
                ("recvWindow", "*"),
                ("signature", "*"),
            ],
        )
    ]


async def test_an_unknown_client_id_is_absent_not_an_error(under_test: Any) -> None:
    v = await under_test(BinanceUsdm().routes(), CONFIG)
    found = await v.broker.find("alt-book-9-0-0", "BTC/USDT:USDT")
    assert found.orders == []
    (asked,) = v.server.calls("GET", "/fapi/v1/order")
    assert asked.params["origClientOrderId"] == "alt-book-9-0-0"


def test_the_fixture_checks_binance_signatures() -> None:
    """HMAC-SHA256 (hex) of the query or body, keyed by the secret: another key fails."""
    payload = "symbol=BTCUSDT&timestamp=1"
    good = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    bad = hmac.new(b"other", payload.encode(), hashlib.sha256).hexdigest()
    binanceusdm.assert_signed(f"{payload}&signature={good}", {"X-MBX-APIKEY": API_KEY})
    with pytest.raises(AssertionError, match="bad signature"):
        binanceusdm.assert_signed(f"{payload}&signature={bad}", {"X-MBX-APIKEY": API_KEY})


async def test_own_resting_orders_are_listed_across_symbols(under_test: Any) -> None:
    """What reconciliation asks at start and on the way out: every open order, no symbol
    (ccxt refuses that unless the broker acknowledges its weight)."""
    v = await under_test(BinanceUsdm().routes(), CONFIG)
    await v.broker.place("BTC/USDT:USDT", "buy", 0.01, "alt-book-3-0-0", 60_000.0)
    mark = len(v.server.requests)
    listed = await v.broker.open_orders()
    assert [(o.client_id, o.symbol, o.status) for o in listed] == [
        ("alt-book-3-0-0", "BTC/USDT:USDT", "open")
    ]
    assert wire(v.server.since(mark)) == [
        (
            "GET",
            "/fapi/v1/openOrders",
            [("timestamp", "*"), ("recvWindow", "*"), ("signature", "*")],
        )
    ]
