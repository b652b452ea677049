"""A paper venue on a loopback port for the feed tests, and polling helpers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from hedger.paper.server import PaperVenueServer
from tests.paper.conftest import make_server

PERP = "BTC-PERPETUAL"
ETH_PERP = "ETH-PERPETUAL"


@pytest.fixture
async def venue() -> AsyncIterator[PaperVenueServer]:
    # Short history: the feeds never read it, and it dominates the venue's start-up time.
    server = make_server(ticks_per_second=20.0, history_minutes=10)
    await server.start()
    yield server
    await server.stop()


def an_option(server: PaperVenueServer) -> str:
    """The first listed BTC option (names like BTC-25NOV26-87000-C)."""
    names = [i.instrument_name for i in server.exchange.market.universe.instruments]
    return next(n for n in names if n.startswith("BTC-") and n.count("-") == 3)


async def eventually(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll ``condition`` every few ms; fail with a clear message after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.01)
