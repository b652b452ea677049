"""Each fault the paper venue can inject, shown happening as configured, through ccxt."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import aiohttp
import ccxt.async_support as ccxt_async
import pytest

from hedger.paper.server import PaperVenueServer
from tests.paper.conftest import admin as _admin
from tests.paper.conftest import point_at


async def test_delay_slows_every_response(venue: PaperVenueServer, rest: Any) -> None:
    await rest.load_markets()
    await _admin(venue, "/admin/faults", {"delay_ms": 300})
    started = time.perf_counter()
    await rest.fetch_ticker("BTC/USD:BTC")
    assert time.perf_counter() - started >= 0.3


async def test_rate_limit_answers_429_that_ccxt_reads_as_ddos(
    venue: PaperVenueServer, rest: Any
) -> None:
    await rest.load_markets()
    await _admin(venue, "/admin/faults", {"error_share": 1.0, "error_status": 429})
    with pytest.raises(ccxt_async.DDoSProtection):
        await rest.fetch_ticker("BTC/USD:BTC")
    await _admin(venue, "/admin/faults", {"error_share": 0.0})
    assert (await rest.fetch_ticker("BTC/USD:BTC"))["symbol"] == "BTC/USD:BTC"


async def test_server_errors_for_a_share_of_requests(venue: PaperVenueServer, rest: Any) -> None:
    await rest.load_markets()
    await _admin(venue, "/admin/faults", {"error_share": 0.5, "error_status": 503, "seed": 1})
    outcomes = []
    for _ in range(40):
        try:
            await rest.fetch_ticker("BTC/USD:BTC")
            outcomes.append("ok")
        except ccxt_async.ExchangeNotAvailable:
            outcomes.append("503")
    assert 8 <= outcomes.count("503") <= 32, outcomes
    state = await _admin(venue, "/admin/state")
    assert state["faults_injected"]["errors"] == outcomes.count("503")


async def test_order_accepted_but_response_times_out(venue: PaperVenueServer) -> None:
    client = point_at(
        ccxt_async.deribit({"apiKey": "paper", "secret": "paper"}), venue, timeout_ms=800
    )
    try:
        await client.load_markets()
        await _admin(venue, "/admin/faults", {"order_timeouts": 1, "hang_s": 3})
        with pytest.raises(ccxt_async.RequestTimeout):
            await client.create_order(
                "BTC/USD:BTC", "market", "buy", 100, params={"label": "lost-ack"}
            )
        # The order went through: it is on the venue, findable by its label.
        found = await client.private_get_get_order_state_by_label(
            {"currency": "BTC", "label": "lost-ack"}
        )
        assert [o["order_state"] for o in found["result"]] == ["filled"]
        positions = {p["symbol"]: p for p in await client.fetch_positions()}
        assert positions["BTC/USD:BTC"]["contracts"] == 100
    finally:
        await client.close()


async def test_rejected_orders_are_refused_with_insufficient_funds(
    venue: PaperVenueServer, rest: Any
) -> None:
    await rest.load_markets()
    await _admin(venue, "/admin/faults", {"reject_orders": True})
    with pytest.raises(ccxt_async.InsufficientFunds):
        await rest.create_order("BTC/USD:BTC", "market", "buy", 100)
    assert await rest.fetch_positions() == []


async def test_drop_websockets_now_and_ccxt_reconnects(venue: PaperVenueServer, pro: Any) -> None:
    await asyncio.wait_for(pro.watch_ticker("BTC/USD:BTC"), 10)
    dropped = await _admin(venue, "/admin/drop-ws")
    assert dropped["dropped"] == 1
    assert (await _admin(venue, "/admin/state"))["connections"] == 0
    # ccxt either surfaces the drop once or reconnects inside this call.
    with contextlib.suppress(ccxt_async.NetworkError):
        await asyncio.wait_for(pro.watch_ticker("BTC/USD:BTC"), 10)
    ticker = await asyncio.wait_for(pro.watch_ticker("BTC/USD:BTC"), 10)
    assert ticker["symbol"] == "BTC/USD:BTC"
    assert (await _admin(venue, "/admin/state"))["connections"] == 1  # a new socket


async def test_drop_websockets_every_n_seconds(venue: PaperVenueServer, pro: Any) -> None:
    await _admin(venue, "/admin/faults", {"ws_drop_every_s": 1.0})
    drops = 0
    deadline = time.monotonic() + 3.5
    while time.monotonic() < deadline:
        try:
            await asyncio.wait_for(pro.watch_ticker("BTC/USD:BTC"), 2)
        except ccxt_async.NetworkError:
            drops += 1
    state = await _admin(venue, "/admin/state")
    assert state["faults_injected"]["ws_drops"] >= 2 and drops >= 2


async def test_paused_instrument_goes_stale_while_others_tick(
    venue: PaperVenueServer, pro: Any
) -> None:
    await asyncio.wait_for(pro.watch_ticker("BTC/USD:BTC"), 10)
    await asyncio.wait_for(pro.watch_ticker("ETH/USD:ETH"), 10)
    await _admin(venue, "/admin/faults", {"paused": ["BTC-PERPETUAL"]})
    await asyncio.sleep(0.2)  # let a tick in flight land
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(pro.watch_ticker("BTC/USD:BTC"), 1.0)
    assert (await asyncio.wait_for(pro.watch_ticker("ETH/USD:ETH"), 5))["symbol"] == "ETH/USD:ETH"
    await _admin(venue, "/admin/faults", {"paused": []})
    assert (await asyncio.wait_for(pro.watch_ticker("BTC/USD:BTC"), 5))["symbol"] == "BTC/USD:BTC"


async def test_bad_fault_settings_are_refused(venue: PaperVenueServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(venue.rest_url + "/admin/faults", json={"error_share": 2}) as r:
            assert r.status == 400 and "error_share" in (await r.json())["error"]
        async with session.post(venue.rest_url + "/admin/faults", json={"nope": 1}) as r:
            assert r.status == 400 and "unknown fault settings" in (await r.json())["error"]
