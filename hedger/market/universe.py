"""Which instruments the daemon streams, and which market row prices each position.

Pure: it reads ccxt's market metadata (``exchange.markets``, one dict per venue) and the
book, and returns the subscriptions per venue plus the ``QuoteMap`` the engine applies every
cycle. Rebuilt whenever the positions change (a fill, a reconciliation, a reload).

Market rows are numbered across venues in the order of ``venues``: venue v's instruments
occupy ``offsets[v] .. offsets[v] + len(subscriptions[v])``, which is how the engine lays
out the concatenated columns of every venue's ``MarketState``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hedger.config import Factor
from hedger.core.exposure import Book, Position
from hedger.core.factors import CASH_ASSETS
from hedger.core.instruments import Kind
from hedger.core.policy import HedgeMarket
from hedger.market.quotes import NO_ROW, QuoteMap

Markets = Mapping[str, Mapping[str, Any]]
"""ccxt ``exchange.markets``: unified symbol -> market."""


class UniverseError(ValueError):
    """The book holds something no venue can price: say what, and what to configure."""


@dataclass(slots=True, frozen=True)
class Universe:
    venues: tuple[str, ...]
    subscriptions: dict[str, tuple[str, ...]]
    """per venue: instrument ids (the venue's own names) to stream, in row order."""
    offsets: dict[str, int]
    symbols: tuple[str, ...]
    """every market row's name, ``venue:id``, in row order."""
    quote_map: QuoteMap
    price_source: dict[str, str]
    """per non-cash asset: the ``venue:id`` whose index prices it."""
    unstreamed_options: tuple[str, ...]
    """options priced from the asset price and a reference vol (not streamed)."""

    def row(self, venue: str, instrument_id: str) -> int:
        return self.offsets[venue] + self.subscriptions[venue].index(instrument_id)


def _by_id(markets: Markets) -> dict[str, Mapping[str, Any]]:
    return {str(m["id"]): m for m in markets.values()}


def price_instrument(asset: str, markets: Markets) -> str | None:
    """The venue id whose index best prices ``asset``: its perpetual, else a spot pair."""
    swaps = sorted(
        str(m["id"])
        for m in markets.values()
        if m.get("swap") and m.get("base") == asset and m.get("active", True) is not False
    )
    if swaps:
        return swaps[0]
    for quote in ("USDC", "USD", "USDT"):
        for m in markets.values():
            if m.get("spot") and m.get("base") == asset and m.get("quote") == quote:
                return str(m["id"])
    return None


def _option_id(position: Position, markets: Markets) -> str | None:
    """The listed option with the same terms as a declared one, if a venue lists it."""
    inst = position.instrument
    for m in markets.values():
        if (
            m.get("option")
            and m.get("base") == inst.underlying
            and float(m.get("strike") or 0.0) == inst.strike
            and int(m.get("expiry") or 0) == inst.expiry_ms
            and (m.get("optionType") == "call") == bool(inst.is_call)
        ):
            return str(m["id"])
    return None


def build_universe(
    book: Book,
    positions: Sequence[Position],
    markets: Mapping[str, Markets],
    factors: Sequence[Factor],
    reference_vols: Mapping[str, float],
    existing: Mapping[str, Sequence[str]] | None = None,
    streamed: Mapping[str, Sequence[str]] | None = None,
) -> Universe:
    """Subscriptions and quote mapping for ``book`` (built from ``positions``, same order).

    Venue positions carry their ccxt symbol and venue name; anything else (declared
    holdings, balances) is priced from its asset. Raises ``UniverseError`` when an asset
    has no price on any venue, or an unstreamed option has no reference vol.
    ``existing`` subscriptions keep their rows (new instruments are appended), so a running
    feed's state only ever grows. ``streamed``: more instruments per venue to stream though
    the book does not hold them (the option chains a hedge may trade).
    """
    venues = tuple(markets)
    subs: dict[str, list[str]] = {v: list((existing or {}).get(v, ())) for v in venues}

    def subscribe(venue: str, instrument_id: str) -> tuple[str, str]:
        if instrument_id not in subs[venue]:
            subs[venue].append(instrument_id)
        return venue, instrument_id

    # Each factor's hedge instrument first: its mark and index are always needed.
    for factor in factors:
        venue, symbol = factor.hedge.venue, factor.hedge.symbol
        if symbol not in _by_id(markets[venue]):
            raise UniverseError(
                f"factor {factor.asset}: hedge instrument {symbol!r} is not listed on {venue}"
            )
        subscribe(venue, symbol)
    for venue, instrument_ids in (streamed or {}).items():
        for instrument_id in instrument_ids:
            subscribe(venue, instrument_id)

    preferred = [f.hedge.venue for f in factors]
    order = list(dict.fromkeys([*preferred, *venues]))
    asset_src: dict[str, tuple[str, str]] = {}
    for asset in book.assets:
        if asset in CASH_ASSETS:
            continue
        hedge = next((f for f in factors if f.asset == asset), None)
        if hedge is not None:
            asset_src[asset] = subscribe(hedge.hedge.venue, hedge.hedge.symbol)
            continue
        for venue in order:
            found = price_instrument(asset, markets[venue])
            if found is not None:
                asset_src[asset] = subscribe(venue, found)
                break
        else:
            raise UniverseError(
                f"asset {asset}: no venue lists a perpetual or spot pair to price it "
                f"(venues: {', '.join(venues)})"
            )

    mark_src: list[tuple[str, str] | None] = []
    option_src: list[tuple[str, str] | None] = []
    unstreamed: list[str] = []
    fallback_iv: list[float] = []
    for position in positions:
        inst = position.instrument
        venue_markets = markets.get(inst.venue)
        own: tuple[str, str] | None = None
        if venue_markets is not None and inst.symbol in venue_markets:
            market_id = str(venue_markets[inst.symbol]["id"])
            own = subscribe(inst.venue, market_id)
        elif inst.kind is Kind.OPTION:
            for venue in order:
                listed = _option_id(position, markets[venue])
                if listed is not None:
                    own = subscribe(venue, listed)
                    break
        mark_src.append(own if inst.kind is not Kind.SPOT else None)
        if inst.kind is Kind.OPTION:
            option_src.append(own)
            iv = reference_vols.get(inst.underlying, float("nan"))
            if own is None:
                if not iv > 0:
                    raise UniverseError(
                        f"option {inst.symbol}: no venue lists it and "
                        f"portfolio.reference.implied_vols has no vol for {inst.underlying}"
                    )
                unstreamed.append(inst.symbol)
            fallback_iv.append(iv)

    offsets: dict[str, int] = {}
    names: list[str] = []
    for venue in venues:
        offsets[venue] = len(names)
        names += [f"{venue}:{i}" for i in subs[venue]]

    def row(src: tuple[str, str] | None) -> int:
        if src is None:
            return NO_ROW
        venue, instrument_id = src
        return offsets[venue] + subs[venue].index(instrument_id)

    asset_row = np.array([row(asset_src.get(a)) for a in book.assets], dtype=np.intp)
    mark_row = np.array([row(s) for s in mark_src], dtype=np.intp)
    option_row = np.array([row(option_src[i]) for i in range(len(option_src))], dtype=np.intp)
    inputs = np.unique(np.concatenate([asset_row, mark_row, option_row, np.array([], np.intp)]))
    quote_map = QuoteMap(
        asset_row=asset_row,
        mark_row=mark_row,
        option_row=option_row,
        option_fallback_iv=np.array(fallback_iv, dtype=np.float64),
        inputs=inputs[inputs >= 0].astype(np.intp),
    )
    return Universe(
        venues=venues,
        subscriptions={v: tuple(subs[v]) for v in venues},
        offsets=offsets,
        symbols=tuple(names),
        quote_map=quote_map,
        price_source={a: f"{v}:{i}" for a, (v, i) in asset_src.items()},
        unstreamed_options=tuple(unstreamed),
    )


def hedge_market(
    market: Mapping[str, Any], amount_is_units: bool, decimal_places: bool = False
) -> HedgeMarket:
    """Lot step and minimum in ccxt's amount units, from its market metadata.

    ``amount_is_units``: the venue's amount is already USD face (inverse) or coin (Deribit),
    so one amount unit is worth 1; elsewhere it counts contracts of ``contractSize``.
    ``decimal_places``: the exchange's ccxt ``precisionMode`` counts digits, not a step.
    """
    precision = market.get("precision") or {}
    limits = (market.get("limits") or {}).get("amount") or {}
    raw = precision.get("amount")
    if raw is None:
        step = 1.0
    elif decimal_places:
        step = 10.0 ** -float(raw)
    else:
        step = float(raw)
    return HedgeMarket(
        symbol=str(market["id"]),
        inverse=bool(market.get("inverse")),
        amount_step=step,
        min_amount=float(limits.get("min") or step),
        amount_size=1.0 if amount_is_units else float(market.get("contractSize") or 1.0),
    )
