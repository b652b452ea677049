from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import orjson
import pytest

from hedger.backtest.driver import run_hedge
from hedger.backtest.metrics import run_metrics
from hedger.backtest.record import TickerRecorder
from hedger.backtest.recording_format import decode_line, encode_line, read_recording
from hedger.backtest.replay import exchange_ms, replay_file, replay_lines
from hedger.config import load_config
from tests.backtest.conftest import alts_config
from tests.paper.conftest import make_server

PERPS = ["BTC-PERPETUAL", "SOL_USDC-PERPETUAL", "ETH-PERPETUAL", "AVAX_USDC-PERPETUAL"]


def ticker_frame(name: str, ts_ms: int, mark: float, spread: float = 1.0) -> bytes:
    data = {
        "instrument_name": name,
        "timestamp": ts_ms,
        "best_bid_price": mark - spread / 2,
        "best_ask_price": mark + spread / 2,
        "mark_price": mark,
        "index_price": mark,
    }
    channel = f"ticker.{name}.100ms"
    message = {
        "jsonrpc": "2.0",
        "method": "subscription",
        "params": {"channel": channel, "data": data},
    }
    return orjson.dumps(message)


def test_line_round_trip_keeps_the_frame_bytes() -> None:
    frame = ticker_frame("BTC-PERPETUAL", 1_000, 90_000.0)
    line = encode_line(123, frame)
    assert orjson.loads(line) == {"recv_ms": 123, "frame": orjson.loads(frame)}
    assert decode_line(line.rstrip()) == (123, frame)


def test_a_frame_that_is_not_json_is_kept_as_a_string() -> None:
    line = encode_line(5, "not {json")
    assert orjson.loads(line)["frame"] == "not {json"
    assert decode_line(line) == (5, b"not {json")
    with pytest.raises(ValueError, match="not a recording line"):
        decode_line(b'{"other": 1}')


def test_exchange_timestamp_read_without_parsing() -> None:
    assert exchange_ms(ticker_frame("BTC-PERPETUAL", 1_795_564_800_123, 9e4)) == 1_795_564_800_123
    assert exchange_ms(b'{"jsonrpc":"2.0","id":3,"result":["ticker.X.100ms"]}') is None
    assert exchange_ms(b'{"method":"subscription","params":{"data":{"timestamp":42}}}') == 42


def test_replay_conflates_on_exchange_time() -> None:
    cfg = alts_config()
    bar = 60_000
    lines = [
        encode_line(
            0,
            b'{"jsonrpc":"2.0","id":2,"result":["ticker.BTC-PERPETUAL.100ms",'
            b'"ticker.SOL_USDC-PERPETUAL.100ms","ticker.ETH-PERPETUAL.100ms",'
            b'"ticker.AVAX_USDC-PERPETUAL.100ms"]}',
        )
    ]
    t0 = 1_795_564_800_000
    prices = {
        "BTC-PERPETUAL": 9e4,
        "SOL_USDC-PERPETUAL": 150.0,
        "ETH-PERPETUAL": 3e3,
        "AVAX_USDC-PERPETUAL": 25.0,
    }
    # Three ticks per instrument in the first minute, then one in the third minute (the
    # second has none); receive times are deliberately out of step with exchange times.
    for second in (1, 20, 59):
        for name, px in prices.items():
            lines.append(
                encode_line(9, ticker_frame(name, t0 + second * 1000, px * (1 + second / 1e4)))
            )
    for name, px in prices.items():
        lines.append(encode_line(1, ticker_frame(name, t0 + 150_000, px * 1.01)))
    tape = replay_lines(cfg, b"".join(lines).splitlines(), bar)
    assert tape.time_ms.tolist() == [t0 + 59_000, t0 + 150_000]
    assert tape.updates == 16
    btc = tape.layout.assets.index("BTC")
    assert tape.asset_price[0, btc] == pytest.approx(9e4 * 1.0059)
    assert tape.asset_price[1, btc] == pytest.approx(9e4 * 1.01)
    # Ages on the receive clock, as live: every input arrived within the bar.
    assert tape.input_age_s.shape == (2, len(tape.input_names)) and len(tape.input_names) > 0
    assert (tape.input_age_s <= cfg.market.stale_after).all()
    assert tape.hedge_ask[0, 0] - tape.hedge_bid[0, 0] == pytest.approx(1.0)


