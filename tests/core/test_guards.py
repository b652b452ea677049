"""Pre-trade guards: state gates, each limit with its numbers, rolling windows, kill switch."""

from __future__ import annotations

import math

import pytest

from hedger.config import Limits
from hedger.core.guards import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    BreachPolicy,
    GuardResult,
    GuardState,
    Health,
    OptionGuardResult,
    TradingState,
    check,
    check_options,
    escalate,
    initial_state,
    pause,
    premium_spent_usd,
    record_error,
    record_option_premium,
    record_order,
    record_success,
    restore,
    resume,
    set_dry_run,
)
from hedger.core.option_legs import OptionLeg
from hedger.core.params import OptionLimits
from hedger.core.policy import HedgeIntent, Side

NOW = 1_795_000_000_000
SYMBOL = "BTC-PERPETUAL"
HEALTHY = Health(stale_inputs=(), positions_reconciled=True)
FLAT = {SYMBOL: 0.0}
LIMITS = Limits(
    max_order_notional_usd=100_000.0,
    max_hedge_position_usd=500_000.0,
    max_notional_per_hour_usd=300_000.0,
    max_notional_per_day_usd=1_000_000.0,
    max_orders_per_minute=3,
    max_consecutive_errors=3,
)


def _intent(notional_usd: float = 10_000.0, side: Side = "sell", leg: int = 0) -> HedgeIntent:
    return HedgeIntent(
        factor="BTC",
        symbol=SYMBOL,
        side=side,
        amount=notional_usd,  # inverse perp: amount is USD
        notional_usd=notional_usd,
        reason="test",
        deviation=0.3,
        band_half_width=0.1,
        target=0.0,
        leg=leg,
    )


def _check(
    intents: list[HedgeIntent],
    state: GuardState | None = None,
    limits: Limits = LIMITS,
    health: Health = HEALTHY,
    now_ms: int = NOW,
    positions: dict[str, float] = FLAT,
) -> GuardResult:
    return check(intents, state or initial_state(limits), limits, health, now_ms, positions)


def _with_orders(*records: tuple[int, float]) -> GuardState:
    state = initial_state(LIMITS)
    for at_ms, notional in records:
        state = record_order(state, at_ms, notional)
    return state


def test_healthy_running_state_approves_within_limits() -> None:
    result = _check([_intent()])
    assert result.approved == (_intent(),)
    assert result.refused == ()
    assert result.dry_run is False
    assert result.to_send == (_intent(),)


# --- gates that refuse everything ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "health", "reason"),
    [
        (GuardState(TradingState.HALTED, reason="3 errors"), HEALTHY, "halted: 3 errors"),
        (GuardState(TradingState.PAUSED, reason="maintenance"), HEALTHY, "paused: maintenance"),
        (GuardState(), Health(positions_reconciled=False), "positions not reconciled"),
        (GuardState(), Health(("BTC", "SOL-PERP"), True), "stale inputs: BTC, SOL-PERP"),
    ],
)
def test_gates_refuse_every_intent_and_say_which(
    state: GuardState, health: Health, reason: str
) -> None:
    intents = [_intent(leg=0), _intent(leg=1)]
    result = _check(intents, state, health=health)
    assert result.approved == ()
    assert [r.intent for r in result.refused] == intents
    assert all(r.reason.startswith(reason) for r in result.refused)
    assert all(r.limit is None for r in result.refused)


def test_health_defaults_to_not_reconciled() -> None:
    assert _check([_intent()], health=Health()).approved == ()


# --- order-level limits -------------------------------------------------------------------------


def test_max_order_notional_refuses_with_the_numbers() -> None:
    result = _check([_intent(100_000.0), _intent(100_001.0, leg=1)])
    assert [i.leg for i in result.approved] == [0]
    (refusal,) = result.refused
    assert refusal.limit == "max_order_notional_usd"
    assert "100,001 USD" in refusal.reason
    assert "100,000 USD" in refusal.reason


def test_max_hedge_position_counts_the_position_after_the_order() -> None:
    positions = {SYMBOL: -450_000.0}
    result = _check([_intent(40_000.0), _intent(20_000.0, leg=1)], positions=positions)
    # -450k - 40k = -490k allowed; then -510k breaches 500k.
    assert [i.leg for i in result.approved] == [0]
    (refusal,) = result.refused
    assert refusal.limit == "max_hedge_position_usd"
    assert "-510,000 USD" in refusal.reason


