"""Append-only SQLite journal of decisions, orders, fills and config changes.

The journal is the daemon's memory across restarts and its answer to "why did it trade?".
Two rules make double-trading impossible to hide:

- Every hedge intent takes its sequence number from the journal, and every order's client
  id derives from (daemon name, intent sequence, leg, attempt); sequences never repeat, so
  neither do ids, across restarts.
- An order row is committed (fsync'd) *before* its request is sent. After a crash, any
  order not known to be final is looked up on the venue by its id before anything new goes.

WAL mode lets readers (status endpoint, operators with sqlite3) read while the engine writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

SCHEMA = """
CREATE TABLE IF NOT EXISTS intents (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    created_ms INTEGER NOT NULL,
    factor TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    qty REAL NOT NULL,
    notional_usd REAL NOT NULL,
    reason TEXT NOT NULL,
    decision TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    client_id TEXT PRIMARY KEY,
    intent_seq INTEGER NOT NULL REFERENCES intents(seq),
    leg INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    venue TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    qty REAL NOT NULL,
    status TEXT NOT NULL,
    venue_order_id TEXT,
    filled_qty REAL NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    valid_until_ms INTEGER,
    average_price REAL,
    fee REAL,
    fee_currency TEXT
);
CREATE INDEX IF NOT EXISTS orders_status ON orders(status);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    client_id TEXT,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trading_states (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    by TEXT NOT NULL,
    consecutive_errors INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sent_notional (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    notional_usd REAL NOT NULL,
    client_id TEXT
);
CREATE INDEX IF NOT EXISTS sent_notional_ts ON sent_notional(ts_ms);
CREATE TABLE IF NOT EXISTS option_premiums (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    premium_usd REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS config_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    version TEXT NOT NULL,
    diff TEXT NOT NULL
);
"""

ORDER_COLUMNS_ADDED = (
    ("valid_until_ms", "INTEGER"),
    ("average_price", "REAL"),
    ("fee", "REAL"),
    ("fee_currency", "TEXT"),
)
"""Order columns newer than the first schema, oldest first: ``_migrate`` adds them."""

# Event kinds of the daemon's life and of refusals, named once for writers and readers.
EVENT_DAEMON_STARTED = "daemon_started"
EVENT_DAEMON_STOPPED = "daemon_stopped"
EVENT_HEDGE_REFUSED = "hedge_refused"
EVENT_RELOAD_REFUSED = "config_reload_refused"

FINAL_STATUSES = frozenset({"filled", "cancelled", "rejected", "not_sent", "lost"})
"""Statuses after which an order can never fill again; anything else needs reconciling.

``not_sent`` is only for a request that provably never reached the venue (refused before the
socket, or looked up in vain after its venue-side time-to-live passed). ``lost``: an
abandoned request never seen on the venue over the whole watch horizon.
"""

IN_DOUBT_STATUSES = frozenset({"pending", "unknown"})
"""The request may still reach the venue: its leg must not be sent again."""

ABANDONED = "abandoned"
"""Shown absent for the whole unknown-order window, so its leg may be resent; still looked
up (and a late fill adopted) until it is found or the watch horizon passes."""


class ClientIdTooLongError(ValueError):
    pass


def client_order_id(name: str, intent_seq: int, leg: int, attempt: int, max_len: int = 64) -> str:
    """Deterministic and unique across restarts (the sequence lives in the journal)."""
    client_id = f"{name}-{intent_seq}-{leg}-{attempt}"
    if len(client_id) > max_len:
        raise ClientIdTooLongError(f"client id {client_id!r} exceeds the venue's {max_len} chars")
    return client_id


@dataclass(slots=True, frozen=True)
class ClientOrderId:
    name: str
    intent_seq: int
    leg: int
    attempt: int


def parse_client_order_id(client_id: str) -> ClientOrderId | None:
    """The parts of one of our client ids, or None for anybody else's.

    Parsed from the right: names may contain ``-``, so a prefix test would let daemon
    ``lim`` claim (and cancel) ``lim-2f-7-0-0`` of daemon ``lim-2f``. Three numeric fields
    after the exact name is the only shape we send.
    """
    parts = client_id.rsplit("-", 3)
    if len(parts) != 4 or not all(p.isdigit() and p.isascii() for p in parts[1:]):
        return None
    return ClientOrderId(parts[0], int(parts[1]), int(parts[2]), int(parts[3]))


def is_own_client_id(client_id: str, name: str) -> bool:
    """Whether daemon ``name`` minted ``client_id``, in any venue's id shape (readable,
    OKX's alphanumeric, Hyperliquid's cloid: ``brokers/client_ids.py``)."""
    # Deferred: the brokers package loads ccxt, which readers of the journal need not.
    from hedger.execution.brokers.client_ids import is_own_client_id as minted_by

    return minted_by(client_id, name)


@dataclass(slots=True, frozen=True)
class OrderRecord:
    client_id: str
    intent_seq: int
    leg: int
    attempt: int
    venue: str
    symbol: str
    side: str
    qty: float
    status: str
    venue_order_id: str | None
    filled_qty: float
    created_ms: int
    updated_ms: int
    valid_until_ms: int | None = None
    """The venue-side time-to-live sent with the request (venue clock), if any."""
    average_price: float | None = None
    """Average fill price as the venue reports it (None until something filled)."""
    fee: float | None = None
    """Fees paid on the fills so far, in ``fee_currency`` (the settlement coin on Deribit's
    inverse contracts)."""
    fee_currency: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass(slots=True, frozen=True)
class TradingStateRecord:
    ts_ms: int
    state: str
    reason: str | None
    by: str
    consecutive_errors: int


def _json(payload: Mapping[str, Any]) -> str:
    return orjson.dumps(
        payload, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    ).decode()


class Journal:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: an order row must survive power loss, not only a crash, before we send it.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Journals written by older versions lack newer columns; add them in place (in
        the order of ``SCHEMA``, so ``SELECT *`` rows fit ``OrderRecord``)."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(orders)")}
        for name, sql_type in ORDER_COLUMNS_ADDED:
            if name not in columns:
                self._db.execute(f"ALTER TABLE orders ADD COLUMN {name} {sql_type}")

    def close(self) -> None:
        self._db.close()

    @property
    def journal_mode(self) -> str:
        return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    # -- writes ---------------------------------------------------------------------------

    def record_intent(
        self,
        *,
        now_ms: int,
        factor: str,
        symbol: str,
        side: str,
        qty: float,
        notional_usd: float,
        reason: str,
        decision: Mapping[str, Any],
    ) -> int:
        """The decision that may lead to orders; returns its sequence number."""
        cursor = self._db.execute(
            "INSERT INTO intents (created_ms, factor, symbol, side, qty, notional_usd, reason,"
            " decision) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (now_ms, factor, symbol, side, qty, notional_usd, reason, _json(decision)),
        )
        seq = cursor.lastrowid
        assert seq is not None
        return int(seq)

    def record_order(
        self,
        *,
        now_ms: int,
        client_id: str,
        intent_seq: int,
        leg: int,
        attempt: int,
        venue: str,
        symbol: str,
        side: str,
        qty: float,
        valid_until_ms: int | None = None,
    ) -> None:
        """Journal an order as ``pending`` — call before the request leaves."""
        self._db.execute(
            "INSERT INTO orders (client_id, intent_seq, leg, attempt, venue, symbol, side, qty,"
            " status, created_ms, updated_ms, valid_until_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
            (
                client_id,
                intent_seq,
                leg,
                attempt,
                venue,
                symbol,
                side,
                qty,
                now_ms,
                now_ms,
                valid_until_ms,
            ),
        )

    def update_order(
        self,
        client_id: str,
        *,
        now_ms: int,
        status: str,
        venue_order_id: str | None = None,
        filled_qty: float | None = None,
        average_price: float | None = None,
        fee: float | None = None,
        fee_currency: str | None = None,
    ) -> None:
        """The order's latest fate; fill price and fee as the venue reported them (a value
        left out keeps what the journal had)."""
        updated = self._db.execute(
            "UPDATE orders SET status = ?, venue_order_id = COALESCE(?, venue_order_id),"
            " filled_qty = COALESCE(?, filled_qty), average_price = COALESCE(?, average_price),"
            " fee = COALESCE(?, fee), fee_currency = COALESCE(?, fee_currency), updated_ms = ?"
            " WHERE client_id = ?",
            (
                status,
                venue_order_id,
                filled_qty,
                average_price,
                fee,
                fee_currency,
                now_ms,
                client_id,
            ),
        )
        if updated.rowcount != 1:
            raise KeyError(f"no journaled order {client_id!r}")

    def record_event(
        self, *, now_ms: int, kind: str, payload: Mapping[str, Any], client_id: str | None = None
    ) -> None:
        self._db.execute(
            "INSERT INTO events (ts_ms, kind, client_id, payload) VALUES (?, ?, ?, ?)",
            (now_ms, kind, client_id, _json(payload)),
        )

    def record_daemon_started(self, *, now_ms: int, payload: Mapping[str, Any]) -> None:
        """The daemon is whole and cycling (what it runs: name, pid, version, venues).
        A start with no stop since the one before it is a run that crashed or was killed."""
        self.record_event(now_ms=now_ms, kind=EVENT_DAEMON_STARTED, payload=payload)

    def record_daemon_stopped(self, *, now_ms: int, payload: Mapping[str, Any]) -> None:
        """A clean stop (signal handled, orders cancelled as configured), last of a run."""
        self.record_event(now_ms=now_ms, kind=EVENT_DAEMON_STOPPED, payload=payload)

    def record_refusal(
        self, *, now_ms: int, reason: str, intents: int, detail: Mapping[str, Any] | None = None
    ) -> None:
        """The guards refused hedges for ``reason`` (a gate or a ``limits.*`` field). Meant
        once per change of reason, not once per cycle: the journal is not a metric."""
        payload = {"reason": reason, "intents": intents, **(detail or {})}
        self.record_event(now_ms=now_ms, kind=EVENT_HEDGE_REFUSED, payload=payload)

    def record_refused_reload(self, *, now_ms: int, trigger: str, errors: list[str]) -> None:
        """A reload that changed nothing (invalid file, restart-only change), and why."""
        self.record_event(
            now_ms=now_ms, kind=EVENT_RELOAD_REFUSED, payload={"trigger": trigger, "errors": errors}
        )

    def record_trading_state(
        self, *, now_ms: int, state: str, reason: str | None, by: str, consecutive_errors: int
    ) -> None:
        """Every change of the trading state (and of the error count that trips a halt):
        the last row is what a restarted daemon resumes in."""
        self._db.execute(
            "INSERT INTO trading_states (ts_ms, state, reason, by, consecutive_errors)"
            " VALUES (?, ?, ?, ?, ?)",
            (now_ms, state, reason, by, consecutive_errors),
        )

    def record_sent_notional(
        self, *, now_ms: int, notional_usd: float, client_id: str | None = None
    ) -> None:
        """Notional sent, counted toward the rolling limits whatever its fate (a request of
        unknown fate may still fill), so a restart never resets a budget."""
        self._db.execute(
            "INSERT INTO sent_notional (ts_ms, notional_usd, client_id) VALUES (?, ?, ?)",
            (now_ms, abs(notional_usd), client_id),
        )

    def record_option_premium(self, *, now_ms: int, premium_usd: float) -> None:
        """Option premium about to be paid, counted toward the day's premium budget whatever
        the order's fate, so a restart never resets it."""
        self._db.execute(
            "INSERT INTO option_premiums (ts_ms, premium_usd) VALUES (?, ?)",
            (now_ms, abs(premium_usd)),
        )

    def option_premiums_since(self, since_ms: int) -> list[tuple[int, float]]:
        rows = self._db.execute(
            "SELECT ts_ms, premium_usd FROM option_premiums WHERE ts_ms > ? ORDER BY ts_ms, id",
            (since_ms,),
        ).fetchall()
        return [(int(ts), float(usd)) for ts, usd in rows]

    def record_config_change(self, *, now_ms: int, version: str, diff: Mapping[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO config_changes (ts_ms, version, diff) VALUES (?, ?, ?)",
            (now_ms, version, _json(diff)),
        )

    # -- reads ----------------------------------------------------------------------------

    def order(self, client_id: str) -> OrderRecord | None:
        row = self._db.execute("SELECT * FROM orders WHERE client_id = ?", (client_id,)).fetchone()
        return None if row is None else OrderRecord(*row)

    def unresolved_orders(self) -> list[OrderRecord]:
        """Orders whose outcome is not known to be final: reconcile these before trading."""
        marks = ",".join("?" * len(FINAL_STATUSES))
        rows = self._db.execute(
            f"SELECT * FROM orders WHERE status NOT IN ({marks}) ORDER BY created_ms, client_id",
            tuple(sorted(FINAL_STATUSES)),
        ).fetchall()
        return [OrderRecord(*row) for row in rows]

    def orders(self) -> list[OrderRecord]:
        """Every journaled order, oldest first."""
        rows = self._db.execute("SELECT * FROM orders ORDER BY created_ms, client_id").fetchall()
        return [OrderRecord(*row) for row in rows]

    def intent_decision(self, seq: int) -> dict[str, Any] | None:
        """What the engine knew and decided for intent ``seq`` (the journaled payload)."""
        row = self._db.execute("SELECT decision FROM intents WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else dict(orjson.loads(row[0]))

    def orders_of_intent(self, intent_seq: int) -> list[OrderRecord]:
        rows = self._db.execute(
            "SELECT * FROM orders WHERE intent_seq = ? ORDER BY leg, attempt", (intent_seq,)
        ).fetchall()
        return [OrderRecord(*row) for row in rows]

    def events(self, client_id: str | None = None) -> Iterator[tuple[int, str, dict[str, Any]]]:
        query = "SELECT ts_ms, kind, payload FROM events"
        args: tuple[Any, ...] = ()
        if client_id is not None:
            query += " WHERE client_id = ?"
            args = (client_id,)
        for ts_ms, kind, payload in self._db.execute(query + " ORDER BY id", args):
            yield int(ts_ms), str(kind), orjson.loads(payload)

    def last_trading_state(self) -> TradingStateRecord | None:
        row = self._db.execute(
            "SELECT ts_ms, state, reason, by, consecutive_errors FROM trading_states"
            " ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return None if row is None else TradingStateRecord(*row)

    def sent_notional_since(self, since_ms: int) -> list[tuple[int, float]]:
        """(ts_ms, notional_usd) of everything sent after ``since_ms``, oldest first."""
        rows = self._db.execute(
            "SELECT ts_ms, notional_usd FROM sent_notional WHERE ts_ms > ? ORDER BY ts_ms, id",
            (since_ms,),
        ).fetchall()
        return [(int(ts), float(usd)) for ts, usd in rows]

    def last_intent_seq(self) -> int:
        row = self._db.execute("SELECT MAX(seq) FROM intents").fetchone()
        return int(row[0] or 0)
