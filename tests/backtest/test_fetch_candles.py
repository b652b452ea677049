"""`hedger fetch-candles` against the real paper venue on a loopback port, through ccxt."""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import ccxt.async_support as ccxt_async
import pytest

from hedger.backtest.candles import load_candles, read_candle_file
from hedger.cli import main
from hedger.paper.server import PaperVenueServer
from tests.paper.conftest import make_server

FIVE_MIN_MS = 300_000


@pytest.fixture
async def venue() -> AsyncIterator[PaperVenueServer]:
    server = make_server(history_minutes=6 * 60)
    await server.start()
    yield server
    await server.stop()


async def fetch(venue_url: str, out: Path, *extra: str) -> tuple[int, str]:
    """The command as an operator runs it (its own event loop, in a thread)."""
    argv = ["fetch-candles", "--venue", "deribit", "--url", venue_url, "--out", str(out), *extra]
    return await asyncio.to_thread(_run, argv)


def _run(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


async def venue_candles(venue: PaperVenueServer, symbol: str, since_ms: int) -> list[list[float]]:
    client = ccxt_async.deribit()
    client.urls["api"] = venue.ccxt_urls()
    try:
        rows: list[list[float]] = await client.fetch_ohlcv(symbol, "5m", since_ms, 1000)
        return rows
    finally:
        await client.close()


async def test_fetch_paginates_and_writes_what_the_venue_serves(
    venue: PaperVenueServer, tmp_path: Path
) -> None:
    code, err = await fetch(
        venue.rest_url,
        tmp_path,
        "--assets",
        "BTC,SOL",
        "--timeframe",
        "5m",
        "--since",
        "3h",
        "--limit",
        "10",
    )
    assert code == 0, err
    assert "BTC: BTC/USDC:" in err and "SOL: SOL/USDC:" in err
    btc = read_candle_file(tmp_path / "BTC-USDC_5m.csv")
    # Three hours of 5-minute candles in pages of ten: the pages were followed.
    assert 30 <= len(btc.open_ms) <= 37
    assert set((btc.open_ms[1:] - btc.open_ms[:-1]).tolist()) == {FIVE_MIN_MS}
    assert btc.open_ms[-1] + FIVE_MIN_MS <= time.time() * 1000  # closed candles only
    served = await venue_candles(venue, "BTC/USDC", int(btc.open_ms[0]))
    by_time = {int(row[0]): row[4] for row in served}
    assert btc.close.tolist() == [by_time[int(t)] for t in btc.open_ms]
    rows = (tmp_path / "BTC-USDC_5m.csv").read_text().splitlines()
    assert len(rows[0].split(",")) == 6  # ccxt's row layout, no header
    candles = load_candles(tmp_path)
    assert sorted(candles.assets) == ["BTC", "SOL"] and candles.bar_ms == FIVE_MIN_MS
    assert candles.gaps["SOL"].count == 0


async def test_a_second_run_resumes_after_the_last_candle(
    venue: PaperVenueServer, tmp_path: Path
) -> None:
    since_ms = int(time.time() * 1000) - 3 * 3_600_000
    until_ms = since_ms + 3_600_000
    first = ["--assets", "ETH", "--timeframe", "5m", "--limit", "5"]
    code, err = await fetch(
        venue.rest_url, tmp_path, *first, "--since", str(since_ms), "--until", str(until_ms)
    )
    assert code == 0, err
    path = tmp_path / "ETH-USDC_5m.csv"
    head = path.read_bytes()
    part = read_candle_file(path)
    assert part.open_ms[-1] + FIVE_MIN_MS <= until_ms and len(part.open_ms) >= 10
    code, err = await fetch(venue.rest_url, tmp_path, *first)  # no --since: the file says
    assert code == 0, err
    whole = read_candle_file(path)  # times rise strictly: nothing fetched twice
    assert path.read_bytes().startswith(head)
    assert len(whole.open_ms) > len(part.open_ms)
    assert set((whole.open_ms[1:] - whole.open_ms[:-1]).tolist()) == {FIVE_MIN_MS}
    assert f"({len(whole.open_ms)} in all)" in err


async def test_venue_side_refusals_are_one_line(venue: PaperVenueServer, tmp_path: Path) -> None:
    code, err = await fetch(venue.rest_url, tmp_path, "--assets", "PEPE", "--since", "1h")
    assert (code, err.strip()) == (
        2,
        "hedger fetch-candles: asset PEPE: no spot or perpetual market for it on this venue",
    )
    code, err = await fetch(
        venue.rest_url, tmp_path, "--assets", "BTC", "--since", "1h", "--timeframe", "7m"
    )
    assert code == 2 and "--timeframe 7m: venue deribit at" in err and "offers 1m" in err
    code, err = await fetch(venue.rest_url, tmp_path, "--assets", "BTC", "--timeframe", "5m")
    assert code == 2 and "BTC-USDC_5m.csv does not exist yet: --since says" in err
    (tmp_path / "BTC-USDC_1h.csv").write_text("date,close\n2022-01-01,1\n")
    code, err = await fetch(venue.rest_url, tmp_path, "--assets", "BTC", "--since", "1h")
    assert code == 2 and "exists and is not in ccxt's row layout" in err
    assert err.count("\n") == 1


def test_an_unreachable_venue_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    code, err = _run(
        [
            "fetch-candles",
            "--venue",
            "deribit",
            "--url",
            url,
            "--assets",
            "BTC",
            "--since",
            "1d",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 1
    assert err.startswith(f"hedger fetch-candles: cannot reach venue deribit at {url}: ")
    assert err.count("\n") == 1
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--venue", "nosuchx"], "--venue 'nosuchx': not a ccxt exchange id"),
        (["--venue", "deribit", "--limit", "0"], "--limit must be >= 1"),
    ],
)
def test_bad_arguments_are_one_line(argv: list[str], message: str, tmp_path: Path) -> None:
    code, err = _run(["fetch-candles", "--assets", "BTC", "--out", str(tmp_path), *argv])
    assert code == 2 and message in err and err.count("\n") == 1