def test_an_order_that_shrinks_an_oversized_position_is_allowed() -> None:
    positions = {SYMBOL: -600_000.0}
    assert _check([_intent(50_000.0, side="buy")], positions=positions).approved
    assert not _check([_intent(50_000.0, side="sell")], positions=positions).approved


def test_unknown_hedge_position_is_refused() -> None:
    for positions in ({}, {SYMBOL: math.nan}):
        (refusal,) = _check([_intent()], positions=positions).refused
        assert "position of BTC-PERPETUAL unknown" in refusal.reason


@pytest.mark.parametrize("notional", [math.nan, math.inf, 0.0, -5.0])
def test_bad_order_numbers_are_refused(notional: float) -> None:
    (refusal,) = _check([_intent(notional)]).refused
    assert refusal.reason.startswith("bad order numbers")


# --- rolling windows ----------------------------------------------------------------------------


def test_orders_per_minute_counts_sent_orders_and_this_batch() -> None:
    state = _with_orders((NOW - 30_000, 1_000.0), (NOW - 10_000, 1_000.0))
    result = _check([_intent(leg=0), _intent(leg=1)], state)
    assert [i.leg for i in result.approved] == [0]
    (refusal,) = result.refused
    assert refusal.limit == "max_orders_per_minute"
    assert "3 orders in the last minute" in refusal.reason


def test_orders_per_minute_window_expires() -> None:
    state = _with_orders(*[(NOW - 59_000, 1_000.0)] * 3)
    assert not _check([_intent()], state).approved
    assert _check([_intent()], state, now_ms=NOW + 1_000).approved


def test_notional_per_hour_refuses_and_expires() -> None:
    minutes_ago = (50, 20, 10)
    state = _with_orders(*[(NOW - m * MINUTE_MS, 95_000.0) for m in minutes_ago])
    (refusal,) = _check([_intent(20_000.0)], state).refused
    assert refusal.limit == "max_notional_per_hour_usd"
    assert "285,000 USD traded + 20,000 USD" in refusal.reason
    assert _check([_intent(15_000.0)], state).approved  # exactly at the limit is allowed
    later = NOW + 10 * MINUTE_MS + 1  # the oldest order has left the hour
    assert _check([_intent(20_000.0)], state, now_ms=later).approved


def test_notional_per_day_refuses_and_expires() -> None:
    limits = LIMITS.model_copy(update={"max_notional_per_hour_usd": 1e9})
    state = _with_orders(*[(NOW - h * HOUR_MS, 99_000.0) for h in range(23, 13, -1)])
    (refusal,) = _check([_intent(20_000.0)], state, limits).refused
    assert refusal.limit == "max_notional_per_day_usd"
    assert "990,000 USD traded" in refusal.reason
    assert _check([_intent(20_000.0)], state, limits, now_ms=NOW + HOUR_MS).approved


def test_slices_of_one_batch_count_toward_the_rolling_notional() -> None:
    intents = [_intent(100_000.0, leg=i) for i in range(3)]
    limits = LIMITS.model_copy(update={"max_notional_per_hour_usd": 250_000.0})
    result = _check(intents, limits=limits)
    assert [i.leg for i in result.approved] == [0, 1]
    assert result.refused[0].limit == "max_notional_per_hour_usd"


def test_record_order_forgets_orders_older_than_a_day() -> None:
    state = _with_orders((NOW - DAY_MS - 1, 5.0), (NOW - 1, 7.0))
    state = record_order(state, NOW, -3.0)
    assert [(o.at_ms, o.notional_usd) for o in state.orders] == [(NOW - 1, 7.0), (NOW, 3.0)]


# --- kill switch, pause, resume -----------------------------------------------------------------


def test_consecutive_errors_trip_halted() -> None:
    state = initial_state(LIMITS)
    state = record_error(state, NOW, LIMITS, "timeout")
    state = record_error(state, NOW + 1, LIMITS, "timeout")
    assert state.trading is TradingState.RUNNING
    state = record_error(state, NOW + 2, LIMITS, "InvalidOrder")
    assert state.trading is TradingState.HALTED
    assert state.reason == "3 consecutive execution errors: InvalidOrder"
    assert state.since_ms == NOW + 2
    (refusal,) = _check([_intent()], state).refused
    assert refusal.reason.startswith("halted: 3 consecutive")


