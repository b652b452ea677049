"""Sending one factor's approved decision, slice by slice, through its venue's executor.

The decision is journaled as one intent before its first order; every slice is gated again
(pause, halt, dry run, shutdown, stale or implausible inputs, an old decision) and counted in
the rolling limits before it leaves; a decision stopped part-way is journaled with what it
filled.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog

from hedger.config import OrderConfig
from hedger.core.option_legs import OptionDecision, OptionLeg
from hedger.core.option_legs import limit_price as option_limit_price
from hedger.core.params import Limits
from hedger.core.params import OptionOrder as CoreOptionOrder
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
    factor_price_usd: float | None = None
    beta_delta_usd: float | None = None
    drivers: tuple[dict[str, float | str], ...] = ()
    """Per asset: price, delta, loading on this factor and beta-delta contribution (USD):
    what moved the factor's beta-delta, journaled with the intent."""


def amount_unit(market: HedgeMarket, factor: str) -> str:
    """What a venue amount of ``market`` counts, for log field names (``amount_usd_face``)."""
    if market.inverse:
        return "usd_face"
    return factor.lower() if market.amount_size == 1.0 else "contracts"


def _plain(value: Any) -> Any:
    """A core value as JSON-able data for the journal."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "value"):
        return _plain(value.value)
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


class DecisionSender:
    limits_for_errors: Limits
    """The limits the kill switch counts errors against (set by the engine each cycle)."""

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
        self.limits_for_errors = Limits()

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
            "amount_unit": {"usd_face": "USD face", "contracts": "contracts"}.get(
                amount_unit(order.market, decision.factor), decision.factor
            ),
            "factor_price_usd": order.factor_price_usd,
            "beta_delta_usd": order.beta_delta_usd,
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

    async def send_options(
        self,
        decision: OptionDecision,
        venue: str,
        decided_ms: int,
        order: CoreOptionOrder,
        gate: Gate,
        dry_run: bool,
    ) -> None:
        """One factor's option decision: journaled as one intent with its legs, then each leg
        worked as limit orders (re-priced, cancelled after the timeout; never at market)."""
        legs = decision.legs
        payload: dict[str, Any] = {
            "mode": decision.mode.value,
            "action": decision.action.value,
            "solver": decision.solver,
            "before": _plain(decision.before),
            "after": _plain(decision.after),
            "misses": [_plain(m) for m in decision.misses],
            "legs": [_plain(leg) for leg in legs],
            "dry_run": dry_run,
        }
        seq = self.journal.record_intent(
            now_ms=decided_ms,
            factor=decision.factor,
            symbol=legs[0].symbol,
            side=legs[0].side,
            qty=sum(leg.amount for leg in legs),
            notional_usd=sum(abs(leg.premium_usd) for leg in legs),
            reason=decision.reason,
            decision=payload,
        )
        log.info(
            "option_hedge_decided",
            intent_seq=seq,
            factor=decision.factor,
            mode=decision.mode.value,
            venue=venue,
            legs=[f"{leg.side} {leg.amount:g} {leg.symbol}" for leg in legs],
            premium_usd=sum(leg.premium_usd for leg in legs),
            reason=decision.reason,
            dry_run=dry_run,
        )
        executor = self.executors[venue]
        # Legs are numbered here, in send order: the number is part of the client id.
        numbered = [dataclasses.replace(leg, leg=index) for index, leg in enumerate(legs)]
        for index, leg in enumerate(numbered):
            record = HedgeIntent(
                factor=leg.factor,
                symbol=leg.symbol,
                side=leg.side,
                amount=leg.amount,
                notional_usd=abs(leg.premium_usd),
                reason=leg.reason,
                deviation=float("nan"),
                band_half_width=float("nan"),
                target=float("nan"),
                leg=leg.leg,
            )
            stub = FactorOrder(
                decision=Decision(decision.factor, decision.action, decision.reason),
                venue=venue,
                legs=(record,),
                market=HedgeMarket(leg.symbol, False, 1.0, 0.0),
                decided_ms=decided_ms,
                dry_run=dry_run,
                nav_usd=None,
            )
            if dry_run:
                self.stats.hedge_orders[(venue, leg.symbol, "dry_run")] += 1
                self._remember(stub, record, leg.amount, abs(leg.premium_usd), "dry_run", seq)
                continue
            stop = gate()
            if stop is not None:
                self._stop(seq, stub, record, legs[index:], stop, index, 0.0)
                return
            if leg.side == "buy":
                self.guard.record_option_premium(leg.premium_usd)
            result = await self._work_option_leg(executor, seq, leg, venue, order, gate)
            self.stats.hedge_orders[(venue, leg.symbol, result)] += 1
            self._remember(stub, record, leg.amount, abs(leg.premium_usd), result, seq)
            if result not in ("filled", "partial"):
                log.error("option_leg_failed", intent_seq=seq, leg=leg.leg, result=result)
                return

    async def _work_option_leg(
        self,
        executor: Executor,
        seq: int,
        leg: OptionLeg,
        venue: str,
        order: CoreOptionOrder,
        gate: Gate,
    ) -> str:
        link = self.links[venue]
        market = link.market_by_id(leg.symbol)
        tick = float((market.get("precision") or {}).get("price") or float("nan"))
        step = float((market.get("precision") or {}).get("amount") or 0.0)

        def price_now() -> float | None:
            if link.market is None or leg.symbol not in link.market.state.rows:
                return leg.limit_price
            state, row = link.market.state, link.market.state.rows[leg.symbol]
            mark = float(state.mark[row])
            if not (mark > 0 and np.isfinite(mark)):
                return None
            bid, ask = float(state.bid[row]), float(state.ask[row])
            price = option_limit_price(leg.side, mark, bid, ask, order.spread_fraction, tick)
            return round(price, 12)  # on the tick already: drop the float noise (0.0203000…02)

        try:
            fill = await executor.execute_limit(
                seq,
                leg.leg,
                leg.symbol,
                leg.side,
                leg.amount,
                price_now=price_now,
                reprice_every_s=order.reprice_interval,
                timeout_s=order.timeout,
                amount_step=step,
                may_continue=gate,
            )
        except OrderRefusedError as exc:
            self.guard.record_error(self.limits_for_errors, exc.reason)
            return "rejected"
        except ExecutionFailedError as exc:
            self.guard.record_error(self.limits_for_errors, str(exc))
            return "failed"
        except ExecutionFaultError as exc:
            self.guard.halt(f"unclassified order error: {exc}")
            return "failed"
        self.guard.record_success()
        if fill.stopped is not None:
            return "stopped"
        if fill.filled_total >= leg.amount:
            return "filled"
        return "partial" if fill.filled_total > 0 else "failed"

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
        rest: Sequence[object],
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
