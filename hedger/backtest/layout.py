"""From a config's declared holdings and factors to a ``BookLayout`` any market can price."""

from __future__ import annotations

from collections.abc import Callable

from hedger.backtest.tape import BookLayout, HedgeVenue
from hedger.config import Config
from hedger.config.portfolio import declared_positions
from hedger.core.exposure import Position, build_book
from hedger.core.instruments import Instrument, Kind
from hedger.core.policy import HedgeMarket


class LayoutError(ValueError):
    """The config asks for something the market cannot price or trade; says what."""


HedgeLookup = Callable[[str, str], tuple[HedgeMarket, float]]
"""(factor asset, hedge symbol) -> the hedge market's metadata and its taker fee."""


def hedge_instrument(factor: str, market: HedgeMarket) -> Instrument:
    # Amounts are what the policy sizes in: USD face (inverse) or coin (linear), so one
    # contract is one amount unit.
    return Instrument(
        symbol=market.symbol,
        kind=Kind.PERP,
        underlying=factor,
        contract_size=market.amount_size,
        inverse=market.inverse,
        venue="backtest",
    )


def book_layout(cfg: Config, lookup: HedgeLookup) -> BookLayout:
    holdings = declared_positions(cfg)
    hedges = []
    for factor in cfg.factors:
        market, fee = lookup(factor.asset, factor.hedge.symbol)
        hedges.append(HedgeVenue(factor.asset, market, fee))
    hedge_positions = [Position(hedge_instrument(h.factor, h.market), 0.0) for h in hedges]
    positions = (*holdings, *hedge_positions)
    assets = build_book(list(positions), cfg.factor_assets).assets
    first_hedge = len(holdings)
    return BookLayout(
        positions=positions,
        assets=assets,
        factors=cfg.factor_assets,
        hedge_rows=tuple(range(first_hedge, first_hedge + len(hedges))),
        hedges=tuple(hedges),
    )
