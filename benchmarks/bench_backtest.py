"""Replay throughput of ``hedger backtest --replay``: market updates per second.

A recording of a 20-asset + 200-option book is synthesised from the simulator (the alts are
copies of the scenario's own, renamed), as Deribit ticker pushes every 100 ms of simulated
time, gzip-compressed in the ``hedger record`` format. The replay then does what the
command does: decompress, route every frame through ``handle_frame`` into a MarketState
(the parse + store the live feed does), and run the core (betas, exposure of all 220
positions, policy, guards, fills) once per 1-second bar, conflated as live. An update is a
ticker message stored. Target: >= 200,000 updates/s.

    .venv/bin/python benchmarks/bench_backtest.py [--seconds 120] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from hedger.backtest.driver import run_hedge
from hedger.backtest.recording_format import encode_line, read_recording
from hedger.backtest.replay import replay_file, replay_lines
from hedger.config import Config
from hedger.sim import Market, scenario
from hedger.sim.chains import OPTION, PERP

N_ASSETS = 20
N_OPTIONS = 200
STEP_MS = 100
BAR_MS = 1_000


def wide_market(seed: int) -> Market:
    """BTC as the factor, ETH and 18 alts (the scenario's five, cycled and renamed)."""
    base = scenario("calm-1f")
    alts = list(base.alts)
    while len(alts) < N_ASSETS - 1:
        template = base.alts[1 + len(alts) % (len(base.alts) - 1)]
        alts.append(replace(template, name=f"ALT{len(alts):02d}", surface=None))
    return Market(replace(base, alts=tuple(alts)), seed=seed)


def book(market: Market) -> tuple[list[str], dict[str, Any]]:
    """Instruments to record and a config holding every asset plus 200 options."""
    u = market.universe
    perps = [int(i) for i in np.flatnonzero(u.kind == PERP)[:N_ASSETS]]
    options = [int(i) for i in np.flatnonzero(u.kind == OPTION)[:N_OPTIONS]]
    holdings: list[dict[str, Any]] = [
        {"asset": a, "qty": 1000.0 / float(np.exp(market.process.log_price[k]))}
        for k, a in enumerate(u.assets)
        if a != "BTC"
    ]
    for n, i in enumerate(options):
        inst = u.instruments[i]
        expiry = np.datetime64(int(u.expiry_ms[i]), "ms").astype("datetime64[D]")
        holdings.append(
            {
                "asset": inst.base_currency,
                "kind": "option",
                "qty": 0.1 if n % 2 else -0.1,
                "strike": float(u.strike[i]),
                "expiry": str(expiry),
                "option_type": inst.option_type,
                "inverse": bool(u.inverse[i]),
            }
        )
    names = [u.instruments[i].instrument_name for i in (*perps, *options)]
    config = {
        "venues": {"sim": {"exchange": "deribit"}},
        "factors": [{"asset": "BTC", "hedge": {"venue": "sim", "symbol": "BTC-PERPETUAL"}}],
        "portfolio": {"holdings": holdings},
        "beta": {"bar": "1s", "half_life": "1h", "window": "1h", "min_observations": 30},
        "hedge": {"cooldown": "0s"},
    }
    return names, config


def record(market: Market, names: list[str], seconds: float, path: Path) -> int:
    rows = {market.index_of(n): n for n in names}
    wanted = np.zeros(len(market.universe), np.bool_)
    wanted[list(rows)] = True
    reply = {"jsonrpc": "2.0", "id": 2, "result": [f"ticker.{n}.100ms" for n in names]}
    count = 0
    with gzip.open(path, "wb", compresslevel=3) as out:
        out.write(encode_line(market.now_ms, orjson.dumps(reply)))
        start = market.now_ms
        for step in range(1, int(seconds * 1000 / STEP_MS) + 1):
            changed = market.step(start + step * STEP_MS)
            for i in changed[wanted[changed]]:
                name = rows[int(i)]
                push = {
                    "jsonrpc": "2.0",
                    "method": "subscription",
                    "params": {"channel": f"ticker.{name}.100ms", "data": market.ticker(int(i))},
                }
                out.write(encode_line(market.now_ms + 3, orjson.dumps(push)))
                count += 1
    return count


def replay_once(cfg: Config, path: Path) -> dict[str, float]:
    """Seconds for the replay and the core, from lines in memory and from the file."""
    lines = read_recording(path)
    started = time.perf_counter()
    tape = replay_lines(cfg, lines, BAR_MS)
    replayed = time.perf_counter()
    series = run_hedge(tape, cfg)
    done = time.perf_counter()
    del lines
    streamed = time.perf_counter()
    run_hedge(replay_file(cfg, path, BAR_MS), cfg)
    from_file = time.perf_counter() - streamed
    return {
        "replay_s": replayed - started,
        "core_s": done - replayed,
        "from_file_s": from_file,
        "updates": tape.updates,
        "bars": len(series.time_ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="simulated seconds")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    market = wide_market(args.seed)
    names, data = book(market)
    cfg = Config.model_validate(data)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ticks.jsonl.gz"
        frames = record(market, names, args.seconds, path)
        size_mb = path.stat().st_size / 1e6
        print(
            f"recording: {len(names)} instruments ({N_ASSETS} assets' perps + "
            f"{len(names) - N_ASSETS} options), {frames:,} ticker frames, {size_mb:.1f} MB gzip"
        )
        runs = [replay_once(cfg, path) for _ in range(args.repeat)]
    best = min(runs, key=lambda r: r["replay_s"] + r["core_s"])
    updates, bars = best["updates"], best["bars"]
    in_memory_s = best["replay_s"] + best["core_s"]
    from_file_s = min(r["from_file_s"] for r in runs)
    print(f"positions: {len(cfg.portfolio.holdings)} holdings + 1 hedge; bars: {bars:,}")
    print(f"core: {best['core_s'] * 1e3:.0f} ms = {best['core_s'] / bars * 1e6:.0f} us per bar")
    print(
        f"replay (parse + store + core per bar): {updates / in_memory_s:,.0f} updates/s "
        f"({updates:,} in {in_memory_s:.3f} s; best of {args.repeat})"
    )
    print(
        f"replay streamed from the gzip file (decompressing in a thread): "
        f"{updates / from_file_s:,.0f} updates/s ({from_file_s:.3f} s)"
    )


if __name__ == "__main__":
    main()
