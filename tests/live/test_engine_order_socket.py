"""The daemon sends Deribit hedge orders over its own socket with cancel-on-disconnect.

When the daemon's socket goes (its network, its process), the venue cancels what that socket
left resting: no order outlives the connection that placed it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from hedger.execution.brokers.deribit_ws import DeribitWsBroker
from hedger.live.daemon import start_daemon, stop_daemon
from tests.live.conftest import paper_config
from tests.live.test_engine_paper import wait_for
from tests.paper.conftest import admin

SYMBOL = "BTC-PERPETUAL"


async def test_cutting_the_daemons_socket_cancels_its_resting_hedge_order(tmp_path: Path) -> None:
    daemon = await start_daemon(paper_config(tmp_path), serve_http=False)
    engine = daemon.engine
    link = engine.links["paper"]
    broker = link.broker
    assert isinstance(broker, DeribitWsBroker) and broker.connected
    try:
        await wait_for(lambda: any(h.result == "filled" for h in engine.recent_hedges), 30)
        await wait_for(lambda: not engine.hedging)
        assert broker.sent_over_socket >= 1, "the opening hedge did not go over the socket"
        engine.pause("test: a resting order of our own")
        seq = engine.journal.record_intent(
            now_ms=engine.clock_ms(),
            factor="BTC",
            symbol=SYMBOL,
            side="buy",
            qty=1_000.0,
            notional_usd=1_000.0,
            reason="test",
            decision={},
        )
        bid = float(link.market.state.bid[link.market.state.rows[SYMBOL]])  # type: ignore[union-attr]
        far = link.broker.round_price("BTC/USD:BTC", bid * 0.8)
        leg = asyncio.create_task(
            engine.executors["paper"].execute(
                seq, 0, SYMBOL, "buy", 1_000.0, limit_price=far, limit_timeout_s=600
            )
        )
        deadline = time.monotonic() + 10
        while not any(o.status == "open" for o in engine.journal.orders_of_intent(seq)):
            assert time.monotonic() < deadline and not leg.done(), "the limit never rested"
            await asyncio.sleep(0.02)
        (resting,) = [o for o in engine.journal.orders_of_intent(seq) if o.status == "open"]

        await admin(daemon.paper["paper"], "/admin/drop-ws")  # the daemon's network goes

        venue_orders = daemon.paper["paper"].exchange.engine.orders.values()
        await wait_for(
            lambda: any(
                o.label == resting.client_id and o.state == "cancelled" for o in venue_orders
            ),
            10,
        )
        leg.cancel()
    finally:
        await stop_daemon(daemon)
