"""An operator's flatten: close the hedge instruments' positions on purpose.

Run by the cycle task (``Engine.flatten`` posts the request), so it never overlaps a hedge.
The daemon pauses first, so the cycle does not hedge the book back, and stays paused. The
closing orders pass the same guards and executor as any hedge and are journaled as intents;
a pause does not stop the operator's own flatten, a halt refuses it.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import structlog

from hedger.core import guards
from hedger.core.cycle import stale_inputs
from hedger.core.flatten import FLATTEN_REASON, flatten_intents
from hedger.core.policy import Action, Decision, HedgeIntent
from hedger.live.activity import refusal_kind
from hedger.live.hedging import FactorOrder
from hedger.live.inputs import Flatten

if TYPE_CHECKING:
    from hedger.live.engine import Engine

log = structlog.get_logger("hedger.live.flatten")

ROUNDS = 3
"""Position reads (and order rounds) a flatten may take to reach zero."""


async def run_flatten(engine: Engine, request: Flatten) -> dict[str, Any]:
    state = engine.guard.state
    if state.trading is guards.TradingState.HALTED:
        raise RuntimeError(f"halted ({state.reason}): resume before flattening")
    dry_run = request.dry_run or state.dry_run or engine.cfg.limits.dry_run
    if not dry_run:
        engine.pause(f"flatten by {request.by}", by=request.by)
    report: dict[str, Any] = {"dry_run": dry_run, "orders": [], "refused": []}
    # Each round closes what the last position read shows; a round stopped part-way (or
    # a partial fill) leaves the rest to the next one, planned from a fresh read.
    for _ in range(ROUNDS):
        sent, refused, held = await _round(engine, request, dry_run)
        report.setdefault("held", held)
        report["orders"] += sent
        report["refused"] += refused
        if dry_run or not sent:
            break
    report["left"] = {f: amount for f, (amount, _) in _plan(engine, request)[1].items()}
    report["trading_state"] = engine.trading_state
    return report


async def _round(
    engine: Engine, request: Flatten, dry_run: bool
) -> tuple[list[dict[str, Any]], list[str], dict[str, float]]:
    now_ms = engine.clock_ms()
    intents, held = _plan(engine, request)
    market = engine._market_inputs(engine.monotonic())
    health = guards.Health(
        stale_inputs(market, engine.cfg.market.stale_after),
        engine.positions_reconciled,
        engine.implausible_inputs,
    )
    # The operator's pause must not refuse the operator's own flatten; a halt does.
    as_running = replace(engine.guard.state, trading=guards.TradingState.RUNNING, reason=None)
    positions = {
        engine.hedge_markets[f].symbol: engine.hedge_markets[f].notional_usd(amount, price)
        for f, (amount, price) in held.items()
    }
    checked = guards.check(intents, as_running, engine.params.limits, health, now_ms, positions)
    for refusal in checked.refused:
        engine.stats.guard_refusals[refusal_kind(refusal)] += 1
    amounts = {f: amount for f, (amount, _) in held.items()}
    refused = [r.reason for r in checked.refused]
    engine.journal.record_event(
        now_ms=now_ms,
        kind="flatten_requested",
        payload={"by": request.by, "held": amounts, "dry_run": dry_run, "refused": refused},
    )
    log.warning(
        "flatten_requested",
        by=request.by,
        held=amounts,
        orders=len(checked.approved),
        refused=refused,
        dry_run=dry_run,
    )
    for factor_name in held:
        legs = [i for i in checked.approved if i.factor == factor_name]
        if not legs:
            continue
        factor = next(f for f in engine.cfg.factors if f.asset == factor_name)
        order = FactorOrder(
            decision=Decision(factor_name, Action.HEDGE, FLATTEN_REASON, target=0.0),
            venue=factor.hedge.venue,
            legs=legs,
            market=engine.hedge_markets[factor_name],
            decided_ms=now_ms,
            dry_run=dry_run,
            nav_usd=engine.exposure.nav_usd if engine.exposure else None,
        )
        await engine.sender.send(
            order,
            engine.cfg.hedge.order,
            engine.params.limits,
            lambda: engine.slice_gate(now_ms, operator=True),
        )
    if not dry_run and checked.approved:
        await engine._refresh_after_hedge()
    sent = [
        {"factor": i.factor, "symbol": i.symbol, "side": i.side, "amount": i.amount}
        for i in checked.approved
    ]
    return sent, refused, amounts


def _plan(
    engine: Engine, request: Flatten
) -> tuple[list[HedgeIntent], dict[str, tuple[float, float]]]:
    """The closing (or reducing) orders, and per factor its held amount and the hedge's
    mark."""
    factors = request.factors
    reason = FLATTEN_REASON
    if request.keep_fraction > 0:
        reason = f"margin guard: keep {request.keep_fraction:.0%} of the hedge leg"
    intents: list[HedgeIntent] = []
    held: dict[str, tuple[float, float]] = {}
    for f in engine.cfg.factors:
        if factors and f.asset not in factors:
            continue
        market = engine.hedge_markets[f.asset]
        row = engine._hedge_rows.get(f.hedge.symbol)
        size = 0.0 if row is None or engine.book is None else float(engine.book.size[row])
        amount = size / market.amount_size
        link = engine.links[f.hedge.venue]
        price = math.nan
        if link.market is not None and f.hedge.symbol in link.market.state.rows:
            price = float(link.market.state.mark[link.market.state.rows[f.hedge.symbol]])
        held[f.asset] = (amount, price)
        intents += flatten_intents(
            f.asset,
            market,
            amount * (1.0 - request.keep_fraction),
            price,
            engine.params.policy.max_order_amount,
            reason,
        )
    return intents, held
