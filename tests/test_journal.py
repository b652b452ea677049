"""The journal: real SQLite files, WAL, ids that never repeat, orders that survive a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hedger.journal import ClientIdTooLongError, Journal, client_order_id

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
        from hedger.journal import Journal, client_order_id
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
