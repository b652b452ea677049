"""Kill -9 between "journaled" and "acked": the restarted daemon finds the order, not resends.

Everything here is a real process: the paper venue (``hedger paper-venue``) outlives two
``hedger run`` processes that share one SQLite journal. The venue accepts the first hedge
order but holds its response; the first daemon is SIGKILLed while it waits, leaving the
order journaled as pending. The second daemon must look the order up by its client id
(Deribit's label), adopt its fill, and never send that leg again.
"""

from __future__ import annotations

import functools
import json
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ccxt
import pytest
import yaml

from tests.net import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
HEDGER = str(Path(sys.executable).with_name("hedger"))
NAME = "crash"


def _post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


@pytest.fixture
def venue_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "venue.log").open("w")
    argv = [HEDGER, "paper-venue", "--host", "127.0.0.1", "--port", str(port),
            "--history-hours", "6", "--ticks-per-second", "10", "--seed", "7"]  # fmt: skip
    process = subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            with urllib.request.urlopen(url + "/admin/state", timeout=1):
                return True
        except OSError:
            return False

    try:
        wait_until(up, 60, "the paper venue")
        yield url
    finally:
        process.terminate()
        process.wait(20)


def _config(tmp_path: Path, venue_url: str) -> Path:
    cfg = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    cfg["name"] = NAME
    venue = cfg["venues"]["paper"]
    del venue["paper"]  # not embedded: the venue above, over the loopback
    venue["urls"] = {"rest": venue_url, "ws": venue_url.replace("http", "ws") + "/ws/api/v2"}
    venue["timeout_seconds"] = 60  # the daemon is still waiting when it is killed
    cfg["journal"] = {"path": str(tmp_path / "journal.sqlite")}
    cfg["http"] = {"host": "127.0.0.1", "port": free_port()}
    cfg["logging"] = {"level": "info", "format": "json"}
    path = tmp_path / "crash.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [HEDGER, "run", "--config", str(config)], stdout=log.open("w"), stderr=subprocess.STDOUT
    )


def _rows(journal: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    if not journal.exists():
        return []
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []
    finally:
        db.close()


@functools.cache
def _client(venue_url: str) -> Any:
    client = ccxt.deribit({"apiKey": "paper", "secret": "paper"})
    client.urls["api"] = {"rest": venue_url}
    client.timeout = 5_000
    return client


def _venue_orders(venue_url: str, label: str) -> list[dict[str, Any]]:
    """The venue's own record of orders under ``label``, read through its JSON-RPC API."""
    client = _client(venue_url)
    response = client.private_get_get_order_state_by_label({"currency": "BTC", "label": label})
    orders: list[dict[str, Any]] = response["result"]
    return orders


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _events(log: Path) -> list[dict[str, Any]]:
    lines = log.read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_order_journaled_before_a_kill_is_adopted_after_restart(
    tmp_path: Path, venue_url: str
) -> None:
    config, journal = _config(tmp_path, venue_url), tmp_path / "journal.sqlite"
    http_port = yaml.safe_load(config.read_text())["http"]["port"]
    _post(venue_url + "/admin/faults", {"order_timeouts": 1, "hang_s": 120})
    first = _daemon(config, tmp_path / "first.log")
    try:
        pending = wait_until(
            lambda: _rows(journal, "SELECT client_id, intent_seq, leg FROM orders"),
            90,
            "a journaled order",
        )
        (client_id, seq, leg), *_ = pending
        placed = wait_until(
            lambda: _venue_orders(venue_url, client_id), 30, "the order on the venue"
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    # The crash left it journaled, sent, filled on the venue, and unknown to the journal.
    assert _rows(journal, "SELECT status FROM orders WHERE client_id = ?", client_id) == [
        ("pending",)
    ]
    assert [o["order_state"] for o in placed] == ["filled"]
    assert not any(e.get("event") == "order_filled" for e in _events(tmp_path / "first.log"))

    second_log = tmp_path / "second.log"
    second = _daemon(config, second_log)
    try:
        wait_until(
            lambda: (
                _rows(journal, "SELECT status FROM orders WHERE client_id = ?", client_id)
                == [("filled",)]
            ),
            90,
            "the restarted daemon to settle the order",
        )
        # Let it run on, ready and hedging: it may trade more, but never that leg again.
        wait_until(lambda: _ready(http_port), 60, "the restarted daemon to be ready")
        time.sleep(3)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    events = _events(second_log)
    adopted = [e for e in events if e.get("event") == "order_reconciled_at_start"]
    assert [(e["client_id"], e["status"]) for e in adopted] == [(client_id, "filled")]
    assert len(_venue_orders(venue_url, client_id)) == 1
    same_leg = _rows(
        journal, "SELECT client_id FROM orders WHERE intent_seq = ? AND leg = ?", seq, leg
    )
    assert same_leg == [(client_id,)], same_leg
    # Every order the two runs journaled is on the venue exactly once.
    for (cid,) in _rows(journal, "SELECT client_id FROM orders WHERE status = 'filled'"):
        assert len(_venue_orders(venue_url, cid)) == 1, cid
