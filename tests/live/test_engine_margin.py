"""The hedge leg's margin, guarded: a leg closer to liquidation than
``limits.min_liquidation_distance`` is journaled and exported; under ``reduce`` it is cut to
the share the policy names and the daemon pauses for an operator.

The paper venue reports ``estimated_liquidation_price`` on its perpetual positions.
"""

from __future__ import annotations

from pathlib import Path

import structlog

from hedger.core.margin import MarginStatus
from hedger.live.daemon import start_daemon, stop_daemon
from tests.live.conftest import paper_config, with_updates
from tests.live.test_engine_paper import wait_for

HEDGE = "BTC/USD:BTC"


async def test_a_leg_near_liquidation_is_journaled_and_exported(tmp_path: Path) -> None:
    # Any leg is "too close" at a 99% floor: the guard must say so, once, and keep hedging.
    cfg = with_updates(paper_config(tmp_path), limits={"min_liquidation_distance": 0.99})
    daemon = await start_daemon(cfg, serve_http=False)
    engine = daemon.engine
    try:
        await wait_for(lambda: any(h.result == "filled" for h in engine.recent_hedges), 30)
        await engine.refresh_positions()
        check = engine.margin_check
        assert check is not None and check.breaches, check
        (reading,) = check.readings
        assert reading.instrument == "BTC-PERPETUAL" and reading.status is MarginStatus.BREACH
        assert 0.0 < reading.liquidation_distance < 0.99
        breaches = [p for _, kind, p in engine.journal.events() if kind == "hedge_margin_breach"]
        assert len(breaches) == 1, breaches  # on entry, not on every read
        assert engine.trading_state == "running"  # alert only
    finally:
        await stop_daemon(daemon)


async def test_reduce_cuts_the_leg_and_pauses(tmp_path: Path) -> None:
    cfg = with_updates(
        paper_config(tmp_path),
        limits={"min_liquidation_distance": 0.99, "on_margin_breach": "reduce"},
    )
    with structlog.testing.capture_logs() as logs:
        daemon = await start_daemon(cfg, serve_http=False)
        engine = daemon.engine
        try:
            await wait_for(lambda: engine.trading_state == "paused", 60)
            await wait_for(lambda: not engine.hedging)
            reductions = [
                e for e in logs if e["event"] == "hedge_decided" and "margin guard" in e["reason"]
            ]
            assert reductions, "no reducing order was decided"
            assert engine.guard_state.reason == "flatten by margin_guard"
        finally:
            await stop_daemon(daemon)
