"""The journal read back, read-only, as plain records: what ``hedger journal`` renders.

The file is opened read-only and its schema is never changed: a daemon may be running on it
(a migration would alter the tables under it), and a journal written by an older version
simply lacks the newer columns (fill price, fee), which are then read from the order events
where those carry them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson


class JournalReadError(Exception):
    """The journal cannot be read (missing, not a journal, corrupt): one line for the
    operator."""


@dataclass(slots=True, frozen=True)
class OrderRow:
    """One attempt of one leg, as the executor journaled it."""

    client_id: str
    intent_seq: int
    leg: int
    attempt: int
    venue: str
    symbol: str
    side: str
    amount: float
    """venue order amount (USD face on inverse contracts, coins on linear ones)"""
    status: str
    filled: float
    created_ms: int
    updated_ms: int
    average_price: float | None
    fee: float | None
    fee_currency: str | None


@dataclass(slots=True, frozen=True)
class IntentRow:
    seq: int
    ts_ms: int
    factor: str
    symbol: str
    side: str
    amount: float
    notional_usd: float
    reason: str
    decision: Mapping[str, Any]
    orders: tuple[OrderRow, ...]


@dataclass(slots=True, frozen=True)
class EventRow:
    ts_ms: int
    kind: str
    client_id: str | None
    payload: Mapping[str, Any]


@dataclass(slots=True, frozen=True)
class TradingStateRow:
    ts_ms: int
    state: str
    reason: str | None
    by: str
    consecutive_errors: int


@dataclass(slots=True, frozen=True)
class ConfigChangeRow:
    ts_ms: int
    version: str
    diff: Mapping[str, Any]


@dataclass(slots=True, frozen=True)
class History:
    """Everything journaled from ``since_ms`` on (None: from the start), oldest first."""

    path: str
    since_ms: int | None
    intents: tuple[IntentRow, ...] = ()
    events: tuple[EventRow, ...] = ()
    states: tuple[TradingStateRow, ...] = ()
    config_changes: tuple[ConfigChangeRow, ...] = ()
    orders_without_intent: tuple[OrderRow, ...] = field(default=())
    """Orders from the window whose intent is older than the window."""


def _connect(path: str | Path) -> sqlite3.Connection:
    where = Path(path)
    if not where.is_file():
        raise JournalReadError(f"journal {path}: no such file")
    uri = f"file:{quote(str(where.resolve()))}?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True)
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    except sqlite3.Error as exc:
        raise JournalReadError(f"journal {path}: cannot read: {exc}") from None
    if not {"intents", "orders", "events"} <= tables:
        db.close()
        raise JournalReadError(f"journal {path}: not a hedger journal (no intents table)")
    return db


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {str(row[1]) for row in db.execute(f"PRAGMA table_info({table})")}


def _json(text: str) -> dict[str, Any]:
    value = orjson.loads(text)
    return dict(value) if isinstance(value, dict) else {"value": value}


def _orders(db: sqlite3.Connection, since_ms: int) -> list[OrderRow]:
    have = _columns(db, "orders")
    optional = [
        name if name in have else f"NULL AS {name}"
        for name in ("average_price", "fee", "fee_currency")
    ]
    rows = db.execute(
        "SELECT client_id, intent_seq, leg, attempt, venue, symbol, side, qty, status,"
        f" filled_qty, created_ms, updated_ms, {', '.join(optional)} FROM orders"
        " WHERE created_ms >= ? OR intent_seq IN (SELECT seq FROM intents WHERE created_ms >= ?)"
        " ORDER BY intent_seq, leg, attempt",
        (since_ms, since_ms),
    ).fetchall()
    fills = _fills_from_events(db)
    out = []
    for row in rows:
        price, fee, currency = row[12:]
        # Journals older than the fill-price columns kept the price in the order events.
        seen = fills.get(row[0], {})
        known = (
            price if price is not None else seen.get("price"),
            fee if fee is not None else seen.get("fee"),
            currency or seen.get("fee_currency"),
        )
        out.append(OrderRow(*(tuple(row[:12]) + known)))
    return out


def _fills_from_events(db: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Per client id, the last fill price and fee its order events reported."""
    found: dict[str, dict[str, Any]] = {}
    rows = db.execute(
        "SELECT client_id, payload FROM events WHERE client_id IS NOT NULL"
        " AND kind IN ('order_filled', 'order_cancelled', 'late_order_adopted') ORDER BY id"
    )
    for client_id, payload in rows:
        data = _json(payload)
        entry = found.setdefault(str(client_id), {})
        if data.get("average_price") is not None:
            entry["price"] = float(data["average_price"])
        if data.get("fee") is not None:
            entry["fee"] = float(data["fee"])
            entry["fee_currency"] = data.get("fee_currency")
    return found


def _events(db: sqlite3.Connection, since_ms: int) -> Iterator[EventRow]:
    rows = db.execute(
        "SELECT ts_ms, kind, client_id, payload FROM events WHERE ts_ms >= ? ORDER BY ts_ms, id",
        (since_ms,),
    )
    for ts_ms, kind, client_id, payload in rows:
        yield EventRow(int(ts_ms), str(kind), client_id, _json(payload))


def read_history(path: str | Path, since_ms: int | None = None) -> History:
    """The journal at ``path`` from ``since_ms`` (epoch ms; None: everything)."""
    start = -(2**62) if since_ms is None else since_ms
    with closing(_connect(path)) as db:
        try:
            orders = _orders(db, start)
            by_intent: dict[int, list[OrderRow]] = {}
            for order in orders:
                by_intent.setdefault(order.intent_seq, []).append(order)
            intents = tuple(
                IntentRow(
                    int(seq),
                    int(ts),
                    factor,
                    symbol,
                    side,
                    float(qty),
                    float(usd),
                    reason,
                    _json(decision),
                    tuple(by_intent.pop(int(seq), [])),
                )
                for seq, ts, factor, symbol, side, qty, usd, reason, decision in db.execute(
                    "SELECT seq, created_ms, factor, symbol, side, qty, notional_usd, reason,"
                    " decision FROM intents WHERE created_ms >= ? ORDER BY seq",
                    (start,),
                )
            )
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            states: tuple[TradingStateRow, ...] = ()
            if "trading_states" in tables:
                states = tuple(
                    TradingStateRow(int(ts), state, reason, by, int(errors))
                    for ts, state, reason, by, errors in db.execute(
                        "SELECT ts_ms, state, reason, by, consecutive_errors FROM trading_states"
                        " WHERE ts_ms >= ? ORDER BY ts_ms, id",
                        (start,),
                    )
                )
            changes: tuple[ConfigChangeRow, ...] = ()
            if "config_changes" in tables:
                changes = tuple(
                    ConfigChangeRow(int(ts), version, _json(diff))
                    for ts, version, diff in db.execute(
                        "SELECT ts_ms, version, diff FROM config_changes WHERE ts_ms >= ?"
                        " ORDER BY ts_ms, id",
                        (start,),
                    )
                )
            events = tuple(_events(db, start))
        except sqlite3.Error as exc:
            raise JournalReadError(f"journal {path}: cannot read: {exc}") from None
    return History(
        path=str(path),
        since_ms=since_ms,
        intents=intents,
        events=events,
        states=states,
        config_changes=changes,
        orders_without_intent=tuple(o for rest in by_intent.values() for o in rest),
    )
