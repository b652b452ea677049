"""``hedger journal``: the journal as a history an operator reads top to bottom.

Each entry is one thing that happened, with local and UTC time: a decision (why: its reason,
the factor's beta-delta against target and band, the assets that drove it when the engine
journaled them) with every leg's fill price and fee; a change of trading state (halted,
paused, resumed, and who); a reload applied or refused; a daemon started or stopped (and a
start with no stop before it: the run before crashed or was killed). ``--json`` gives the
same entries as data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hedger.console.journal_read import (
    ConfigChangeRow,
    EventRow,
    History,
    IntentRow,
    OrderRow,
    TradingStateRow,
)
from hedger.console.times import iso_local, iso_utc, local_and_utc
from hedger.execution.journal import (
    EVENT_DAEMON_STARTED,
    EVENT_DAEMON_STOPPED,
    EVENT_HEDGE_REFUSED,
    EVENT_RELOAD_REFUSED,
)

Kind = Literal["all", "intents", "orders", "fills", "events"]
KINDS: tuple[Kind, ...] = ("all", "intents", "orders", "fills", "events")

USD_LIKE = frozenset({"USD", "USDC", "USDT"})
DRIVERS_SHOWN = 5

# Order events that only repeat what the leg's own line says (its status, fill and fee).
_ORDER_FATE_EVENTS = frozenset({"order_filled", "order_open", "order_cancelled"})
# The control's pause/resume events repeat the trading-state row that records the change.
_STATE_ECHO_EVENTS = frozenset({"trading_paused", "trading_resumed"})


@dataclass(slots=True, frozen=True)
class Entry:
    """One line of history (plus indented detail lines) and the same as data."""

    ts_ms: int
    order: int
    """tie-break for entries of the same millisecond: journal order within a kind"""
    lines: tuple[str, ...]
    data: Mapping[str, Any]


# --- units -------------------------------------------------------------------------------------


def amount_unit(
    amount: float, notional_usd: float, factor: str, decision: Mapping[str, Any]
) -> str:
    """What a venue order amount counts: the engine says so when it journals
    ``amount_unit``; otherwise an amount equal to its USD notional is USD face (Deribit's
    inverse contracts), anything else is coins of the factor."""
    unit = decision.get("amount_unit")
    if isinstance(unit, str) and unit:
        return unit
    if amount > 0 and abs(notional_usd / amount - 1.0) < 1e-9:
        return "USD face"
    return factor


def _num(value: float, unit: str) -> str:
    digits = 0 if unit.startswith("USD") else 6
    text = f"{value:,.{digits}f}"
    if digits:
        text = text.rstrip("0").rstrip(".")
    return f"{text} {unit}"


def _coins(value: float) -> str:
    """Small coin amounts in plain digits (``0.0000055``, never ``5.5e-06``)."""
    return f"{value:.10f}".rstrip("0").rstrip(".")


def _signed(value: Any, unit: str, digits: int = 4) -> str:
    if not isinstance(value, int | float):
        return "?"
    return f"{value:+,.{digits}f} {unit}"


def fee_usd(order: OrderRow, base: str) -> float | None:
    """The fee in USD: as is when charged in a USD coin, at the fill price when charged in
    the instrument's own coin (inverse contracts), else unknown."""
    if order.fee is None or order.fee_currency is None:
        return None
    if order.fee_currency.upper() in USD_LIKE:
        return order.fee
    if order.fee_currency.upper() == base.upper() and order.average_price:
        return order.fee * order.average_price
    return None


def _fee_text(order: OrderRow, base: str) -> str:
    if order.fee is None:
        return "fee not reported"
    currency = order.fee_currency or "(currency not reported)"
    text = f"fee {_coins(order.fee)} {currency}"
    usd = fee_usd(order, base)
    if usd is not None and (order.fee_currency or "").upper() not in USD_LIKE:
        text += f" (≈{usd:,.2f} USD)"
    return text


# --- entries -------------------------------------------------------------------------------------


def _leg_line(order: OrderRow, unit: str, base: str, notes: Sequence[str]) -> str:
    text = (
        f"leg {order.leg} attempt {order.attempt} ({order.client_id}): {order.side} "
        f"{_num(order.amount, unit)} {order.symbol} on {order.venue} → "
    )
    if order.filled > 0:
        price = "?" if order.average_price is None else f"{order.average_price:,.2f}"
        done = "filled" if order.status == "filled" else f"{order.status} after filling"
        text += f"{done} {_num(order.filled, unit)} @ {price}, {_fee_text(order, base)}"
    else:
        text += order.status
    return "; ".join([text, *notes])