def test_a_success_resets_the_error_count() -> None:
    state = record_error(record_error(initial_state(LIMITS), NOW, LIMITS), NOW, LIMITS)
    state = record_error(record_success(state), NOW, LIMITS)
    assert state.consecutive_errors == 1
    assert state.trading is TradingState.RUNNING


def test_resume_from_halted_is_explicit_and_clears_errors() -> None:
    state = initial_state(LIMITS)
    for _ in range(3):
        state = record_error(state, NOW, LIMITS)
    assert record_success(state).trading is TradingState.HALTED  # success alone does not resume
    resumed = resume(state, NOW + 5)
    assert resumed.trading is TradingState.RUNNING
    assert resumed.consecutive_errors == 0
    assert resumed.reason is None
    assert _check([_intent()], resumed).approved


def test_pause_and_resume() -> None:
    paused = pause(initial_state(LIMITS), NOW, "maintenance")
    assert paused.trading is TradingState.PAUSED
    assert not _check([_intent()], paused).approved
    assert _check([_intent()], resume(paused, NOW)).approved


def test_pause_does_not_hide_a_halt() -> None:
    halted = GuardState(TradingState.HALTED, reason="errors")
    assert pause(halted, NOW).trading is TradingState.HALTED


def test_breach_policy_halt_trips_on_a_limit_breach_only() -> None:
    state = initial_state(LIMITS)
    breach = _check([_intent(200_000.0)], state)
    assert escalate(state, breach, BreachPolicy.REFUSE, NOW) == state
    halted = escalate(state, breach, BreachPolicy.HALT, NOW)
    assert halted.trading is TradingState.HALTED
    assert halted.reason is not None
    assert "max_order_notional_usd" in halted.reason
    stale = _check([_intent()], state, health=Health(("BTC",), True))
    assert escalate(state, stale, BreachPolicy.HALT, NOW) == state  # a gate is not a breach


# --- dry run and determinism --------------------------------------------------------------------


def test_dry_run_approves_as_live_but_sends_nothing() -> None:
    for state, limits in [
        (initial_state(LIMITS.model_copy(update={"dry_run": True})), LIMITS),
        (set_dry_run(initial_state(LIMITS), True), LIMITS),
        (initial_state(LIMITS), LIMITS.model_copy(update={"dry_run": True})),
    ]:
        result = _check([_intent(), _intent(200_000.0, leg=1)], state, limits)
        assert result.dry_run is True
        assert [i.leg for i in result.approved] == [0]
        assert result.refused[0].limit == "max_order_notional_usd"  # limits still apply
        assert result.to_send == ()


def test_check_is_deterministic_and_does_not_mutate_its_inputs() -> None:
    state = _with_orders((NOW - 1_000, 50_000.0))
    positions = {SYMBOL: -100_000.0}
    intents = [_intent(60_000.0, leg=i) for i in range(4)]
    first = _check(intents, state, positions=positions)
    second = _check(intents, state, positions=positions)
    assert first == second
    assert positions == {SYMBOL: -100_000.0}
    assert len(state.orders) == 1
    assert [i.leg for i in first.approved] == [0, 1]  # then the minute limit (3) binds


# --- option legs --------------------------------------------------------------------------------

OPTION_LIMITS = OptionLimits(
    max_premium_per_day_usd=10_000.0,
    max_net_vega_usd=5_000.0,
    max_contracts_per_order=20.0,
    min_days_to_expiry=2.0,
)


def _leg(
    side: Side = "buy",
    amount: float = 5.0,
    premium_usd: float = 2_000.0,
    vega_usd: float = 300.0,
    days: float = 30.0,
    factor: str = "BTC",
    leg: int = 0,
    symbol: str = "BTC-30D-45000-P",
) -> OptionLeg:
    signed = 1.0 if side == "buy" else -1.0
    return OptionLeg(
        factor=factor,
        symbol=symbol,
        side=side,
        amount=amount,
        limit_price=0.03,
        mark=0.029,
        premium_usd=premium_usd,
        cost_usd=20.0,
        expiry_ms=NOW + int(days * DAY_MS),
        days_to_expiry=days,
        beta_delta_usd=(signed * -10_000.0,),
        gamma_usd_per_pct=signed * 100.0,
        vega_usd=signed * vega_usd,
        total_vega_usd=signed * vega_usd,
        reason="test",
        leg=leg,
    )


