"""``hedger run``: wire config, paper venue, venues, journal and engine, and run until told.

The embedded paper venue (a venue with a ``paper:`` block) is started in-process on
loopback and the venue is pointed at it, so the daemon's live path (native websocket feed,
ccxt REST client, journal) runs exactly as it would against Deribit. Its simulated clock is
the engine's clock, so a venue sped up for a demo or a test is hedged on its own time.

Start-up is ordered so that nothing can trade before the daemon is whole: the journal's
lock first (a second daemon on the same journal stops before it connects anywhere), then
the journal, every listener, the preflight of every venue (``hedger.live.preflight``), and only
then the engine. Any refusal is journaled (``start_refused``) where a journal is open, and
everything started so far is stopped again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from watchfiles import awatch

from hedger import __version__
from hedger.config import Config, Venue, VenueUrls
from hedger.execution.journal import Journal
from hedger.live.control import Control
from hedger.live.engine import Engine
from hedger.live.lockfile import JournalLock
from hedger.live.preflight import (
    EXIT_CONFIG,
    StartRefusedError,
    VenuesChecked,
    check_journal,
    check_venues,
    listen_refused,
    lock_journal,
    open_journal,
    preflight_venues,
    probe_listener,
    refusal,
)
from hedger.live.venue_link import VenueLink
from hedger.obs.http import HttpServer, build_app
from hedger.obs.logging import redact_text
from hedger.obs.metrics import build_registry
from hedger.paper.serve import build_server
from hedger.paper.server import PaperVenueServer
from hedger.tasks import cancel_all

log = structlog.get_logger("hedger.live.daemon")

SHUTDOWN_TIMEOUT_S = 20.0


@dataclass
class Daemon:
    """Everything one ``hedger run`` owns, in start order (stopped in reverse)."""

    cfg: Config
    engine: Engine
    journal: Journal
    control: Control
    paper: dict[str, PaperVenueServer] = field(default_factory=dict)
    http: HttpServer | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    lock: JournalLock | None = None


async def stop_paper_venues(servers: dict[str, PaperVenueServer]) -> None:
    for server in servers.values():
        await server.stop()


async def start_paper_venues(cfg: Config) -> tuple[Config, dict[str, PaperVenueServer]]:
    """Start each embedded paper venue; return the config with its venues pointed at them.

    Raises ``StartRefusedError`` (with the venues started so far stopped again) when one cannot
    be built or cannot listen."""
    servers: dict[str, PaperVenueServer] = {}
    venues: dict[str, Venue] = {}
    for name, venue in cfg.venues.items():
        if venue.paper is None:
            venues[name] = venue
            continue
        paper = venue.paper
        try:
            server = build_server(
                host=paper.host,
                port=paper.port,
                scenario=paper.scenario,
                seed=paper.seed,
                ticks_per_second=paper.ticks_per_second,
                speed=paper.speed,
                history_minutes=max(60, int(paper.history / 60)),
                faults=paper.faults,
            )
        except ValueError as exc:
            await stop_paper_venues(servers)
            raise StartRefusedError("config", f"venues.{name}.paper: {exc}", EXIT_CONFIG) from None
        try:
            await server.start()
        except OSError as exc:
            await stop_paper_venues(servers)
            what = f"paper venue {name}"
            raise listen_refused(what, paper.host, paper.port, exc) from None
        servers[name] = server
        venues[name] = venue.model_copy(
            update={"urls": VenueUrls(rest=server.rest_url, ws=server.ws_url)}
        )
        log.info("paper_venue_embedded", venue=name, rest=server.rest_url, speed=paper.speed)
    return cfg.model_copy(update={"venues": venues}), servers


async def start_daemon(
    file_cfg: Config,
    config_path: str | None = None,
    *,
    force_dry_run: bool = False,
    serve_http: bool = True,
    watch_config: bool = True,
) -> Daemon:
    """Start everything ``hedger run`` runs; ``file_cfg`` is the config as the file says.

    Raises ``StartRefusedError`` if the daemon cannot run whole; nothing has traded then.
    """
    cfg = file_cfg
    if force_dry_run:
        cfg = cfg.model_copy(update={"limits": cfg.limits.model_copy(update={"dry_run": True})})
    async with contextlib.AsyncExitStack() as undo:
        lock = lock_journal(cfg.journal.path)
        if lock is not None:
            undo.callback(lock.release)
        journal = open_journal(cfg.journal.path)
        undo.callback(journal.close)
        try:
            cfg, servers = await start_paper_venues(cfg)
            undo.push_async_callback(stop_paper_venues, servers)
            clock = next(iter(servers.values())).sim_now_ms if servers else None
            links = {name: VenueLink(name, venue) for name, venue in cfg.venues.items()}
            engine = Engine(cfg, links, journal, clock_ms=clock)
            undo.push_async_callback(engine.stop, False)  # closes the links
            control = Control(engine, file_cfg, config_path, force_dry_run)
            daemon = Daemon(cfg, engine, journal, control, servers, lock=lock)
            if serve_http:
                daemon.http = await _serve_http(cfg, engine, control, undo)
            await check_venues(cfg, links)
            # The port already answers (probes say "not ready"); a reload waits for the
            # engine to be whole rather than rebuild a half-started one.
            async with control._lock:
                await engine.start()
        except Exception as exc:
            refused = refusal(exc)
            journal.record_event(
                now_ms=int(time.time() * 1000),
                kind="start_refused",
                payload={
                    "check": refused.check,
                    "reason": redact_text(refused.message),
                    "exit_code": refused.exit_code,
                },
            )
            raise refused from (None if refused is exc else exc)
        undo.pop_all()
    journal.record_daemon_started(now_ms=engine.clock_ms(), payload=_run_facts(daemon))
    if watch_config and config_path is not None:
        engine.tasks.spawn(watch_file(control, config_path), "config-watch")
    return daemon


def _run_facts(daemon: Daemon) -> dict[str, object]:
    """What a run was, for the journal's reader: which daemon, on which venues, and how."""
    venues = {
        name: "paper" if venue.paper else ("testnet" if venue.testnet else "mainnet")
        for name, venue in daemon.cfg.venues.items()
    }
    return {
        "name": daemon.cfg.name,
        "pid": os.getpid(),
        "version": __version__,
        "config_version": daemon.control.version,
        "config_path": daemon.control.config_path,
        "venues": venues,
        "trading_state": daemon.engine.trading_state,
        "http": None if daemon.http is None else daemon.http.url,
    }


