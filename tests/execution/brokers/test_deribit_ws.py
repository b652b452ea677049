"""Deribit hedge orders over the broker's own websocket, against the paper venue through the
real ccxt client: cut the socket with a resting hedge order and the venue cancels it; while
the socket is down, orders go over REST."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt_async
import pytest

from hedger.execution.brokers.deribit_ws import DeribitWsBroker
from hedger.execution.executor import Executor
from hedger.execution.journal import Journal
from hedger.paper.server import PaperVenueServer
from tests.execution.conftest import SYMBOL, record_intent, wall_ms
from tests.net import free_port
from tests.paper.conftest import admin, point_at


@pytest.fixture
async def client(venue: PaperVenueServer) -> AsyncIterator[Any]:
    ex = point_at(
        ccxt_async.deribit({"apiKey": "paper", "secret": "paper"}), venue, timeout_ms=2000
    )
    await ex.load_markets()
    yield ex
    await ex.close()


@pytest.fixture
async def broker(client: Any, venue: PaperVenueServer) -> AsyncIterator[DeribitWsBroker]:
    made = DeribitWsBroker(client, "paper", venue.ws_url, reconnect_after_s=60.0)
    await made.connect()
    yield made
    await made.close()


async def _far_bid(client: Any) -> float:
    bid = (await client.fetch_ticker(SYMBOL))["bid"]
    return float(client.price_to_precision(SYMBOL, bid * 0.8))


async def _until_status(broker: DeribitWsBroker, label: str, status: str) -> None:
    deadline = time.monotonic() + 5.0
    while True:
        found = (await broker.find(label, SYMBOL)).orders
        if found and found[0].status == status:
            return
        assert time.monotonic() < deadline, f"{label} never became {status}: {found}"
        await asyncio.sleep(0.05)


async def test_cutting_the_socket_cancels_the_resting_hedge_order(
    venue: PaperVenueServer, client: Any, broker: DeribitWsBroker, tmp_path: Path
) -> None:
    """A limit hedge rests, sent over the socket; the socket is cut: the venue cancels the
    order, and the executor, seeing it cancelled, sends the rest at market over REST."""
    journal = Journal(tmp_path / "j.sqlite")
    executor = Executor(journal, broker, daemon_name="cod", clock=wall_ms, order_ttl_s=5.0)
    seq = record_intent(journal)
    leg = asyncio.create_task(
        executor.execute(
            seq, 0, SYMBOL, "buy", 100.0, limit_price=await _far_bid(client), limit_timeout_s=60
        )
    )
    deadline = time.monotonic() + 5.0
    while (record := journal.order("cod-1-0-0")) is None or record.status != "open":
        assert time.monotonic() < deadline and not leg.done(), "the limit order never rested"
        await asyncio.sleep(0.02)
    assert (broker.sent_over_socket, broker.sent_over_rest) == (1, 0)

    await admin(venue, "/admin/drop-ws")  # the daemon's network goes

    fill = await asyncio.wait_for(leg, 10.0)
    assert not broker.connected
    first = journal.order("cod-1-0-0")
    assert first is not None and (first.status, first.filled_qty) == ("cancelled", 0.0)
    assert (fill.client_id, fill.order.status, fill.filled_total) == ("cod-1-0-1", "filled", 100)
    assert broker.sent_over_rest == 1  # the socket is down: the market rest went over REST
    await _until_status(broker, "cod-1-0-0", "cancelled")  # the venue's own word


async def test_a_market_hedge_over_the_socket_fills_and_is_journaled(
    broker: DeribitWsBroker, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    executor = Executor(journal, broker, daemon_name="cod", clock=wall_ms, order_ttl_s=5.0)
    fill = await executor.execute(record_intent(journal), 0, SYMBOL, "sell", 100.0)
    assert (fill.order.status, fill.order.filled) == ("filled", 100.0)
    assert broker.sent_over_socket == 1
    (record,) = journal.orders()
    assert (record.client_id, record.status) == ("cod-1-0-0", "filled")
    assert record.valid_until_ms is not None  # the time-to-live travels over the socket too


async def test_while_the_socket_is_down_orders_go_over_rest(
    venue: PaperVenueServer, client: Any
) -> None:
    nowhere = f"ws://127.0.0.1:{free_port()}/ws/api/v2"
    broker = DeribitWsBroker(client, "paper", nowhere, reconnect_after_s=60.0)
    try:
        with pytest.raises(ccxt_async.NetworkError):
            await broker.connect()
        placed = await broker.place(SYMBOL, "buy", 100.0, "rest-1-0-0", await _far_bid(client))
        assert placed.status == "open"
        assert (broker.sent_over_socket, broker.sent_over_rest) == (0, 1)
        await _until_status(broker, "rest-1-0-0", "open")
    finally:
        await broker.close()


async def test_a_request_arriving_after_its_time_to_live_is_refused_over_the_socket(
    broker: DeribitWsBroker,
) -> None:
    """The venue's refusal comes back as ccxt's exception for its code, as over REST."""
    with pytest.raises(ccxt_async.ExchangeError, match="timed_out"):
        await broker.place(SYMBOL, "buy", 100.0, "late-1-0-0", None, valid_until_ms=1)
    assert broker.sent_over_socket == 1 and broker.connected
