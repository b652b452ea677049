"""At most one fill per leg through a slow network hop: real ccxt, a loopback proxy that
holds order requests past the client's timeout, the paper venue honouring ``valid_until``.

Before the fix the executor gave a timed-out request up after a fixed 1 s "not found"
grace, journaled it ``not_sent`` and sent the next attempt: requests held 5 s (client
timeout 3 s) filled one leg three times. Delays run from 0.5x to 5x the timeout (a bounded
set in CI; ``HEDGER_FULL=1`` runs the whole range).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt_async
import pytest

from hedger.execution.brokers import DeribitBroker
from hedger.execution.executor import Executor
from hedger.execution.journal import Journal
from hedger.paper.server import PaperVenueServer
from tests.execution.conftest import SYMBOL, record_intent, wall_ms
from tests.slow_hop import SlowHop

TIMEOUT_S = 0.6
DELAYS_X = (0.5, 0.9, 1.1, 2.0, 3.0, 5.0) if os.environ.get("HEDGER_FULL") else (0.5, 1.5, 5.0)


@pytest.fixture
async def hop(venue: PaperVenueServer) -> AsyncIterator[SlowHop]:
    proxy = SlowHop(venue.rest_url)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def client(hop: SlowHop) -> AsyncIterator[Any]:
    ex = ccxt_async.deribit({"apiKey": "paper", "secret": "paper"})
    ex.urls["api"] = {"rest": hop.url, "ws": "ws://127.0.0.1:9/unused"}
    ex.timeout = int(TIMEOUT_S * 1000)
    await ex.load_markets()
    yield ex
    await ex.close()


def _venue_fills(venue: PaperVenueServer, prefix: str) -> dict[str, float]:
    fills: dict[str, float] = defaultdict(float)
    for order in venue.exchange.engine.orders.values():
        if order.label.startswith(prefix) and order.filled_lots:
            fills[order.label] += order.filled_lots * order.lot
    return dict(fills)


@pytest.mark.parametrize("delay_x", DELAYS_X)
async def test_a_held_request_never_fills_a_leg_twice(
    venue: PaperVenueServer, hop: SlowHop, client: Any, tmp_path: Path, delay_x: float
) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    executor = Executor(
        journal,
        DeribitBroker(client, "paper"),
        daemon_name="t",
        clock=wall_ms,
        order_ttl_s=TIMEOUT_S,
        unknown_window_s=3 * TIMEOUT_S,
        lookup_timeout_s=10.0,
        backoff_initial_s=0.05,
        backoff_max_s=0.3,
        lookup_poll_s=0.1,
    )
    seq = record_intent(journal, qty=500.0)
    hop.hold, hop.delay_s = 2, delay_x * TIMEOUT_S
    fill = await executor.execute(seq, 0, SYMBOL, "buy", 500)
    await hop.settled()  # every held request has reached the venue by now
    assert hop.landed == hop.held >= 1

    venue_fills = _venue_fills(venue, f"t-{seq}-")
    journal_fills = {
        r.client_id: r.filled_qty for r in journal.orders_of_intent(seq) if r.filled_qty
    }
    assert sum(venue_fills.values()) <= 500, venue_fills
    assert journal_fills == venue_fills
    assert fill.filled_total == 500
    if delay_x > 1:
        assert venue.expired_requests >= 1  # the late request was refused at the door
