"""The operator's HTTP surface on a running daemon: metrics, probes, status, control, reload."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hedger.config import load_config
from hedger.live.daemon import Daemon, start_daemon, stop_daemon
from tests.live.conftest import ROOT
from tests.net import free_port

TOKEN = "test-token-123"


def write_config(tmp_path: Path, port: int = 0, **replace: str) -> Path:
    """config/paper.yaml sped up, journal and HTTP port of this test, and textual edits."""
    text = (ROOT / "config" / "paper.yaml").read_text()
    text = text.replace("scenario: stress-switching", "scenario: stress-switching\n      speed: 20")
    text = text.replace(
        "journal: {path: var/paper.sqlite}", f"journal: {{path: {tmp_path}/j.sqlite}}"
    )
    text = text.replace(
        'http: {host: 127.0.0.1, port: 9184, token: "${HEDGER_HTTP_TOKEN:-paper-token}"}',
        f"http: {{host: 127.0.0.1, port: {port}, token: {TOKEN}}}",
    )
    text = text.replace("lookback: 7d", "lookback: 1d")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "hedger.yaml"
    path.write_text(text)
    return path


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    path = write_config(tmp_path)
    running = await start_daemon(load_config(path), str(path), watch_config=False)
    yield running
    await stop_daemon(running)


async def call(
    daemon: Daemon, method: str, path: str, token: str | None = None
) -> tuple[int, Any, str]:
    assert daemon.http is not None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, daemon.http.url + path, headers=headers) as response,
    ):
        text = await response.text()
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body, text


async def until(condition: Any, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_probes_status_and_metrics(daemon: Daemon) -> None:
    assert (await call(daemon, "GET", "/healthz"))[0] == 200
    await until(lambda: daemon.engine.exposure is not None and not daemon.engine.stale_inputs)
    status, body, _ = await call(daemon, "GET", "/readyz")
    assert status == 200 and body["ready"], body
    status, body, _ = await call(daemon, "GET", "/status")
    assert status == 200
    assert body["trading_state"] == "running"
    assert [f["factor"] for f in body["factors"]] == ["BTC"]
    assert {a["asset"] for a in body["assets"]} >= {"SOL", "ETH", "AVAX", "BTC"}
    _, _, text = await call(daemon, "GET", "/metrics")
    for name in ("hedger_portfolio_beta", "hedger_cycle_seconds_bucket", "process_cpu_seconds"):
        assert name in text, name


async def test_control_needs_the_token_and_does_nothing_without_it(daemon: Daemon) -> None:
    for token in (None, "wrong"):
        status, body, _ = await call(daemon, "POST", "/control/pause", token)
        assert status == 401, body
        assert daemon.engine.trading_state == "running"
    status, body, _ = await call(daemon, "POST", "/control/pause", TOKEN)
    assert status == 200 and body["trading_state"] == "paused"
    status, body, _ = await call(daemon, "POST", "/control/resume", "wrong")
    assert status == 401 and daemon.engine.trading_state == "paused"
    status, body, _ = await call(daemon, "POST", "/control/resume", TOKEN)
    assert status == 200 and body["trading_state"] == "running"


async def test_reload_applies_a_band_change_live(daemon: Daemon, tmp_path: Path) -> None:
    engine = daemon.engine
    await until(lambda: engine.decision_of("BTC") is not None)
    decision = engine.decision_of("BTC")
    assert decision is not None and decision.band_half_width == 0.25
    path = Path(daemon.control.config_path or "")
    path.write_text(path.read_text().replace("half_width: 0.25", "half_width: 0.75"))
    status, body, _ = await call(daemon, "POST", "/control/reload", TOKEN)
    assert status == 200, body
    assert body["changes"] == {"factors.0.band.half_width": {"old": 0.25, "new": 0.75}}
    cycles = engine.stats.cycles
    await until(lambda: engine.stats.cycles > cycles + 1)
    decision = engine.decision_of("BTC")
    assert decision is not None and decision.band_half_width == 0.75
    rows = sqlite3.connect(tmp_path / "j.sqlite").execute("SELECT diff FROM config_changes")
    assert "0.75" in rows.fetchone()[0]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("half_width: 0.25", "half_width: -1"), "factors.0.band.half_width"),
        (("journal: {path: ", "journal: {path: /elsewhere"), "journal.path: needs a restart"),
    ],
)
async def test_a_refused_reload_keeps_the_running_config(
    daemon: Daemon, edit: tuple[str, str], expected: str
) -> None:
    engine = daemon.engine
    await until(lambda: engine.decision_of("BTC") is not None)
    path = Path(daemon.control.config_path or "")
    path.write_text(path.read_text().replace(*edit))
    status, body, _ = await call(daemon, "POST", "/control/reload", TOKEN)
    assert status == 422
    assert any(expected in error for error in body["errors"]), body
    cycles = engine.stats.cycles
    await until(lambda: engine.stats.cycles > cycles + 1)
    decision = engine.decision_of("BTC")
    assert decision is not None and decision.band_half_width == 0.25
    assert engine.stats.config_reloads["refused"] == 1
    assert engine.stats.config_reloads["applied"] == 0


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("daemon never became ready")


def test_sigterm_stops_cleanly_with_the_journal_intact(tmp_path: Path) -> None:
    port = free_port()
    path = write_config(tmp_path, port)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hedger.cli", "run", "--config", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, proc.stderr.read().decode() if proc.stderr else ""
    assert took < 25, took
    db = sqlite3.connect(tmp_path / "j.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT COUNT(*) FROM intents").fetchone()[0] >= 1
    pending = db.execute("SELECT COUNT(*) FROM orders WHERE status = 'pending'").fetchone()[0]
    assert pending == 0


async def test_a_reload_that_cannot_be_built_is_refused_whole(
    daemon: Daemon, tmp_path: Path
) -> None:
    """Before the fix, a holding of an asset no venue lists swapped the config and the
    positions, then raised in the rebuild: HTTP 500, nothing journaled, half applied."""
    engine = daemon.engine
    await until(lambda: engine.decision_of("BTC") is not None)
    positions, cfg, version = engine.positions, engine.cfg, daemon.control.version
    path = Path(daemon.control.config_path or "")
    original = path.read_text()
    path.write_text(
        original.replace(
            "    - {asset: AVAX, kind: spot, qty: 5000}",
            "    - {asset: AVAX, kind: spot, qty: 5000}\n    - {asset: NOPE, kind: spot, qty: 7}",
        ).replace("prices: {BTC: 90000,", "prices: {NOPE: 1, BTC: 90000,")
    )
    status, body, _ = await call(daemon, "POST", "/control/reload", TOKEN)
    assert status == 422, body
    assert any("NOPE" in error for error in body["errors"]), body
    assert engine.positions is positions and engine.cfg is cfg
    assert daemon.control.version == version
    assert all(p.instrument.underlying != "NOPE" for p in engine.positions)
    refused = [p for _, kind, p in engine.journal.events() if kind == "config_reload_refused"]
    assert refused and any("NOPE" in e for e in refused[-1]["errors"])
    cycles = engine.stats.cycles
    await until(lambda: engine.stats.cycles > cycles + 2)  # still cycling, nothing halted
    assert engine.trading_state == "running"
    # The next good file applies: a refusal leaves every trigger working.
    path.write_text(original.replace("half_width: 0.25", "half_width: 0.5"))
    status, body, _ = await call(daemon, "POST", "/control/reload", TOKEN)
    assert status == 200, body
    await until(lambda: (d := engine.decision_of("BTC")) is not None and d.band_half_width == 0.5)


async def test_a_log_level_reload_is_applied(daemon: Daemon) -> None:
    import logging

    import structlog

    saved = structlog.get_config()
    try:
        path = Path(daemon.control.config_path or "")
        path.write_text(path.read_text().replace("level: info", "level: warning"))
        status, body, _ = await call(daemon, "POST", "/control/reload", TOKEN)
        assert status == 200 and "logging.level" in body["changes"], body
        logger = structlog.get_logger("test")
        assert not logger.is_enabled_for(logging.INFO)
        assert logger.is_enabled_for(logging.WARNING)
    finally:
        structlog.configure(**saved)  # the rest of the suite logs as before
