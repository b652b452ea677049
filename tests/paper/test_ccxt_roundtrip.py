"""ccxt, exactly as an application uses it, against the paper venue on loopback."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import ccxt.async_support as ccxt_async
import numpy as np
import pytest

from hedger.core.pricing import black76, year_fraction
from hedger.paper.server import PaperVenueServer
from tests.paper.conftest import point_at


async def test_load_markets_lists_perps_futures_and_options(rest: Any) -> None:
    markets = await rest.load_markets()
    perp = markets["BTC/USD:BTC"]
    assert perp["swap"] and perp["inverse"] and perp["contractSize"] == 10.0
    assert perp["precision"]["amount"] == 10.0
    futures = [m for m in markets.values() if m["future"] and m["base"] == "BTC"]
    options = [m for m in markets.values() if m["option"] and m["base"] == "BTC"]
    assert futures and len(options) >= 20
    for option in options:
        expiry = datetime.fromtimestamp(option["expiry"] / 1000, UTC)
        assert (expiry.hour, expiry.minute) == (8, 0)
        assert option["strike"] > 0 and option["optionType"] in ("call", "put")
        assert option["contractSize"] == 1.0
    sol = [m for m in markets.values() if m["option"] and m["base"] == "SOL"]
    assert sol and all(m["linear"] and m["settle"] == "USDC" for m in sol)


async def test_streamed_option_greeks_match_the_core(pro: Any) -> None:
    markets = await pro.load_markets()
    symbol = next(s for s, m in markets.items() if m["option"] and m["base"] == "BTC")
    ticker = await asyncio.wait_for(pro.watch_ticker(symbol), 10)
    info = ticker["info"]
    greeks = black76(
        np.array([info["underlying_price"]]),
        np.array([markets[symbol]["strike"]]),
        year_fraction(info["timestamp"], np.array([float(markets[symbol]["expiry"])])),
        np.array([info["mark_iv"] / 100.0]),
        np.array([markets[symbol]["optionType"] == "call"]),
    )
    assert info["greeks"]["delta"] == pytest.approx(greeks.delta[0], abs=1e-4)
    assert info["greeks"]["gamma"] == pytest.approx(greeks.gamma[0], rel=1e-3, abs=1e-7)
    assert info["greeks"]["vega"] == pytest.approx(greeks.vega[0], rel=1e-3, abs=1e-4)
    assert info["mark_price"] == pytest.approx(greeks.price[0] / info["underlying_price"], abs=1e-4)


async def test_orders_positions_balances_and_cancel(rest: Any) -> None:
    markets = await rest.load_markets()
    filled = await rest.create_order(
        "BTC/USD:BTC", "market", "buy", 1_000, params={"label": "hedger-test-1"}
    )
    assert filled["status"] == "closed" and filled["filled"] == 1_000
    assert filled["info"]["label"] == "hedger-test-1"

    option = next(s for s, m in markets.items() if m["option"] and m["base"] == "BTC")
    resting = await rest.create_order(
        option, "limit", "buy", 0.5, 0.0005, params={"label": "hedger-test-2"}
    )
    assert resting["status"] == "open"
    open_orders = await rest.fetch_open_orders(option)
    assert [o["id"] for o in open_orders] == [resting["id"]]
    fetched = await rest.fetch_order(resting["id"])
    assert fetched["info"]["label"] == "hedger-test-2" and fetched["amount"] == 0.5

    positions = {p["symbol"]: p for p in await rest.fetch_positions()}
    assert (
        positions["BTC/USD:BTC"]["contracts"] == 1_000
        and positions["BTC/USD:BTC"]["side"] == "long"
    )
    balance = await rest.fetch_balance()
    assert balance["BTC"]["total"] > 0 and balance["USDC"]["total"] > 0

    cancelled = await rest.cancel_order(resting["id"])
    assert cancelled["status"] == "canceled"
    assert await rest.fetch_open_orders(option) == []
    trades = await rest.fetch_my_trades("BTC/USD:BTC")
    assert sum(t["amount"] for t in trades) == 1_000


async def test_watch_orders_and_my_trades_push_own_fills(pro: Any, rest: Any) -> None:
    await pro.load_markets()
    orders_task = asyncio.create_task(pro.watch_orders())
    trades_task = asyncio.create_task(pro.watch_my_trades())
    await asyncio.sleep(0.5)  # the subscriptions reach the venue first
    await rest.create_order("BTC/USD:BTC", "market", "sell", 100, params={"label": "ws-push"})
    orders = await asyncio.wait_for(orders_task, 10)
    trades = await asyncio.wait_for(trades_task, 10)
    assert orders[-1]["info"]["label"] == "ws-push"
    assert trades[-1]["side"] == "sell" and trades[-1]["amount"] == 100


async def test_order_book_stream(pro: Any) -> None:
    book = await asyncio.wait_for(pro.watch_order_book("BTC/USD:BTC"), 10)
    assert book["bids"] and book["asks"] and book["bids"][0][0] < book["asks"][0][0]


async def test_fetch_ohlcv_serves_the_simulated_past(rest: Any) -> None:
    candles = await rest.fetch_ohlcv("BTC/USD:BTC", "1h", limit=5)
    assert 3 <= len(candles) <= 5
    assert all(c[2] >= c[3] > 0 for c in candles)  # high >= low > 0


async def test_wrong_key_is_refused_with_an_authentication_error(venue: PaperVenueServer) -> None:
    client = point_at(ccxt_async.deribit({"apiKey": "paper", "secret": "wrong"}), venue)
    try:
        with pytest.raises(ccxt_async.AuthenticationError):
            await client.fetch_balance()
    finally:
        await client.close()
