"""Hedge-leg margin: how far each hedge position is from liquidation, and the guard on it.

A hedge can be right on delta and still be lost: the perp that hedges spot held on another
venue loses margin exactly when the spot gains, and if its venue liquidates it the book is
unhedged at the worst moment. The venue's positions say where each hedge leg would be
liquidated; this module turns that into a distance and a verdict.

Liquidation distance is the adverse move, as a fraction of the mark price, that reaches the
liquidation price: ``(mark - liq) / mark`` for a long, ``(liq - mark) / mark`` for a short.
Signed toward danger, so it is positive while the leg is safe whichever side it is on. A
short (the usual hedge) is liquidated on the way up, an inverse perp hedging coin collateral
included; a long at most by a 100% fall. A leg the venue gives no liquidation price for
(coin-margined short backed by enough coin, or a venue's "0") is infinitely far.

``estimated_liquidation_price`` is the one-position model behind the numbers, for a venue or a
simulation that reports none: collateral ``free_collateral`` (equity less the maintenance
margin of everything else, in the margin currency: quote for linear, coin for inverse)
against this position's maintenance margin at rate ``maintenance_rate`` of its notional, the
rest of the account held still. ``reduce_to_fraction`` inverts it: the share of a breaching
leg that, on the same model, sits at the minimum distance again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "HedgeLegMargin",
    "LegMarginReading",
    "MarginAction",
    "MarginCheck",
    "MarginPolicy",
    "MarginStatus",
    "check_margins",
    "estimated_liquidation_price",
    "liquidation_distance",
    "margin_ratio",
    "reduce_to_fraction",
]

_NAN = float("nan")


class MarginAction(StrEnum):
    """What a breach asks of the daemon (``limits.on_margin_breach``)."""

    ALERT = "alert"
    """log, journal and export it; the hedge stays as it is."""
    REDUCE = "reduce"
    """also cut the leg back to ``reduce_to_fraction`` of its size (accepting the delta)."""


class MarginStatus(StrEnum):
    OK = "ok"
    BREACH = "breach"
    UNKNOWN = "unknown"
    """no usable mark or liquidation price: nothing can be said, which the operator should
    hear about."""


@dataclass(slots=True, frozen=True)
class MarginPolicy:
    """``min_liquidation_distance``: the smallest adverse move (fraction of mark) a hedge leg
    may stand from liquidation; None switches the guard off."""

    min_liquidation_distance: float | None = None
    action: MarginAction = MarginAction.ALERT

    def __post_init__(self) -> None:
        floor = self.min_liquidation_distance
        if floor is not None and not 0.0 < floor < 1.0:
            raise ValueError(f"min_liquidation_distance must be in (0, 1), got {floor}")


@dataclass(slots=True, frozen=True)
class HedgeLegMargin:
    """One hedge position as its venue reports it. NaN is "not reported"."""

    venue: str
    instrument: str
    qty: float
    """signed venue amount; > 0 long. Only its sign and ratios matter here."""
    mark_price: float
    liquidation_price: float | None
    """None (or <= 0): no price liquidates the leg, as the venue says; NaN: not known."""
    inverse: bool = False
    maintenance_rate: float = _NAN
    """maintenance margin / notional (the venue's rate for this size), e.g. 0.005."""
    margin_ratio: float = _NAN
    """maintenance margin / collateral, the venue's figure (1.0 = liquidation)."""
    maintenance_margin: float = _NAN
    collateral: float = _NAN


@dataclass(slots=True, frozen=True)
class LegMarginReading:
    venue: str
    instrument: str
    qty: float
    liquidation_distance: float
    """adverse move to liquidation, fraction of mark; inf: none; NaN: unknown."""
    margin_ratio: float
    """maintenance margin / collateral; NaN when the venue gives neither."""
    status: MarginStatus
    shortfall: float
    """how far inside the minimum distance the leg is (fraction of mark); 0 unless breached."""
    reduce_to_fraction: float
    """share of the leg to keep under ``reduce``; 1.0 unless breached under ``reduce``."""


@dataclass(slots=True, frozen=True)
class MarginCheck:
    readings: tuple[LegMarginReading, ...]
    action: MarginAction | None
    """what the policy asks for now: None when no leg breaches (or the guard is off)."""

    @property
    def breaches(self) -> tuple[LegMarginReading, ...]:
        return tuple(r for r in self.readings if r.status is MarginStatus.BREACH)

    @property
    def unknown(self) -> tuple[LegMarginReading, ...]:
        return tuple(r for r in self.readings if r.status is MarginStatus.UNKNOWN)

    def venue_margin_ratios(self) -> dict[str, float]:
        """The worst (highest) margin ratio reported per venue; NaN where none is. On a
        cross-margined account every leg carries the account's ratio, so this is it."""
        out: dict[str, float] = {}
        for r in self.readings:
            seen = out.get(r.venue, _NAN)
            out[r.venue] = r.margin_ratio if math.isnan(seen) else max(seen, r.margin_ratio)
        return out


def _usable(value: float) -> bool:
    return math.isfinite(value) and value > 0.0


def liquidation_distance(qty: float, mark_price: float, liquidation_price: float | None) -> float:
    """The adverse move (fraction of ``mark_price``) that reaches ``liquidation_price``;
    negative once the mark is past it, inf without one (None), NaN when either price is
    unknown (NaN)."""
    if not _usable(mark_price) or qty == 0.0:
        return _NAN
    if liquidation_price is None or liquidation_price <= 0.0 or liquidation_price == math.inf:
        return math.inf
    if math.isnan(liquidation_price):
        return _NAN
    toward_danger = -1.0 if qty > 0 else 1.0  # a long dies as the price falls
    return toward_danger * (liquidation_price - mark_price) / mark_price


def margin_ratio(leg: HedgeLegMargin) -> float:
    """The venue's own ratio if it gives one, else maintenance margin / collateral."""
    if math.isfinite(leg.margin_ratio):
        return leg.margin_ratio
    if math.isfinite(leg.maintenance_margin) and _usable(leg.collateral):
        return leg.maintenance_margin / leg.collateral
    return _NAN


def estimated_liquidation_price(
    qty: float,
    mark_price: float,
    free_collateral: float,
    maintenance_rate: float,
    inverse: bool,
) -> float | None:
    """The price at which equity meets maintenance margin, on the one-position model.

    Linear (``qty`` in coin, collateral in quote): ``C + q (X - P) = m |q| X``.
    Inverse (``qty`` in USD face, collateral in coin): ``C + q (1/P - 1/X) = m |q| / X``.
    None when no positive price liquidates the leg (a long whose collateral covers it to
    zero; an inverse short whose coin is worth more than its face).
    """
    if qty == 0.0 or not _usable(mark_price):
        return None
    q, p, c, m = qty, mark_price, free_collateral, maintenance_rate
    if inverse:
        denominator = c + q / p
        price = (q + m * abs(q)) / denominator if denominator != 0.0 else math.inf
    else:
        slope = q - m * abs(q)
        price = (q * p - c) / slope if slope != 0.0 else math.inf
    return price if 0.0 < price < math.inf else None


def reduce_to_fraction(
    distance: float, min_distance: float, maintenance_rate: float, *, long: bool, inverse: bool
) -> float:
    """The share of a leg at ``distance`` to keep so that, on the one-position model with its
    collateral unchanged, it stands at ``min_distance`` (0 = close it, 1 = keep it).

    Closed forms of ``estimated_liquidation_price`` solved for the size; an unknown rate
    counts as 0, which cuts more (the safe side).
    """
    if math.isnan(distance) or distance >= min_distance:
        return 1.0
    m = maintenance_rate if math.isfinite(maintenance_rate) and 0 <= maintenance_rate < 1 else 0.0
    d, target = distance, min_distance
    if inverse:
        # long: d = (CP - m f) / (CP + f); short: d = (CP - m f) / (f - CP).
        if long:
            kept = (d + m) * (1 - target) / ((1 - d) * (target + m))
        else:
            kept = (d + m) * (1 + target) / ((1 + d) * (target + m))
    else:
        # long: d = (C - m q P) / (q P (1 - m)); short: the same with 1 + m.
        lever = (1 - m) if long else (1 + m)
        kept = (d * lever + m) / (target * lever + m)
    return min(max(kept, 0.0), 1.0)


def check_margins(legs: Iterable[HedgeLegMargin], policy: MarginPolicy) -> MarginCheck:
    """Each leg's distance and ratio, and the policy's verdict on them."""
    floor = policy.min_liquidation_distance
    readings = []
    breached = False
    for leg in legs:
        distance = liquidation_distance(leg.qty, leg.mark_price, leg.liquidation_price)
        if math.isnan(distance):
            status = MarginStatus.UNKNOWN
        elif floor is not None and distance < floor:
            status = MarginStatus.BREACH
        else:
            status = MarginStatus.OK
        shortfall, kept = 0.0, 1.0
        if status is MarginStatus.BREACH and floor is not None:
            breached = True
            shortfall = floor - distance
            if policy.action is MarginAction.REDUCE:
                kept = reduce_to_fraction(
                    distance, floor, leg.maintenance_rate, long=leg.qty > 0, inverse=leg.inverse
                )
        readings.append(
            LegMarginReading(
                venue=leg.venue,
                instrument=leg.instrument,
                qty=leg.qty,
                liquidation_distance=distance,
                margin_ratio=margin_ratio(leg),
                status=status,
                shortfall=shortfall,
                reduce_to_fraction=kept,
            )
        )
    return MarginCheck(tuple(readings), policy.action if breached else None)
