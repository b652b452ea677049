"""Fault injection for the paper venue: what real venues do to a client on a bad day.

A plan is set at start (``--faults JSON``, ``venues.*.paper.faults``) and changed at run time
through the admin endpoint; all three go through ``FaultPlan.update``, which validates the
whole plan before it changes anything. Random faults draw from a seeded generator so a test
sees the same sequence.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

ErrorStatus = Literal[429, 500, 502, 503, 504]
"""What a venue answers when it is overloaded or down; ccxt backs off or retries on each."""

InstrumentName = Annotated[str, StringConstraints(min_length=1)]


class FaultPlanError(ValueError):
    """A refused fault setting; the message is one line naming each field and the reason."""


class FaultPlan(BaseModel):
    """The fault settings. Build or change one only through ``parse``/``update`` (validated
    as a whole); the venue itself mutates ``order_timeouts`` as it spends them."""

    # Strict: the plan arrives as JSON or YAML, where "0.5" or "yes" is a mistake, not a number
    # or a bool to coerce (a string once got through and broke every later request).
    model_config = ConfigDict(
        extra="forbid", strict=True, allow_inf_nan=False, use_attribute_docstrings=True
    )

    delay_ms: float = Field(default=0.0, ge=0.0)
    """added to every REST response."""
    error_share: float = Field(default=0.0, ge=0.0, le=1.0)
    """share of REST requests answered with ``error_status`` instead of being served."""
    error_status: ErrorStatus = 429
    ws_drop_every_s: float | None = Field(default=None, gt=0.0)
    """close every websocket connection this often (null: never)."""
    order_timeouts: int = Field(default=0, ge=0)
    """the next N orders are executed but never answered (the client times out)."""
    hang_s: float = Field(default=60.0, ge=0.0)
    """how long an unanswered order's request is held open before the socket closes."""
    reject_orders: bool = False
    """refuse every order (Deribit 10009 not_enough_funds by default)."""
    reject_code: int = 10009
    paused: list[InstrumentName] = Field(default_factory=list)
    """instruments whose ticks stop (stale data); REST tickers still answer."""
    seed: int = Field(default=0, ge=0)

    @field_validator("reject_code")
    @classmethod
    def _deribit_code(cls, code: int) -> int:
        # Deribit's own codes (9999-13xxx) or JSON-RPC's reserved range: ccxt maps these to
        # the exception classes the real venue causes; anything else would be a made-up code.
        if not (9999 <= code <= 13999 or -32768 <= code <= -32000):
            raise ValueError("must be a Deribit error code (9999-13999 or -32768..-32000)")
        return code

    @classmethod
    def parse(cls, settings: object) -> FaultPlan:
        """A plan from settings (a JSON object's worth); unset fields keep their defaults."""
        plan = cls()
        plan.update(settings)
        return plan

    def update(self, changes: object) -> None:
        """Apply ``changes`` all or nothing: a refused update leaves the plan as it was."""
        if not isinstance(changes, Mapping):
            raise FaultPlanError(
                f"fault settings must be a JSON object, got {type(changes).__name__}"
            )
        unknown = sorted(str(k) for k in changes if k not in type(self).model_fields)
        if unknown:
            raise FaultPlanError(
                f"unknown fault settings: {', '.join(unknown)}; "
                f"known: {', '.join(type(self).model_fields)}"
            )
        try:
            merged = self.model_validate({**self.model_dump(), **changes})
        except ValidationError as exc:
            raise FaultPlanError(_one_line(exc)) from None
        for name in changes:
            setattr(self, name, getattr(merged, name))

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump()


def _one_line(exc: ValidationError) -> str:
    return "; ".join(
        f"fault setting {'.'.join(str(p) for p in err['loc'])}: "
        f"{err['msg'].removeprefix('Value error, ')} (got {err['input']!r})"
        for err in exc.errors(include_url=False)
    )


class Faults:
    """The live plan plus the generator and counters that carry it out."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self.plan = plan or FaultPlan()
        self._rng = random.Random(self.plan.seed)
        self.injected: dict[str, int] = {
            "errors": 0,
            "order_timeouts": 0,
            "rejects": 0,
            "ws_drops": 0,
        }

    def update(self, changes: object) -> None:
        self.plan.update(changes)
        if isinstance(changes, Mapping) and "seed" in changes:
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
