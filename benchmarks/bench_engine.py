"""The live engine under load: cycle time and CPU share at ~2,000 ticker updates/s on loopback.

``hedger paper-venue`` runs in its own process at real-time speed; the daemon (native
websocket feed, ccxt REST, journal, engine cycle) runs in this one through
``hedger.live.daemon.start_daemon``, configured like ``deploy/compose/hedger.yaml``: SOL, ETH and
AVAX spot hedged with BTC-PERPETUAL, plus an options book of listed venue options (BTC first,
then ETH and SOL if more are asked for) declared as holdings, so each one's ticker is streamed.

The venue pushes every instrument that changed on every tick (its ``ticker.*.100ms`` channel
is not throttled), so the feed receives about ``instruments x ticks/s`` updates per second:
the tick rate is set to ``--rate / --instruments`` (the venue's tick timer runs a little
slow, so about 2% fewer arrive). With the default week of venue history (the betas warm
from it), 130 options outlive the run: 42 BTC, 48 ETH, 40 SOL. After the opening hedge and
a warm-up, over a window of ``--seconds``:

- ticker updates stored per second (``MarketState.accepted``) and pushed by the venue;
- engine cycles per second, and cycle time p50/p99/max: every raw duration the engine
  records into ``hedger_cycle_seconds`` (the synchronous compute; an order's round trip is
  awaited after it and reported apart, as time in orders), and the same cycles' CPU time
  (thread time of ``Engine.compute``), which a busy machine's preemption does not inflate;
- CPU share, in % of one core: this process (the daemon) and the venue's process (/proc);
- event-loop lag (a 10 ms sleeper's overshoot) and orders sent.

    .venv/bin/python benchmarks/bench_engine.py [--rate 2000] [--instruments 100] \
        [--seconds 20] [--warmup 5] [--json] [--profile 30]

``--profile N`` runs cProfile over the window and prints its top N functions by own time
(timings are then inflated). Nothing is asserted: it prints numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import pstats
import random
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import yaml
from venue_process import cpu_seconds, paper_venue

from hedger.config import Config
from hedger.config.portfolio import expiry_ms
from hedger.live.daemon import Daemon, start_daemon, stop_daemon
from hedger.live.engine import Engine
from hedger.obs.logging import configure_logging

VENUE = "paper"
COMPOSE_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "compose" / "hedger.yaml"
OUTLIVE_RUN_MS = 3_600_000  # options expiring sooner are left out
# Instruments the book streams besides its options: the hedge perpetual and the perpetual
# that prices each other asset (SOL, ETH, AVAX; the account's BTC/ETH/USDC add none).
NON_OPTION_INSTRUMENTS = 4
OPTION_UNDERLYINGS = ("BTC", "ETH", "SOL")
OPTION_QTY_UNIT = {"BTC": 1.0, "ETH": 10.0, "SOL": 200.0}  # contracts of a typical line


# -- the venue, in its own process --------------------------------------------------------------


async def rest_get(
    session: aiohttp.ClientSession, rest_url: str, path: str, timeout_s: float = 30.0
) -> Any:
    """GET until the venue answers (it may still be starting); the JSON body."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            async with session.get(rest_url + path) as response:
                response.raise_for_status()
                return await response.json()
        except aiohttp.ClientError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


# -- the book -----------------------------------------------------------------------------------


def option_holdings(
    instruments: list[dict[str, Any]], count: int, seed: int
) -> list[dict[str, Any]]:
    """``count`` listed options as declared holdings, longest expiries first (none expires
    during the run), each with terms the universe matches to its venue instrument."""
    now_ms = int(time.time() * 1000)
    rank = {asset: n for n, asset in enumerate(OPTION_UNDERLYINGS)}
    listed = [
        row
        for row in instruments
        if row["kind"] == "option"
        and row["base_currency"] in rank
        and row["expiration_timestamp"] > now_ms + OUTLIVE_RUN_MS
    ]
    listed.sort(key=lambda r: (rank[r["base_currency"]], -r["expiration_timestamp"], r["strike"]))
    rng = random.Random(seed)
    holdings = []
    for row in listed:
        expiry = datetime.fromtimestamp(row["expiration_timestamp"] / 1000, UTC).date().isoformat()
        if expiry_ms(expiry) != row["expiration_timestamp"]:
            continue  # not an 08:00 UTC expiry: a declared holding could not name it
        asset = row["base_currency"]
        # A dealer's book: mostly short premium, a few long lines, sizes of 1 to 5 units.
        sign = -1.0 if rng.random() < 0.7 else 1.0
        holdings.append(
            {
                "asset": asset,
                "kind": "option",
                "qty": sign * rng.choice((1, 2, 3, 5)) * OPTION_QTY_UNIT[asset],
                "strike": float(row["strike"]),
                "expiry": expiry,
                "option_type": row["option_type"],
                "inverse": row.get("instrument_type") == "reversed",
            }
        )
        if len(holdings) == count:
            break
    return holdings


