"""Sending one factor's approved decision, slice by slice, through its venue's executor.

The decision is journaled as one intent before its first order; every slice is gated again
(pause, halt, dry run, shutdown, stale or implausible inputs, an old decision) and counted in
the rolling limits before it leaves; a decision stopped part-way is journaled with what it
filled.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog

from hedger.config import OrderConfig
from hedger.core.params import Limits
from hedger.core.policy import Decision, HedgeIntent, HedgeMarket
from hedger.execution.executor import (
    ExecutionFailedError,
    ExecutionFaultError,
    Executor,
    OrderRefusedError,
)
from hedger.execution.journal import Journal
from hedger.live.activity import EngineStats, HedgeRecord
from hedger.live.trading_guard import TradingGuard
from hedger.live.venue_link import VenueLink
from hedger.obs.labels import hedge_result

log = structlog.get_logger("hedger.live.hedging")

Gate = Callable[[], str | None]
"""Why the next slice must not go out, or None."""


@dataclass(slots=True, frozen=True)
class FactorOrder:
    """One factor's approved legs and what they are sent with."""

    decision: Decision
    venue: str
    legs: Sequence[HedgeIntent]
    market: HedgeMarket
    decided_ms: int
    dry_run: bool
    nav_usd: float | None
    drivers: tuple[dict[str, float | str], ...] = ()
    """Per asset: price, delta, loading on this factor and beta-delta contribution (USD):
    what moved the factor's beta-delta, journaled with the intent."""


def amount_unit(market: HedgeMarket, factor: str) -> str:
    """What a venue amount of ``market`` counts, for log field names (``amount_usd_face``)."""
    if market.inverse:
        return "usd_face"
    return factor.lower() if market.amount_size == 1.0 else "contracts"


