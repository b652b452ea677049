"""A venue's ccxt markets as the portfolio's assets: what each instrument is, in what units.

Read only from ccxt's unified market fields, never from venue ids: ``base``/``quote``/
``settle`` say what an instrument is on, ``spot``/``swap``/``future``/``option`` what kind
it is, ``linear``/``inverse`` and ``contractSize`` what one contract is worth, and
``precision``/``limits`` the lot. The same code maps Binance's ``1000PEPEUSDT``, OKX's
``BTC-USD-SWAP`` (100 USD per contract), Bybit's ``BTCUSD`` (1 USD) and Hyperliquid's
``0`` (its BTC perp) to the asset they trade and the value of one order amount unit.

Two things ccxt's fields do not say outright, handled by rule rather than by venue:

- Scaled tickers. A base of ``1000PEPE`` (or ``SHIB1000``, or Hyperliquid's ``kPEPE``)
  is 1000 PEPE: the asset is ``PEPE`` and each unit counts 1000 of it.
- The amount unit. ccxt's unified ``amount`` counts contracts of ``contractSize`` (base
  coins on linear contracts, quote currency on inverse ones), except on the clients in
  ``AMOUNT_IN_UNITS``, which pass the venue's native amount through: Deribit's is USD on
  its inverse contracts and coin elsewhere (see shared/reference/deribit-ccxt.md).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from hedger.core.policy import HedgeMarket

Market = Mapping[str, Any]
Markets = Mapping[str, Market]
"""ccxt ``exchange.markets``: unified symbol -> market."""

Kind = Literal["spot", "swap", "future", "option"]

AMOUNT_IN_UNITS = frozenset({"deribit"})
"""ccxt clients whose ``amount`` is the venue's native amount (USD face on inverse
contracts, coin on the rest), not a count of ``contractSize`` contracts."""

TICK_SIZE = 4
DECIMAL_PLACES = 2
"""ccxt ``precisionMode`` values (``ccxt.base.decimal_to_precision``): a step, or digits."""

_SCALE = r"(1000|10000|100000|1000000|10000000|100000000|1000000000|1M)"
_SCALED_PREFIX = re.compile(_SCALE + r"([A-Z][A-Z0-9]*)")
_SCALED_SUFFIX = re.compile(r"([A-Z][A-Z]+)" + _SCALE)
_KILO_PREFIX = re.compile(r"k([A-Z][A-Z0-9]*)")
"""Scaled tickers: ``1000PEPE``, ``1MBABYDOGE``, ``SHIB1000``; Hyperliquid's ``kPEPE`` (a
lower-case k, in ccxt's ``baseName``). Scales below 1000 are left alone: real tickers end
in 10 or 100 more often than venues scale by them."""


def _scale(text: str) -> float:
    return 1e6 if text == "1M" else float(text)


class SymbolError(ValueError):
    """A name that maps to no market, or to several: the message says what to write."""


@dataclass(slots=True, frozen=True)
class VenueInstrument:
    """One market of one venue, in the portfolio's terms."""

    venue: str
    symbol: str
    """ccxt's unified symbol (``BTC/USDT:USDT``): unique on its venue, unlike some ids."""
    venue_id: str
    kind: Kind
    asset: str
    """The portfolio's asset: the base with any scale taken out (``PEPE``)."""
    asset_per_base: float
    """Units of ``asset`` in one unit of the base (1000 for ``1000PEPE``)."""
    quote: str
    settle: str | None
    inverse: bool
    """One amount unit is a fixed sum of the quote currency (USD face), so its coin delta
    falls as the price rises: ccxt's ``inverse`` perpetuals and futures. Options are never
    inverse here, even coin-settled ones: their amounts count the base coin."""
    amount_size: float
    """What one order amount unit is worth: USD (quote) on inverse contracts, units of
    ``asset`` on everything else."""
    amount_step: float
    min_amount: float
    min_cost: float | None = None
    """The venue's smallest order value in the quote currency (ccxt ``limits.cost.min``:
    Binance's MIN_NOTIONAL, Hyperliquid's 10 USDC), which ``min_amount`` does not say."""
    active: bool = True
    taker_fee: float | None = None
    expiry_ms: int | None = None
    strike: float | None = None
    option_type: str | None = None

    def amount_for(self, asset_units: float, asset_price: float) -> float:
        """Signed order amount (unrounded) that changes the delta by ``asset_units``."""
        return self.hedge_market().amount_for(asset_units, asset_price)

    def hedge_market(self) -> HedgeMarket:
        return HedgeMarket(
            symbol=self.symbol,
            inverse=self.inverse,
            amount_step=self.amount_step,
            min_amount=self.min_amount,
            amount_size=self.amount_size,
        )