def bench_config(urls: Mapping[str, str], options: list[dict[str, Any]], journal: str) -> Config:
    """deploy/compose/hedger.yaml's daemon (venue as its own process), with ``options`` added."""
    raw = yaml.safe_load(COMPOSE_CONFIG.read_text())
    raw["name"] = "bench"
    raw["venues"][VENUE]["urls"] = {"rest": urls["rest"], "ws": urls["ws"]}
    raw["portfolio"]["holdings"] += options
    raw["portfolio"]["reference"]["implied_vols"] |= {"ETH": 0.65, "SOL": 0.8}
    raw["journal"] = {"path": journal}
    return Config.model_validate(raw)


# -- measuring ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Report:
    window_s: float
    subscribed: int
    options: int
    options_by_asset: dict[str, int]
    ticks_per_second: float
    target_updates_per_s: float
    updates_per_s: float
    updates_per_s_min_1s: float
    updates_per_s_max_1s: float
    venue_pushed_per_s: float
    rejected: int
    cycles: int
    cycles_per_s: float
    cycle_p50_us: float
    cycle_p99_us: float
    cycle_max_us: float
    cycle_mean_us: float
    cycle_cpu_p50_us: float
    cycle_cpu_p99_us: float
    cycle_cpu_max_us: float
    cycle_cpu_share: float
    """the cycles' CPU time over the window: the compute's part of the daemon's CPU share."""
    daemon_cpu_share: float
    venue_cpu_share: float
    loop_lag_p50_ms: float
    loop_lag_p99_ms: float
    loop_lag_max_ms: float
    orders_sent: int
    order_seconds: float
    guard_refusals: int
    regime_start: str
    regime_end: str
    profiled: bool


def accepted(engine: Engine) -> tuple[int, int]:
    """Tickers stored and dropped so far, over every venue (read anew: states get replaced)."""
    stored = dropped = 0
    for link in engine.links.values():
        if link.market is not None:
            stored += link.market.state.accepted
            dropped += sum(link.market.state.rejected.values())
    return stored, dropped


def orders_sent(engine: Engine) -> int:
    return sum(n for (_, _, result), n in engine.stats.hedge_orders.items() if result != "dry_run")


async def loop_lag(samples: list[float], interval_s: float = 0.01) -> None:
    """How late a ``sleep(interval_s)`` wakes up: the event loop's backlog, in seconds."""
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time()
        await asyncio.sleep(interval_s)
        samples.append(loop.time() - asked - interval_s)


def time_compute_cpu(engine: Engine, samples: list[float]) -> None:
    """Append the thread CPU time of every ``engine.compute`` call to ``samples``."""
    compute = engine.compute

    def timed(now_ms: int, now_s: float) -> Any:
        started = time.thread_time()
        try:
            return compute(now_ms, now_s)
        finally:
            samples.append(time.thread_time() - started)

    engine.compute = timed  # type: ignore[method-assign]


async def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:g} s")
        await asyncio.sleep(0.05)


def opening_hedge_done(engine: Engine) -> bool:
    """The engine has decided, and either hedged once or found nothing to hedge."""
    if engine.inside_band() is None:
        return False
    return bool(engine.recent_hedges) or engine.inside_band() is True