def _order_data(order: OrderRow, base: str) -> dict[str, Any]:
    return {
        "client_id": order.client_id,
        "intent_seq": order.intent_seq,
        "leg": order.leg,
        "attempt": order.attempt,
        "venue": order.venue,
        "symbol": order.symbol,
        "side": order.side,
        "amount": order.amount,
        "status": order.status,
        "filled": order.filled,
        "average_price": order.average_price,
        "fee": order.fee,
        "fee_currency": order.fee_currency,
        "fee_usd": fee_usd(order, base),
        "created_ms": order.created_ms,
        "updated_ms": order.updated_ms,
    }


def _why_line(intent: IntentRow) -> str:
    """The policy's reason, then the numbers it decided on, in the factor's units."""
    d = intent.decision
    unit = intent.factor
    parts = [f"why: {intent.reason}"]
    if "beta_delta" in d:
        half = d.get("band_half_width")
        band = f" ± {half:,.4f}" if isinstance(half, int | float) else ""
        parts.append(
            f"beta-delta {_signed(d.get('beta_delta'), unit)}, target "
            f"{_signed(d.get('target'), unit).removesuffix(' ' + unit)}{band} {unit}"
        )
    if isinstance(d.get("beta_delta_usd"), int | float):
        parts.append(f"beta-delta {d['beta_delta_usd']:+,.0f} USD")
    if isinstance(d.get("factor_price_usd"), int | float):
        parts.append(f"{unit} at {d['factor_price_usd']:,.2f} USD")
    if isinstance(d.get("nav_usd"), int | float):
        parts.append(f"NAV {d['nav_usd']:,.0f} USD")
    return "; ".join(parts)


def _drivers_line(intent: IntentRow) -> str | None:
    """The assets that make up the factor's beta-delta, largest first (when the engine
    journaled them as ``drivers``)."""
    drivers = intent.decision.get("drivers")
    if not isinstance(drivers, list) or not drivers:
        return None
    rows = [d for d in drivers if isinstance(d, Mapping)]
    rows.sort(key=lambda d: -abs(float(d.get("beta_delta_usd") or 0.0)))
    parts = []
    for d in rows[:DRIVERS_SHOWN]:
        text = str(d.get("asset", "?"))
        if isinstance(d.get("loading"), int | float):
            text += f" β {d['loading']:.2f}"
        if isinstance(d.get("price_usd"), int | float):
            text += f" at {d['price_usd']:,.2f}"
        if isinstance(d.get("beta_delta_usd"), int | float):
            text += f" → {d['beta_delta_usd']:+,.0f} USD"
        parts.append(text)
    more = f" (+{len(rows) - DRIVERS_SHOWN} more)" if len(rows) > DRIVERS_SHOWN else ""
    return "drivers: " + ", ".join(parts) + more


def intent_entry(intent: IntentRow, notes: Mapping[str, Sequence[str]]) -> Entry:
    unit = amount_unit(intent.amount, intent.notional_usd, intent.factor, intent.decision)
    dry = " (dry run: nothing sent)" if intent.decision.get("dry_run") else ""
    head = (
        f"intent #{intent.seq} {intent.factor}: {intent.side} {_num(intent.amount, unit)} "
        f"{intent.symbol} ({intent.notional_usd:,.0f} USD){dry}"
    )
    lines = [head, "  " + _why_line(intent)]
    drivers = _drivers_line(intent)
    if drivers is not None:
        lines.append("  " + drivers)
    for order in intent.orders:
        lines.append("  " + _leg_line(order, unit, intent.factor, notes.get(order.client_id, ())))
    if not intent.orders and not intent.decision.get("dry_run"):
        lines.append("  no order journaled for it (stopped before its first leg)")
    data = {
        "kind": "intent",
        "seq": intent.seq,
        "factor": intent.factor,
        "symbol": intent.symbol,
        "side": intent.side,
        "amount": intent.amount,
        "amount_unit": unit,
        "notional_usd": intent.notional_usd,
        "reason": intent.reason,
        "decision": dict(intent.decision),
        "legs": [_order_data(o, intent.factor) for o in intent.orders],
    }
    return Entry(intent.ts_ms, intent.seq, tuple(lines), data)


