"""``hedger run``: wire config, paper venue, venues, journal and engine, and run until told.

The embedded paper venue (a venue with a ``paper:`` block) is started in-process on
loopback and the venue is pointed at it, so the daemon's live path (native websocket feed,
ccxt REST client, journal) runs exactly as it would against Deribit. Its simulated clock is
the engine's clock, so a venue sped up for a demo or a test is hedged on its own time.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from hedger.config import Config, Venue, VenueUrls
from hedger.engine import Engine
from hedger.journal import Journal
from hedger.paper.run import build_server
from hedger.paper.server import PaperVenueServer
from hedger.venues import VenueLink

log = structlog.get_logger("hedger.runner")

SHUTDOWN_TIMEOUT_S = 20.0


@dataclass
class Daemon:
    """Everything one ``hedger run`` owns, in start order (stopped in reverse)."""

    cfg: Config
    engine: Engine
    journal: Journal
    paper: dict[str, PaperVenueServer] = field(default_factory=dict)
    extras: list[Callable[[], object]] = field(default_factory=list)


async def start_paper_venues(cfg: Config) -> tuple[Config, dict[str, PaperVenueServer]]:
    """Start each embedded paper venue; return the config with its venues pointed at them."""
    servers: dict[str, PaperVenueServer] = {}
    venues: dict[str, Venue] = {}
    for name, venue in cfg.venues.items():
        if venue.paper is None:
            venues[name] = venue
            continue
        paper = venue.paper
        server = build_server(
            host=paper.host,
            port=paper.port,
            scenario=paper.scenario,
            seed=paper.seed,
            ticks_per_second=paper.ticks_per_second,
            speed=paper.speed,
            history_minutes=max(60, int(paper.history / 60)),
        )
        await server.start()
        servers[name] = server
        venues[name] = venue.model_copy(
            update={"urls": VenueUrls(rest=server.rest_url, ws=server.ws_url)}
        )
        log.info("paper_venue_embedded", venue=name, rest=server.rest_url, speed=paper.speed)
    return cfg.model_copy(update={"venues": venues}), servers


async def start_daemon(cfg: Config) -> Daemon:
    cfg, servers = await start_paper_venues(cfg)
    clock = None
    if servers:
        clock = next(iter(servers.values())).sim_now_ms
    journal = Journal(cfg.journal.path)
    links = {name: VenueLink(name, venue) for name, venue in cfg.venues.items()}
    engine = Engine(cfg, links, journal, clock_ms=clock)
    try:
        await engine.start()
    except BaseException:
        await engine.stop(cancel_open_orders=False)
        for server in servers.values():
            await server.stop()
        journal.close()
        raise
    return Daemon(cfg, engine, journal, servers)


async def stop_daemon(daemon: Daemon, cancel_open_orders: bool = True) -> None:
    try:
        await asyncio.wait_for(daemon.engine.stop(cancel_open_orders), SHUTDOWN_TIMEOUT_S)
    except TimeoutError:
        log.error("shutdown_timeout", seconds=SHUTDOWN_TIMEOUT_S)
    for stop in reversed(daemon.extras):
        with contextlib.suppress(Exception):
            result = stop()
            if asyncio.iscoroutine(result):
                await result
    for server in daemon.paper.values():
        await server.stop()
    daemon.journal.close()
    log.info("daemon_stopped")


async def run_forever(cfg: Config, config_path: str | None = None) -> int:
    """Run until SIGINT/SIGTERM; exit code 0 on a clean stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    daemon = await start_daemon(cfg)
    await stop.wait()
    log.info("shutdown_requested")
    await stop_daemon(daemon)
    return 0