async def measure(
    daemon: Daemon,
    session: aiohttp.ClientSession,
    rest_url: str,
    venue_pid: int,
    args: argparse.Namespace,
    ticks_per_second: float,
    options: list[dict[str, Any]],
) -> tuple[Report, str]:
    engine = daemon.engine
    await wait_until(lambda: opening_hedge_done(engine), 120.0, "opening hedge")
    await asyncio.sleep(args.warmup)
    lag: list[float] = []
    lag_task = asyncio.create_task(loop_lag(lag))
    await asyncio.sleep(0.5)
    lag.clear()
    state0 = await rest_get(session, rest_url, "/admin/state")
    cycle_hist = engine.stats.cycle_seconds
    cycle_hist.recent = deque()  # unbounded for the window: every cycle's raw duration
    cpu_durations: list[float] = []
    time_compute_cpu(engine, cpu_durations)
    stored0, dropped0 = accepted(engine)
    cycles0, orders0 = engine.stats.cycles, orders_sent(engine)
    order_s0 = engine.stats.order_latency_seconds.total
    refusals0 = sum(engine.stats.guard_refusals.values())
    profiler = cProfile.Profile() if args.profile else None
    wall0, cpu0, venue_cpu0 = time.perf_counter(), time.process_time(), cpu_seconds(venue_pid)
    if profiler is not None:
        profiler.enable()
    per_second: list[float] = []
    last, last_t = stored0, wall0
    end = wall0 + args.seconds
    while (now := time.perf_counter()) < end:
        await asyncio.sleep(min(1.0, end - now))
        stored, _ = accepted(engine)
        t = time.perf_counter()
        if t - last_t >= 0.5:
            per_second.append((stored - last) / (t - last_t))
            last, last_t = stored, t
    if profiler is not None:
        profiler.disable()
    wall = time.perf_counter() - wall0
    cpu, venue_cpu = time.process_time() - cpu0, cpu_seconds(venue_pid) - venue_cpu0
    stored1, dropped1 = accepted(engine)
    durations = np.fromiter(cycle_hist.recent, np.float64)
    cpu_each = np.array(cpu_durations or [float("nan")])
    del engine.compute  # the class's method again
    cycles = engine.stats.cycles - cycles0
    orders = orders_sent(engine) - orders0
    order_s = engine.stats.order_latency_seconds.total - order_s0
    refusals = sum(engine.stats.guard_refusals.values()) - refusals0
    state1 = await rest_get(session, rest_url, "/admin/state")
    lag_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await lag_task
    lags = np.array(lag or [float("nan")])
    assert engine.universe is not None

    def quantile_us(q: float) -> float:
        return float(np.quantile(durations, q) * 1e6) if len(durations) else float("nan")

    report = Report(
        window_s=wall,
        subscribed=len(engine.universe.symbols),
        options=len(options),
        options_by_asset=dict(Counter(str(h["asset"]) for h in options)),
        ticks_per_second=ticks_per_second,
        target_updates_per_s=args.rate,
        updates_per_s=(stored1 - stored0) / wall,
        updates_per_s_min_1s=min(per_second, default=float("nan")),
        updates_per_s_max_1s=max(per_second, default=float("nan")),
        venue_pushed_per_s=(state1["messages_pushed"] - state0["messages_pushed"]) / wall,
        rejected=dropped1 - dropped0,
        cycles=cycles,
        cycles_per_s=cycles / wall,
        cycle_p50_us=quantile_us(0.5),
        cycle_p99_us=quantile_us(0.99),
        cycle_max_us=float(durations.max() * 1e6) if len(durations) else float("nan"),
        cycle_mean_us=float(durations.mean() * 1e6) if len(durations) else float("nan"),
        cycle_cpu_p50_us=float(np.quantile(cpu_each, 0.5) * 1e6),
        cycle_cpu_p99_us=float(np.quantile(cpu_each, 0.99) * 1e6),
        cycle_cpu_max_us=float(cpu_each.max() * 1e6),
        cycle_cpu_share=float(np.nansum(cpu_each)) / wall,
        daemon_cpu_share=cpu / wall,
        venue_cpu_share=venue_cpu / wall,
        loop_lag_p50_ms=float(np.quantile(lags, 0.5) * 1e3),
        loop_lag_p99_ms=float(np.quantile(lags, 0.99) * 1e3),
        loop_lag_max_ms=float(lags.max() * 1e3),
        orders_sent=orders,
        order_seconds=order_s,
        guard_refusals=refusals,
        regime_start=str(state0.get("regime")),
        regime_end=str(state1.get("regime")),
        profiled=profiler is not None,
    )
    profile_text = ""
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.profile)
        profile_text = out.getvalue()
    return report, profile_text


