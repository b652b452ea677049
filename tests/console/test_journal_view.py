"""``hedger journal``: the journal read back as a history, on real SQLite files.

One journal is written through the ``Journal`` API (every kind of entry, times chosen), one
by a real daemon on the paper venue (hedges, a pause, a halt, reloads, start and stop).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from hedger import cli
from hedger.config import load_config
from hedger.console.journal_read import read_history
from hedger.execution.journal import Journal, client_order_id
from hedger.live.daemon import start_daemon, stop_daemon
from tests.obs.test_http import until, write_config

HOUR_MS = 3_600_000
REASON = "deviation +12.5 outside band ±0.25, rebalance to target"
DRIVERS = [
    {"asset": "SOL", "price_usd": 150.0, "loading": 1.3, "beta_delta_usd": 390_000.0},
    {"asset": "ETH", "price_usd": 3000.0, "loading": 1.1, "beta_delta_usd": 132_000.0},
]


def journal_cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = cli.main(["journal", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def _order(journal: Journal, seq: int, leg: int, at_ms: int, amount: float) -> str:
    cid = client_order_id("desk", seq, leg, 0)
    journal.record_order(
        now_ms=at_ms,
        client_id=cid,
        intent_seq=seq,
        leg=leg,
        attempt=0,
        venue="deribit",
        symbol="BTC-PERPETUAL",
        side="sell",
        qty=amount,
    )
    return cid


def fill_journal(path: Path, t0: int) -> None:
    """A day of a daemon: start, a hedge (one leg filled, one refused), a halt, a refused
    and an applied reload, a pause, a crash (a start without a stop), a clean stop."""
    journal = Journal(path)
    old = journal.record_intent(
        now_ms=t0 - 3 * 24 * HOUR_MS,
        factor="BTC",
        symbol="BTC-PERPETUAL",
        side="buy",
        qty=10_000.0,
        notional_usd=10_000.0,
        reason="three days ago",
        decision={},
    )
    assert old == 1
    journal.record_daemon_started(
        now_ms=t0, payload={"name": "desk", "pid": 4242, "venues": {"deribit": "mainnet"}}
    )
    seq = journal.record_intent(
        now_ms=t0 + 1000,
        factor="BTC",
        symbol="BTC-PERPETUAL",
        side="sell",
        qty=1_000_000.0,
        notional_usd=1_000_000.0,
        reason=REASON,
        decision={
            "beta_delta": 12.5,
            "target": 0.0,
            "deviation": 12.5,
            "band_half_width": 0.25,
            "nav_usd": 3_000_000.0,
            "drivers": DRIVERS,
        },
    )
    filled = _order(journal, seq, 0, t0 + 1100, 500_000.0)
    journal.update_order(
        filled,
        now_ms=t0 + 1200,
        status="filled",
        venue_order_id="O-1",
        filled_qty=500_000.0,
        average_price=90_000.5,
        fee=0.0000055,
        fee_currency="BTC",
    )
    refused = _order(journal, seq, 1, t0 + 1300, 500_000.0)
    journal.update_order(refused, now_ms=t0 + 1400, status="rejected")
    journal.record_event(
        now_ms=t0 + 1400,
        kind="order_rejected",
        client_id=refused,
        payload={"error": "InsufficientFunds", "detail": "not enough funds"},
    )
    journal.record_trading_state(
        now_ms=t0 + 2000,
        state="halted",
        reason="3 consecutive execution errors",
        by="kill_switch",
        consecutive_errors=3,
    )
    journal.record_refused_reload(
        now_ms=t0 + 3000, trigger="sighup", errors=["journal.path: needs a restart, refused live"]
    )
    journal.record_config_change(
        now_ms=t0 + 4000,
        version="abc123def456",
        diff={"factors.0.band.half_width": {"old": 0.25, "new": 0.5}},
    )
    journal.record_trading_state(
        now_ms=t0 + 5000,
        state="paused",
        reason="by operator (ops)",
        by="operator:ops",
        consecutive_errors=0,
    )
    journal.record_refusal(now_ms=t0 + 5500, reason="paused", intents=1)
    journal.record_daemon_started(now_ms=t0 + 6000, payload={"name": "desk", "pid": 4243})
    journal.record_daemon_stopped(
        now_ms=t0 + 7000, payload={"trading_state": "paused", "cancel_open_orders": True}
    )
    journal.close()


def test_the_history_explains_each_trade_between_halts_pauses_and_reloads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "j.sqlite"
    t0 = int(time.time() * 1000) - HOUR_MS
    fill_journal(path, t0)
    text = journal_cli(capsys, "--path", str(path), "--since", "1d")
    lines = text.splitlines()

    def at(pattern: str) -> int:
        found = [i for i, line in enumerate(lines) if re.search(pattern, line)]
        assert found, f"{pattern!r} not in:\n{text}"
        return found[0]

    order = [
        at(r"daemon started: desk pid 4242.*deribit \(mainnet\)"),
        at(r"intent #2 BTC: sell 1,000,000 USD face BTC-PERPETUAL \(1,000,000 USD\)"),
        at(re.escape(f"why: {REASON}")),
        at(r"drivers: SOL β 1\.30 at 150\.00 → \+390,000 USD, ETH β 1\.10"),
        at(
            r"desk-2-0-0.*→ filled 500,000 USD face @ 90,000\.50, fee 0\.0000055 BTC \(≈0\.50 USD\)"
        ),
        at(r"desk-2-1-0.*→ rejected; order rejected \(not enough funds\)"),
        at(r"trading halted: 3 consecutive execution errors \(by kill_switch\)"),
        at(r"config reload refused \(sighup\): journal\.path: needs a restart"),
        at(r"config reloaded \(version abc123def456\)"),
        at(r"factors\.0\.band\.half_width: 0\.25 → 0\.5"),
        at(r"trading paused: by operator \(ops\) \(by operator:ops\)"),
        at(r"hedges refused: paused \(1 intents\)"),
        at(r"daemon started: desk pid 4243"),
        at(r"the run before ended without a clean stop"),
        at(r"daemon stopped cleanly: trading paused, own open orders cancelled"),
    ]
    assert order == sorted(order), text
    assert "three days ago" not in text  # older than --since
    assert "beta-delta +12.5000 BTC, target +0.0000 ± 0.2500 BTC; NAV 3,000,000 USD" in text
    assert lines[-1].startswith("1 intents, 2 orders (1 with fills), fees 0.0000055 BTC")
    assert "(≈0.50 USD)" in lines[-1]

    everything = journal_cli(capsys, "--path", str(path), "--since", "all")
    assert "intent #1 BTC: buy 10,000 USD face" in everything


def test_json_gives_the_same_entries(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "j.sqlite"
    fill_journal(path, int(time.time() * 1000) - HOUR_MS)
    text = journal_cli(capsys, "--path", str(path))
    document = json.loads(journal_cli(capsys, "--path", str(path), "--json"))
    entries: list[dict[str, Any]] = document["entries"]
    for entry in entries:
        for line in entry["text"].splitlines():
            assert line.strip() in text, line
    assert sum(1 for e in entries if e["kind"] == "intent") == 1
    intent = next(e for e in entries if e["kind"] == "intent")
    assert intent["reason"] == REASON and intent["amount_unit"] == "USD face"
    assert intent["decision"]["drivers"] == DRIVERS
    legs = {leg["client_id"]: leg for leg in intent["legs"]}
    assert legs["desk-2-0-0"]["average_price"] == 90_000.5
    assert legs["desk-2-0-0"]["fee"] == 0.0000055 and legs["desk-2-0-0"]["fee_currency"] == "BTC"
    assert legs["desk-2-0-0"]["fee_usd"] == pytest.approx(0.0000055 * 90_000.5)
    assert legs["desk-2-1-0"]["status"] == "rejected"
    kinds = [e.get("event") or e["kind"] for e in entries]
    for kind in ("daemon_started", "trading_state", "config_change", "config_reload_refused"):
        assert kind in kinds, kinds
    assert [e["ts_ms"] for e in entries] == sorted(e["ts_ms"] for e in entries)
    assert entries[0]["utc"].endswith("+00:00")


def test_kinds_select_fills_orders_and_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "j.sqlite"
    fill_journal(path, int(time.time() * 1000) - HOUR_MS)
    fills = journal_cli(capsys, "--path", str(path), "--kind", "fills").splitlines()[1:-1]
    assert len(fills) == 1 and "desk-2-0-0" in fills[0] and "@ 90,000.50" in fills[0]
    orders = journal_cli(capsys, "--path", str(path), "--kind", "orders")
    assert "desk-2-0-0" in orders and "desk-2-1-0" in orders and "trading halted" not in orders
    events = journal_cli(capsys, "--path", str(path), "--kind", "events")
    assert "intent #2 BTC" not in events and "trading halted" in events
    assert "order rejected desk-2-1-0" in events  # order events are events too


def test_bad_paths_and_spans_are_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_journal = tmp_path / "other.sqlite"
    sqlite3.connect(not_a_journal).execute("CREATE TABLE t (x)")
    for args, expected in [
        (["--path", str(tmp_path / "none.sqlite")], "no such file"),
        (["--path", str(not_a_journal)], "not a hedger journal"),
        (["--path", str(not_a_journal), "--since", "yesterday"], "is neither a span"),
    ]:
        assert cli.main(["journal", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("hedger journal: ") and expected in err, err
        assert len(err.strip().splitlines()) == 1


OLD_ORDERS = """
CREATE TABLE orders (
    client_id TEXT PRIMARY KEY, intent_seq INTEGER NOT NULL, leg INTEGER NOT NULL,
    attempt INTEGER NOT NULL, venue TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
    qty REAL NOT NULL, status TEXT NOT NULL, venue_order_id TEXT,
    filled_qty REAL NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL
);
"""


def test_an_old_journal_reads_without_migration_and_migrates_on_open(tmp_path: Path) -> None:
    """A journal from before the fill-price columns: read-only, its prices come from the
    order events; opened by a daemon, it gains the columns."""
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        OLD_ORDERS
        + "CREATE TABLE intents (seq INTEGER PRIMARY KEY AUTOINCREMENT, created_ms INTEGER,"
        " factor TEXT, symbol TEXT, side TEXT, qty REAL, notional_usd REAL, reason TEXT,"
        " decision TEXT);"
        "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms INTEGER, kind TEXT,"
        " client_id TEXT, payload TEXT);"
        "INSERT INTO intents VALUES (1, 10, 'BTC', 'BTC-PERPETUAL', 'sell', 100, 100, 'r', '{}');"
        "INSERT INTO orders VALUES ('d-1-0-0', 1, 0, 0, 'x', 'BTC-PERPETUAL', 'sell', 100,"
        " 'filled', 'O', 100, 11, 12);"
        "INSERT INTO events (ts_ms, kind, client_id, payload) VALUES"
        " (12, 'order_filled', 'd-1-0-0', '{\"average_price\": 91000.0, \"filled\": 100}');"
    )
    db.close()
    (order,) = read_history(path).intents[0].orders
    assert order.average_price == 91_000.0 and order.fee is None
    columns = {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(orders)")}
    assert "fee" not in columns  # reading never changes the schema

    journal = Journal(path)
    journal.update_order("d-1-0-0", now_ms=13, status="filled", fee=0.001, fee_currency="BTC")
    record = journal.order("d-1-0-0")
    assert record is not None and record.fee == 0.001 and record.valid_until_ms is None
    journal.close()
    (order,) = read_history(path).intents[0].orders
    assert (order.average_price, order.fee, order.fee_currency) == (91_000.0, 0.001, "BTC")


async def test_after_a_paper_run_every_intent_leg_fill_and_state_change_is_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path)
    daemon = await start_daemon(load_config(path), str(path), watch_config=False)
    engine = daemon.engine
    try:
        await until(lambda: any(h.result == "filled" for h in engine.recent_hedges), 60)
        daemon.control.pause("ops")
        daemon.control.resume("ops")
        path.write_text(path.read_text().replace("half_width: 0.25", "half_width: 0.5"))
        assert (await daemon.control.reload("test")).applied
        path.write_text(path.read_text().replace("half_width: 0.5", "half_width: -1"))
        assert not (await daemon.control.reload("test")).applied
        path.write_text(path.read_text().replace("half_width: -1", "half_width: 0.5"))
        engine.halt("halted by the test")
        daemon.control.resume("ops")
    finally:
        await stop_daemon(daemon)

    text = journal_cli(capsys, "--config", str(path), "--since", "1d")
    db = sqlite3.connect(tmp_path / "j.sqlite")
    intents = db.execute("SELECT seq, reason FROM intents").fetchall()
    assert intents
    for seq, reason in intents:
        assert f"intent #{seq} BTC:" in text and f"why: {reason}" in text
    filled = db.execute(
        "SELECT client_id, average_price, fee FROM orders WHERE filled_qty > 0"
    ).fetchall()
    assert filled
    for client_id, price, fee in filled:
        assert price > 0 and fee > 0  # the executor journaled both
        line = next(line for line in text.splitlines() if f"({client_id})" in line)
        shown = re.search(r"@ ([\d,.]+), fee ([\d.]+) BTC \(≈([\d,.]+) USD\)", line)
        assert shown is not None, line
        assert float(shown[1].replace(",", "")) == pytest.approx(price, abs=0.005)
        assert float(shown[2]) == pytest.approx(fee, abs=1e-10)
        assert float(shown[3].replace(",", "")) == pytest.approx(fee * price, abs=0.005)
    for expected in (
        "daemon started: paper",
        "trading paused: by operator (ops) (by operator:ops)",
        "trading running again (by operator:ops)",
        "config reloaded",
        "factors.0.band.half_width: 0.25 → 0.5",
        "config reload refused (test): factors.0.band.half_width",
        "trading halted: halted by the test (by engine)",
        "daemon stopped cleanly",
    ):
        assert expected in text, f"{expected!r} not in:\n{text}"
    document = json.loads(journal_cli(capsys, "--config", str(path), "--since", "1d", "--json"))
    seqs = [e["seq"] for e in document["entries"] if e["kind"] == "intent"]
    assert seqs == [seq for seq, _ in intents]
