"""Option chains and books for the option-hedge tests, priced by the core's own Black-76.

A chain here is what a venue would list: Deribit-style inverse BTC options (coin-quoted,
0.1 BTC lots) over several expiries and strikes, with a quoted spread around the model's
mark and a taker fee of 0.03% of the underlying capped at 12.5% of the premium.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hedger.core.exposure import Book, Exposure, Position, Quotes, build_book, exposure
from hedger.core.factors import factor_indices
from hedger.core.instruments import Instrument, Kind
from hedger.core.option_candidates import FactorFrame, OptionChain
from hedger.core.pricing import MS_PER_DAY, black76, year_fraction

NOW = 1_795_000_000_000
BTC_PRICE = 50_000.0
IV = 0.6


def option_symbol(asset: str, days: float, strike: float, call: bool) -> str:
    return f"{asset}-{int(days)}D-{int(strike)}-{'C' if call else 'P'}"


def chain(
    asset: str = "BTC",
    forward: float = BTC_PRICE,
    days: Sequence[float] = (7.0, 14.0, 30.0, 60.0),
    strikes: Sequence[float] = (40_000, 45_000, 50_000, 55_000, 60_000),
    iv: float = IV,
    relative_spread: float = 0.04,
    inverse: bool = True,
    lot: float = 0.1,
    held: dict[str, float] | None = None,
    open_interest: float = 500.0,
) -> OptionChain:
    rows = [(d, k, c) for d in days for k in strikes for c in (True, False)]
    expiry = np.array([NOW + d * MS_PER_DAY for d, _, _ in rows])
    strike = np.array([float(k) for _, k, _ in rows])
    call = np.array([c for _, _, c in rows])
    n = len(rows)
    f = np.full(n, forward)
    price_usd = black76(f, strike, year_fraction(NOW, expiry), np.full(n, iv), call).price
    mark = price_usd / f if inverse else price_usd
    half = 0.5 * relative_spread * mark
    symbols = tuple(option_symbol(asset, d, k, c) for d, k, c in rows)
    amounts = np.array([(held or {}).get(s, 0.0) for s in symbols])
    return OptionChain(
        symbols=symbols,
        underlying=(asset,) * n,
        strike=strike,
        expiry_ms=expiry,
        is_call=call,
        inverse=np.full(n, inverse),
        contract_size=np.ones(n),
        amount_step=np.full(n, lot),
        min_amount=np.full(n, lot),
        taker_fee=np.full(n, 0.0003),
        mark=mark,
        bid=mark - half,
        ask=mark + half,
        underlying_price=f,
        mark_iv=np.full(n, iv),
        open_interest=np.full(n, open_interest),
        hedge_amount=amounts,
    )


def option_instrument(c: OptionChain, row: int) -> Instrument:
    return Instrument(
        symbol=c.symbols[row],
        kind=Kind.OPTION,
        underlying=c.underlying[row],
        contract_size=float(c.contract_size[row]),
        inverse=bool(c.inverse[row]),
        strike=float(c.strike[row]),
        expiry_ms=int(c.expiry_ms[row]),
        is_call=bool(c.is_call[row]),
    )


def spot(asset: str) -> Instrument:
    return Instrument(asset, Kind.SPOT, asset)


def book_exposure(
    positions: Sequence[Position],
    prices: dict[str, float],
    factors: tuple[str, ...] = ("BTC",),
    loadings: dict[str, list[float]] | None = None,
    iv: float = IV,
    forward: dict[str, float] | None = None,
) -> tuple[Book, Quotes, Exposure]:
    """The book's exposure with every option priced at ``iv`` on ``forward`` (the asset's
    price by default); ``loadings`` per non-factor asset (factors load on themselves)."""
    book = build_book(positions, factors)
    asset_price = np.array([prices[a] for a in book.assets])
    row_price = asset_price[book.asset_of]
    fwd = forward or {}
    underlying = np.array([fwd.get(book.assets[a], prices[book.assets[a]]) for a in book.asset_of])
    ivs = np.where(np.isin(np.arange(book.n_rows), book.option_rows), iv, np.nan)
    quotes = Quotes(row_price, underlying, ivs, asset_price)
    b = np.zeros((len(book.assets), len(factors)))
    for i, asset in enumerate(book.assets):
        if asset in factors:
            b[i, factors.index(asset)] = 1.0
        else:
            b[i] = (loadings or {})[asset]
    result = exposure(book, quotes, b, factor_indices(book.assets, factors), NOW)
    return book, quotes, result


def frame_of(result: Exposure) -> FactorFrame:
    return FactorFrame(result.assets, result.loadings, result.factors, result.factor_price)