class DecisionSender:
    def __init__(
        self,
        journal: Journal,
        executors: Mapping[str, Executor],
        links: Mapping[str, VenueLink],
        guard: TradingGuard,
        stats: EngineStats,
        clock_ms: Callable[[], int],
    ) -> None:
        self.journal = journal
        self.executors = executors
        self.links = links
        self.guard = guard
        self.stats = stats
        self.clock_ms = clock_ms
        self.recent: deque[HedgeRecord] = deque(maxlen=50)

    def record_intent(self, order: FactorOrder) -> int:
        decision, legs, first = order.decision, order.legs, order.legs[0]
        total = sum(leg.amount for leg in legs)
        notional = sum(leg.notional_usd for leg in legs)
        payload: dict[str, Any] = {
            "beta_delta": decision.beta_delta,
            "target": decision.target,
            "deviation": decision.deviation,
            "band_half_width": decision.band_half_width,
            "legs": [leg.amount for leg in legs],
            "dry_run": order.dry_run,
            "nav_usd": order.nav_usd,
            "drivers": list(order.drivers),
        }
        seq = self.journal.record_intent(
            now_ms=order.decided_ms,
            factor=decision.factor,
            symbol=first.symbol,
            side=first.side,
            qty=total,
            notional_usd=notional,
            reason=first.reason,
            decision=payload,
        )
        # Field names carry their units: the factor's coin for beta-delta, target, deviation
        # and band; the venue's amount unit for the order size.
        unit = decision.factor.lower()
        log.info(
            "hedge_decided",
            intent_seq=seq,
            factor=decision.factor,
            venue=order.venue,
            symbol=first.symbol,
            side=first.side,
            notional_usd=notional,
            reason=first.reason,
            dry_run=order.dry_run,
            **{
                f"amount_{amount_unit(order.market, decision.factor)}": total,
                f"beta_delta_{unit}": decision.beta_delta,
                f"target_{unit}": decision.target,
                f"deviation_{unit}": decision.deviation,
                f"band_half_width_{unit}": decision.band_half_width,
            },
        )
        return seq

    async def send(
        self, order: FactorOrder, order_cfg: OrderConfig, limits: Limits, gate: Gate
    ) -> None:
        seq = self.record_intent(order)
        legs, venue = order.legs, order.venue
        if order.dry_run:
            first = legs[0]
            self.stats.hedge_orders[(venue, first.symbol, "dry_run")] += len(legs)
            total = sum(leg.amount for leg in legs)
            notional = sum(leg.notional_usd for leg in legs)
            self._remember(order, first, total, notional, "dry_run", seq)
            return
        executor = self.executors[venue]
        filled_usd = 0.0
        for done, leg in enumerate(legs):
            stop = gate()
            if stop is not None:
                self._stop(seq, order, leg, legs[done:], stop, done, filled_usd)
                return
            self.guard.record_sent(leg.notional_usd)
            sent = time.perf_counter()
            result = "filled"
            stopped: str | None = None
            try:
                fill = await executor.execute(
                    seq,
                    leg.leg,
                    leg.symbol,
                    leg.side,
                    leg.amount,
                    limit_price=self.limit_price(venue, leg, order_cfg),
                    limit_timeout_s=order_cfg.limit_timeout,
                    amount_step=order.market.amount_step,
                    may_continue=gate,
                )
                stopped = fill.stopped
                if stopped is not None:
                    result = "stopped"
                elif fill.filled_total < leg.amount:
                    result = "partial" if fill.filled_total > 0 else "failed"
                filled_usd += leg.notional_usd * min(1.0, fill.filled_total / leg.amount)
                self.guard.record_success()
            except OrderRefusedError as exc:
                result = "rejected"
                self.guard.record_error(limits, exc.reason)
            except ExecutionFailedError as exc:
                result = "failed"
                self.guard.record_error(limits, str(exc))
            except ExecutionFaultError as exc:
                result = "failed"
                self.guard.halt(f"unclassified order error: {exc}")
            self.stats.order_latency_seconds.observe(time.perf_counter() - sent)
            result = hedge_result(result)
            self.stats.hedge_orders[(venue, leg.symbol, result)] += 1
            if result in ("filled", "partial"):
                by_venue = self.stats.hedge_notional_usd
                by_venue[venue] = by_venue.get(venue, 0.0) + leg.notional_usd
            self._remember(order, leg, leg.amount, leg.notional_usd, result, seq)
            if stopped is not None:
                self._stop(seq, order, leg, legs[done + 1 :], stopped, done + 1, filled_usd)
                return
            if result not in ("filled", "partial"):
                log.error(
                    "hedge_failed",
                    intent_seq=seq,
                    leg=leg.leg,
                    result=result,
                    trading=self.guard.state.trading.value,
                    halted_reason=self.guard.state.reason,
                )
                return  # the rest of the decision waits for fresh positions and a new cycle

    def limit_price(self, venue: str, leg: HedgeIntent, order_cfg: OrderConfig) -> float | None:
        """None for market orders; else the near touch improved by the configured offset
        (a buy bids above the best bid, a sell offers below the best ask), on the tick."""
        link = self.links[venue]
        if order_cfg.type != "limit" or link.market is None:
            return None
        state = link.market.state
        row = state.rows[leg.symbol]
        offset = order_cfg.limit_offset_bps / 10_000.0
        if leg.side == "buy":
            price = float(state.bid[row]) * (1.0 + offset)
        else:
            price = float(state.ask[row]) * (1.0 - offset)
        if not (price > 0 and np.isfinite(price)):
            return None  # no touch to lean on: a market order, as configured for the rest
        symbol = link.market_by_id(leg.symbol)["symbol"]
        return link.broker.round_price(symbol, price)

    def _stop(
        self,
        seq: int,
        order: FactorOrder,
        leg: HedgeIntent,
        rest: Sequence[HedgeIntent],
        why: str,
        legs_done: int,
        filled_usd: float,
    ) -> None:
        """Journal and report a decision stopped part-way, with what it did fill."""
        self.journal.record_event(
            now_ms=self.clock_ms(),
            kind="intent_stopped",
            payload={
                "intent_seq": seq,
                "why": why,
                "legs_done": legs_done,
                "legs_not_sent": len(rest),
                "filled_notional_usd": filled_usd,
            },
        )
        log.warning(
            "intent_stopped",
            intent_seq=seq,
            factor=order.decision.factor,
            why=why,
            legs_done=legs_done,
            legs_not_sent=len(rest),
            filled_notional_usd=round(filled_usd, 2),
        )
        if rest:
            self.stats.hedge_orders[(order.venue, leg.symbol, "stopped")] += len(rest)

    def _remember(
        self,
        order: FactorOrder,
        leg: HedgeIntent,
        amount: float,
        notional_usd: float,
        result: str,
        seq: int,
    ) -> None:
        self.recent.append(
            HedgeRecord(
                order.decided_ms,
                order.decision.factor,
                order.venue,
                leg.symbol,
                leg.side,
                amount,
                notional_usd,
                result,
                leg.reason,
                seq,
            )
        )
