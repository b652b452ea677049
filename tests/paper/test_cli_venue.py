"""``hedger paper-venue`` standalone, as deploy/ runs it: a real process on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import ccxt.async_support as ccxt_async

ROOT = Path(__file__).resolve().parents[2]


async def test_standalone_venue_serves_ccxt_and_stops_cleanly_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "hedger.cli", "paper-venue", "--port", "0", "--history-hours", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        urls = json.loads(process.stdout.readline())
        client = ccxt_async.deribit({"apiKey": "paper", "secret": "paper"})
        client.urls["api"] = urls
        try:
            balance = await client.fetch_balance()
            assert balance["BTC"]["total"] == 10.0
        finally:
            await client.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_bad_accounts_file_exits_2(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text("- {name: a}\n")
    result = subprocess.run(
        [sys.executable, "-m", "hedger.cli", "paper-venue", "--accounts", str(accounts)],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2
    assert "needs name, api_key and secret" in result.stderr
