"""The daemon against the paper venue's faults: stale data, dropped sockets, lost responses."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import structlog

from hedger.config import Config
from hedger.live.daemon import Daemon, start_daemon, stop_daemon
from tests.live.conftest import move_target, paper_config
from tests.live.test_engine_paper import run_for_sim_ms, wait_for


def with_faults(cfg: Config, faults: dict[str, Any], **venue: Any) -> Config:
    paper = cfg.venues["paper"]
    assert paper.paper is not None
    changed = paper.model_copy(
        update={"paper": paper.paper.model_copy(update={"faults": faults}), **venue}
    )
    return cfg.model_copy(update={"venues": {"paper": changed}})


def venue_labels(daemon: Daemon) -> Counter[str]:
    """How many orders the venue holds under each client id."""
    orders = daemon.paper["paper"].exchange.engine.orders.values()
    return Counter(order.label for order in orders)


async def test_stale_instrument_blocks_hedging_until_fresh(tmp_path: Path) -> None:
    sol = "SOL_USDC-PERPETUAL"
    cfg = with_faults(paper_config(tmp_path), {"paused": [sol]})
    with structlog.testing.capture_logs() as logs:
        daemon = await start_daemon(cfg, serve_http=False)
        engine, plan = daemon.engine, daemon.paper["paper"].exchange.faults.plan
        try:
            # Never priced: the exposure is unknown, so nothing can be decided or sent.
            await run_for_sim_ms(daemon, 60_000)
            assert f"paper:{sol}" in engine.stale_inputs
            assert not engine.recent_hedges and not venue_labels(daemon)
            plan.update({"paused": []})
            await wait_for(lambda: any(h.result == "filled" for h in engine.recent_hedges))
            await wait_for(lambda: engine.inside_band() is True)  # every leg of it is done
            hedges = len(venue_labels(daemon))
            # Priced once, then stale: a hedge is due (a new target) but refused until fresh.
            plan.update({"paused": [sol]})
            await wait_for(lambda: f"paper:{sol}" in engine.stale_inputs)
            await move_target(engine, 0.3)
            await run_for_sim_ms(daemon, 40_000)
            decision = engine.decision_of("BTC")
            assert decision is not None and abs(decision.deviation) > decision.band_half_width
            assert len(venue_labels(daemon)) == hedges
            refused = [e["reason"] for e in logs if e["event"] == "hedge_refused"]
            assert any(f"stale inputs: paper:{sol}" in reason for reason in refused), refused
            plan.update({"paused": []})
            await wait_for(lambda: len(venue_labels(daemon)) > hedges)
            assert not engine.stale_inputs
            cycles = engine.stats.cycles
        finally:
            await stop_daemon(daemon)
    # Entering and leaving staleness is logged once per change, not on every cycle.
    entered = [e for e in logs if e["event"] == "inputs_stale"]
    left = [e for e in logs if e["event"] == "inputs_fresh"]
    assert 2 <= len(entered) <= 6 and len(left) in (len(entered), len(entered) - 1)
    assert len(entered) < cycles / 10, (len(entered), cycles)


async def test_dropped_websocket_reconnects_and_resumes(tmp_path: Path) -> None:
    daemon = await start_daemon(paper_config(tmp_path), serve_http=False)
    engine = daemon.engine
    link = engine.links["paper"]
    try:
        await wait_for(lambda: link.market is not None and link.market.state.accepted > 20)
        assert await daemon.paper["paper"].drop_websockets() >= 1
        await wait_for(lambda: link.reconnects >= 1)
        assert link.market is not None
        accepted, cycles = link.market.state.accepted, engine.stats.cycles
        await wait_for(lambda: link.market.state.accepted > accepted + 20)  # type: ignore[union-attr]
        await wait_for(lambda: engine.stats.cycles > cycles + 5)
        await wait_for(lambda: not engine.stale_inputs)
    finally:
        await stop_daemon(daemon)


async def test_lost_order_response_leaves_exactly_one_order_per_leg(tmp_path: Path) -> None:
    cfg = with_faults(
        paper_config(tmp_path), {"order_timeouts": 1, "hang_s": 5.0}, timeout_seconds=1.0
    )
    daemon = await start_daemon(cfg, serve_http=False)
    engine = daemon.engine
    try:
        await wait_for(lambda: sum(h.result == "filled" for h in engine.recent_hedges) >= 2)
    finally:
        await stop_daemon(daemon)  # lets the legs in flight finish
    labels = venue_labels(daemon)
    db = sqlite3.connect(cfg.journal.path)
    rows = db.execute("SELECT client_id, status, intent_seq, leg FROM orders").fetchall()
    events = [r[0] for r in db.execute("SELECT kind FROM events")]
    assert "order_send_failed" in events  # the first response really was lost
    assert all(count == 1 for count in labels.values()), labels
    # Every leg is on the venue once, under the id the journal adopted for it.
    legs = Counter((seq, leg) for _, status, seq, leg in rows if status == "filled")
    assert all(count == 1 for count in legs.values()), rows
    assert {cid for cid, status, _, _ in rows if status == "filled"} <= set(labels)


async def test_rate_limit_burst_backs_off_and_sends_each_leg_once(tmp_path: Path) -> None:
    daemon = await start_daemon(paper_config(tmp_path), serve_http=False)
    engine, plan = daemon.engine, daemon.paper["paper"].exchange.faults.plan
    try:
        await wait_for(lambda: any(h.result == "filled" for h in engine.recent_hedges))
        await wait_for(lambda: engine.inside_band() is True)
        before = len(venue_labels(daemon))
        # A burst: most REST requests (orders, lookups, positions) answered 429, while a
        # new target makes a hedge due.
        plan.update({"error_share": 0.8, "error_status": 429})
        await move_target(engine, 0.3)
        await run_for_sim_ms(daemon, 60_000)
        plan.update({"error_share": 0.0})
        await wait_for(lambda: len(venue_labels(daemon)) > before)
        await wait_for(lambda: engine.inside_band() is True, timeout_s=30)
    finally:
        await stop_daemon(daemon)
    assert daemon.paper["paper"].exchange.faults.injected["errors"] > 0
    labels = venue_labels(daemon)
    assert all(count == 1 for count in labels.values()), labels
    db = sqlite3.connect(daemon.cfg.journal.path)
    rows = db.execute("SELECT intent_seq, leg, status FROM orders").fetchall()
    legs = Counter((seq, leg) for seq, leg, status in rows if status == "filled")
    assert all(count == 1 for count in legs.values()), rows
    assert engine.trading_state != "halted"


async def test_consecutive_refusals_halt_until_an_operator_resumes(tmp_path: Path) -> None:
    cfg = with_faults(paper_config(tmp_path), {"reject_orders": True})
    limit = cfg.limits.max_consecutive_errors
    daemon = await start_daemon(cfg, serve_http=False)
    engine, plan = daemon.engine, daemon.paper["paper"].exchange.faults.plan
    link = engine.links["paper"]
    try:
        await wait_for(lambda: engine.trading_state == "halted", timeout_s=30)
        rejected = [h for h in engine.recent_hedges if h.result == "rejected"]
        assert len(rejected) == limit
        # HALTED keeps streaming and deciding, and sends nothing, even once orders would pass.
        plan.update({"reject_orders": False})
        assert link.market is not None
        accepted, cycles = link.market.state.accepted, engine.stats.cycles
        await run_for_sim_ms(daemon, 60_000)
        assert link.market.state.accepted > accepted and engine.stats.cycles > cycles
        assert len(engine.recent_hedges) == limit and not venue_labels(daemon)
        decision = engine.decision_of("BTC")
        assert decision is not None and abs(decision.deviation) > decision.band_half_width
        engine.resume()
        await wait_for(lambda: any(h.result == "filled" for h in engine.recent_hedges))
        assert engine.trading_state == "running"
    finally:
        await stop_daemon(daemon)
