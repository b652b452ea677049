"""Fault injection for the paper venue: what real venues do to a client on a bad day.

A plan is set at start (``--faults JSON``) and changed at run time through the admin
endpoint. Random faults draw from a seeded generator so a test sees the same sequence.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, fields
from typing import Any

RETRYABLE_STATUSES = (429, 500, 502, 503, 504)


@dataclass(slots=True)
class FaultPlan:
    delay_ms: float = 0.0
    """added to every REST response."""
    error_share: float = 0.0
    """share of REST requests answered with ``error_status`` instead of being served."""
    error_status: int = 429
    ws_drop_every_s: float | None = None
    """close every websocket connection this often."""
    order_timeouts: int = 0
    """the next N orders are executed but never answered (the client times out)."""
    hang_s: float = 60.0
    """how long an unanswered order's request is held open before the socket closes."""
    reject_orders: bool = False
    """refuse every order (Deribit 10009 not_enough_funds by default)."""
    reject_code: int = 10009
    paused: list[str] = field(default_factory=list)
    """instruments whose ticks stop (stale data); REST tickers still answer."""
    seed: int = 0

    def update(self, changes: dict[str, Any]) -> None:
        known = {f.name: f.type for f in fields(self)}
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise ValueError(
                f"unknown fault settings: {', '.join(unknown)}; known: {sorted(known)}"
            )
        for name, value in changes.items():
            setattr(self, name, value)
        self.validate()

    def validate(self) -> None:
        if not 0.0 <= self.error_share <= 1.0:
            raise ValueError(f"error_share must be in [0, 1], got {self.error_share}")
        if self.error_status not in RETRYABLE_STATUSES:
            raise ValueError(f"error_status must be one of {RETRYABLE_STATUSES}")
        if self.delay_ms < 0 or self.hang_s < 0 or self.order_timeouts < 0:
            raise ValueError("delay_ms, hang_s and order_timeouts must be >= 0")
        if self.ws_drop_every_s is not None and self.ws_drop_every_s <= 0:
            raise ValueError("ws_drop_every_s must be > 0 (or null to disable)")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Faults:
    """The live plan plus the generator and counters that carry it out."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self.plan = plan or FaultPlan()
        self.plan.validate()
        self._rng = random.Random(self.plan.seed)
        self.injected: dict[str, int] = {
            "errors": 0,
            "order_timeouts": 0,
            "rejects": 0,
            "ws_drops": 0,
        }

    def update(self, changes: dict[str, Any]) -> None:
        self.plan.update(changes)
        if "seed" in changes:
            self._rng = random.Random(self.plan.seed)

    def should_fail_request(self) -> bool:
        if self.plan.error_share > 0 and self._rng.random() < self.plan.error_share:
            self.injected["errors"] += 1
            return True
        return False

    def take_order_timeout(self) -> bool:
        if self.plan.order_timeouts > 0:
            self.plan.order_timeouts -= 1
            self.injected["order_timeouts"] += 1
            return True
        return False

    def is_paused(self, instrument_name: str) -> bool:
        return instrument_name in self.plan.paused
