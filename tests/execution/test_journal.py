"""The journal: real SQLite files, WAL, ids that never repeat, orders that survive a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hedger.execution.journal import (
    ClientIdTooLongError,
    Journal,
    client_order_id,
    is_own_client_id,
)

DECISION = {"beta_delta": [1.5], "band": 0.25, "reason": "outside band"}


def _intent(journal: Journal, now_ms: int = 1) -> int:
    return journal.record_intent(
        now_ms=now_ms,
        factor="BTC",
        symbol="BTC-PERPETUAL",
        side="sell",
        qty=1_000.0,
        notional_usd=1_000.0,
        reason="outside band",
        decision=DECISION,
    )


def test_wal_mode_and_round_trip(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    assert journal.journal_mode == "wal"
    seq = _intent(journal)
    cid = client_order_id("paper", seq, 0, 0)
    journal.record_order(
        now_ms=2,
        client_id=cid,
        intent_seq=seq,
        leg=0,
        attempt=0,
        venue="paper",
        symbol="BTC-PERPETUAL",
        side="sell",
        qty=1_000.0,
    )
    journal.update_order(cid, now_ms=3, status="filled", venue_order_id="ORD-1", filled_qty=1_000.0)
    journal.record_event(now_ms=3, kind="order_filled", client_id=cid, payload={"price": 90_000.5})
    record = journal.order(cid)
    assert record is not None and record.is_final and record.venue_order_id == "ORD-1"
    assert list(journal.events(cid)) == [(3, "order_filled", {"price": 90_000.5})]
    assert journal.unresolved_orders() == []


def test_sequences_and_client_ids_never_repeat_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    first = Journal(path)
    seqs = [_intent(first) for _ in range(3)]
    first.close()
    second = Journal(path)
    assert second.last_intent_seq() == seqs[-1]
    assert _intent(second) == seqs[-1] + 1
    ids = {client_order_id("paper", s, 0, 0) for s in [*seqs, seqs[-1] + 1]}
    assert len(ids) == 4


def test_client_id_fits_the_venue_label_limit() -> None:
    assert client_order_id("paper", 12, 1, 2) == "paper-12-1-2"
    with pytest.raises(ClientIdTooLongError):
        client_order_id("x" * 60, 123_456, 0, 0)


def test_updating_an_unknown_order_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        Journal(tmp_path / "j.sqlite").update_order("nope", now_ms=1, status="filled")


def test_an_order_journaled_before_a_kill_is_found_on_restart(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    # A separate process journals an order and is killed before it could send or ack it.
    script = textwrap.dedent(f"""
        import os, signal
        from hedger.execution.journal import Journal, client_order_id
        j = Journal({str(path)!r})
        seq = j.record_intent(now_ms=1, factor="BTC", symbol="BTC-PERPETUAL", side="buy",
                              qty=100.0, notional_usd=100.0, reason="r", decision={{}})
        j.record_order(now_ms=2, client_id=client_order_id("paper", seq, 0, 0),
                       intent_seq=seq, leg=0, attempt=0, venue="paper",
                       symbol="BTC-PERPETUAL", side="buy", qty=100.0)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    result = subprocess.run([sys.executable, "-c", script], check=False, timeout=60)
    assert result.returncode == -signal.SIGKILL
    (pending,) = Journal(path).unresolved_orders()
    assert pending.client_id == "paper-1-0-0" and pending.status == "pending"
    assert os.path.exists(path)


@pytest.mark.parametrize(
    ("client_id", "name", "own"),
    [
        ("lim-7-0-0", "lim", True),
        ("lim-2f-7-0-0", "lim", False),  # daemon lim-2f's: a prefix test claimed it
        ("lim-2f-7-0-0", "lim-2f", True),
        ("lim-7-0", "lim", False),
        ("lim-x-0-0", "lim", False),
        ("lim-7-0-0-extra", "lim", False),
        ("", "lim", False),
    ],
)
def test_own_client_ids_are_parsed_never_prefix_matched(
    client_id: str, name: str, own: bool
) -> None:
    assert is_own_client_id(client_id, name) is own


def test_trading_state_and_sent_notional_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = Journal(path)
    assert journal.last_trading_state() is None
    journal.record_trading_state(
        now_ms=5, state="halted", reason="3 errors", by="kill_switch", consecutive_errors=3
    )
    journal.record_sent_notional(now_ms=6, notional_usd=-250_000.0, client_id="a-1-0-0")
    journal.close()
    reopened = Journal(path)
    state = reopened.last_trading_state()
    assert state is not None and (state.state, state.reason, state.by) == (
        "halted",
        "3 errors",
        "kill_switch",
    )
    assert reopened.sent_notional_since(0) == [(6, 250_000.0)]
    assert reopened.sent_notional_since(6) == []


def test_an_older_journal_gains_the_new_order_column(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE orders (client_id TEXT PRIMARY KEY, intent_seq INTEGER NOT NULL,"
        " leg INTEGER NOT NULL, attempt INTEGER NOT NULL, venue TEXT NOT NULL,"
        " symbol TEXT NOT NULL, side TEXT NOT NULL, qty REAL NOT NULL, status TEXT NOT NULL,"
        " venue_order_id TEXT, filled_qty REAL NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL,"
        " updated_ms INTEGER NOT NULL);"
        "INSERT INTO orders VALUES ('a-1-0-0', 1, 0, 0, 'v', 'S', 'buy', 1, 'pending', NULL, 0,"
        " 1, 1);"
    )
    db.close()
    journal = Journal(path)
    (record,) = journal.unresolved_orders()
    assert record.client_id == "a-1-0-0" and record.valid_until_ms is None