async def run(args: argparse.Namespace) -> tuple[Report, str]:
    tps = args.rate / args.instruments
    n_options = max(0, args.instruments - NON_OPTION_INSTRUMENTS)
    with (
        paper_venue(
            "--ticks-per-second",
            f"{tps:g}",
            "--speed",
            "1",
            "--seed",
            str(args.seed),
            "--scenario",
            args.scenario,
            "--history-hours",
            f"{args.history_hours:g}",
        ) as started,  # fmt: skip
        tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp,
    ):
        venue, urls = started
        async with aiohttp.ClientSession() as session:
            listed = await rest_get(session, urls["rest"], "/api/v2/public/get_instruments")
            options = option_holdings(listed["result"], n_options, args.seed)
            if len(options) < n_options:
                print(
                    f"warning: the venue lists {len(options)} options that outlive the run, "
                    f"not {n_options}: about {(len(options) + NON_OPTION_INSTRUMENTS) * tps:,.0f}"
                    " updates/s (a shorter --history-hours lists more: fewer have expired)",
                    file=sys.stderr,
                )
            cfg = bench_config(urls, options, os.path.join(tmp, "journal.sqlite"))
            daemon = await start_daemon(cfg, serve_http=False, watch_config=False)
            try:
                return await measure(daemon, session, urls["rest"], venue.pid, args, tps, options)
            finally:
                await stop_daemon(daemon)


def print_report(r: Report) -> None:
    cores = os.cpu_count() or 1
    mix = " + ".join(f"{n} {asset}" for asset, n in r.options_by_asset.items())
    print(
        f"engine under load: {r.subscribed} instruments subscribed ({mix} options), "
        f"venue at {r.ticks_per_second:g} ticks/s, speed 1, {r.window_s:.1f} s window"
        + (" [cProfile on: timings inflated]" if r.profiled else "")
    )
    print(
        f"  ticker updates stored: {r.updates_per_s:,.0f}/s (target {r.target_updates_per_s:,.0f}"
        f"; per second {r.updates_per_s_min_1s:,.0f}..{r.updates_per_s_max_1s:,.0f}); "
        f"venue pushed {r.venue_pushed_per_s:,.0f}/s; dropped {r.rejected}"
    )
    print(
        f"  engine cycles: {r.cycles:,} ({r.cycles_per_s:,.0f}/s), cycle time "
        f"p50 {r.cycle_p50_us:,.0f} us, p99 {r.cycle_p99_us:,.0f} us, "
        f"max {r.cycle_max_us:,.0f} us, mean {r.cycle_mean_us:,.0f} us"
    )
    print(
        f"  cycle CPU time (thread): p50 {r.cycle_cpu_p50_us:,.0f} us, "
        f"p99 {r.cycle_cpu_p99_us:,.0f} us, max {r.cycle_cpu_max_us:,.0f} us"
    )
    print(
        f"  CPU share (% of one core, {cores} cores): daemon {r.daemon_cpu_share:.1%} "
        f"(of which cycles {r.cycle_cpu_share:.1%}), venue {r.venue_cpu_share:.1%}"
    )
    print(
        f"  event-loop lag: p50 {r.loop_lag_p50_ms:.2f} ms, p99 {r.loop_lag_p99_ms:.2f} ms, "
        f"max {r.loop_lag_max_ms:.2f} ms"
    )
    print(
        f"  orders sent: {r.orders_sent} ({r.order_seconds:.2f} s awaiting them), "
        f"guard refusals {r.guard_refusals}; regime {r.regime_start} -> {r.regime_end}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rate", type=float, default=2000.0, help="ticker updates/s to feed")
    parser.add_argument(
        "--instruments", type=int, default=100, help="instruments subscribed (4 + options)"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=5.0, help="after the opening hedge")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scenario", default="stress-switching")
    parser.add_argument("--history-hours", type=float, default=168.0, help="for the beta warm-up")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile top N")
    parser.add_argument("--log-level", default="warning", help="the daemon's, to stderr")
    args = parser.parse_args()
    if args.instruments <= NON_OPTION_INSTRUMENTS:
        parser.error(f"--instruments must exceed {NON_OPTION_INSTRUMENTS} (the non-options)")
    configure_logging(args.log_level, "console")
    report, profile_text = asyncio.run(run(args))
    if args.json:
        print(json.dumps(asdict(report)))
    else:
        print_report(report)
    if profile_text:
        print(profile_text, file=sys.stderr if args.json else sys.stdout)


if __name__ == "__main__":
    main()
