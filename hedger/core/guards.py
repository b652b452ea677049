"""Pre-trade guards: the last pure gate between a hedge intent and the executor.

``check`` approves or refuses each intent against the trading state, the data health and the
configured :class:`~hedger.core.params.Limits`; every refusal says which gate or limit, with the
numbers. ``GuardState`` is an immutable value: ``record_order``, ``record_error``,
``record_success``, ``pause``, ``resume`` and ``escalate`` return a new one, so the engine, the
backtester and the tests drive the same state machine with explicit timestamps.

States: RUNNING trades; PAUSED (operator) and HALTED (kill switch: repeated execution errors or
a limit breach under ``BreachPolicy.HALT``) refuse everything; only an explicit ``resume``
leaves HALTED. Dry run is a mode beside the state: intents are checked exactly as live, so the
journal shows what would have been sent, but the result is flagged not to send.

Option legs pass ``check_options``: the same state and health gates, then the option limits
(:class:`~hedger.core.params.OptionLimits`: premium bought per rolling day, the book's net
vega, contracts per order, days to expiry of anything bought). A factor's legs are one
decision: when one of them is refused, the others are too, so a roll never sells the old
put without buying the new one. An option refusal never halts: it is a budget or a
sanity bound, and the perp still hedges the beta-delta.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import NamedTuple

from hedger.core.option_legs import OptionLeg
from hedger.core.params import Limits, OptionLimits
from hedger.core.policy import HedgeIntent
from hedger.core.units import DAY_MS, HOUR_MS, MINUTE_MS


class TradingState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    HALTED = "halted"


class BreachPolicy(StrEnum):
    """What a limit breach does beyond refusing the order."""

    REFUSE = "refuse"
    HALT = "halt"


@dataclass(slots=True, frozen=True)
class SentOrder:
    at_ms: int
    notional_usd: float
    """Absolute traded notional."""


@dataclass(slots=True, frozen=True)
class GuardState:
    trading: TradingState = TradingState.RUNNING
    dry_run: bool = False
    orders: tuple[SentOrder, ...] = ()
    """Orders sent within the longest rolling window (a day), oldest first."""
    consecutive_errors: int = 0
    reason: str | None = None
    """Why PAUSED or HALTED."""
    since_ms: int | None = None
    """When the trading state last changed."""
    option_premiums: tuple[SentOrder, ...] = ()
    """Premium of the options bought within the last day, oldest first (USD)."""


@dataclass(slots=True, frozen=True)
class Health:
    """Data health as the engine sees it this cycle.

    ``positions_reconciled`` defaults to False: until the executor has compared its book with
    the venue, nothing may be sent.
    """

    stale_inputs: tuple[str, ...] = ()
    positions_reconciled: bool = False
    implausible_inputs: tuple[str, ...] = ()
    """Inputs whose latest tick failed a plausibility check (``core.plausibility``), each
    as ``"<input>: <verdict>"``: a hedge must not move on them until confirmed."""


class Refusal(NamedTuple):
    intent: HedgeIntent
    reason: str
    limit: str | None = None
    """The ``Limits`` field breached, or None for a state/health gate."""
    kind: str = ""
    """A low-cardinality name for the refusal (the gate, or the breached limit): the label
    operators count refusals by."""


@dataclass(slots=True, frozen=True)
class GuardResult:
    approved: tuple[HedgeIntent, ...]
    refused: tuple[Refusal, ...]
    dry_run: bool

    @property
    def to_send(self) -> tuple[HedgeIntent, ...]:
        """What the executor may send: nothing in dry run."""
        return () if self.dry_run else self.approved

    @property
    def limit_breaches(self) -> tuple[Refusal, ...]:
        return tuple(r for r in self.refused if r.limit is not None)


def initial_state(limits: Limits, now_ms: int | None = None) -> GuardState:
    return GuardState(dry_run=limits.dry_run, since_ms=now_ms)


def restore(
    limits: Limits,
    now_ms: int,
    *,
    trading: str | None,
    reason: str | None,
    since_ms: int | None,
    consecutive_errors: int,
    sent: Sequence[tuple[int, float]],
    option_premiums: Sequence[tuple[int, float]] = (),
) -> GuardState:
    """The state a restarted daemon resumes in: the journaled trading state (a halt or a
    pause outlives the process; a crash loop must never re-arm trading) and the orders of
    the last day (a restart must never reset a budget). ``sent``: (at_ms, notional_usd);
    ``option_premiums``: (at_ms, premium_usd) of the options bought."""
    state = TradingState(trading) if trading is not None else TradingState.RUNNING
    orders = tuple(_window((SentOrder(at_ms, abs(usd)) for at_ms, usd in sent), now_ms, DAY_MS))
    premiums = tuple(
        _window((SentOrder(at_ms, abs(usd)) for at_ms, usd in option_premiums), now_ms, DAY_MS)
    )
    return GuardState(
        trading=state,
        dry_run=limits.dry_run,
        orders=orders,
        consecutive_errors=consecutive_errors,
        reason=reason if state is not TradingState.RUNNING else None,
        since_ms=since_ms if since_ms is not None else now_ms,
        option_premiums=premiums,
    )


def _gate(state: GuardState, health: Health) -> tuple[str, str] | None:
    """(kind, reason) to refuse every intent, or None."""
    if state.trading is TradingState.HALTED:
        return "halted", f"halted: {state.reason or 'no reason recorded'}"
    if state.trading is TradingState.PAUSED:
        return "paused", f"paused: {state.reason or 'by operator'}"
    if not health.positions_reconciled:
        return "not_reconciled", "positions not reconciled with the venue"
    if health.stale_inputs:
        # Any stale price moves every factor's beta-delta (loadings mix assets), so one stale
        # input makes the whole exposure untrustworthy, not only its own factor.
        return "stale_inputs", f"stale inputs: {', '.join(health.stale_inputs)}"
    if health.implausible_inputs:
        # Same reasoning: one unconfirmed spike moves every factor's exposure.
        return "implausible_data", f"implausible data: {', '.join(health.implausible_inputs)}"
    return None


def _window(orders: Iterable[SentOrder], now_ms: int, span_ms: int) -> list[SentOrder]:
    # No upper bound: an order stamped after ``now_ms`` (a clock stepped back, a restart on
    # another clock) still counts, so spending can never be hidden by a clock.
    return [o for o in orders if now_ms - span_ms < o.at_ms]


def _usd(value: float) -> str:
    return f"{value:,.0f} USD"


def check(
    intents: Sequence[HedgeIntent],
    state: GuardState,
    limits: Limits,
    health: Health,
    now_ms: int,
    hedge_position_usd: Mapping[str, float],
) -> GuardResult:
    """Approve or refuse each intent, in order.

    ``hedge_position_usd`` is the signed USD notional of each hedge symbol's current position
    (0 for a flat, reconciled position; a missing symbol is refused as unknown). Intents
    approved earlier in the same call count toward the position and rolling limits of later
    ones, so slices of one decision cannot together exceed a limit.
    """
    dry_run = state.dry_run or limits.dry_run
    blocked = _gate(state, health)
    if blocked is not None:
        kind, reason = blocked
        return GuardResult((), tuple(Refusal(i, reason, kind=kind) for i in intents), dry_run)

    minute = _window(state.orders, now_ms, MINUTE_MS)
    hour = _window(state.orders, now_ms, HOUR_MS)
    day = _window(state.orders, now_ms, DAY_MS)
    orders_in_minute = len(minute)
    hour_usd = sum(o.notional_usd for o in hour)
    day_usd = sum(o.notional_usd for o in day)
    positions = dict(hedge_position_usd)
    approved: list[HedgeIntent] = []
    refused: list[Refusal] = []
    for intent in intents:
        refusal = _check_one(intent, limits, positions, orders_in_minute, hour_usd, day_usd)
        if refusal is not None:
            refused.append(refusal)
            continue
        approved.append(intent)
        notional = abs(intent.notional_usd)
        orders_in_minute += 1
        hour_usd += notional
        day_usd += notional
        positions[intent.symbol] += intent.signed_notional_usd
    return GuardResult(tuple(approved), tuple(refused), dry_run)


def _check_one(
    intent: HedgeIntent,
    limits: Limits,
    positions: Mapping[str, float],
    orders_in_minute: int,
    hour_usd: float,
    day_usd: float,
) -> Refusal | None:
    notional = abs(intent.notional_usd)
    if not (
        math.isfinite(intent.notional_usd) and math.isfinite(intent.amount) and intent.amount > 0
    ):
        return Refusal(
            intent,
            f"bad order numbers: qty={intent.amount!r} notional={notional!r}",
            kind="bad_order_numbers",
        )
    if notional > limits.max_order_notional_usd:
        return Refusal(
            intent,
            f"max_order_notional_usd: order {_usd(notional)} > limit "
            f"{_usd(limits.max_order_notional_usd)}",
            "max_order_notional_usd",
            kind="max_order_notional_usd",
        )
    before = positions.get(intent.symbol)
    if before is None or not math.isfinite(before):
        return Refusal(
            intent,
            f"hedge position of {intent.symbol} unknown ({before!r})",
            kind="unknown_position",
        )
    after = before + intent.signed_notional_usd
    # An order that shrinks an oversized position is always allowed: refusing it would keep
    # the book further from its limit.
    if abs(after) > limits.max_hedge_position_usd and abs(after) > abs(before):
        return Refusal(
            intent,
            f"max_hedge_position_usd: {intent.symbol} position after order {_usd(after)} "
            f"> limit {_usd(limits.max_hedge_position_usd)}",
            "max_hedge_position_usd",
            kind="max_hedge_position_usd",
        )
    if orders_in_minute >= limits.max_orders_per_minute:
        return Refusal(
            intent,
            f"max_orders_per_minute: {orders_in_minute} orders in the last minute, "
            f"limit {limits.max_orders_per_minute}",
            "max_orders_per_minute",
            kind="max_orders_per_minute",
        )
    if hour_usd + notional > limits.max_notional_per_hour_usd:
        return Refusal(
            intent,
            f"max_notional_per_hour_usd: {_usd(hour_usd)} traded + {_usd(notional)} > limit "
            f"{_usd(limits.max_notional_per_hour_usd)}",
            "max_notional_per_hour_usd",
            kind="max_notional_per_hour_usd",
        )
    if day_usd + notional > limits.max_notional_per_day_usd:
        return Refusal(
            intent,
            f"max_notional_per_day_usd: {_usd(day_usd)} traded + {_usd(notional)} > limit "
            f"{_usd(limits.max_notional_per_day_usd)}",
            "max_notional_per_day_usd",
            kind="max_notional_per_day_usd",
        )
    return None


def record_order(state: GuardState, now_ms: int, notional_usd: float) -> GuardState:
    """An order was sent: it counts toward the rolling limits from ``now_ms``."""
    kept = _window(state.orders, now_ms, DAY_MS)
    kept.append(SentOrder(now_ms, abs(notional_usd)))
    return replace(state, orders=tuple(kept))


def record_success(state: GuardState) -> GuardState:
    return replace(state, consecutive_errors=0) if state.consecutive_errors else state


def record_error(state: GuardState, now_ms: int, limits: Limits, detail: str = "") -> GuardState:
    """An execution error; ``limits.max_consecutive_errors`` in a row trip HALTED."""
    errors = state.consecutive_errors + 1
    counted = replace(state, consecutive_errors=errors)
    if errors >= limits.max_consecutive_errors:
        why = f"{errors} consecutive execution errors"
        return halt(counted, now_ms, f"{why}: {detail}" if detail else why)
    return counted


def escalate(
    state: GuardState, result: GuardResult, policy: BreachPolicy, now_ms: int
) -> GuardState:
    """Apply the breach policy: under HALT, any limit breach in ``result`` trips HALTED."""
    breaches = result.limit_breaches
    if policy is BreachPolicy.REFUSE or not breaches:
        return state
    return halt(state, now_ms, f"limit breach: {breaches[0].reason}")


def halt(state: GuardState, now_ms: int, reason: str) -> GuardState:
    """The kill switch: HALTED with ``reason`` until an operator resumes. An engine that is
    already halted keeps its first reason (the cause, not a consequence)."""
    if state.trading is TradingState.HALTED:
        return state
    return replace(state, trading=TradingState.HALTED, reason=reason, since_ms=now_ms)


def pause(state: GuardState, now_ms: int, reason: str = "by operator") -> GuardState:
    """Operator pause; a HALTED engine stays HALTED (pausing must not hide the kill switch)."""
    if state.trading is not TradingState.RUNNING:
        return state
    return replace(state, trading=TradingState.PAUSED, reason=reason, since_ms=now_ms)


def resume(state: GuardState, now_ms: int) -> GuardState:
    """Explicit operator action; from HALTED it also clears the error count."""
    if state.trading is TradingState.RUNNING:
        return state
    return replace(
        state, trading=TradingState.RUNNING, reason=None, consecutive_errors=0, since_ms=now_ms
    )


def set_dry_run(state: GuardState, dry_run: bool) -> GuardState:
    return replace(state, dry_run=dry_run)


# --- option legs ------------------------------------------------------------------------------


class OptionRefusal(NamedTuple):
    leg: OptionLeg
    reason: str
    limit: str | None = None
    """The ``OptionLimits`` field breached, or None for a gate."""
    kind: str = ""
    """The low-cardinality name operators count refusals by."""


@dataclass(slots=True, frozen=True)
class OptionGuardResult:
    approved: tuple[OptionLeg, ...]
    refused: tuple[OptionRefusal, ...]
    dry_run: bool

    @property
    def to_send(self) -> tuple[OptionLeg, ...]:
        """What the executor may send: nothing in dry run."""
        return () if self.dry_run else self.approved

    @property
    def limit_breaches(self) -> tuple[OptionRefusal, ...]:
        return tuple(r for r in self.refused if r.limit is not None)


def premium_spent_usd(state: GuardState, now_ms: int) -> float:
    """Option premium bought over the rolling day before ``now_ms``."""
    return sum(o.notional_usd for o in _window(state.option_premiums, now_ms, DAY_MS))


def check_options(
    legs: Sequence[OptionLeg],
    state: GuardState,
    limits: OptionLimits,
    health: Health,
    now_ms: int,
    net_vega_usd: float,
    dry_run: bool = False,
) -> OptionGuardResult:
    """Approve or refuse each option leg, in order; a factor's legs stand or fall together.

    ``net_vega_usd``: the book's vega now (every option, USD per vol point). Legs approved
    earlier in the call count toward the premium and the vega of later ones.
    """
    dry_run = state.dry_run or dry_run
    blocked = _gate(state, health)
    if blocked is not None:
        kind, reason = blocked
        return OptionGuardResult(
            (), tuple(OptionRefusal(g, reason, kind=kind) for g in legs), dry_run
        )
    premium = premium_spent_usd(state, now_ms)
    vega = net_vega_usd
    approved: list[OptionLeg] = []
    refused: list[OptionRefusal] = []
    for leg in legs:
        refusal = _check_option(leg, limits, premium, vega)
        if refusal is not None:
            refused.append(refusal)
            continue
        approved.append(leg)
        if leg.side == "buy":
            premium += leg.premium_usd
        vega += leg.total_vega_usd
    failed = {r.leg.factor: r for r in refused}
    if failed:
        # One decision per factor: the rest of a refused decision is refused with it.
        for leg in [g for g in approved if g.factor in failed]:
            first = failed[leg.factor]
            refused.append(
                OptionRefusal(
                    leg,
                    f"leg {first.leg.leg} of this decision refused: {first.reason}",
                    kind=first.kind,
                )
            )
        approved = [g for g in approved if g.factor not in failed]
    return OptionGuardResult(tuple(approved), tuple(refused), dry_run)


def _check_option(
    leg: OptionLeg, limits: OptionLimits, premium_usd: float, vega_usd: float
) -> OptionRefusal | None:
    numbers = (leg.amount, leg.limit_price, leg.premium_usd, leg.total_vega_usd)
    if not (all(math.isfinite(x) for x in numbers) and leg.amount > 0 and leg.limit_price > 0):
        return OptionRefusal(
            leg,
            f"bad order numbers: amount={leg.amount!r} limit_price={leg.limit_price!r}",
            kind="bad_order_numbers",
        )
    if leg.amount > limits.max_contracts_per_order:
        return OptionRefusal(
            leg,
            f"max_contracts_per_order: {leg.symbol} {leg.amount:g} > limit "
            f"{limits.max_contracts_per_order:g}",
            "max_contracts_per_order",
            kind="max_contracts_per_order",
        )
    if leg.side == "buy" and leg.days_to_expiry < limits.min_days_to_expiry:
        return OptionRefusal(
            leg,
            f"min_days_to_expiry: {leg.symbol} expires in {leg.days_to_expiry:.3g} d < "
            f"{limits.min_days_to_expiry:g} d",
            "min_days_to_expiry",
            kind="min_days_to_expiry",
        )
    if leg.side == "buy" and premium_usd + leg.premium_usd > limits.max_premium_per_day_usd:
        return OptionRefusal(
            leg,
            f"max_premium_per_day_usd: {_usd(premium_usd)} bought + {_usd(leg.premium_usd)} > "
            f"limit {_usd(limits.max_premium_per_day_usd)}",
            "max_premium_per_day_usd",
            kind="max_premium_per_day_usd",
        )
    after = vega_usd + leg.total_vega_usd
    # A leg that shrinks an oversized vega is always allowed, as for positions.
    if abs(after) > limits.max_net_vega_usd and abs(after) > abs(vega_usd):
        return OptionRefusal(
            leg,
            f"max_net_vega_usd: book vega after {leg.symbol} {_usd(after)} per vol point > "
            f"limit {_usd(limits.max_net_vega_usd)}",
            "max_net_vega_usd",
            kind="max_net_vega_usd",
        )
    return None


def record_option_premium(state: GuardState, now_ms: int, premium_usd: float) -> GuardState:
    """An option was bought (sent): its premium counts toward the day's from ``now_ms``."""
    kept = _window(state.option_premiums, now_ms, DAY_MS)
    kept.append(SentOrder(now_ms, abs(premium_usd)))
    return replace(state, option_premiums=tuple(kept))
