"""The generic ccxt.pro feed, pointed at the paper venue, fills the native feed's columns."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import ccxt.pro as ccxt_pro
import pytest

from hedger.market.backoff import Backoff
from hedger.market.ccxt_feed import CcxtTickerFeed, store_ccxt_ticker
from hedger.market.state import BadTick, LiveMarket, MarketState
from hedger.paper.server import PaperVenueServer
from tests.market.conftest import PERP, an_option, eventually
from tests.paper.conftest import admin, point_at

FAST = Backoff(initial_s=0.05, cap_s=0.5)


@pytest.fixture
async def pro(venue: PaperVenueServer) -> AsyncIterator[Any]:
    client = point_at(ccxt_pro.deribit({"apiKey": "paper", "secret": "paper"}), venue)
    yield client
    await client.close()


async def test_watch_ticker_loops_fill_a_perpetual_and_an_option(
    venue: PaperVenueServer, pro: Any
) -> None:
    option = an_option(venue)
    market = LiveMarket(MarketState([PERP, option]))
    feed = CcxtTickerFeed(market, pro, [PERP, option], backoff=FAST)
    await feed.start()
    state = market.state
    try:
        await eventually(lambda: bool((state.updates >= 2).all()), timeout_s=10)
    finally:
        await feed.stop()
    assert 10_000 < state.mark[0] < 1_000_000 and state.bid[0] < state.ask[0]
    assert state.index[0] > 10_000 and math.isnan(state.mark_iv[0])
    assert 0 < state.mark[1] < 1 and state.underlying_price[1] > 10_000
    assert 0.05 < state.mark_iv[1] < 5
    assert (state.exchange_ts_ms > 1_700_000_000_000).all()
    assert sum(state.rejected.values()) == 0


async def test_a_dropped_socket_is_survived(venue: PaperVenueServer, pro: Any) -> None:
    market = LiveMarket(MarketState([PERP]))
    feed = CcxtTickerFeed(market, pro, [PERP], backoff=FAST)
    await feed.start()
    state = market.state
    try:
        await eventually(lambda: state.updates[0] >= 1, timeout_s=10)
        await admin(venue, "/admin/drop-ws")
        await eventually(lambda: feed.stats.watch_errors >= 1, timeout_s=10)
        before = int(state.updates[0])
        await eventually(lambda: state.updates[0] > before + 2, timeout_s=10)
        assert feed.stats.recoveries >= 1
    finally:
        await feed.stop()


async def test_an_unknown_instrument_is_refused_at_start(pro: Any) -> None:
    feed = CcxtTickerFeed(LiveMarket(MarketState(["NOPE"])), pro, ["NOPE"])
    with pytest.raises(ValueError, match="'NOPE' is not listed"):
        await feed.start()


def test_a_spot_style_ticker_without_mark_falls_back_to_the_mid() -> None:
    market = LiveMarket(MarketState(["BTC_USDC"]))
    ticker: dict[str, Any] = {
        "bid": 100.0,
        "ask": 102.0,
        "markPrice": None,
        "indexPrice": None,
        "timestamp": 5,
        "info": {},
    }
    assert store_ccxt_ticker(market, 0, ticker, 1.0)
    assert (market.state.mark[0], market.state.index[0]) == (101.0, 101.0)
    assert not store_ccxt_ticker(market, 0, {"bid": None, "ask": None, "timestamp": 6}, 2.0)
    assert market.state.rejected[BadTick.NAN] == 1
    assert not store_ccxt_ticker(market, 0, {"bid": "x", "timestamp": 7}, 3.0)
    assert market.state.rejected[BadTick.MALFORMED] == 1
