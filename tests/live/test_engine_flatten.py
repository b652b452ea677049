"""``flatten``: an operator closes the hedge positions on purpose, through the guards and the
executor, journaled; the daemon pauses itself so the cycle does not hedge them back."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hedger.config import load_config
from hedger.live.daemon import Daemon, start_daemon, stop_daemon
from tests.live.test_engine_paper import wait_for
from tests.obs.test_http import TOKEN, write_config

HEDGE = "BTC/USD:BTC"


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    path = write_config(tmp_path)
    running = await start_daemon(load_config(path), str(path), watch_config=False)
    yield running
    await stop_daemon(running)


async def flatten(daemon: Daemon, **body: Any) -> tuple[int, Any]:
    assert daemon.http is not None
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            daemon.http.url + "/control/flatten",
            json=body,
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as response,
    ):
        return response.status, await response.json()


async def hedge_amount(daemon: Daemon) -> float:
    held = await daemon.engine.links["paper"].positions()
    return sum(p.qty for p in held if p.instrument.symbol == HEDGE)


async def test_flatten_closes_the_hedge_journaled_and_pauses(daemon: Daemon) -> None:
    engine = daemon.engine
    await wait_for(lambda: any(h.result == "filled" for h in engine.recent_hedges), 30)
    await wait_for(lambda: not engine.hedging)
    before = await hedge_amount(daemon)
    assert before != 0.0
    left = abs(before) * 1e-3  # below one lot of the hedge stays open, by design

    status, body = await flatten(daemon, dry_run=True, confirm=engine.cfg.name)
    assert status == 200 and body["dry_run"] and body["orders"], body
    assert await hedge_amount(daemon) != 0.0, "a dry run sent orders"

    status, body = await flatten(daemon, confirm=engine.cfg.name)
    assert status == 200, body
    assert body["trading_state"] == "paused"
    assert abs(await hedge_amount(daemon)) < left
    with sqlite3.connect(engine.cfg.journal.path) as db:
        intents = db.execute("SELECT seq FROM intents WHERE reason = 'flatten by operator'")
        assert intents.fetchall(), "the flatten was not journaled as an intent"
    kinds = [kind for _, kind, _ in engine.journal.events()]
    assert "flatten_requested" in kinds and "flatten_done" in kinds
    # Paused: the cycle does not hedge the book back while the operator looks.
    cycles = engine.stats.cycles
    await wait_for(lambda: engine.stats.cycles > cycles + 20)
    assert abs(await hedge_amount(daemon)) < left


async def test_flatten_needs_the_daemon_name_as_confirmation(daemon: Daemon) -> None:
    engine = daemon.engine
    await wait_for(lambda: engine.stats.cycles > 0)
    status, body = await flatten(daemon)
    assert status == 400 and "confirm" in body["error"]
    status, body = await flatten(daemon, confirm="another-daemon")
    assert status == 400
    assert engine.trading_state == "running"


async def ctl_flatten(daemon: Daemon, *flags: str, stdin: bytes = b"") -> tuple[int, str]:
    assert daemon.http is not None
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hedger.cli",
        "ctl",
        "flatten",
        "--url",
        daemon.http.url,
        "--token",
        TOKEN,
        *flags,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate(stdin)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_ctl_flatten_asks_for_the_daemon_name_before_sending(daemon: Daemon) -> None:
    engine = daemon.engine
    await wait_for(lambda: any(h.result == "filled" for h in engine.recent_hedges), 30)
    await wait_for(lambda: not engine.hedging)
    before = await hedge_amount(daemon)

    code, out = await ctl_flatten(daemon, stdin=b"not-the-name\n")
    assert code != 0 and "not confirmed" in out, out
    assert engine.trading_state == "running"

    code, out = await ctl_flatten(daemon, "--dry-run")
    assert code == 0 and '"dry_run":true' in out.replace(" ", ""), out
    assert engine.trading_state == "running"

    code, out = await ctl_flatten(daemon, stdin=f"{engine.cfg.name}\n".encode())
    assert code == 0, out
    assert engine.trading_state == "paused"
    assert abs(await hedge_amount(daemon)) < abs(before) * 1e-3
