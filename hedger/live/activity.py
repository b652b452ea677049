"""What the engine did, as counters for metrics and records for ``/status`` and the logs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from hedger.core import guards
from hedger.obs.histogram import CYCLE_BUCKETS, LATENCY_BUCKETS, Histogram
from hedger.obs.labels import REFUSAL_KINDS


@dataclass(slots=True, frozen=True)
class HedgeRecord:
    """One hedge order (or one dry-run decision) as operators see it."""

    at_ms: int
    factor: str
    venue: str
    symbol: str
    side: str
    amount: float
    """In the venue's amount unit (USD face on inverse perps, coins on linear ones)."""
    notional_usd: float
    result: str
    """filled, partial, rejected, failed, stopped or dry_run (``obs.labels.HEDGE_RESULTS``)."""
    reason: str
    intent_seq: int


@dataclass(slots=True)
class EngineStats:
    """Counters exported by ``hedger.obs.metrics``."""

    cycles: int = 0
    cycle_seconds: Histogram = field(default_factory=lambda: Histogram(CYCLE_BUCKETS))
    order_latency_seconds: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS))
    hedge_orders: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    hedge_notional_usd: dict[str, float] = field(default_factory=dict)
    guard_refusals: Counter[str] = field(default_factory=Counter)
    config_reloads: Counter[str] = field(default_factory=Counter)
    own_trades_seen: int = 0
    task_failures: Counter[str] = field(default_factory=Counter)
    implausible_cycles: int = 0
    """Cycles that saw an input fail a plausibility check."""
    decided_cycles: int = 0
    """Cycles with a decision for every factor; ``inside_band_cycles`` of them held: their
    ratio is the time in band."""
    inside_band_cycles: int = 0
    superseded_position_reads: int = 0
    """Position reads dropped because a newer one was applied first."""


def refusal_kind(refusal: guards.Refusal | guards.OptionRefusal) -> str:
    """A low-cardinality label for a refusal (of a perp intent or an option leg): the gate or
    the breached limit, always one of ``hedger.obs.labels.REFUSAL_KINDS``."""
    kind = refusal.kind or refusal.limit or ""
    return kind if kind in REFUSAL_KINDS else "bad_order_numbers"
