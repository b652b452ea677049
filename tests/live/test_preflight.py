"""Preflight: every check says what and why, with the exit code an init system acts on."""

from __future__ import annotations

import os
import socket
import sqlite3
from pathlib import Path

import ccxt.async_support as ccxt_async
import pytest

from hedger.config import load_config
from hedger.live.daemon import start_daemon
from hedger.live.lockfile import JournalLock
from hedger.live.preflight import (
    EXIT_CONFIG,
    EXIT_RUNTIME,
    StartRefusedError,
    check_journal,
    probe_listener,
    refusal,
)
from hedger.market.universe import UniverseError
from tests.obs.test_http import write_config


@pytest.mark.parametrize(
    ("exc", "code", "message"),
    [
        (
            UniverseError("asset ZZZ: no venue lists it"),
            EXIT_CONFIG,
            "asset ZZZ: no venue lists it",
        ),
        (
            ccxt_async.AuthenticationError('deribit {"code":13004}\nmore'),
            EXIT_CONFIG,
            'authentication refused: deribit {"code":13004}',
        ),
        (ccxt_async.RequestTimeout("deribit GET timed out"), 1, "RequestTimeout: deribit GET"),
        (KeyError("BTC-NOPE"), EXIT_RUNTIME, "KeyError: 'BTC-NOPE'"),
    ],
)
def test_any_start_up_failure_is_one_line_with_its_exit_code(
    exc: Exception, code: int, message: str
) -> None:
    """Before: hedger.live.preflight did not exist; each of these reached the operator as a
    traceback with exit 1."""
    refused = refusal(exc)
    assert refused.exit_code == code
    assert refused.message.startswith(message) and "\n" not in refused.message


def test_a_busy_port_is_named_with_its_errno_words() -> None:
    """Before: hedger.live.preflight did not exist."""
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        with pytest.raises(StartRefusedError) as info:
            probe_listener("http", "127.0.0.1", port)
    assert info.value.exit_code == EXIT_RUNTIME
    assert info.value.message == f"http 127.0.0.1:{port}: cannot listen: Address already in use"
    assert probe_listener("http", "127.0.0.1", port) == f"http 127.0.0.1:{port}: free"


def test_the_journal_check_finds_a_running_daemon_and_changes_nothing(tmp_path: Path) -> None:
    """Before: hedger.live.preflight did not exist."""
    journal = str(tmp_path / "j.sqlite")
    assert check_journal(journal) == f"journal {journal}: free and writable"
    assert sqlite3.connect(journal).execute("SELECT name FROM sqlite_master").fetchall() == []
    held = JournalLock(journal)
    held.acquire()
    try:
        with pytest.raises(StartRefusedError) as info:
            check_journal(journal)
    finally:
        held.release()
    assert f"in use by pid {os.getpid()}" in info.value.message


async def test_a_busy_http_port_refuses_start_before_the_engine_trades(tmp_path: Path) -> None:
    """Before: the engine started (and hedged) first, then binding the port raised a raw
    OSError, leaving a pending order in the journal and the venue's position changed."""
    with socket.create_server(("127.0.0.1", 0)) as busy:
        path = write_config(tmp_path, busy.getsockname()[1])
        with pytest.raises(StartRefusedError) as info:
            await start_daemon(load_config(path), str(path), watch_config=False)
    assert info.value.check == "listener" and info.value.exit_code == EXIT_RUNTIME
    db = sqlite3.connect(tmp_path / "j.sqlite")
    assert db.execute("SELECT COUNT(*) FROM intents").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 0
    kind, payload = db.execute("SELECT kind, payload FROM events ORDER BY id DESC").fetchone()
    assert kind == "start_refused" and "cannot listen" in payload
    # Everything it started is stopped again: the journal's lock is free.
    lock = JournalLock(tmp_path / "j.sqlite")
    lock.acquire()
    lock.release()
