"""A real paper venue on an ephemeral loopback port, and real ccxt clients pointed at it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pytest

from hedger.paper.auth import ApiKey
from hedger.paper.faults import Faults
from hedger.paper.server import PaperVenueServer
from hedger.paper.venue import PaperExchange

ACCOUNT = ApiKey("paper", "paper", "paper")


def make_server(ticks_per_second: float = 20.0, history_minutes: int = 6 * 60) -> PaperVenueServer:
    exchange = PaperExchange(
        {ACCOUNT.api_key: ACCOUNT},
        scenario="stress-switching",
        seed=11,
        start_ms=int(time.time() * 1000),
        history_minutes=history_minutes,
        faults=Faults(),
    )
    return PaperVenueServer(exchange, ticks_per_second=ticks_per_second)


@pytest.fixture
async def venue() -> AsyncIterator[PaperVenueServer]:
    server = make_server()
    await server.start()
    yield server
    await server.stop()


def point_at(client: Any, server: PaperVenueServer, timeout_ms: int = 5_000) -> Any:
    client.urls["api"] = server.ccxt_urls()
    client.timeout = timeout_ms
    return client


@pytest.fixture
async def rest(venue: PaperVenueServer) -> AsyncIterator[Any]:
    client = point_at(ccxt_async.deribit({"apiKey": "paper", "secret": "paper"}), venue)
    yield client
    await client.close()


@pytest.fixture
async def pro(venue: PaperVenueServer) -> AsyncIterator[Any]:
    client = point_at(ccxt_pro.deribit({"apiKey": "paper", "secret": "paper"}), venue)
    yield client
    await client.close()


async def admin(venue: PaperVenueServer, path: str, body: dict[str, Any] | None = None) -> Any:
    """The venue's admin endpoint: GET /admin/state, POST anything else with a JSON body."""
    async with aiohttp.ClientSession() as session:
        if body is None and path == "/admin/state":
            async with session.get(venue.rest_url + path) as response:
                return await response.json()
        async with session.post(venue.rest_url + path, json=body or {}) as response:
            assert response.status == 200, await response.text()
            return await response.json()