def order_entry(order: OrderRow, unit: str, base: str, *, fill: bool) -> Entry:
    data = {"kind": "fill" if fill else "order", **_order_data(order, base), "amount_unit": unit}
    at = order.updated_ms if fill else order.created_ms
    return Entry(at, order.intent_seq, (_leg_line(order, unit, base, ()),), data)


def _payload_text(payload: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in payload.items())


def event_text(event: EventRow) -> str:
    p = event.payload
    kind = event.kind
    if kind == EVENT_DAEMON_STARTED:
        venues = ", ".join(f"{n} ({how})" for n, how in dict(p.get("venues") or {}).items())
        return (
            f"daemon started: {p.get('name')} pid {p.get('pid')}, hedger {p.get('version')}, "
            f"config {p.get('config_version')}; venues {venues or '?'}; "
            f"trading {p.get('trading_state')}"
        )
    if kind == EVENT_DAEMON_STOPPED:
        cancelled = "cancelled" if p.get("cancel_open_orders") else "left"
        return (
            f"daemon stopped cleanly: trading {p.get('trading_state')}, own open orders {cancelled}"
        )
    if kind == "start_refused":
        return f"start refused ({p.get('check')}, exit {p.get('exit_code')}): {p.get('reason')}"
    if kind == EVENT_HEDGE_REFUSED:
        rest = {k: v for k, v in p.items() if k not in ("reason", "intents")}
        extra = f" ({_payload_text(rest)})" if rest else ""
        return f"hedges refused: {p.get('reason')} ({p.get('intents')} intents){extra}"
    if kind == EVENT_RELOAD_REFUSED:
        errors = "; ".join(str(e) for e in p.get("errors") or ())
        return f"config reload refused ({p.get('trigger')}): {errors}"
    if kind == "intent_stopped":
        return (
            f"intent #{p.get('intent_seq')} stopped after {p.get('legs_done')} leg(s), "
            f"{p.get('legs_not_sent')} not sent: {p.get('why')} "
            f"(filled {float(p.get('filled_notional_usd') or 0.0):,.0f} USD)"
        )
    if kind in ("task_failed", "cycle_failed", "hedge_crashed"):
        what = f"task {p.get('task')} failed" if kind == "task_failed" else kind.replace("_", " ")
        return f"{what}: {p.get('error')}"
    who = f" {event.client_id}" if event.client_id else ""
    return f"{kind.replace('_', ' ')}{who}" + (f": {_payload_text(p)}" if p else "")


def event_entry(event: EventRow, order: int, crashed_before: bool) -> Entry:
    lines = [event_text(event)]
    if crashed_before:
        lines.append(
            "  the run before ended without a clean stop (crash, kill -9 or power loss): "
            "this start settled its orders of unknown fate before trading"
        )
    data = {
        "kind": "event",
        "event": event.kind,
        "client_id": event.client_id,
        "payload": dict(event.payload),
        "previous_run_crashed": crashed_before,
    }
    return Entry(event.ts_ms, order, tuple(lines), data)


def state_entry(row: TradingStateRow, order: int, previous: str | None) -> Entry:
    if row.state == previous:
        text = (
            f"order errors in a row: {row.consecutive_errors} "
            f"(trading still {row.state}; by {row.by})"
        )
    elif row.state == "running":
        text = (
            f"trading running again (by {row.by})" if previous else f"trading running (by {row.by})"
        )
    else:
        text = f"trading {row.state}: {row.reason or 'no reason given'} (by {row.by})"
        if row.consecutive_errors:
            text += f", {row.consecutive_errors} order errors in a row"
    data = {
        "kind": "trading_state",
        "state": row.state,
        "previous_state": previous,
        "reason": row.reason,
        "by": row.by,
        "consecutive_errors": row.consecutive_errors,
    }
    return Entry(row.ts_ms, order, (text,), data)


def config_entry(row: ConfigChangeRow, order: int) -> Entry:
    changes = [
        f"{path}: {change.get('old')!r} → {change.get('new')!r}"
        if isinstance(change, Mapping)
        else f"{path}: {change!r}"
        for path, change in row.diff.items()
    ]
    lines = [f"config reloaded (version {row.version}): {len(changes)} change(s)"]
    lines += [f"  {line}" for line in changes]
    data = {"kind": "config_change", "version": row.version, "diff": dict(row.diff)}
    return Entry(row.ts_ms, order, tuple(lines), data)