async def _serve_http(
    cfg: Config, engine: Engine, control: Control, undo: contextlib.AsyncExitStack
) -> HttpServer:
    token = cfg.http.token.get_secret_value() if cfg.http.token else None
    app = build_app(engine, control, build_registry(engine, control), token)
    http = HttpServer(app, cfg.http.host, cfg.http.port)
    undo.push_async_callback(http.stop)
    try:
        await http.start()
    except OSError as exc:
        raise listen_refused("http", cfg.http.host, cfg.http.port, exc) from None
    log.info("http_started", url=http.url, control=token is not None)
    return http


async def check_online(cfg: Config) -> VenuesChecked:
    """``hedger run``'s preflight without trading (``check-config --online``): the journal
    free and writable, every listener free, every venue authenticated, the book priced.
    Returns one line per check passed and each venue account as read; raises
    ``StartRefusedError`` at the first check that fails."""
    passed = [check_journal(cfg.journal.path)]
    cfg, servers = await start_paper_venues(cfg)
    passed += [f"paper venue {name}: listening at {s.rest_url}" for name, s in servers.items()]
    links: dict[str, VenueLink] = {}
    try:
        passed.append(probe_listener("http", cfg.http.host, cfg.http.port))
        links = {name: VenueLink(name, venue) for name, venue in cfg.venues.items()}
        checked = await preflight_venues(cfg, links)
    finally:
        for link in links.values():
            await link.close()
        await stop_paper_venues(servers)
    return VenuesChecked(passed + checked.lines, checked.accounts)


async def watch_file(control: Control, path: str) -> None:
    """Reload when the file changes (editors replace files: watch its directory)."""
    target = Path(path).resolve()
    async for changes in awatch(target.parent, debounce=500, recursive=False):
        if any(Path(changed).resolve() == target for _, changed in changes):
            await control.reload(trigger="file")  # never raises: a refusal is journaled


async def stop_daemon(daemon: Daemon, cancel_open_orders: bool = True) -> None:
    await cancel_all(daemon.tasks)
    try:
        await asyncio.wait_for(daemon.engine.stop(cancel_open_orders), SHUTDOWN_TIMEOUT_S)
    except TimeoutError:
        log.error("shutdown_timeout", seconds=SHUTDOWN_TIMEOUT_S)
    daemon.journal.record_daemon_stopped(
        now_ms=daemon.engine.clock_ms(),
        payload={
            "trading_state": daemon.engine.trading_state,
            "cancel_open_orders": cancel_open_orders,
        },
    )
    if daemon.http is not None:
        await daemon.http.stop()
    await stop_paper_venues(daemon.paper)
    daemon.journal.close()
    if daemon.lock is not None:
        daemon.lock.release()
    log.info("daemon_stopped")


async def run_forever(
    cfg: Config, config_path: str | None = None, force_dry_run: bool = False
) -> int:
    """Run until SIGINT/SIGTERM (SIGHUP reloads); exit code 0 on a clean stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    daemon = await start_daemon(cfg, config_path, force_dry_run=force_dry_run)

    def on_sighup() -> None:
        # Supervised like every task of the daemon: a reload that escapes its own error
        # handling halts with the reason instead of vanishing.
        daemon.engine.tasks.spawn(
            daemon.control.reload(trigger="sighup"), "reload-sighup", forever=False
        )

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    await stop.wait()
    log.info("shutdown_requested")
    await stop_daemon(daemon, cancel_open_orders=cfg.hedge.cancel_open_orders_on_stop)
    return 0
