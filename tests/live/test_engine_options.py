"""Option hedges, live: a short-gamma book on the paper venue is hedged with options and perps.

``config/paper-options.yaml``: short BTC and ETH calls plus alt spot, both factors in
``multi_greek`` mode. On a fast clock the daemon buys options (limit orders, journaled under
the option's venue name) that bring gamma and vega inside their bands, and trades the perps
for the beta-delta that is left.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import structlog

from hedger.core.policy import Action
from hedger.live.daemon import start_daemon, stop_daemon
from hedger.obs.http import option_status
from tests.live.conftest import paper_config
from tests.live.test_engine_paper import wait_for

PERPS = {"BTC-PERPETUAL", "ETH-PERPETUAL"}


def is_option(name: str) -> bool:
    return name.endswith(("-C", "-P"))


async def test_a_short_gamma_book_is_hedged_with_options_and_perps(tmp_path: Path) -> None:
    cfg = paper_config(tmp_path, "paper-options.yaml")
    with structlog.testing.capture_logs() as logs:
        daemon = await start_daemon(cfg, serve_http=False)
        engine = daemon.engine
        try:

            def settled() -> bool:
                decisions = engine.option_decisions
                return (
                    len(decisions) == 2
                    and all(d.action is Action.HOLD for d in decisions)
                    and not engine.hedging
                    and any(
                        is_option(h.symbol) and h.result == "filled" for h in engine.recent_hedges
                    )
                )

            await wait_for(settled, timeout_s=120)
            started = engine.started_ms
            assert started is not None
            gamma_vega = {d.factor: d.before for d in engine.option_decisions}
            seen = option_status(engine)  # what /status shows
            assert {f["factor"]: f["mode"] for f in seen["factors"]} == {
                "BTC": "multi_greek",
                "ETH": "multi_greek",
            }
            assert seen["held_by_hedge"] and seen["premium_spent_day_usd"] > 0
        finally:
            await stop_daemon(daemon)

    db = sqlite3.connect(cfg.journal.path)
    filled = [
        (symbol, ts)
        for symbol, ts in db.execute(
            "SELECT symbol, created_ms FROM orders WHERE status = 'filled' ORDER BY created_ms"
        )
    ]
    options = [s for s, _ in filled if is_option(s)]
    assert {s.split("-")[0] for s in options} == {"BTC", "ETH"}, options
    assert PERPS & {s for s, _ in filled}, filled
    first_option_ms = min(ts for s, ts in filled if is_option(s))
    assert first_option_ms - started <= 120_000, "no option order within 2 simulated minutes"
    sent = [e for e in logs if e["event"] == "order_sent" and is_option(e["symbol"])]
    assert sent and all(e["price"] is not None for e in sent), "an option went at market"
    # Gamma and vega ended inside their bands (the factor's multi_greek settings).
    for factor in cfg.factors:
        greeks = gamma_vega[factor.asset]
        assert greeks is not None
        bands = factor.options.multi_greek
        assert abs(greeks.gamma_usd_per_pct) <= (bands.gamma.half_width or 0.0), greeks
        assert abs(greeks.vega_usd) <= (bands.vega.half_width or 0.0), greeks