async def test_record_then_replay_against_the_paper_venue(tmp_path: Path) -> None:
    server = make_server(ticks_per_second=20.0, history_minutes=10)
    await server.start()
    path = tmp_path / "ticks.jsonl.gz"
    try:
        stats = await TickerRecorder(server.ws_url, path, PERPS).run(duration_s=2.0)
    finally:
        await server.stop()
    assert stats.channels == len(PERPS)
    assert stats.tickers > 20
    with gzip.open(path, "rb") as handle:
        first = orjson.loads(handle.readline())
    assert set(first) == {"recv_ms", "frame"}
    cfg = load_config("config/paper.yaml")
    tape = replay_file(cfg, path, bar_ms=200)
    in_memory = replay_lines(cfg, read_recording(path), 200)
    assert np.array_equal(in_memory.asset_price, tape.asset_price)
    assert np.array_equal(in_memory.time_ms, tape.time_ms)
    assert len(tape) >= 5  # ~2 s of exchange time in 200 ms bars
    assert tape.updates == stats.tickers
    series = run_hedge(tape, cfg)
    metrics = run_metrics(series)
    assert metrics.bars == len(tape) - 1
    # The paper book (alts long, a short call) is outside its 0.25 BTC band at once.
    assert series.trades.sum() >= 1
    assert series.hedge_position[-1, 0] < 0


async def test_backtest_command_replays_a_recording(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hedger.backtest import commands as cli

    server = make_server(ticks_per_second=20.0, history_minutes=10)
    await server.start()
    path = tmp_path / "ticks.jsonl.gz"
    try:
        await TickerRecorder(server.ws_url, path, PERPS).run(duration_s=1.0)
    finally:
        await server.stop()
    argv = ["backtest", "--config", "config/paper.yaml", "--replay", str(path)]
    capsys.readouterr()  # the venue's own log lines
    code = cli.main([*argv, "--bar", "100ms", "--json"])
    document = orjson.loads(capsys.readouterr().out)
    assert code == 0
    assert document["source"] == f"replay:{path}"
    assert document["market_updates"] > 10
    (only,) = document["runs"]
    assert only["oracle"] is None  # a recording has no true betas
    assert only["metrics"]["bars"] >= 3


def test_record_command_writes_a_replayable_file(tmp_path: Path) -> None:
    """``hedger record`` runs its own event loop, so the venue serves from another thread."""
    import asyncio
    import threading

    from hedger.backtest import commands as cli

    loop = asyncio.new_event_loop()
    server = make_server(ticks_per_second=20.0, history_minutes=10)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(30)
    path = tmp_path / "ticks.jsonl.gz"
    try:
        argv = ["record", "--url", server.ws_url, "--out", str(path), "--seconds", "1"]
        code = cli.main([*argv, "--instruments", "BTC-PERPETUAL,ETH-PERPETUAL"])
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
    assert code == 0
    frames = [orjson.loads(line)["frame"] for line in read_recording(path)]
    channels = {f["params"]["channel"] for f in frames if f.get("method") == "subscription"}
    assert channels == {"ticker.BTC-PERPETUAL.100ms", "ticker.ETH-PERPETUAL.100ms"}
    assert frames[0]["id"] == 1 and len(frames[0]["result"]) > 100  # the instrument list


def test_record_rejects_a_non_positive_duration(capsys: pytest.CaptureFixture[str]) -> None:
    from hedger.backtest import commands as cli

    code = cli.main(["record", "--url", "ws://127.0.0.1:1", "--out", "x.gz", "--seconds", "0"])
    assert code == 2 and "--seconds" in capsys.readouterr().err
