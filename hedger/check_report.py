"""Plain-text views of a config and an exposure, for operators at a terminal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from hedger.config import Band, Config, Holding, HoldingKind, Venue
from hedger.config.durations import format_span
from hedger.config.portfolio import (
    MissingReferenceError,
    declared_exposure,
    declared_positions,
    reference_now_ms,
    reference_quotes,
)
from hedger.core.exposure import Exposure, Position, build_book, exposure
from hedger.core.factors import factor_indices, prior_loadings
from hedger.core.instruments import Kind
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
        lines.append(
            f"  {name}: {venue.exchange} ({where}), {network_text(venue)}, api keys {keys}"
        )
    lines.append(f"factors (K = {len(cfg.factors)}):")
    for factor in cfg.factors:
        lines.append(
            f"  {factor.asset}: hedge {factor.hedge.symbol} on {factor.hedge.venue}, "
            f"target {factor.target.kind} {factor.target.value:g}, band {_band_text(factor.band)}"
        )
    beta = cfg.beta
    lines.append(
        f"beta: {beta.estimator.value} on {beta.bar:g}s bars, half-life "
        f"{format_span(beta.half_life)}, window {format_span(beta.window)}, "
        f"warm after {beta.min_observations} bars"
    )
    limits = cfg.limits
    lines.append(
        f"limits: order ≤ {limits.max_order_notional_usd:,.0f} USD, hedge position ≤ "
        f"{limits.max_hedge_position_usd:,.0f} USD, ≤ {limits.max_orders_per_minute} orders/min"
        + (", DRY RUN" if limits.dry_run else "")
    )
    lines += holdings_lines(cfg)
    return "\n".join(lines)


def network_text(venue: Venue) -> str:
    """Which money a venue's keys move: the first thing to check before going live."""
    if venue.paper is not None:
        return "paper (simulated money)"
    return "TESTNET (test money)" if venue.testnet else "MAINNET (real money)"


def _holding_text(h: Holding) -> str:
    if h.kind is HoldingKind.SPOT:
        return f"{h.asset} spot {h.qty:+,.8g} {h.asset}"
    # Inverse perps and futures count USD face per contract; options always count coins
    # (an inverse option is only settled in the coin).
    face = h.inverse and h.kind is not HoldingKind.OPTION
    size = f"{h.contract_size:g} USD face" if face else f"{h.contract_size:g} {h.asset}"
    what = f"{h.asset} {h.kind.value}"
    if h.kind is HoldingKind.OPTION:
        what += f" {h.option_type} {h.strike:g} {h.expiry}"
    elif h.expiry:
        what += f" {h.expiry}"
    settled = " (coin-settled)" if h.inverse else ""
    return f"{what}{settled}: {h.qty:+,.8g} contracts of {size}"


def holdings_lines(cfg: Config) -> list[str]:
    """The declared holdings one per line, and whether venue positions join them."""
    portfolio = cfg.portfolio
    venues = (
        "venue account positions and balances are added at run time"
        if portfolio.include_venue_positions
        else "venue account positions are left out (portfolio.include_venue_positions: false)"
    )
    lines = [f"declared holdings ({len(portfolio.holdings)}); {venues}:"]
    lines += [f"  {_holding_text(h)}" for h in portfolio.holdings]
    return lines


def render_exposure(cfg: Config, wall_clock_ms: int) -> str:
    if not cfg.portfolio.holdings:
        return "declared portfolio: empty (venue positions are loaded at run time)"
    try:
        result, defaulted = declared_exposure(cfg, reference_now_ms(cfg, wall_clock_ms))
    except MissingReferenceError as exc:
        return f"declared portfolio exposure: not computed ({exc})"
    return format_exposure(result, defaulted)


def _is_balance(position: Position) -> bool:
    # Balances come in as spot rows named "<venue>:<currency>" (execution/positions.py).
    inst = position.instrument
    return inst.kind is Kind.SPOT and inst.symbol == f"{inst.venue}:{inst.underlying}"


def _position_text(position: Position) -> str:
    inst = position.instrument
    units = position.qty * inst.contract_size
    if inst.inverse and inst.kind is not Kind.OPTION:
        amount = f"{units:+,.0f} USD face"
    else:
        amount = f"{units:+,.8g} {inst.underlying}"
    return f"{inst.symbol} {inst.kind.value}{' (inverse)' if inst.inverse else ''}: {amount}"


def render_accounts(cfg: Config, accounts: Mapping[str, Sequence[Position]]) -> str:
    """Each venue account as the preflight read it: positions, then coin balances."""
    lines = []
    for name, held in accounts.items():
        lines.append(f"venue {name} account, {network_text(cfg.venues[name])}:")
        positions = [p for p in held if not _is_balance(p)]
        balances = [p for p in held if _is_balance(p)]
        lines.append("  positions: none" if not positions else "  positions:")
        lines += [f"    {_position_text(p)}" for p in positions]
        equity = ", ".join(f"{p.instrument.underlying} {p.qty:,.8g}" for p in balances)
        lines.append(f"  balances (equity): {equity or 'none'}")
    if not cfg.portfolio.include_venue_positions:
        lines.append("  (portfolio.include_venue_positions is false: the daemon leaves these out)")
    return "\n".join(lines)


def render_combined_exposure(
    cfg: Config, accounts: Mapping[str, Sequence[Position]], wall_clock_ms: int
) -> str:
    """The book the daemon will hedge on its first cycle: the declared holdings and every
    venue account together, on reference prices and prior loadings (the live daemon uses
    venue prices and estimated betas)."""
    positions = declared_positions(cfg)
    if cfg.portfolio.include_venue_positions:
        positions += [p for held in accounts.values() for p in held]
    if not positions:
        return "declared holdings and venue accounts: empty"
    factors = cfg.factor_assets
    book = build_book(positions, factors)
    try:
        quotes = reference_quotes(cfg, book)
    except MissingReferenceError as exc:
        return f"exposure of declared holdings and venue accounts together: not computed ({exc})"
    loadings, defaulted = prior_loadings(book.assets, factors, cfg.beta.priors)
    result = exposure(
        book,
        quotes,
        loadings,
        factor_indices(book.assets, factors),
        reference_now_ms(cfg, wall_clock_ms),
    )
    defaulted_assets = [a for a, flag in zip(book.assets, defaulted, strict=True) if flag]
    title = "declared holdings and venue accounts together (reference prices, prior loadings):"
    return format_exposure(result, defaulted_assets, title)


def format_exposure(
    result: Exposure,
    defaulted: list[str] | None = None,
    title: str = "declared portfolio exposure (reference prices, prior loadings):",
) -> str:
    factors = result.factors
    head = f"{'asset':<8}{'price':>13}{'delta coin':>17}{'delta USD':>16}"
    head += "".join(f"{'β ' + f:>8}{f + ' δ USD':>16}" for f in factors)
    lines = [title, head]
    for i, asset in enumerate(result.assets):
        row = f"{asset:<8}{result.asset_price[i]:>13,.2f}{result.asset_delta_coin[i]:>17,.4f}"
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
            f"  note: no beta prior for {', '.join(defaulted)}: assumed "
            f"{1 / len(factors):.2g} to {' and '.join(factors)} (set beta.priors)"
        )
    if np.any(~np.isfinite(result.beta_delta)):
        lines.append("  warning: non-finite beta-delta (check reference prices)")
    return "\n".join(lines)
