"""The core's own parameter types: what the pure functions are told, nothing more.

The pydantic config (``hedger.config``) validates a file and converts into these frozen
values, so the core never imports the shell (nor pydantic or YAML) and a backtest, a sweep
or a test can build them directly. Units are the config's: seconds for durations, factor
units or USD as each field says.
"""

from __future__ import annotations

import math
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
    lower_half_width: float | None = None
    """asymmetric band: the half-width *below* the target, in the same kind and unit as
    ``half_width`` (which is then the upper one); None: symmetric. Absolute and relative
    bands only."""
    inner_half_width: float | None = None
    """hysteresis: a deviation outside the band is traded back to this inner band above the
    target (0: to the target) instead of where ``HedgePolicy.rebalance_to`` says, so that a
    one-tick move past the band edge cannot trade back and forth. Same kind and unit as
    ``half_width``; None: no inner band. Absolute and relative bands only."""
    inner_lower_half_width: float | None = None
    """the inner band below the target; None: ``inner_half_width``."""


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
    hedge_ratio: float = 1.0
    """share (0 to 1.5) of the trade back to the rebalance point that is sent: 0.8 leaves a
    fifth of the deviation on, 1.2 over-hedges; 1 is the classic full hedge."""


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


# --- option hedges ----------------------------------------------------------------------------


class HedgeMode(StrEnum):
    """How a factor is hedged (``factors[].hedge.mode``)."""

    PERP = "perp"
    """the perpetual alone trades the beta-delta back into its band (the default)."""
    PROTECTIVE_PUT = "protective_put"
    """puts hold a floor under a share of the long beta-delta; the perp trims the rest."""
    MULTI_GREEK = "multi_greek"
    """options bring gamma and vega into their bands at least cost; the perp trims delta."""


@dataclass(slots=True, frozen=True)
class CandidateFilter:
    """Which listed options a factor's hedge may trade."""

    underlyings: tuple[str, ...] = ()
    """assets whose options qualify; empty: the factor's own asset."""
    min_days_to_expiry: float = 2.0
    max_days_to_expiry: float = 90.0
    min_abs_delta: float = 0.05
    max_abs_delta: float = 0.95
    """range of the Black-76 |delta| (Deribit's, not premium-adjusted)."""
    min_open_interest: float = 0.0
    """in the venue's amount unit; an option whose open interest is unknown passes only at 0."""
    max_relative_spread: float = 0.25
    """(ask - bid) / mid at most this; an option without both sides never qualifies."""
    max_candidates: int = 40
    """at most this many reach the solver, taken in turn from each expiry."""


@dataclass(slots=True, frozen=True)
class GreekBand:
    """Where a Greek should sit: ``target`` and half-widths in the unit of the field that
    holds the band. The default has no bounds (the Greek is not constrained)."""

    target: float = 0.0
    half_width: float = math.inf
    """above the target (and below it too unless ``lower_half_width``)."""
    lower_half_width: float | None = None
    inner_half_width: float | None = None
    """hysteresis: once the Greek is outside the band, trade it back inside this inner band
    (None: the band itself)."""
    inner_lower_half_width: float | None = None

    @property
    def lower(self) -> float:
        below = self.half_width if self.lower_half_width is None else self.lower_half_width
        return self.target - below

    @property
    def upper(self) -> float:
        return self.target + self.half_width

    @property
    def inner_upper(self) -> float:
        inner = self.half_width if self.inner_half_width is None else self.inner_half_width
        return self.target + min(inner, self.half_width)

    @property
    def inner_lower(self) -> float:
        below = self.half_width if self.lower_half_width is None else self.lower_half_width
        inner = self.inner_lower_half_width
        if inner is None:
            inner = below if self.inner_half_width is None else self.inner_half_width
        return self.target - min(inner, below)

    def contains(self, value: float) -> bool:
        return self.lower <= value <= self.upper


@dataclass(slots=True, frozen=True)
class ProtectivePut:
    """Puts whose delta offsets ``coverage`` of the long beta-delta, bought at ``moneyness``
    (strike / forward) and ``tenor_days``, rolled before expiry or when their delta drifts."""

    coverage: float = 1.0
    moneyness: float = 0.9
    tenor_days: float = 30.0
    roll_days: float = 7.0
    """roll a held put with fewer days than this to its expiry."""
    delta_drift: float = 0.25
    """roll when the held puts' delta differs from the aim by more than this fraction of it
    (and by more than the factor's band)."""
    restrike_moneyness: float = 0.05
    """a held put is re-struck only when another strike is nearer the moneyness by this."""


@dataclass(slots=True, frozen=True)
class MultiGreek:
    """The multi-Greek solve of one factor: the perp and up to ``max_options`` options, so
    that beta-delta (the factor's band), gamma and vega end inside their bands."""

    gamma: GreekBand = GreekBand()
    """USD of beta-delta per 1% move of the factor (``Exposure.gamma_usd_per_pct``)."""
    vega: GreekBand = GreekBand()
    """USD per vol point, of the options on the factor's own asset."""
    max_options: int = 4
    max_contracts_per_option: float = 100.0
    """per option and decision, in the venue's amount unit."""
    integer_lots: bool = True
    """True: HiGHS's MILP on whole lots (exact); False: its LP, rounded to lots and
    re-checked (each miss reported)."""
    time_limit_s: float = 1.0
    premium_weight: float = 0.01
    """regularisation: each contract also costs this fraction of its premium in the
    objective, so near-collinear options are not stacked long against short to shave a
    band."""
    allow_short: bool = False
    """write options; False: sell only what the hedge holds long."""
    retry_after_s: float = 30.0
    """after a solve that found nothing to send (infeasible, timed out, no candidates), the
    next one waits this long: an unreachable band is not re-solved on every tick."""


@dataclass(slots=True, frozen=True)
class OptionHedge:
    """One factor's hedge mode and its option settings."""

    mode: HedgeMode = HedgeMode.PERP
    candidates: CandidateFilter = CandidateFilter()
    protective_put: ProtectivePut = ProtectivePut()
    multi_greek: MultiGreek = MultiGreek()


@dataclass(slots=True, frozen=True)
class OptionOrder:
    """How option legs are worked: never a market order unless ``allow_market``."""

    spread_fraction: float = 0.25
    """limit price = mark + this fraction of the quoted spread to buy, minus it to sell."""
    reprice_interval: float = 5.0
    """seconds between re-pricings of a resting leg (executor)."""
    timeout: float = 60.0
    """seconds before a leg's remainder is cancelled; the step makes no new option decision
    for a factor until this long after its last one (its legs are still being worked)."""
    allow_market: bool = False


@dataclass(slots=True, frozen=True)
class OptionLimits:
    max_premium_per_day_usd: float = 50_000.0
    """premium of options bought over a rolling day."""
    max_net_vega_usd: float = 100_000.0
    """|book vega| after a leg, USD per vol point; a leg that shrinks it always passes."""
    max_contracts_per_order: float = 50.0
    """in the venue's amount unit."""
    min_days_to_expiry: float = 2.0
    """nothing expiring sooner is bought."""
