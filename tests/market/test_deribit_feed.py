"""The native Deribit feed against the paper venue on loopback, faults included."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import WSMsgType, web

from hedger.backoff import Backoff
from hedger.market.deribit_feed import DeribitTickerFeed
from hedger.market.state import LiveMarket, MarketState
from hedger.paper.server import PaperVenueServer
from tests.market.conftest import ETH_PERP, PERP, an_option, eventually
from tests.paper.conftest import admin, make_server

FAST = Backoff(initial_s=0.05, cap_s=0.5)


def feed_for(venue: PaperVenueServer, names: list[str]) -> DeribitTickerFeed:
    return DeribitTickerFeed(LiveMarket(MarketState(names)), venue.ws_url, names, backoff=FAST)


async def test_tickers_fill_the_columns_of_a_perpetual_and_an_option(
    venue: PaperVenueServer,
) -> None:
    option = an_option(venue)
    feed = feed_for(venue, [PERP, option])
    feed.start()
    try:
        state = feed.market.state
        await eventually(lambda: bool((state.updates >= 2).all()))
    finally:
        await feed.stop()
    assert 10_000 < state.mark[0] < 1_000_000 and state.bid[0] < state.ask[0]
    assert math.isnan(state.underlying_price[0]) and math.isnan(state.mark_iv[0])
    assert 0 < state.mark[1] < 1  # BTC options are quoted in BTC
    assert state.underlying_price[1] > 10_000
    assert 0.05 < state.mark_iv[1] < 5  # a fraction, not Deribit's percent
    assert (state.exchange_ts_ms > 1_700_000_000_000).all()
    assert sum(state.rejected.values()) == 0
    assert feed.stats.tickers == int(state.updates.sum()) and feed.stats.reconnects == 0
    assert not feed.stats.connected  # stopped


async def test_a_dropped_socket_is_replaced_and_tickers_resume(venue: PaperVenueServer) -> None:
    feed = feed_for(venue, [PERP, ETH_PERP])
    feed.start()
    state = feed.market.state
    try:
        await eventually(lambda: bool((state.updates >= 1).all()))
        assert (await admin(venue, "/admin/drop-ws"))["dropped"] == 1
        await eventually(lambda: feed.stats.reconnects == 1)
        after_reconnect = state.updates.copy()
        await eventually(lambda: bool((state.updates > after_reconnect).all()))
        assert (await admin(venue, "/admin/state"))["connections"] == 1
    finally:
        await feed.stop()


async def test_a_paused_instrument_goes_stale_while_the_others_update(
    venue: PaperVenueServer,
) -> None:
    feed = feed_for(venue, [PERP, ETH_PERP])
    feed.start()
    state = feed.market.state
    try:
        await eventually(lambda: bool((state.updates >= 1).all()))
        await admin(venue, "/admin/faults", {"paused": [PERP]})
        await asyncio.sleep(0.1)  # a tick already in flight may still land
        btc_updates, eth_updates = state.updates.copy()
        await eventually(lambda: state.updates[1] >= eth_updates + 8)  # ~0.4 s at 20 ticks/s
        now = time.monotonic()
        assert state.updates[0] == btc_updates
        assert state.stale([0, 1], now, stale_after_s=0.3).tolist() == [True, False]
    finally:
        await feed.stop()


# -- against a scripted server: heartbeat and silence --------------------------------------


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[str, list[dict[str, object]], list[int]]]:
    """A websocket that answers nothing, sends one test_request after set_heartbeat, and
    records every request; ``connections`` counts sockets opened."""
    received: list[dict[str, object]] = []
    connections = [0]

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        connections[0] += 1
        async for message in ws:
            if message.type is not WSMsgType.TEXT:
                break
            body = orjson.loads(message.data)
            received.append(body)
            if body["method"] == "public/set_heartbeat":
                await ws.send_str(
                    '{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}'
                )
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"ws://127.0.0.1:{port}/ws", received, connections
    await runner.cleanup()


async def test_heartbeat_requests_are_answered_and_silence_forces_a_reconnect(
    scripted: tuple[str, list[dict[str, object]], list[int]],
) -> None:
    url, received, connections = scripted
    names = [f"BTC-{i}" for i in range(5)]
    feed = DeribitTickerFeed(
        LiveMarket(MarketState(names)),
        url,
        names,
        backoff=FAST,
        silence_timeout_s=0.3,
        subscribe_chunk=2,
    )
    feed.start()
    try:
        # The venue sees the second socket before the feed has counted its reconnect.
        await eventually(lambda: connections[0] >= 2 and feed.stats.reconnects >= 1)
    finally:
        await feed.stop()
    methods = [r["method"] for r in received]
    first = methods[: methods.index("public/test") + 1]
    assert first == ["public/set_heartbeat", *["public/subscribe"] * 3, "public/test"]
    assert received[0]["params"] == {"interval": 10}
    channels = [c for r in received[1:4] for c in r["params"]["channels"]]  # type: ignore[index]
    assert channels == [f"ticker.BTC-{i}.100ms" for i in range(5)]
    assert feed.stats.heartbeats_answered >= 1 and feed.stats.reconnects >= 1
    assert feed.stats.silences >= 1


class _BufferedSocket:
    """Stands in for aiohttp's socket when frames are already buffered: ``receive`` returns
    without suspending, exactly what aiohttp does, then reports the socket closed."""

    def __init__(self, frames: list[str]) -> None:
        self._frames = iter(frames)
        self.closed = False

    async def receive(self) -> aiohttp.WSMessage:
        frame = next(self._frames, None)
        if frame is None:
            self.closed = True
            return aiohttp.WSMessage(WSMsgType.CLOSED, None, None)
        return aiohttp.WSMessage(WSMsgType.TEXT, frame, None)

    async def close(self) -> None:
        self.closed = True


async def test_a_burst_of_buffered_frames_does_not_starve_the_event_loop() -> None:
    names = ["BTC-PERPETUAL"]
    frame = orjson.dumps(
        {
            "jsonrpc": "2.0",
            "method": "subscription",
            "params": {
                "channel": "ticker.BTC-PERPETUAL.100ms",
                "data": {
                    "instrument_name": "BTC-PERPETUAL",
                    "timestamp": 1_796_000_000_000,
                    "best_bid_price": 90_000.0,
                    "best_ask_price": 90_000.5,
                    "mark_price": 90_000.2,
                    "index_price": 89_990.0,
                },
            },
        }
    ).decode()
    feed = DeribitTickerFeed(LiveMarket(MarketState(names)), "ws://unused", names)
    turns = 0

    async def engine() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    other = asyncio.create_task(engine())
    await asyncio.sleep(0)
    await feed._stream(_BufferedSocket([frame] * 1_000))  # type: ignore[arg-type]
    other.cancel()
    assert feed.market.state.updates[0] == 1_000
    assert turns >= 1_000 // 64 - 1  # the engine ran during the burst, not only after it


async def test_a_refused_subscription_is_counted_and_the_other_chunks_still_stream(
    venue: PaperVenueServer,
) -> None:
    names = [PERP, "BTC-NOT-LISTED"]
    feed = DeribitTickerFeed(
        LiveMarket(MarketState(names)), venue.ws_url, names, backoff=FAST, subscribe_chunk=1
    )
    feed.start()
    try:
        await eventually(lambda: feed.stats.rpc_errors == 1 and feed.market.state.updates[0] >= 2)
    finally:
        await feed.stop()
    assert feed.market.state.updates[1] == 0


async def test_repeated_drops_are_each_recovered(venue: PaperVenueServer) -> None:
    feed = feed_for(venue, [PERP])
    feed.start()
    state = feed.market.state
    try:
        await eventually(lambda: state.updates[0] >= 1)
        await admin(venue, "/admin/faults", {"ws_drop_every_s": 0.5})
        await eventually(lambda: feed.stats.reconnects >= 2, timeout_s=5)
        await admin(venue, "/admin/faults", {"ws_drop_every_s": None})
        before = int(state.updates[0])
        await eventually(lambda: state.updates[0] >= before + 3)
    finally:
        await feed.stop()


async def test_a_venue_that_is_down_is_retried_with_backoff_until_it_is_up() -> None:
    server = make_server(ticks_per_second=20.0, history_minutes=10)
    await server.start()
    url = server.ws_url
    await server.stop()  # the port is known but nothing listens
    feed = DeribitTickerFeed(LiveMarket(MarketState([PERP])), url, [PERP], backoff=FAST)
    feed.start()
    try:
        await eventually(lambda: feed.stats.connect_failures >= 2)
        assert feed.market.state.updates[0] == 0 and not feed.stats.connected
    finally:
        await feed.stop()
