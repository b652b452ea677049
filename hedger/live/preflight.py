"""Preflight: prove the daemon whole before anything can trade.

Every listener bound, the journal locked, open and writable, every venue reachable and
authenticated, every hedge instrument listed, every holding priced. ``hedger run`` runs
these before the engine starts (so a daemon that cannot serve its HTTP port never sends an
order first and crashes after); ``hedger check-config --online`` runs the same checks and
trades nothing. A failed check is a ``StartRefusedError``: one line saying what and why, and
the exit code an init system can act on (2: the configuration must change; 1: the
environment refused).
"""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

import ccxt.async_support as ccxt_async

from hedger.config import Config
from hedger.config.portfolio import declared_positions
from hedger.core.exposure import Position, build_book
from hedger.execution.journal import Journal
from hedger.live.lockfile import JournalLock, JournalLockedError
from hedger.live.venue_link import VenueLink
from hedger.market.universe import UniverseError, build_universe

EXIT_RUNTIME = 1
EXIT_CONFIG = 2
IN_MEMORY = ":memory:"


class StartRefusedError(Exception):
    """The daemon cannot run as configured; ``check`` names which check refused it."""

    def __init__(self, check: str, message: str, exit_code: int = EXIT_RUNTIME) -> None:
        super().__init__(message)
        self.check = check
        self.message = message
        self.exit_code = exit_code


def refusal(exc: BaseException) -> StartRefusedError:
    """Any start-up failure as a refusal: known ones keep their words, the rest their type."""
    if isinstance(exc, StartRefusedError):
        return exc
    if isinstance(exc, UniverseError):
        return StartRefusedError("universe", str(exc), EXIT_CONFIG)
    if isinstance(exc, ccxt_async.AuthenticationError):
        return StartRefusedError(
            "venue", f"authentication refused: {_first_line(exc)}", EXIT_CONFIG
        )
    return StartRefusedError("start-up", f"{type(exc).__name__}: {_first_line(exc)}", EXIT_RUNTIME)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _os_reason(exc: OSError) -> str:
    # asyncio words a bind failure as a sentence around the errno; the errno says it all.
    return os.strerror(exc.errno) if exc.errno else str(exc)


# --- journal -----------------------------------------------------------------------------------


def lock_journal(path: str) -> JournalLock | None:
    """Hold the journal's lock for the life of the process (None for an in-memory journal)."""
    if path == IN_MEMORY:
        return None
    lock = JournalLock(path)
    try:
        lock.acquire()
    except JournalLockedError as exc:
        raise StartRefusedError("lock", str(exc)) from None
    except OSError as exc:
        where = exc.filename or lock.path
        raise StartRefusedError(
            "journal", f"journal {path}: cannot create {where}: {_os_reason(exc)}"
        ) from None
    return lock


def _prove_writable(path: str) -> None:
    """Write and roll back: SQLite opens a file it may not write read-only, and says so
    only at the first write, which would be the first order's."""
    if path == IN_MEMORY:
        return
    db = sqlite3.connect(path, isolation_level=None)
    try:
        (version,) = db.execute("PRAGMA user_version").fetchone()
        db.execute("BEGIN IMMEDIATE")
        db.execute(f"PRAGMA user_version = {int(version)}")
        db.execute("ROLLBACK")
    finally:
        db.close()


def open_journal(path: str) -> Journal:
    try:
        journal = Journal(path)
    except (OSError, sqlite3.Error) as exc:
        raise StartRefusedError("journal", f"journal {path}: cannot open: {exc}") from None
    try:
        _prove_writable(path)
    except (OSError, sqlite3.Error) as exc:
        journal.close()
        raise StartRefusedError("journal", f"journal {path}: not writable: {exc}") from None
    return journal


def check_journal(path: str) -> str:
    """The journal as ``hedger run`` would need it, left as found: no daemon holds it and
    it can be written. Its schema is not touched (a running daemon's may be older)."""
    lock = lock_journal(path)
    if lock is not None:
        lock.release()
    try:
        _prove_writable(path)
    except (OSError, sqlite3.Error) as exc:
        raise StartRefusedError("journal", f"journal {path}: not writable: {exc}") from None
    return f"journal {path}: free and writable"


# --- listeners ---------------------------------------------------------------------------------


def listen_refused(what: str, host: str, port: int, exc: OSError) -> StartRefusedError:
    return StartRefusedError("listener", f"{what} {host}:{port}: cannot listen: {_os_reason(exc)}")


def probe_listener(what: str, host: str, port: int) -> str:
    """Bind and let go: the port ``hedger run`` would serve on is free now."""
    try:
        socket.create_server((host, port)).close()
    except OSError as exc:
        raise listen_refused(what, host, port, exc) from None
    return f"{what} {host}:{port}: free"


# --- venues and the book -----------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class VenuesChecked:
    """What the venue checks proved (one line each), and each venue account as read."""

    lines: list[str]
    accounts: dict[str, list[Position]]
    """per venue: its positions and its balances (coin equity, as spot rows), as the
    engine's first book will count them"""


async def check_venues(cfg: Config, links: Mapping[str, VenueLink]) -> list[str]:
    """Connect and authenticate every venue, then price the whole book as the engine will
    (``preflight_venues``); one line per check passed."""
    return (await preflight_venues(cfg, links)).lines


async def preflight_venues(cfg: Config, links: Mapping[str, VenueLink]) -> VenuesChecked:
    """Connect and authenticate every venue, then price the whole book as the engine will.

    Reading positions and balances is the authenticated call every venue answers. The book
    is the engine's first one (declared holdings plus venue positions), so an unknown hedge
    instrument or an asset no venue lists is found here, before the first order.
    """
    positions = declared_positions(cfg)
    accounts: dict[str, list[Position]] = {}
    lines = []
    for name, link in links.items():
        try:
            await link.connect()
            held = await link.positions()
        except ccxt_async.BaseError as exc:
            refused = refusal(exc)
            raise StartRefusedError(
                "venue", f"venue {name}: {refused.message}", refused.exit_code
            ) from None
        accounts[name] = held
        if cfg.portfolio.include_venue_positions:
            positions += held
        network = "testnet" if link.cfg.testnet else "mainnet"
        if link.cfg.paper is not None:
            network = "paper venue"
        lines.append(
            f"venue {name}: connected ({len(link.markets)} markets, {network}), authenticated"
        )
    book = build_book(positions, cfg.factor_assets)
    try:
        universe = build_universe(
            book,
            positions,
            {name: link.markets for name, link in links.items()},
            cfg.factors,
            cfg.portfolio.reference.implied_vols,
        )
    except UniverseError as exc:
        raise refusal(exc) from None
    lines += [
        f"factor {f.asset}: hedged with {f.hedge.symbol} on {f.hedge.venue}" for f in cfg.factors
    ]
    lines += [f"asset {asset}: priced by {src}" for asset, src in universe.price_source.items()]
    return VenuesChecked(lines, accounts)
