"""Plain-text views of a config and an exposure, for operators at a terminal."""

from __future__ import annotations

import numpy as np

from hedger.config import Band, Config
from hedger.config.portfolio import MissingReferenceError, declared_exposure, reference_now_ms
from hedger.core.exposure import Exposure
from hedger.core.params import BandKind


def _band_text(band: Band) -> str:
    if band.kind is BandKind.ABSOLUTE:
        return f"absolute ±{band.half_width:g} {band.unit}"
    if band.kind is BandKind.RELATIVE:
        return f"relative ±{band.half_width:g} x NAV"
    return f"whalley-wilmott (risk aversion {band.risk_aversion:g})"


def render_config_summary(cfg: Config, source: str) -> str:
    lines = [f"{source}: valid configuration for daemon '{cfg.name}'", "venues:"]
    for name, venue in cfg.venues.items():
        where = "embedded paper venue" if venue.paper else (venue.urls.rest or "ccxt default urls")
        keys = "set" if venue.api_key and venue.secret else "not set"
        lines.append(f"  {name}: {venue.exchange} ({where}), api keys {keys}")
    lines.append(f"factors (K = {len(cfg.factors)}):")
    for factor in cfg.factors:
        lines.append(
            f"  {factor.asset}: hedge {factor.hedge.symbol} on {factor.hedge.venue}, "
            f"target {factor.target.kind} {factor.target.value:g}, band {_band_text(factor.band)}"
        )
    beta = cfg.beta
    lines.append(
        f"beta: {beta.estimator.value} on {beta.bar:g}s bars, half-life {beta.half_life:g}s, "
        f"window {beta.window:g}s, warm after {beta.min_observations} bars"
    )
    limits = cfg.limits
    lines.append(
        f"limits: order ≤ {limits.max_order_notional_usd:,.0f} USD, hedge position ≤ "
        f"{limits.max_hedge_position_usd:,.0f} USD, ≤ {limits.max_orders_per_minute} orders/min"
        + (", DRY RUN" if limits.dry_run else "")
    )
    lines.append(f"declared holdings: {len(cfg.portfolio.holdings)}")
    return "\n".join(lines)


def render_exposure(cfg: Config, wall_clock_ms: int) -> str:
    if not cfg.portfolio.holdings:
        return "declared portfolio: empty (venue positions are loaded at run time)"
    try:
        result, defaulted = declared_exposure(cfg, reference_now_ms(cfg, wall_clock_ms))
    except MissingReferenceError as exc:
        return f"declared portfolio exposure: not computed ({exc})"
    return format_exposure(result, defaulted)


def format_exposure(result: Exposure, defaulted: list[str] | None = None) -> str:
    factors = result.factors
    head = f"{'asset':<8}{'price':>12}{'delta coin':>14}{'delta USD':>16}"
    head += "".join(f"{'β ' + f:>8}{f + ' δ USD':>16}" for f in factors)
    lines = ["declared portfolio exposure (reference prices, prior loadings):", head]
    for i, asset in enumerate(result.assets):
        row = f"{asset:<8}{result.asset_price[i]:>12,.2f}{result.asset_delta_coin[i]:>14,.4f}"
        row += f"{result.asset_delta_usd[i]:>16,.0f}"
        for k in range(len(factors)):
            row += f"{result.loadings[i, k]:>8.2f}{result.asset_factor_delta_usd[i, k]:>16,.0f}"
        lines.append(row)
    lines.append("totals:")
    for k, factor in enumerate(factors):
        lines.append(
            f"  beta_delta[{factor}] = {result.beta_delta[k]:,.4f} {factor} "
            f"= {result.beta_delta_usd[k]:,.0f} USD; "
            f"portfolio beta {result.portfolio_beta[k]:.4f}; "
            f"gamma {result.gamma_usd_per_pct[k]:,.0f} USD per 1% "
            f"({result.gamma_per_usd[k]:.6g} {factor} per 1 USD)"
        )
    lines.append(
        f"  vega {result.vega_usd:,.0f} USD/vol pt; theta {result.theta_usd:,.0f} USD/day; "
        f"NAV {result.nav_usd:,.0f} USD"
    )
    if defaulted:
        lines.append(
            f"  note: no beta prior for {', '.join(defaulted)}: assumed 1.0 to {factors[0]} "
            "(set beta.priors)"
        )
    if np.any(~np.isfinite(result.beta_delta)):
        lines.append("  warning: non-finite beta-delta (check reference prices)")
    return "\n".join(lines)
