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
    state = MarketState(["BTC-PERPETUAL", OPTION])
    state.set_clock(TS, 0.0)  # receive time 0 s is TS: the pushes below are never ahead
    return LiveMarket(state)


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


def deribit_ticker(**data: Any) -> bytes:
    """A whole ``ticker.BTC-PERPETUAL.100ms`` notification as Deribit sends it (every field
    of the real payload, not only those we read), with ``data`` overriding fields."""
    ticker: dict[str, Any] = {
        "timestamp": TS,
        "stats": {"volume_usd": 512_345_670.0, "volume": 5_691.2, "price_change": -0.31},
        "state": "open",
        "settlement_price": 90_120.55,
        "open_interest": 1_044_564_930,
        "min_price": 88_644.23,
        "max_price": 91_344.5,
        "mark_price": 90_000.2,
        "last_price": 90_000.5,
        "interest_value": 0.0123,
        "instrument_name": "BTC-PERPETUAL",
        "index_price": 89_990.0,
        "funding_8h": 0.00002,
        "estimated_delivery_price": 89_990.0,
        "current_funding": 0.0,
        "best_bid_price": 90_000.0,
        "best_bid_amount": 251_230.0,
        "best_ask_price": 90_000.5,
        "best_ask_amount": 98_760.0,
    }
    ticker |= data
    message = {
        "jsonrpc": "2.0",
        "method": "subscription",
        "params": {"channel": "ticker.BTC-PERPETUAL.100ms", "data": ticker},
    }
    return orjson.dumps(message)


def test_json_true_false_or_a_non_number_in_a_price_iv_or_timestamp_is_malformed(
    market: LiveMarket,
) -> None:
    """Invariant: a push whose price, IV or timestamp is not a JSON number is counted as
    malformed and stores nothing, on the native feed's own path (``x or NaN`` included).

    Before: ``"mark_price": true`` was stored as a mark of 1.0 (the beta-delta blew up to
    -897,063 BTC), ``true`` in a book side or the timestamp was stored as 1, ``true`` in
    ``mark_iv`` became an IV of 1%, and ``false`` in a book side read as an empty side.
    """
    fields = (
        "mark_price",
        "index_price",
        "best_bid_price",
        "best_ask_price",
        "underlying_price",
        "mark_iv",
        "timestamp",
    )
    state = market.state
    for field in fields:
        for bad in (True, False, "90000.5", {"value": 1}, [1.0]):
            frame = deribit_ticker(**{field: bad})
            assert f'"{field}":'.encode() in frame
            assert handle_frame(market, frame, 1.0) in (FrameKind.TICKER, FrameKind.OTHER)
            assert state.rejected[BadTick.MALFORMED] == 1, (field, bad, state.rejected)
            assert state.updates[0] == 0 and not market.changed.is_set(), (field, bad)
            state.rejected[BadTick.MALFORMED] = 0
    assert sum(state.rejected.values()) == 0
    assert handle_frame(market, deribit_ticker(), 1.0) is FrameKind.TICKER
    assert state.mark[0] == 90_000.2 and state.updates[0] == 1


def test_a_push_stamped_in_the_year_3000_is_refused_and_the_next_real_one_is_stored(
    market: LiveMarket,
) -> None:
    """Invariant: a push stamped far ahead of the receive clock is counted (``FUTURE``) and
    dropped, and never becomes the row's high-water mark for the order check.

    Before: it was stored, and every real push after it was dropped as out of order until
    a restart (the row went stale and, with a 3000-dated mark, fed the hedge meanwhile).
    """
    state = market.state
    assert handle_frame(market, deribit_ticker(timestamp=TS), 1.0) is FrameKind.TICKER
    year_3000 = deribit_ticker(timestamp=32_503_680_000_000, mark_price=1.0)
    assert handle_frame(market, year_3000, 1.1) is FrameKind.TICKER
    assert state.mark[0] == 90_000.2 and state.rejected[BadTick.FUTURE] == 1
    real = deribit_ticker(timestamp=TS + 1_200, mark_price=90_010.0)
    assert handle_frame(market, real, 1.2) is FrameKind.TICKER
    assert state.mark[0] == 90_010.0 and state.exchange_ts_ms[0] == TS + 1_200
    assert state.updates[0] == 2 and state.rejected[BadTick.OUT_OF_ORDER] == 0
