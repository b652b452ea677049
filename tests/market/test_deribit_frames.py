"""Deribit frames into MarketState with no socket: routing, units and malformed input."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest

from hedger.market.deribit_feed import FrameKind, handle_frame
from hedger.market.state import BadTick, LiveMarket, MarketState

OPTION = "BTC-27NOV26-90000-C"
TS = 1_796_000_000_000


def push(**data: Any) -> bytes:
    ticker = {
        "instrument_name": OPTION,
        "timestamp": TS,
        "best_bid_price": 0.0343,
        "best_ask_price": 0.0344,
        "mark_price": 0.03432,
        "index_price": 90_071.5,
        "underlying_price": 90_073.7,
        "mark_iv": 82.3,
    }
    ticker |= data
    channel = f"ticker.{ticker['instrument_name']}.100ms"
    message = {
        "jsonrpc": "2.0",
        "method": "subscription",
        "params": {"channel": channel, "data": ticker},
    }
    return orjson.dumps(message)


@pytest.fixture
def market() -> LiveMarket:
    return LiveMarket(MarketState(["BTC-PERPETUAL", OPTION]))


def test_an_option_ticker_lands_in_its_row_with_iv_as_a_fraction(market: LiveMarket) -> None:
    assert handle_frame(market, push(), 5.0) is FrameKind.TICKER
    state = market.state
    assert (state.bid[1], state.ask[1], state.mark[1]) == (0.0343, 0.0344, 0.03432)
    assert state.underlying_price[1] == 90_073.7
    assert state.mark_iv[1] == pytest.approx(0.823)
    assert (state.exchange_ts_ms[1], state.received_s[1]) == (TS, 5.0)
    assert market.changed.is_set()


def test_a_perpetual_without_underlying_or_iv_stores_nan_there(market: LiveMarket) -> None:
    frame = push(
        instrument_name="BTC-PERPETUAL",
        mark_price=90_000.0,
        best_bid_price=89_999.5,
        best_ask_price=90_000.5,
        underlying_price=None,
        mark_iv=None,
    )
    handle_frame(market, frame, 1.0)
    assert market.state.mark[0] == 90_000.0
    assert math.isnan(market.state.underlying_price[0]) and math.isnan(market.state.mark_iv[0])


@pytest.mark.parametrize("empty", [None, 0, 0.0])
def test_an_empty_bid_is_stored_as_no_quote(market: LiveMarket, empty: object) -> None:
    handle_frame(market, push(best_bid_price=empty), 1.0)
    assert math.isnan(market.state.bid[1]) and market.state.updates[1] == 1


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (push(instrument_name="XRP-PERPETUAL"), BadTick.UNKNOWN_INSTRUMENT),
        (push(mark_price=None), BadTick.MALFORMED),
        (push(mark_price="abc"), BadTick.MALFORMED),
        (push(timestamp=None), BadTick.MALFORMED),
        (
            b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.x.100ms"}}',
            BadTick.MALFORMED,
        ),
        (b'{"jsonrpc": "2.0", "method": "subscr', BadTick.MALFORMED),
        (b"[1, 2, 3]", BadTick.MALFORMED),
        (push(mark_price=-1.0), BadTick.NON_POSITIVE),
        (push(best_bid_price=0.05), BadTick.CROSSED),
    ],
)
def test_a_bad_frame_is_counted_and_dropped(
    market: LiveMarket, frame: bytes, reason: BadTick
) -> None:
    handle_frame(market, frame, 1.0)
    assert market.state.rejected[reason] == 1
    assert sum(market.state.rejected.values()) == 1
    assert market.state.updates.sum() == 0 and not market.changed.is_set()


def test_an_older_push_after_a_newer_one_is_out_of_order(market: LiveMarket) -> None:
    handle_frame(market, push(timestamp=TS + 100), 1.0)
    handle_frame(market, push(timestamp=TS, mark_price=0.05, best_ask_price=0.06), 1.1)
    assert market.state.rejected[BadTick.OUT_OF_ORDER] == 1 and market.state.mark[1] == 0.03432


def test_control_frames_are_classified_not_counted_as_bad(market: LiveMarket) -> None:
    heartbeat = b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}'
    assert handle_frame(market, heartbeat, 1.0) is FrameKind.HEARTBEAT
    beat = b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}'
    assert handle_frame(market, beat, 1.0) is FrameKind.OTHER
    reply = b'{"jsonrpc":"2.0","id":3,"result":["ticker.BTC-PERPETUAL.100ms"]}'
    assert handle_frame(market, reply, 1.0) is FrameKind.REPLY
    error = b'{"jsonrpc":"2.0","id":4,"error":{"code":11029,"message":"invalid_arguments"}}'
    assert handle_frame(market, error, 1.0) is FrameKind.ERROR
    assert sum(market.state.rejected.values()) == 0
