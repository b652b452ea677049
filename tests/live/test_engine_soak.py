"""A fault storm: every fault at once while hedges keep falling due, then the ledgers agree.

The paper venue drops every websocket, refuses a share of REST requests (429 and 503), adds
latency, holds some order responses until the client times out, and stalls an alt's ticks;
meanwhile the target flips so that hedges are due all the time. CI runs a bounded storm
(about 30 s of wall time); ``HEDGER_FULL=1`` runs ten minutes (about 6.7 simulated hours),
and ``HEDGER_SOAK_SEED`` picks another chaos script.

Whatever happened, at the end: every order on the venue carries a distinct client id, no
(intent, leg) was filled twice, nothing is left journaled of unknown fate, and the journal's
fills agree with the venue's order by order and with the venue's position.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
import structlog

from hedger.live.daemon import Daemon, start_daemon, stop_daemon
from tests.live.conftest import move_target, paper_config, with_updates
from tests.live.test_engine_degraded import with_faults
from tests.live.test_engine_paper import wait_for

FULL = os.environ.get("HEDGER_FULL") == "1"
STORM_S = 600.0 if FULL else 30.0
SEED = int(os.environ.get("HEDGER_SOAK_SEED", "3"))  # the chaos script's, for a replay
SOL = "SOL_USDC-PERPETUAL"


async def _chaos(daemon: Daemon, seconds: float, seed: int) -> Counter[str]:
    """Every ~0.5 s wall (20 s simulated) one move: a new target, a held order response,
    a stalled alt, or a burst of refusals. Returns how often each was made."""
    engine, plan = daemon.engine, daemon.paper["paper"].exchange.faults.plan
    rng, made = random.Random(seed), Counter[str]()
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        await asyncio.sleep(rng.uniform(0.3, 0.7))
        move = rng.choice(["target", "target", "hold", "stall", "burst"])
        made[move] += 1
        if move == "target":
            await move_target(engine, rng.choice([-0.1, -0.05, 0.0, 0.05, 0.1]))
        elif move == "hold":
            plan.update({"order_timeouts": 1})
        elif move == "stall":
            plan.update({"paused": [] if plan.paused else [SOL]})
        else:
            share = 0.1 if plan.error_share > 0.1 else 0.6
            plan.update({"error_share": share, "error_status": rng.choice([429, 503])})
    plan.update({"paused": [], "error_share": 0.0, "order_timeouts": 0})
    return made


@pytest.mark.slow
async def test_a_fault_storm_never_double_trades_and_the_ledgers_agree(tmp_path: Path) -> None:
    faults = {"ws_drop_every_s": 4.0, "error_share": 0.1, "delay_ms": 20.0, "hang_s": 2.0}
    cfg = with_faults(paper_config(tmp_path), faults, timeout_seconds=1.0)
    # Hedges fall due every few simulated minutes for hours: lift the notional limits so
    # that the storm tests execution, not the (separately tested) limit halt.
    cfg = with_updates(
        cfg, limits={"max_notional_per_hour_usd": 1e10, "max_notional_per_day_usd": 1e11}
    )
    halts: list[str | None] = []
    with structlog.testing.capture_logs():
        daemon = await start_daemon(cfg, serve_http=False)
        engine, link = daemon.engine, daemon.engine.links["paper"]
        try:
            made = await _chaos(daemon, STORM_S, SEED)
            # Calm again: the daemon must settle back into its band by itself.
            daemon.paper["paper"].exchange.faults.plan.update({"ws_drop_every_s": None})
            if engine.trading_state == "halted":
                # The kill switch may trip on consecutive failures: that is its job. An
                # operator resumes; the ledgers must agree either way.
                halts.append(engine.guard_state.reason)
                engine.resume()
            try:
                await wait_for(lambda: engine.inside_band() is True, timeout_s=60)
            except AssertionError:
                state = engine.guard_state
                pytest.fail(
                    f"not back in band: state {engine.trading_state} ({state.reason}), "
                    f"decisions {engine.decisions}, stale {engine.stale_inputs}, "
                    f"last hedges {list(engine.recent_hedges)[-5:]}"
                )
        finally:
            await stop_daemon(daemon)

    venue = daemon.paper["paper"].exchange
    injected = venue.faults.injected
    print(f"storm {STORM_S:.0f} s: moves {dict(made)}, injected {dict(injected)}, halts {halts}")
    assert injected["errors"] > 0 and link.reconnects > 0 and made["target"] > 0
    ours = [o for o in venue.engine.orders.values() if o.label.startswith(f"{cfg.name}-")]
    labels = Counter(o.label for o in ours)
    assert all(count == 1 for count in labels.values()), labels

    db = sqlite3.connect(cfg.journal.path)
    rows = db.execute(
        "SELECT client_id, intent_seq, leg, attempt, status, side, qty, filled_qty FROM orders"
    ).fetchall()
    journal = {cid: (status, side, filled) for cid, _, _, _, status, side, _, filled in rows}
    assert len(journal) > 5, "the storm should have forced hedges"
    assert not [cid for cid, (status, _, _) in journal.items() if status == "pending"]
    # A leg may take several attempts (a limit's remainder goes at market), but never fills
    # more than the leg asked for: that would be a double trade.
    asked = {(seq, leg): qty for _, seq, leg, attempt, _, _, qty, _ in rows if attempt == 0}
    filled = Counter[tuple[int, int]]()
    for _, seq, leg, _, _, _, _, qty in rows:
        filled[(seq, leg)] += qty
    over = {key: (filled[key], asked[key]) for key in filled if filled[key] > asked[key] + 1e-9}
    assert not over, over
    # Order by order, the journal records what the venue filled.
    for order in ours:
        assert order.label in journal, f"{order.label} on the venue but not journaled"
        assert journal[order.label][2] == pytest.approx(order.filled_lots * order.lot), order
    # ...and so the venue's position is the sum of the journal's signed fills.
    signed = sum(qty if side == "buy" else -qty for _, side, qty in journal.values())
    (position,) = [
        p for p in venue.engine.positions("paper") if p["instrument_name"] == "BTC-PERPETUAL"
    ]
    assert float(position["size"]) == pytest.approx(signed)  # type: ignore[arg-type]
