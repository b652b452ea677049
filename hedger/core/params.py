"""The core's own parameter types: what the pure functions are told, nothing more.

The pydantic config (``hedger.config``) validates a file and converts into these frozen
values, so the core never imports the shell (nor pydantic or YAML) and a backtest, a sweep
or a test can build them directly. Units are the config's: seconds for durations, factor
units or USD as each field says.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class BandKind(StrEnum):
    ABSOLUTE = "absolute"
    RELATIVE = "relative"
    WHALLEY_WILMOTT = "whalley_wilmott"


@dataclass(slots=True, frozen=True)
class Band:
    kind: BandKind = BandKind.ABSOLUTE
    half_width: float | None = None
    """absolute: in ``unit``; relative: a fraction of NAV."""
    unit: Literal["factor", "usd"] = "factor"
    risk_aversion: float | None = None
    """Whalley-Wilmott only."""
    min_half_width: float = 0.0
    """floor, in factor units, for the Whalley-Wilmott band."""


@dataclass(slots=True, frozen=True)
class Target:
    kind: Literal["beta", "beta_delta"] = "beta"
    value: float = 0.0


@dataclass(slots=True, frozen=True)
class Factor:
    """One market factor: its asset, where its beta-delta should sit and how far it may
    drift before it is hedged."""

    asset: str
    target: Target = Target()
    band: Band = Band(half_width=0.05)


@dataclass(slots=True, frozen=True)
class HedgePolicy:
    rebalance_to: Literal["edge", "target"] = "target"
    cooldown: float = 30.0
    """seconds after a hedge of a factor before the next one."""
    max_order_amount: float | None = None
    """largest slice, in the hedge market's amount units."""


@dataclass(slots=True, frozen=True)
class Limits:
    max_order_notional_usd: float = 250_000.0
    max_hedge_position_usd: float = 2_000_000.0
    max_notional_per_hour_usd: float = 1_000_000.0
    max_notional_per_day_usd: float = 5_000_000.0
    max_orders_per_minute: int = 10
    max_consecutive_errors: int = 3
    dry_run: bool = False