def asset_of(market: Market) -> tuple[str, float]:
    """The portfolio asset a market's base is, and how many of it one base unit holds."""
    base = str(market["base"])
    for pattern, scale_at, name_at in ((_SCALED_PREFIX, 1, 2), (_SCALED_SUFFIX, 2, 1)):
        if match := pattern.fullmatch(base):
            return match.group(name_at), _scale(match.group(scale_at))
    base_name = str(market.get("baseName") or market.get("baseId") or "")
    if match := _KILO_PREFIX.fullmatch(base_name):
        return match.group(1), 1000.0
    return base, 1.0


def kind_of(market: Market) -> Kind:
    for kind in ("option", "swap", "future", "spot"):
        if market.get(kind):
            return kind
    raise SymbolError(f"{market.get('symbol')}: neither spot, swap, future nor option")


def lot(market: Market, precision_mode: int = TICK_SIZE) -> tuple[float, float]:
    """(amount step, minimum amount) in ccxt's amount units."""
    raw = (market.get("precision") or {}).get("amount")
    if raw is None:
        step = 1.0
    elif precision_mode == DECIMAL_PLACES:
        step = 10.0 ** -float(raw)
    else:
        step = float(raw)
    minimum = ((market.get("limits") or {}).get("amount") or {}).get("min")
    return step, float(minimum) if minimum else step


def instrument(
    venue: str, exchange_id: str, market: Market, precision_mode: int = TICK_SIZE
) -> VenueInstrument:
    """The market as the portfolio sees it (``exchange_id``: the ccxt client's id)."""
    kind = kind_of(market)
    asset, per_base = asset_of(market)
    inverse = bool(market.get("inverse")) and kind in ("swap", "future")
    if kind == "spot" or exchange_id in AMOUNT_IN_UNITS:
        # One amount unit is one base coin, or (inverse) one unit of the quote currency.
        amount_size = 1.0 if inverse else per_base
    else:
        contract = float(market.get("contractSize") or 1.0)
        amount_size = contract if inverse else contract * per_base
    if not (math.isfinite(amount_size) and amount_size > 0):
        raise SymbolError(f"{market.get('symbol')}: contract size {amount_size} is unusable")
    step, minimum = lot(market, precision_mode)
    min_cost = ((market.get("limits") or {}).get("cost") or {}).get("min")
    strike = market.get("strike")
    expiry = market.get("expiry")
    taker = market.get("taker")
    return VenueInstrument(
        venue=venue,
        symbol=str(market["symbol"]),
        venue_id=str(market["id"]),
        kind=kind,
        asset=asset,
        asset_per_base=per_base,
        quote=str(market.get("quote") or ""),
        settle=None if market.get("settle") is None else str(market["settle"]),
        inverse=inverse,
        amount_size=amount_size,
        amount_step=step,
        min_amount=minimum,
        min_cost=None if min_cost is None else float(min_cost),
        active=market.get("active") is not False,
        taker_fee=None if taker is None else float(taker),
        expiry_ms=None if expiry is None else int(expiry),
        strike=None if strike is None else float(strike),
        option_type=None if market.get("optionType") is None else str(market["optionType"]),
    )


def resolve(markets: Markets, name: str, venue: str = "") -> Market:
    """The market a configured name means: a unified symbol, else a venue id. An id that
    several markets share (Bybit's ``BTCUSDT`` is a spot pair and a perpetual) is refused
    with the symbols to write instead."""
    if name in markets:
        return markets[name]
    found = [m for m in markets.values() if str(m.get("id")) == name]
    where = f" on {venue}" if venue else ""
    if len(found) == 1:
        return found[0]
    if not found:
        raise SymbolError(f"{name!r} is neither a symbol nor an instrument id{where}")
    symbols = ", ".join(sorted(str(m["symbol"]) for m in found))
    raise SymbolError(f"{name!r} names several markets{where}: write one of {symbols}")


def instruments(
    venue: str,
    exchange_id: str,
    markets: Markets,
    precision_mode: int = TICK_SIZE,
    kinds: Iterable[Kind] = ("spot", "swap", "future", "option"),
) -> list[VenueInstrument]:
    """Every market of the wanted kinds, mapped (ones ccxt cannot classify are skipped)."""
    wanted = set(kinds)
    out = []
    for market in markets.values():
        try:
            mapped = instrument(venue, exchange_id, market, precision_mode)
        except SymbolError:
            continue
        if mapped.kind in wanted:
            out.append(mapped)
    return out


def hedge_candidates(
    asset: str,
    venue: str,
    exchange_id: str,
    markets: Markets,
    precision_mode: int = TICK_SIZE,
) -> list[VenueInstrument]:
    """Active perpetuals on ``asset``, cheapest taker fee first (then linear before
    inverse, then by symbol, so the order is stable): a factor's hedge preference list on
    one venue. Dated futures and spot are not offered: they expire or cannot go short."""
    found = [
        i
        for i in instruments(venue, exchange_id, markets, precision_mode, kinds=("swap",))
        if i.asset == asset and i.active
    ]
    return sorted(
        found,
        key=lambda i: (i.taker_fee if i.taker_fee is not None else math.inf, i.inverse, i.symbol),
    )
