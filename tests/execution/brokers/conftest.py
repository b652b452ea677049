"""What the per-venue broker tests share: a loopback venue, the real ccxt client built from a
venue config, the hedge sized by the core, and the executor that mints the client id and
sends it.

Each test reads as the daemon's path for one hedge: the configured instrument is mapped
through ccxt's markets (``hedger.market.symbols``), the factor's deviation is sized in the
venue's amount units and lots (``hedger.core.policy``), the executor mints the client id in
the venue's rules and sends the order through the venue's broker, and the broker looks the
id up again; the requests the venue received are then compared with what its API
documents, field by field.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hedger.config import Venue
from hedger.config.models import VenueUrls
from hedger.core.policy import round_to_lot
from hedger.execution.brokers import Broker, make_broker
from hedger.execution.executor import Executor, Fill
from hedger.execution.journal import Journal
from hedger.live.venue_client import make_client
from hedger.market.symbols import VenueInstrument, instrument, resolve
from tests.ccxt_loopback.server import LoopbackVenue, Request

DAEMON = "alt-book"


@dataclass
class Leg:
    """One hedge through one venue: what was mapped and sized, and what happened."""

    instrument: VenueInstrument
    amount: float
    fill: Fill


@dataclass
class VenueUnderTest:
    server: LoopbackVenue
    client: Any
    broker: Broker
    journal: Journal

    async def hedge(
        self,
        configured: str,
        side: str,
        factor_units: float,
        factor_price: float,
        order_ttl_s: float | None = None,
    ) -> Leg:
        """Map ``configured`` to a market, size ``factor_units`` of delta at
        ``factor_price`` in its lots, and send it through the executor."""
        market = resolve(self.client.markets, configured)
        mapped = instrument("v", self.client.id, market, self.client.precisionMode)
        hedge = mapped.hedge_market()
        amount = round_to_lot(hedge.amount_for(factor_units, factor_price), hedge.amount_step)
        amount = self.broker.round_amount(mapped.symbol, amount)
        seq = self.journal.record_intent(
            now_ms=_wall_ms(),
            factor=mapped.asset,
            symbol=mapped.symbol,
            side=side,
            qty=amount,
            notional_usd=hedge.notional_usd(amount, factor_price),
            reason="test",
            decision={},
        )
        executor = Executor(
            self.journal,
            self.broker,
            daemon_name=DAEMON,
            clock=_wall_ms,
            order_ttl_s=order_ttl_s,
            lookup_timeout_s=5.0,
            unknown_window_s=1.0,
        )
        fill = await executor.execute(seq, 0, mapped.symbol, side, amount)
        return Leg(mapped, amount, fill)


def _wall_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
async def under_test(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """``under_test(venue_side, Venue(...))``: the loopback server of ``venue_side``'s routes,
    the ccxt client the config makes pointed at it (markets loaded), and its broker."""
    opened: list[VenueUnderTest] = []

    async def open_venue(routes: dict[tuple[str, str], Any], cfg: Venue) -> VenueUnderTest:
        server = LoopbackVenue(routes)
        base = await server.start()
        client = make_client(cfg.model_copy(update={"urls": VenueUrls(rest=base)}))
        made = VenueUnderTest(
            server,
            client,
            make_broker(client, "v", cfg.exchange, cfg.label_max_len),
            Journal(tmp_path / f"{cfg.exchange}.sqlite"),
        )
        opened.append(made)
        await client.load_markets()
        return made

    yield open_venue
    for made in opened:
        await made.client.close()
        await made.server.stop()
        made.journal.close()


VOLATILE = frozenset({"timestamp", "signature", "recvWindow"})


def wire(
    requests: Iterable[Request], volatile: frozenset[str] = VOLATILE
) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """Each request as (method, path, query pairs in order) with the values of
    ``volatile`` keys (clock, signature) blanked: the fixtures check those themselves."""
    return [
        (r.method, r.path, [(k, "*" if k in volatile else v) for k, v in r.query]) for r in requests
    ]
