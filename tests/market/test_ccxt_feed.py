"""The generic ccxt.pro feed, pointed at the paper venue, fills the native feed's columns."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import ccxt.pro as ccxt_pro
import pytest

from hedger.backoff import Backoff
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


def test_a_ccxt_ticker_with_a_bool_or_a_numeric_string_is_malformed() -> None:
    """Invariant: the generic feed stores numbers only, like the native one.

    Before: ``float()`` read ``True`` as 1.0 (mark, index, a book side), ``int(True)`` as a
    1 ms timestamp, ``True`` in Deribit's raw ``mark_iv`` as an IV of 1%, and the string
    ``"90000"`` as a price.
    """
    state = MarketState(["BTC-PERPETUAL"])
    state.set_clock(1_796_000_000_000, 0.0)
    market = LiveMarket(state)
    good: dict[str, Any] = {
        "bid": 90_000.0,
        "ask": 90_000.5,
        "markPrice": 90_000.2,
        "indexPrice": 89_990.0,
        "timestamp": 1_796_000_000_000,
        "info": {},
    }
    bad_fields: list[dict[str, Any]] = [
        {"markPrice": True},
        {"markPrice": False},
        {"indexPrice": True},
        {"bid": True},
        {"ask": False},
        {"timestamp": True},
        {"bid": "90000"},
        {"markPrice": "90000.2"},
        {"timestamp": "1796000000000"},
        {"info": {"mark_iv": True}},
        {"info": {"underlying_price": True}},
        {"info": {"mark_iv": "55.0"}},
    ]
    for change in bad_fields:
        assert not store_ccxt_ticker(market, 0, good | change, 1.0), change
    assert state.rejected[BadTick.MALFORMED] == len(bad_fields), state.rejected
    assert sum(state.rejected.values()) == len(bad_fields) and state.updates[0] == 0
    assert store_ccxt_ticker(market, 0, good, 1.0) and state.mark[0] == 90_000.2


def test_a_ccxt_ticker_from_the_year_3000_is_refused_and_the_next_real_one_stored() -> None:
    """Invariant: the ``FUTURE`` bound holds on the generic feed too, and a refused tick is
    not the row's high-water mark.

    Before: the year-3000 tick was stored and every real one after it dropped as out of
    order.
    """
    state = MarketState(["BTC-PERPETUAL"])
    state.set_clock(1_796_000_000_000, 0.0)
    market = LiveMarket(state)
    tick: dict[str, Any] = {"bid": 1.0, "ask": 2.0, "markPrice": 1.5, "indexPrice": 1.5}
    assert not store_ccxt_ticker(market, 0, tick | {"timestamp": 32_503_680_000_000}, 1.0)
    assert state.rejected[BadTick.FUTURE] == 1
    assert store_ccxt_ticker(market, 0, tick | {"timestamp": 1_796_000_001_000}, 1.1)
    assert state.exchange_ts_ms[0] == 1_796_000_001_000 and state.updates[0] == 1
