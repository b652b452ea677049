"""The closed label value sets of the metric contract (README "Metrics").

An alert or a dashboard panel selects label values by name (``result=~"failed|rejected"``);
a value outside the set it was written for matches nothing, silently. So every value a
counter may carry is listed here, the engine counts only these, and the collector exports
each of them from start-up at 0: ``rate()`` and ``increase()`` need a sample before the
first event, or the first failure after a restart never shows as an increase.
"""

from __future__ import annotations

HEDGE_RESULTS: tuple[str, ...] = ("filled", "partial", "rejected", "failed", "stopped", "dry_run")
"""Outcome of one hedge order (``hedger_hedge_orders_total{result}``).

filled: fully filled. partial: filled in part, the rest not (timed out or cancelled).
rejected: the venue refused it (the request provably did nothing). failed: anything else
that left the leg unfilled: a timeout, exhausted retries, or nothing filled before the
order ended. stopped: an intent stopped between its slices by a pause, a halt, dry run
turned on, stale data, the decision's age or shutdown; the slices sent before keep their
own results. dry_run: journaled, never sent.
"""

RELOAD_RESULTS: tuple[str, ...] = ("applied", "refused")
"""Outcome of a config reload (``hedger_config_reloads_total{result}``)."""

GATE_REFUSALS: tuple[str, ...] = (
    "halted",
    "paused",
    "not_reconciled",
    "stale_inputs",
    "implausible_data",
    "bad_order_numbers",
    "unknown_position",
)
"""Refusals that are not a limit: the trading state, data health, or an intent's numbers."""

LIMIT_REFUSALS: tuple[str, ...] = (
    "max_order_notional_usd",
    "max_hedge_position_usd",
    "max_orders_per_minute",
    "max_notional_per_hour_usd",
    "max_notional_per_day_usd",
)
"""A breached ``hedger.config.Limits`` field, named as in the config file."""

OPTION_LIMIT_REFUSALS: tuple[str, ...] = (
    "max_premium_per_day_usd",
    "max_net_vega_usd",
    "max_contracts_per_order",
    "min_days_to_expiry",
)
"""A breached ``option_limits`` field: option legs only."""

REFUSAL_KINDS: tuple[str, ...] = GATE_REFUSALS + LIMIT_REFUSALS + OPTION_LIMIT_REFUSALS
"""Why a hedge intent was refused (``hedger_guard_refusals_total{reason}``)."""


def hedge_result(raw: str) -> str:
    """``raw`` if it is a contract result, else "failed".

    A raw venue status ("open", "cancelled", "expired"...) reaching a label would create a
    series no alert selects: an unfilled leg is a failure whatever the venue called it.
    """
    return raw if raw in HEDGE_RESULTS else "failed"
