"""Deribit's cancel-on-disconnect on the paper venue: a socket with it on takes the orders it
placed with it when it closes, however it closes; orders placed over REST or another socket,
or on a socket without it, stay."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from hedger.paper.auth import ws_signature
from hedger.paper.server import PaperVenueServer
from tests.paper.conftest import ACCOUNT, admin, make_server

PERP = "BTC-PERPETUAL"


class Socket:
    """A bare JSON-RPC client on the venue's websocket (what a daemon's own socket sends)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        rpc_id = next(self._ids)
        await self.ws.send_json({"jsonrpc": "2.0", "id": rpc_id, "method": method,
                                 "params": params or {}})  # fmt: skip
        while True:
            frame = await self.ws.receive_json(timeout=5)
            if frame.get("id") == rpc_id:
                return frame

    async def auth(self) -> None:
        now = int(time.time() * 1000)
        answer = await self.call(
            "public/auth",
            {"grant_type": "client_signature", "client_id": ACCOUNT.api_key, "timestamp": now,
             "nonce": str(now), "data": "",
             "signature": ws_signature(ACCOUNT.secret, now, str(now))},
        )  # fmt: skip
        assert "access_token" in answer["result"]


@pytest.fixture
async def venue() -> AsyncIterator[PaperVenueServer]:
    server = make_server(history_minutes=0)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as made:
        yield made


async def _socket(session: aiohttp.ClientSession, venue: PaperVenueServer) -> Socket:
    socket = Socket(await session.ws_connect(venue.ws_url))
    await socket.auth()
    return socket


def _far_bid(venue: PaperVenueServer) -> float:
    """A buy price on the tick that will not fill for the test's seconds."""
    ticker = venue.exchange.call("public/ticker", {"instrument_name": PERP}, None)
    return round(float(ticker["best_bid_price"]) * 0.8 * 2) / 2


def _state(venue: PaperVenueServer, label: str) -> str:
    (order,) = venue.exchange.call("private/get_order_state_by_label",
                                   {"currency": "BTC", "label": label}, ACCOUNT)  # fmt: skip
    return str(order["order_state"])


async def _until(condition: Any, what: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def _buy(socket: Socket, venue: PaperVenueServer, label: str) -> Any:
    answer = await socket.call(
        "private/buy",
        {"instrument_name": PERP, "amount": 100, "type": "limit", "price": _far_bid(venue),
         "label": label},
    )  # fmt: skip
    assert answer["result"]["order"]["order_state"] == "open", answer
    return answer


async def test_closing_the_socket_cancels_the_orders_placed_over_it(
    venue: PaperVenueServer, session: aiohttp.ClientSession
) -> None:
    armed = await _socket(session, venue)
    assert (await armed.call("private/enable_cancel_on_disconnect"))["result"] == "ok"
    assert (await armed.call("private/get_cancel_on_disconnect"))["result"] == {
        "scope": "connection",
        "enabled": True,
    }
    other = await _socket(session, venue)  # the same account on a socket without it
    await _buy(armed, venue, "cod-1")
    await _buy(other, venue, "cod-2")
    venue.exchange.call("private/buy", {"instrument_name": PERP, "amount": 100, "type": "limit",
                        "price": _far_bid(venue), "label": "cod-rest"}, ACCOUNT)  # fmt: skip

    await armed.ws.close()

    await _until(lambda: _state(venue, "cod-1") == "cancelled", "cod-1 cancelled")
    assert (_state(venue, "cod-2"), _state(venue, "cod-rest")) == ("open", "open")


async def test_a_dropped_socket_cancels_its_orders_too(
    venue: PaperVenueServer, session: aiohttp.ClientSession
) -> None:
    armed = await _socket(session, venue)
    await armed.call("private/enable_cancel_on_disconnect", {"scope": "connection"})
    await _buy(armed, venue, "drop-1")
    await admin(venue, "/admin/drop-ws")  # the network, not the client, ends it
    await _until(lambda: _state(venue, "drop-1") == "cancelled", "drop-1 cancelled")


async def test_without_it_a_closed_socket_leaves_its_orders(
    venue: PaperVenueServer, session: aiohttp.ClientSession
) -> None:
    plain = await _socket(session, venue)
    await _buy(plain, venue, "plain-1")
    await plain.ws.close()
    deadline = time.monotonic() + 5.0
    while (await admin(venue, "/admin/state"))["connections"]:
        assert time.monotonic() < deadline, "the venue kept the closed socket"
        await asyncio.sleep(0.02)
    assert _state(venue, "plain-1") == "open"


async def test_it_needs_auth_and_takes_the_connection_scope_only(
    venue: PaperVenueServer, session: aiohttp.ClientSession
) -> None:
    anonymous = Socket(await session.ws_connect(venue.ws_url))
    refused = await anonymous.call("private/enable_cancel_on_disconnect")
    assert refused["error"]["code"] == 13009
    armed = await _socket(session, venue)
    account = await armed.call("private/enable_cancel_on_disconnect", {"scope": "account"})
    assert account["error"]["code"] == 11029
    assert (await armed.call("private/disable_cancel_on_disconnect"))["result"] == "ok"
    assert (await armed.call("private/get_cancel_on_disconnect"))["result"]["enabled"] is False
