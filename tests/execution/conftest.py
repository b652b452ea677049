"""What the executor's tests share: the paper venue with no history, and one intent."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from hedger.execution.journal import Journal
from hedger.paper.server import PaperVenueServer
from tests.paper.conftest import make_server

SYMBOL = "BTC/USD:BTC"


def wall_ms() -> int:
    return int(time.time() * 1000)


def record_intent(journal: Journal, qty: float = 100.0, now_ms: int | None = None) -> int:
    """A BTC buy of ``qty`` USD face, journaled as the decision its orders belong to."""
    return journal.record_intent(
        now_ms=wall_ms() if now_ms is None else now_ms,
        factor="BTC",
        symbol=SYMBOL,
        side="buy",
        qty=qty,
        notional_usd=qty,
        reason="test",
        decision={},
    )


@pytest.fixture
async def venue() -> AsyncIterator[PaperVenueServer]:
    server = make_server(history_minutes=0)
    await server.start()
    yield server
    await server.stop()
