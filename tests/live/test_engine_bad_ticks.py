"""One bad tick never trades: corrupt ticker pushes injected between the paper venue and the
daemon's feed by a websocket hop.

Measured before the fix through such a proxy: a one-tick +50% spike on BTC-PERPETUAL made
it sell 447k and buy it back 100 ms later; a mark 50% outside an unchanged bid/ask likewise;
JSON ``true`` in a price field was read as 1.0 (a beta-delta of -897,063 BTC; it bought
897k); a tick stamped in the year 3000 was accepted and every real tick was then dropped as
out of order until restart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hedger.config import VenueUrls, load_config
from hedger.live.daemon import Daemon, start_daemon, stop_daemon
from hedger.paper.serve import build_server
from hedger.paper.server import PaperVenueServer
from tests.live.conftest import ROOT, with_updates
from tests.live.test_engine_paper import wait_for
from tests.tick_tamper import TickTamper

BTC = "BTC-PERPETUAL"


def _spike(data: dict[str, Any]) -> None:
    # The whole ticker, index included: the mark's "index moved too" confirmation must not
    # accept an index that jumped in the same message.
    for field in ("mark_price", "best_bid_price", "best_ask_price", "last_price", "index_price"):
        if data.get(field):
            data[field] = data[field] * 1.5


def _mark_outside_book(data: dict[str, Any]) -> None:
    data["mark_price"] = data["mark_price"] * 1.5


def _true_price(data: dict[str, Any]) -> None:
    data["mark_price"] = True


def _year_3000(data: dict[str, Any]) -> None:
    data["timestamp"] = 32_503_680_000_000


EDITS = {
    "spike": _spike,
    "mark_outside_book": _mark_outside_book,
    "true_price": _true_price,
    "year_3000": _year_3000,
}


@pytest.fixture
async def venue() -> AsyncIterator[PaperVenueServer]:
    server = build_server(ticks_per_second=20.0, history_minutes=2 * 24 * 60, seed=7)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def tamper(venue: PaperVenueServer) -> AsyncIterator[TickTamper]:
    hop = TickTamper(venue.ws_url)
    await hop.start()
    yield hop
    await hop.stop()


def _own_orders(venue: PaperVenueServer) -> int:
    return sum(1 for o in venue.exchange.engine.orders.values() if o.label.startswith("paper-"))


async def _daemon(tmp_path: Path, venue: PaperVenueServer, tamper: TickTamper) -> Daemon:
    cfg = load_config(ROOT / "config" / "paper.yaml")
    paper = cfg.venues["paper"].model_copy(
        update={"paper": None, "urls": VenueUrls(rest=venue.rest_url, ws=tamper.url)}
    )
    factor = cfg.factors[0]
    # A wide band: the market's own drift over a few seconds must not hedge, a bad tick would.
    wide = factor.model_copy(update={"band": factor.band.model_copy(update={"half_width": 2.0})})
    cfg = cfg.model_copy(
        update={
            "venues": {"paper": paper},
            "factors": [wide],
            "journal": cfg.journal.model_copy(update={"path": str(tmp_path / "j.sqlite")}),
        }
    )
    cfg = with_updates(cfg, hedge={"cooldown": 0.0})
    return await start_daemon(cfg, serve_http=False)


@pytest.mark.parametrize("bad", list(EDITS))
async def test_one_bad_tick_never_trades(
    tmp_path: Path, venue: PaperVenueServer, tamper: TickTamper, bad: str
) -> None:
    daemon = await _daemon(tmp_path, venue, tamper)
    engine = daemon.engine
    try:
        await wait_for(lambda: engine.inside_band() is True and not engine.hedging, 30)
        orders, rows = _own_orders(venue), engine.links["paper"].market
        assert rows is not None
        state = rows.state
        row = state.rows[BTC]
        stored = int(state.updates[row])
        tamper.tamper(BTC, EDITS[bad])
        await wait_for(lambda: tamper.tampered == 1, timeout_s=10)
        cycles = engine.stats.cycles
        await wait_for(lambda: engine.stats.cycles > cycles + 20, timeout_s=20)
        assert _own_orders(venue) == orders, f"a hedge went out on a {bad} tick"
        assert engine.inside_band() is True
        # The feed still stores real ticks afterwards (the year-3000 tick did not become
        # the row's high-water mark), so nothing goes stale.
        await wait_for(lambda: int(state.updates[row]) > stored + 20, timeout_s=10)
        assert not engine.stale_inputs
        if bad in ("true_price", "year_3000"):
            assert sum(state.rejected.values()) >= 1
        else:
            assert engine.stats.implausible_cycles >= 1
        if bad == "spike":  # the index moved: a hedge was due, and the gate refused it
            assert engine.stats.guard_refusals["implausible_data"] >= 1
    finally:
        await stop_daemon(daemon)
