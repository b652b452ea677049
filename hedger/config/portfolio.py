"""From the config's declared holdings and reference market to the core's inputs."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from hedger.config import Config, Holding, HoldingKind
from hedger.core.exposure import Book, Exposure, Position, Quotes, build_book, exposure
from hedger.core.factors import CASH_ASSETS, factor_indices, prior_loadings
from hedger.core.instruments import Instrument, Kind
from hedger.core.pricing import deribit_expiry_ms

_KIND = {
    HoldingKind.SPOT: Kind.SPOT,
    HoldingKind.PERP: Kind.PERP,
    HoldingKind.FUTURE: Kind.FUTURE,
    HoldingKind.OPTION: Kind.OPTION,
}


def expiry_ms(date: str) -> int:
    year, month, day = (int(part) for part in date.split("-"))
    return deribit_expiry_ms(year, month, day)


def holding_instrument(holding: Holding) -> Instrument:
    kind = _KIND[holding.kind]
    expiry = expiry_ms(holding.expiry) if holding.expiry else None
    symbol = holding.symbol or _default_symbol(holding)
    return Instrument(
        symbol=symbol,
        kind=kind,
        underlying=holding.asset,
        contract_size=holding.contract_size,
        inverse=holding.inverse,
        strike=holding.strike,
        expiry_ms=expiry,
        is_call=None if holding.option_type is None else holding.option_type == "call",
        venue="declared",
    )


def _default_symbol(holding: Holding) -> str:
    if holding.kind is HoldingKind.SPOT:
        return holding.asset
    if holding.kind is HoldingKind.PERP:
        return f"{holding.asset}-PERPETUAL"
    parts = [holding.asset, holding.expiry or ""]
    if holding.kind is HoldingKind.OPTION:
        parts += [f"{holding.strike:g}", "C" if holding.option_type == "call" else "P"]
    return "-".join(parts)


def declared_positions(cfg: Config) -> list[Position]:
    return [Position(holding_instrument(h), h.qty, h.entry_price) for h in cfg.portfolio.holdings]


class MissingReferenceError(ValueError):
    pass


def reference_quotes(cfg: Config, book: Book) -> Quotes:
    """Quotes from ``portfolio.reference``: every non-cash asset needs a price, options a vol."""
    ref = cfg.portfolio.reference
    missing = [a for a in book.assets if a not in CASH_ASSETS and a not in ref.prices]
    if missing:
        raise MissingReferenceError(
            f"portfolio.reference.prices has no price for {', '.join(missing)}"
        )
    asset_price = np.array([ref.prices.get(a, 1.0) for a in book.assets])
    row_price = asset_price[book.asset_of]
    vols = np.full(book.n_rows, np.nan)
    for row in book.option_rows:
        asset = book.assets[book.asset_of[row]]
        if asset not in ref.implied_vols:
            raise MissingReferenceError(f"portfolio.reference.implied_vols has no vol for {asset}")
        vols[row] = ref.implied_vols[asset]
    return Quotes(
        mark=row_price, underlying_price=row_price, implied_vol=vols, asset_price=asset_price
    )


def reference_now_ms(cfg: Config, wall_clock_ms: int) -> int:
    when = cfg.portfolio.reference.now
    if when is None:
        return wall_clock_ms
    parsed = datetime.fromisoformat(when)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def declared_exposure(cfg: Config, now_ms: int) -> tuple[Exposure, list[str]]:
    """Exposure of the declared holdings on reference prices and prior loadings.

    Returns the exposure and the assets whose loadings fell back to the default prior.
    """
    factors = cfg.factor_assets
    book = build_book(declared_positions(cfg), factors)
    quotes = reference_quotes(cfg, book)
    loadings, defaulted = prior_loadings(book.assets, factors, cfg.beta.priors)
    result = exposure(book, quotes, loadings, factor_indices(book.assets, factors), now_ms)
    return result, [a for a, flag in zip(book.assets, defaulted, strict=True) if flag]