def _check_options(
    legs: list[OptionLeg],
    state: GuardState | None = None,
    health: Health = HEALTHY,
    vega: float = 0.0,
    dry_run: bool = False,
) -> OptionGuardResult:
    return check_options(
        legs, state or GuardState(), OPTION_LIMITS, health, NOW, vega, dry_run=dry_run
    )


def test_option_legs_within_limits_are_approved() -> None:
    legs = [_leg(), _leg("sell", factor="ETH", symbol="ETH-30D-2000-P")]
    result = _check_options(legs)
    assert result.approved == tuple(legs)
    assert result.to_send == tuple(legs)
    assert _check_options(legs, dry_run=True).to_send == ()


@pytest.mark.parametrize(
    ("leg", "vega", "kind", "says"),
    [
        (_leg(amount=25.0), 0.0, "max_contracts_per_order", "25 > limit 20"),
        (_leg(days=1.5), 0.0, "min_days_to_expiry", "expires in 1.5 d < 2 d"),
        (_leg(premium_usd=12_000.0), 0.0, "max_premium_per_day_usd", "12,000 USD > limit"),
        (_leg(vega_usd=600.0), 4_500.0, "max_net_vega_usd", "5,100 USD per vol point"),
        (_leg(amount=math.nan), 0.0, "bad_order_numbers", "amount=nan"),
    ],
)
def test_each_option_limit_refuses_with_its_numbers(
    leg: OptionLeg, vega: float, kind: str, says: str
) -> None:
    result = _check_options([leg], vega=vega)
    assert result.approved == ()
    (refusal,) = result.refused
    assert refusal.kind == kind
    assert says in refusal.reason
    assert refusal.limit == (None if kind == "bad_order_numbers" else kind)


def test_selling_is_allowed_near_expiry_and_shrinking_vega_always() -> None:
    closing = _leg("sell", days=0.5, vega_usd=600.0)
    assert _check_options([closing], vega=9_000.0).approved == (closing,)


def test_premium_counts_the_day_before_and_earlier_legs_of_the_call() -> None:
    state = record_option_premium(GuardState(), NOW - HOUR_MS, 6_000.0)
    assert premium_spent_usd(state, NOW) == 6_000.0
    first = _leg(premium_usd=3_000.0)
    second = _leg(premium_usd=3_000.0, factor="ETH", symbol="ETH-30D-2000-P")
    result = _check_options([first, second], state)
    assert result.approved == (first,)
    assert "9,000 USD bought + 3,000 USD" in result.refused[0].reason
    # A day later the old premium no longer counts; selling never spends.
    assert premium_spent_usd(state, NOW - HOUR_MS + DAY_MS) == 0.0
    assert _check_options([_leg("sell", premium_usd=50_000.0)], state).approved


def test_one_refused_leg_refuses_its_whole_decision() -> None:
    """A roll must never sell the old put without buying the new one."""
    sell_old = _leg("sell", days=3.0, symbol="BTC-7D-45000-P", leg=0)
    buy_new = _leg(premium_usd=20_000.0, leg=1)
    eth = _leg(factor="ETH", symbol="ETH-30D-2000-P")
    result = _check_options([sell_old, buy_new, eth])
    assert result.approved == (eth,)
    kinds = {r.leg.symbol: (r.kind, r.reason) for r in result.refused}
    assert kinds["BTC-30D-45000-P"][0] == "max_premium_per_day_usd"
    assert kinds["BTC-7D-45000-P"] == (
        "max_premium_per_day_usd",
        f"leg 1 of this decision refused: {kinds['BTC-30D-45000-P'][1]}",
    )


def test_option_gates_refuse_every_leg() -> None:
    halted = GuardState(TradingState.HALTED, reason="breach")
    result = _check_options([_leg(), _leg(leg=1)], halted)
    assert result.approved == ()
    assert [r.kind for r in result.refused] == ["halted", "halted"]
    stale = _check_options([_leg()], health=Health(("BTC-30D-45000-P",), True))
    assert stale.refused[0].kind == "stale_inputs"


def test_restore_keeps_the_days_option_premium() -> None:
    state = restore(
        LIMITS.to_core(),
        NOW,
        trading=None,
        reason=None,
        since_ms=None,
        consecutive_errors=0,
        sent=[],
        option_premiums=[(NOW - 2 * DAY_MS, 9_000.0), (NOW - HOUR_MS, 4_000.0)],
    )
    assert premium_spent_usd(state, NOW) == 4_000.0
