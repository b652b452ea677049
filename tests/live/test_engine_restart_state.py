"""Halt, pause and the rolling limits outlive the process.

Measured before the fix: with a 600k USD hourly limit, three halt-restart cycles filled
2.14M USD in under two minutes; an operator pause was ``running`` after a restart; a halt was
not even journaled. The trading state and the sent notional now live in the journal and are
restored before the first decision.
"""

from __future__ import annotations

from pathlib import Path

from hedger.config import Config
from hedger.live.daemon import start_daemon, stop_daemon
from tests.live.conftest import move_target, paper_config, with_updates
from tests.live.test_engine_paper import run_for_sim_ms, wait_for


def _venue_filled_usd(daemon: object) -> float:
    orders = daemon.paper["paper"].exchange.engine.orders.values()  # type: ignore[attr-defined]
    return sum(o.filled_lots * o.lot for o in orders if o.label.startswith("paper-"))


def _hourly_limit(cfg: Config, usd: float) -> Config:
    return with_updates(cfg, limits={"max_notional_per_hour_usd": usd})


async def test_a_spent_budget_and_a_halt_survive_restarts(tmp_path: Path) -> None:
    cfg = paper_config(tmp_path)
    # Run 1 hedges the opening drift (BTC-PERPETUAL amounts are USD face).
    daemon = await start_daemon(cfg, serve_http=False)
    try:
        await wait_for(lambda: any(h.result == "filled" for h in daemon.engine.recent_hedges))
        await wait_for(lambda: daemon.engine.inside_band() is True, timeout_s=30)
        spent = _venue_filled_usd(daemon)
    finally:
        await stop_daemon(daemon, cancel_open_orders=False)
    assert spent > 100_000

    # Run 2, an hour's limit just above what run 1 spent: a new hedge of any size breaches
    # it, so the guards refuse it and halt. A restart that forgot the budget would trade.
    cfg = _hourly_limit(cfg, spent + 50_000)
    daemon = await start_daemon(cfg, serve_http=False)
    try:
        engine = daemon.engine
        assert engine.trading_state == "running"
        await move_target(engine, 0.5)
        await wait_for(lambda: engine.trading_state == "halted", timeout_s=30)
        assert "max_notional_per_hour_usd" in (engine.guard_state.reason or "")
        await run_for_sim_ms(daemon, 10_000)
        assert _venue_filled_usd(daemon) == 0
    finally:
        await stop_daemon(daemon, cancel_open_orders=False)

    # Run 3 starts halted, before its first decision, with the reason.
    daemon = await start_daemon(cfg, serve_http=False)
    try:
        engine = daemon.engine
        assert engine.trading_state == "halted"
        assert "max_notional_per_hour_usd" in (engine.guard_state.reason or "")
        await run_for_sim_ms(daemon, 30_000)
        assert _venue_filled_usd(daemon) == 0
    finally:
        await stop_daemon(daemon)


async def test_an_operator_pause_survives_a_restart(tmp_path: Path) -> None:
    cfg = paper_config(tmp_path)
    daemon = await start_daemon(cfg, serve_http=False)
    try:
        daemon.control.pause("alice")
        assert daemon.engine.trading_state == "paused"
    finally:
        await stop_daemon(daemon)
    daemon = await start_daemon(cfg, serve_http=False)
    try:
        engine = daemon.engine
        assert engine.trading_state == "paused"
        assert engine.guard_state.reason == "by operator (alice)"
        await run_for_sim_ms(daemon, 60_000)
        assert _venue_filled_usd(daemon) == 0  # a hedge was due all along, none was sent
        state = engine.journal.last_trading_state()
        assert state is not None and state.by == "operator:alice"
    finally:
        await stop_daemon(daemon)


async def test_start_up_cancels_only_this_daemons_orders(tmp_path: Path) -> None:
    """Daemon ``paper`` must not cancel ``paper-2f``'s resting order (client ids were
    recognised by the prefix ``paper-``); its own leftover is cancelled."""
    daemon = await start_daemon(paper_config(tmp_path), serve_http=False)
    try:
        venue = daemon.paper["paper"].exchange
        bid = float(venue.market.mark_price[venue.engine._instrument("BTC-PERPETUAL")])
        resting = {}
        for label in ("paper-2f-7-0-0", "paper-999-0-0"):
            execution = venue.engine.place(
                "paper",
                "BTC-PERPETUAL",
                "buy",
                100.0,
                now_ms=venue.market.now_ms,
                price=round(bid * 0.5, 0),
                label=label,
            )
            resting[label] = execution.order
        assert await daemon.engine.cancel_own_open_orders("test") == 1
        assert resting["paper-2f-7-0-0"].state == "open"
        assert resting["paper-999-0-0"].state == "cancelled"
    finally:
        await stop_daemon(daemon, cancel_open_orders=False)
