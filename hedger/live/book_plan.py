"""Everything the positions and the config imply, built before anything is swapped.

A plan is built whole (book, universe of instruments to stream, factor rows, the hedge
instruments' rows, new estimators when the assets changed) and only then committed by the
engine: a book nobody can price raises here, with the engine untouched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from hedger.config import Config
from hedger.config.beta_setup import make_beta_book
from hedger.config.portfolio import declared_positions
from hedger.core.beta import BetaBook
from hedger.core.exposure import Book, Position, build_book
from hedger.core.factors import factor_indices
from hedger.core.params import HedgeMode
from hedger.live.venue_link import VenueLink
from hedger.market.option_chain import chain_ids
from hedger.market.universe import Universe, build_universe


@dataclass(slots=True, frozen=True)
class BookPlan:
    positions: list[Position]
    book: Book
    universe: Universe
    factor_index: NDArray[np.intp]
    delta_one: NDArray[np.bool_]
    """Per market row: not an option (the mark-vs-index and jump checks apply)."""
    hedge_rows: dict[str, int]
    """Row in ``positions`` of each factor's hedge instrument (by venue instrument id)."""
    beta: tuple[BetaBook, list[str]] | None
    """New estimators (and the assets on priors only) when the book's assets changed."""
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Per venue: the options streamed for the factors hedged with options there."""


def all_positions(cfg: Config, venue_positions: Sequence[Position]) -> list[Position]:
    """The declared holdings of ``cfg`` plus what the venues hold (when the config counts it)."""
    positions = declared_positions(cfg)
    if cfg.portfolio.include_venue_positions:
        positions += venue_positions
    return positions


def plan_book(
    cfg: Config,
    positions: list[Position],
    links: Mapping[str, VenueLink],
    *,
    previous: Universe | None,
    beta_assets: tuple[str, ...],
    now_ms: int,
) -> BookPlan:
    """``beta_assets`` are the assets of the running estimators (empty: build new ones)."""
    factors = cfg.factor_assets
    book = build_book(positions, (*factors, *beta_assets))
    chains = option_chains(cfg, links, now_ms)
    universe = build_universe(
        book,
        positions,
        {name: link.markets for name, link in links.items()},
        cfg.factors,
        cfg.portfolio.reference.implied_vols,
        existing=previous.subscriptions if previous else None,
        streamed=chains,
    )
    beta = None
    if book.assets != beta_assets:
        beta = make_beta_book(cfg.beta, book.assets, factors, now_ms)
    hedge_rows = {}
    for f in cfg.factors:
        symbol = links[f.hedge.venue].market_by_id(f.hedge.symbol)["symbol"]
        for row, position in enumerate(positions):
            inst = position.instrument
            if inst.venue == f.hedge.venue and inst.symbol == symbol:
                hedge_rows[f.hedge.symbol] = row
    return BookPlan(
        positions=positions,
        book=book,
        universe=universe,
        factor_index=factor_indices(book.assets, factors),
        delta_one=delta_one_rows(universe, links),
        hedge_rows=hedge_rows,
        beta=beta,
        chains=chains,
    )


def option_chains(
    cfg: Config, links: Mapping[str, VenueLink], now_ms: int
) -> dict[str, tuple[str, ...]]:
    """Per venue, the options a factor hedged with options may trade there: its candidate
    underlyings (the factor's own by default) expiring inside the candidate window."""
    chains: dict[str, list[str]] = {}
    for f in cfg.factors:
        if f.hedge.mode is HedgeMode.PERP:
            continue
        wanted = f.options.candidates
        ids = chain_ids(
            links[f.hedge.venue].markets,
            wanted.underlyings or [f.asset],
            now_ms,
            wanted.min_days_to_expiry,
            wanted.max_days_to_expiry,
        )
        venue = chains.setdefault(f.hedge.venue, [])
        venue += [i for i in ids if i not in venue]
    return {venue: tuple(ids) for venue, ids in chains.items()}


def delta_one_rows(universe: Universe, links: Mapping[str, VenueLink]) -> NDArray[np.bool_]:
    flags = [
        not links[venue].market_by_id(instrument_id).get("option")
        for venue in universe.venues
        for instrument_id in universe.subscriptions[venue]
    ]
    return np.array(flags, dtype=np.bool_)