# --- the history ---------------------------------------------------------------------------------


def _order_notes(events: Iterable[EventRow]) -> dict[str, list[str]]:
    """What the order events add to a leg's line (a rejection's reason, a lookup's outcome)."""
    notes: dict[str, list[str]] = {}
    for event in events:
        if event.client_id and event.kind not in _ORDER_FATE_EVENTS:
            detail = event.payload.get("detail") or event.payload.get("error") or ""
            text = event.kind.replace("_", " ") + (f" ({detail})" if detail else "")
            notes.setdefault(event.client_id, []).append(text)
    return notes


def _events_with_runs(events: Sequence[EventRow], start: int) -> list[Entry]:
    entries = []
    running = False  # a start seen and no stop since
    for i, event in enumerate(events):
        crashed = False
        if event.kind == EVENT_DAEMON_STARTED:
            crashed, running = running, True
        elif event.kind == EVENT_DAEMON_STOPPED:
            running = False
        entries.append(event_entry(event, start + i, crashed))
    return entries


def entries(history: History, kind: Kind = "all") -> list[Entry]:
    """The history as entries, oldest first (``kind`` keeps one sort)."""
    units = {
        i.seq: (amount_unit(i.amount, i.notional_usd, i.factor, i.decision), i.factor)
        for i in history.intents
    }
    orders = [o for i in history.intents for o in i.orders] + list(history.orders_without_intent)
    out: list[Entry] = []
    if kind in ("orders", "fills"):
        for o in orders:
            unit, base = units.get(o.intent_seq, ("", o.symbol.split("-")[0]))
            if kind == "orders" or o.filled > 0:
                out.append(order_entry(o, unit or base, base, fill=kind == "fills"))
        return sorted(out, key=lambda e: (e.ts_ms, e.order, e.data["client_id"]))
    if kind in ("all", "intents"):
        notes = _order_notes(history.events)
        out += [intent_entry(i, notes) for i in history.intents]
    if kind in ("all", "events"):
        events = [
            e
            for e in history.events
            if kind == "events" or (e.client_id is None and e.kind not in _STATE_ECHO_EVENTS)
        ]
        out += _events_with_runs(events, 0)
        previous: str | None = None
        for n, row in enumerate(history.states):
            out.append(state_entry(row, n, previous))
            previous = row.state
        out += [config_entry(row, n) for n, row in enumerate(history.config_changes)]
    return sorted(out, key=lambda e: (e.ts_ms, e.order))


def summary(history: History) -> str:
    orders = [o for i in history.intents for o in i.orders]
    filled = [o for o in orders if o.filled > 0]
    fees: dict[str, float] = {}
    fees_usd = 0.0
    for intent in history.intents:
        for o in intent.orders:
            if o.fee is not None:
                fees[o.fee_currency or "?"] = fees.get(o.fee_currency or "?", 0.0) + o.fee
                fees_usd += fee_usd(o, intent.factor) or 0.0
    fee_text = ", ".join(f"{_coins(v)} {c}" for c, v in sorted(fees.items())) or "none reported"
    halts = sum(1 for s in history.states if s.state == "halted")
    return (
        f"{len(history.intents)} intents, {len(orders)} orders ({len(filled)} with fills), "
        f"fees {fee_text} (≈{fees_usd:,.2f} USD), {halts} halt(s)"
    )


def render_text(history: History, kind: Kind = "all") -> str:
    since = "the start" if history.since_ms is None else local_and_utc(history.since_ms)
    out = [f"journal {history.path}, since {since}"]
    listed = entries(history, kind)
    for entry in listed:
        out.append(f"{local_and_utc(entry.ts_ms)}  {entry.lines[0]}")
        out += [f"    {line}" for line in entry.lines[1:]]
    if not listed:
        out.append("nothing journaled in that window")
    out.append(summary(history))
    return "\n".join(out)


def render_json(history: History, kind: Kind = "all") -> dict[str, Any]:
    return {
        "journal": history.path,
        "since_ms": history.since_ms,
        "kind": kind,
        "entries": [
            {
                "ts_ms": e.ts_ms,
                "utc": iso_utc(e.ts_ms),
                "local": iso_local(e.ts_ms),
                **e.data,
                "text": "\n".join(e.lines),
            }
            for e in entries(history, kind)
        ],
        "summary": summary(history),
    }
