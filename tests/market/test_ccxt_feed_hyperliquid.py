"""The generic feed on Hyperliquid: the real ccxt.pro client subscribes per symbol to
``activeAssetCtx`` (not ``allMids``) on a loopback websocket answering in Hyperliquid's
documented format, and the state holds its mark and oracle, not mids."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import ccxt.pro as ccxt_pro
import pytest

from hedger.backoff import Backoff
from hedger.config import Venue
from hedger.config.models import VenueUrls
from hedger.live.venue_client import make_client
from hedger.market.ccxt_feed import CcxtTickerFeed, store_ccxt_ticker, with_raw_marks
from hedger.market.state import BadTick, LiveMarket, MarketState
from tests.ccxt_loopback.hyperliquid import PERP_CTXS, Hyperliquid
from tests.ccxt_loopback.server import LoopbackVenue
from tests.ccxt_loopback.ws import Connection, LoopbackSocket
from tests.market.conftest import eventually

FAST = Backoff(initial_s=0.05, cap_s=0.5)
COINS: dict[str, dict[str, Any]] = {
    # Marks off the impact prices' mid, so a mid read as the mark would show.
    "BTC": {**PERP_CTXS[0], "markPx": "90011.4"},
    "ETH": {**PERP_CTXS[1], "markPx": "3001.23"},
}


class Stream:
    """Hyperliquid's websocket (hyperliquid.gitbook.io, websocket subscriptions): each
    ``subscribe`` answered with ``subscriptionResponse``, then the coin's context pushed."""

    def __init__(self) -> None:
        self.subscribers: dict[str, list[Connection]] = {}

    async def __call__(self, connection: Connection, message: Any) -> None:
        if message.get("method") != "subscribe":
            return  # ccxt's {"method": "ping"} and the like
        subscription = message["subscription"]
        await connection.send(
            {"channel": "subscriptionResponse", "data": {"method": "subscribe", **message}}
        )
        if subscription["type"] == "activeAssetCtx":
            coin = subscription["coin"]
            self.subscribers.setdefault(coin, []).append(connection)
            await self.push(coin, COINS[coin])

    async def push(self, coin: str, ctx: dict[str, Any]) -> None:
        for connection in self.subscribers.get(coin, []):
            if connection.socket.closed:
                continue
            await connection.send({"channel": "activeAssetCtx", "data": {"coin": coin, "ctx": ctx}})


@pytest.fixture
async def hyperliquid() -> AsyncIterator[tuple[Stream, LoopbackSocket, Any]]:
    rest = LoopbackVenue(Hyperliquid().routes())
    base = await rest.start()
    stream = Stream()
    socket = LoopbackSocket(stream, path="/ws")
    await socket.start()
    client = make_client(Venue(exchange="hyperliquid", urls=VenueUrls(rest=base)), module=ccxt_pro)
    # ccxt.pro's Hyperliquid keeps its stream under urls.api.ws.public.
    client.urls["api"]["ws"] = {"public": socket.url}
    yield stream, socket, client
    await client.close()
    await socket.stop()
    await rest.stop()


async def test_each_perp_streams_mark_and_oracle_from_its_asset_context(
    hyperliquid: tuple[Stream, LoopbackSocket, Any],
) -> None:
    stream, socket, client = hyperliquid
    instruments = ["0", "1"]  # Hyperliquid's perp ids: BTC, ETH
    market = LiveMarket(MarketState(instruments))
    feed = CcxtTickerFeed(market, client, instruments, backoff=FAST)
    await feed.start()
    state = market.state
    try:
        await eventually(lambda: bool((state.updates >= 1).all()), timeout_s=10)
        subscriptions = [m["subscription"] for m in socket.messages() if "subscription" in m]
        assert sorted(subscriptions, key=lambda s: s["coin"]) == [
            {"type": "activeAssetCtx", "coin": "BTC"},
            {"type": "activeAssetCtx", "coin": "ETH"},
        ]
        assert all(s["type"] != "allMids" for s in subscriptions)
        btc = COINS["BTC"]
        assert (state.mark[0], state.index[0]) == (float(btc["markPx"]), float(btc["oraclePx"]))
        assert (state.bid[0], state.ask[0]) == tuple(float(p) for p in btc["impactPxs"])
        eth = COINS["ETH"]
        assert (state.mark[1], state.index[1]) == (float(eth["markPx"]), float(eth["oraclePx"]))

        # The next block's context moves the row.
        moved = {**btc, "markPx": "90111.0", "oraclePx": "90120.0"}
        await stream.push("BTC", moved)
        await eventually(lambda: state.mark[0] == 90111.0, timeout_s=10)
        assert state.index[0] == 90120.0
        assert sum(state.rejected.values()) == 0
    finally:
        await feed.stop()


def test_raw_marks_fill_only_what_ccxt_left_empty_and_garbage_is_malformed() -> None:
    ticker: dict[str, Any] = {
        "bid": 90010.0,
        "ask": 90012.0,
        "markPrice": None,
        "indexPrice": None,
        "timestamp": None,
        "info": {"markPx": "90011.0", "oraclePx": "90020.0"},
    }
    filled = with_raw_marks("hyperliquid", ticker)
    assert (filled["markPrice"], filled["indexPrice"]) == (90011.0, 90020.0)
    assert with_raw_marks("okx", ticker) is ticker
    assert with_raw_marks("hyperliquid", {**ticker, "markPrice": 1.0})["markPrice"] == 1.0

    market = LiveMarket(MarketState(["0"]))
    bad = with_raw_marks("hyperliquid", {**ticker, "info": {"markPx": True, "oraclePx": "x"}})
    assert not store_ccxt_ticker(market, 0, bad, 1.0)
    assert market.state.rejected[BadTick.MALFORMED] == 1


async def test_a_cut_stream_resubscribes(
    hyperliquid: tuple[Stream, LoopbackSocket, Any],
) -> None:
    _, socket, client = hyperliquid
    market = LiveMarket(MarketState(["0"]))
    feed = CcxtTickerFeed(market, client, ["0"], backoff=FAST)
    await feed.start()
    try:
        await eventually(lambda: market.state.updates[0] >= 1, timeout_s=10)
        await socket.drop_all()
        await eventually(lambda: len(socket.connections) >= 2, timeout_s=10)
        await eventually(lambda: market.state.updates[0] >= 2, timeout_s=10)
        assert feed.stats.watch_errors >= 1 and feed.stats.recoveries >= 1
        resubscribed = [m["subscription"] for m in socket.messages(1) if "subscription" in m]
        assert resubscribed == [{"type": "activeAssetCtx", "coin": "BTC"}]
    finally:
        await feed.stop()
