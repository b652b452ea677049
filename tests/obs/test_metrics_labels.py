"""The closed label sets (``hedger.obs.labels``) against what produces the values: the
guards' refusals as the engine names them, the config's limits, raw venue statuses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hedger.config import Limits
from hedger.core import guards
from hedger.core.policy import HedgeIntent
from hedger.core.units import DAY_MS, HOUR_MS
from hedger.live.activity import refusal_kind
from hedger.obs.labels import HEDGE_RESULTS, LIMIT_REFUSALS, REFUSAL_KINDS, hedge_result

NOW_MS = 10 * DAY_MS
SYMBOL = "BTC-PERPETUAL"
READY = guards.Health(positions_reconciled=True)


def _intent(qty: float = 100_000.0) -> HedgeIntent:
    return HedgeIntent(
        factor="BTC",
        symbol=SYMBOL,
        side="buy",
        amount=qty,
        notional_usd=qty,
        reason="outside band",
        deviation=1.0,
        band_half_width=0.25,
        target=0.0,
    )


def _orders(*records: tuple[int, float]) -> guards.GuardState:
    """A running state that sent orders of (ms before now, notional USD)."""
    sent = tuple(guards.SentOrder(NOW_MS - ago, usd) for ago, usd in records)
    return guards.GuardState(orders=sent)


def _case(
    kind: str,
    intent: HedgeIntent,
    state: guards.GuardState,
    health: guards.Health = READY,
    positions: dict[str, float] | None = None,
    *marks: pytest.MarkDecorator,
) -> object:
    held = {SYMBOL: 0.0} if positions is None else positions
    return pytest.param(kind, intent, state, health, held, id=kind, marks=marks)


# One case per way the guards refuse.
CASES = [
    _case("halted", _intent(), guards.GuardState(trading=guards.TradingState.HALTED)),
    _case("paused", _intent(), guards.GuardState(trading=guards.TradingState.PAUSED)),
    _case("not_reconciled", _intent(), guards.GuardState(), guards.Health()),
    _case(
        "stale_inputs",
        _intent(),
        guards.GuardState(),
        guards.Health(stale_inputs=(SYMBOL,), positions_reconciled=True),
    ),
    _case(
        "implausible_data",
        _intent(),
        guards.GuardState(),
        guards.Health(
            implausible_inputs=(f"{SYMBOL}: unconfirmed_jump",), positions_reconciled=True
        ),
    ),
    _case("bad_order_numbers", _intent(float("nan")), guards.GuardState()),
    _case(
        "unknown_position",
        _intent(),
        guards.GuardState(),
        READY,
        {},
    ),
    _case("max_order_notional_usd", _intent(300_000.0), guards.GuardState()),
    _case("max_hedge_position_usd", _intent(), guards.GuardState(), READY, {SYMBOL: 1_950_000.0}),
    _case("max_orders_per_minute", _intent(), _orders(*[(1_000, 1.0)] * 10)),
    _case("max_notional_per_hour_usd", _intent(), _orders((1_000, 950_000.0))),
    _case("max_notional_per_day_usd", _intent(), _orders((2 * HOUR_MS, 4_950_000.0))),
]


@pytest.mark.parametrize(("kind", "intent", "state", "health", "positions"), CASES)
def test_each_guard_refusal_is_counted_under_its_kind(
    kind: str,
    intent: HedgeIntent,
    state: guards.GuardState,
    health: guards.Health,
    positions: dict[str, float],
) -> None:
    """A kind outside REFUSAL_KINDS starts from no series (no zero before it) and is
    invisible to a panel or rule written for the set."""
    checked = guards.check([intent], state, Limits(), health, NOW_MS, positions)
    (refusal,) = checked.refused
    assert refusal_kind(refusal) == kind


def test_every_limit_of_the_config_is_a_refusal_kind() -> None:
    # The margin guard reads the venue's positions, not an intent: it alerts or reduces.
    not_limits = {
        "max_consecutive_errors",
        "dry_run",
        "min_liquidation_distance",
        "on_margin_breach",
    }
    assert set(LIMIT_REFUSALS) == set(Limits.model_fields) - not_limits
    assert set(LIMIT_REFUSALS) <= set(REFUSAL_KINDS)


@given(st.text())
def test_hedge_result_is_always_a_contract_value(raw: str) -> None:
    assert hedge_result(raw) in HEDGE_RESULTS
    assert (hedge_result(raw) == raw) == (raw in HEDGE_RESULTS)


@pytest.mark.parametrize("status", ["open", "cancelled", "canceled", "expired", "", "error"])
def test_a_venue_status_or_an_unknown_word_is_a_failure(status: str) -> None:
    assert hedge_result(status) == "failed"
