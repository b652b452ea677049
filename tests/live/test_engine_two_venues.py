"""One portfolio across two venues: positions from both count, the hedge lands where the
config says.

Two embedded paper venues (two ports, two "exchanges"): ``spot`` and ``perps``. The BTC factor
is hedged on ``perps``; a BTC perp position opened by someone on ``spot`` is part of the
book, so the daemon hedges it away on ``perps`` and never sends an order to ``spot``.
"""

from __future__ import annotations

from pathlib import Path

import ccxt.async_support as ccxt

from hedger.config import Config, load_config
from hedger.live.daemon import start_daemon, stop_daemon
from tests.live.conftest import ROOT
from tests.live.test_engine_paper import wait_for


def two_venue_config(tmp_path: Path) -> Config:
    """``config/paper-two-venues.yaml``, both venues sped up alike (their clocks agree)."""
    cfg = load_config(ROOT / "config" / "paper-two-venues.yaml")
    venues = {}
    for name, venue in cfg.venues.items():
        assert venue.paper is not None
        fast = venue.paper.model_copy(update={"speed": 40.0, "ticks_per_second": 20.0})
        venues[name] = venue.model_copy(update={"paper": fast})
    return cfg.model_copy(
        update={
            "venues": venues,
            "hedge": cfg.hedge.model_copy(update={"max_decision_age": 120.0}),
            "journal": cfg.journal.model_copy(update={"path": str(tmp_path / "j.sqlite")}),
        }
    )


async def test_positions_of_both_venues_count_and_the_hedge_lands_on_its_venue(
    tmp_path: Path,
) -> None:
    daemon = await start_daemon(two_venue_config(tmp_path), serve_http=False)
    engine = daemon.engine
    try:
        assert set(daemon.paper) == {"spot", "perps"}
        assert daemon.paper["spot"].rest_url != daemon.paper["perps"].rest_url
        await wait_for(lambda: any(h.result == "filled" for h in engine.recent_hedges), 30)
        await wait_for(lambda: engine.inside_band() is True and not engine.hedging, 30)
        assert {h.venue for h in engine.recent_hedges} == {"perps"}
        hedges_before = len(engine.recent_hedges)

        # Someone shorts 2 BTC of perps on the other venue: the book is now over-hedged.
        spot = ccxt.deribit(
            {
                "apiKey": "paper",
                "secret": "paper",
                "urls": {"api": {"rest": daemon.paper["spot"].rest_url}},
            }
        )
        try:
            await spot.load_markets()
            await spot.create_order("BTC/USD:BTC", "market", "sell", 180_000)
        finally:
            await spot.close()
        await engine.refresh_positions()
        assert any(p.instrument.venue == "spot" for p in engine.positions)
        await wait_for(lambda: len(engine.recent_hedges) > hedges_before, 30)
        new = list(engine.recent_hedges)[hedges_before:]
        assert {h.venue for h in new} == {"perps"} and {h.side for h in new} == {"buy"}
        spot_orders = daemon.paper["spot"].exchange.engine.orders.values()
        assert all(not o.label.startswith(engine.cfg.name) for o in spot_orders)
    finally:
        await stop_daemon(daemon)
