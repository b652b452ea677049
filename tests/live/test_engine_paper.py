"""The whole daemon on the embedded paper venue: real websocket feed, real ccxt, real journal.

The venue runs on a simulated clock 40x faster than the wall, and the engine hedges on that
clock, so three simulated minutes take a few seconds.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
import structlog

from hedger.live.daemon import Daemon, start_daemon, stop_daemon
from tests.live.conftest import paper_config, with_updates


async def run_for_sim_ms(daemon: Daemon, sim_ms: int, timeout_s: float = 30.0) -> None:
    clock = daemon.engine.clock_ms
    end = clock() + sim_ms
    deadline = asyncio.get_running_loop().time() + timeout_s
    while clock() < end:
        assert asyncio.get_running_loop().time() < deadline, "simulated clock stalled"
        await asyncio.sleep(0.05)


async def wait_for(condition: object, timeout_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_hedges_the_beta_drift_and_stays_in_band(tmp_path: Path) -> None:
    cfg = paper_config(tmp_path)
    with structlog.testing.capture_logs() as logs:
        daemon = await start_daemon(cfg)
        engine = daemon.engine
        try:
            started = engine.started_ms
            assert started is not None
            await wait_for(lambda: any(h.result == "filled" for h in engine.recent_hedges))
            first = engine.recent_hedges[0]
            assert first.at_ms - started <= 60_000, "no hedge within 60 s of start"
            # Warm-up is over once the opening hedge is done: count cycles from here.
            await run_for_sim_ms(daemon, 5_000)
            engine.stats.decided_cycles = engine.stats.inside_band_cycles = 0
            await run_for_sim_ms(daemon, 180_000)
            decided, inside = engine.stats.decided_cycles, engine.stats.inside_band_cycles
        finally:
            await stop_daemon(daemon)

    assert decided > 50, decided  # about one cycle per venue tick batch (20/s, 4.5 s)
    print(f"in band: {inside}/{decided} cycles")
    assert inside / decided >= 0.95, (inside, decided)
    events = [entry["event"] for entry in logs]
    for name in ("hedge_decided", "order_sent", "order_filled"):
        assert name in events, name
    decided_log = next(e for e in logs if e["event"] == "hedge_decided")
    # Units in the field names: the factor's coin, the venue's amount unit (USD face here).
    assert abs(decided_log["deviation_btc"]) > decided_log["band_half_width_btc"]
    assert decided_log["amount_usd_face"] > 0 and decided_log["notional_usd"] > 0
    db = sqlite3.connect(cfg.journal.path)
    (payload,) = db.execute("SELECT decision FROM intents ORDER BY seq LIMIT 1").fetchone()
    decision = json.loads(payload)
    drivers = {d["asset"]: d for d in decision["drivers"]}
    # The drivers explain the decision: their contributions add up to its beta-delta.
    explained_usd = sum(d["beta_delta_usd"] for d in drivers.values())
    btc_usd = decision["factor_price_usd"]
    assert explained_usd / btc_usd == pytest.approx(decision["beta_delta"], rel=1e-9)
    intents = db.execute("SELECT COUNT(*) FROM intents").fetchone()[0]
    filled = db.execute("SELECT COUNT(*) FROM orders WHERE status = 'filled'").fetchone()[0]
    pending = db.execute("SELECT COUNT(*) FROM orders WHERE status = 'pending'").fetchone()[0]
    assert intents >= 1 and filled >= 1 and pending == 0


async def test_dry_run_journals_intents_and_sends_nothing(tmp_path: Path) -> None:
    cfg = with_updates(paper_config(tmp_path), limits={"dry_run": True})
    daemon = await start_daemon(cfg)
    engine = daemon.engine
    try:
        await wait_for(lambda: any(h.result == "dry_run" for h in engine.recent_hedges))
        assert engine.trading_state == "dry_run"
        venue = next(iter(daemon.paper.values()))
        assert venue.exchange.engine.orders == {}  # the venue never saw an order
    finally:
        await stop_daemon(daemon)
    db = sqlite3.connect(cfg.journal.path)
    assert db.execute("SELECT COUNT(*) FROM intents").fetchone()[0] >= 1
    assert db.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 0


async def test_limit_orders_hedge_at_the_touch_then_market(tmp_path: Path) -> None:
    cfg = paper_config(tmp_path)
    order = cfg.hedge.order.model_copy(
        update={"type": "limit", "limit_offset_bps": 1.0, "limit_timeout": 0.3}
    )
    cfg = with_updates(cfg, hedge={"order": order})
    daemon = await start_daemon(cfg, serve_http=False)
    engine = daemon.engine
    try:
        await wait_for(lambda: any(h.result == "filled" for h in engine.recent_hedges))
        await wait_for(lambda: engine.inside_band() is True)
    finally:
        await stop_daemon(daemon)
    orders = list(daemon.paper["paper"].exchange.engine.orders.values())
    assert orders and all(o.label.startswith("paper-") for o in orders)
    limits = [o for o in orders if o.order_type == "limit"]
    assert limits, "every leg starts as a limit order"
    # A leg's limit and its market remainder are never open at the same time.
    open_now = [o for o in orders if str(o.state) == "open"]
    assert not open_now


async def test_two_factors_hedge_btc_and_eth_each_with_its_perp(tmp_path: Path) -> None:
    cfg = paper_config(tmp_path, config="two-factor.yaml")
    daemon = await start_daemon(cfg, serve_http=False)
    engine = daemon.engine
    try:
        await wait_for(lambda: {h.factor for h in engine.recent_hedges} == {"BTC", "ETH"})
        await wait_for(lambda: engine.inside_band() is True)
        result = engine.exposure
        assert result is not None and result.factors == ("BTC", "ETH")
        for factor in ("BTC", "ETH"):
            decision = engine.decision_of(factor)
            assert decision is not None
            assert abs(decision.deviation) <= decision.band_half_width, decision
    finally:
        await stop_daemon(daemon)
    symbols = {o.instrument_name for o in daemon.paper["paper"].exchange.engine.orders.values()}
    assert symbols == {"BTC-PERPETUAL", "ETH-PERPETUAL"}


async def test_a_fill_outside_the_engine_updates_positions_before_reconciling(
    tmp_path: Path,
) -> None:
    """Someone trades the account by hand: the engine sees it on the trade stream and
    re-reads positions at once, not an hour later at the next reconciliation."""
    import ccxt.async_support as ccxt_async

    cfg = with_updates(paper_config(tmp_path), market={"reconcile_every": 3600.0})
    daemon = await start_daemon(cfg, serve_http=False)
    engine = daemon.engine
    server = daemon.paper["paper"]
    client = ccxt_async.deribit({"apiKey": "paper", "secret": "paper"})
    client.urls["api"] = server.ccxt_urls()
    try:
        await wait_for(lambda: engine.inside_band() is True)
        await client.load_markets()
        seen = engine.stats.own_trades_seen
        await client.create_order("AVAX/USDC:USDC", "market", "buy", 1000.0)
        await wait_for(lambda: engine.stats.own_trades_seen > seen, timeout_s=10)
        await wait_for(
            lambda: any(p.instrument.symbol == "AVAX/USDC:USDC" for p in engine.positions),
            timeout_s=10,
        )
    finally:
        await client.close()
        await stop_daemon(daemon)


async def test_a_periodic_exposure_line_says_where_each_factor_stands(tmp_path: Path) -> None:
    cfg = with_updates(paper_config(tmp_path), logging={"exposure_every": 0.2})
    with structlog.testing.capture_logs() as logs:
        daemon = await start_daemon(cfg, serve_http=False)
        try:
            await wait_for(lambda: sum(e["event"] == "exposure" for e in logs) >= 2)
        finally:
            await stop_daemon(daemon)
    line = next(e for e in logs if e["event"] == "exposure")
    assert line["band_btc"] in ("inside", "outside")
    assert {"beta_delta_btc", "target_btc", "band_half_width_btc", "trading"} <= set(line)
