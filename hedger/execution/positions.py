"""Venue positions and balances (as ccxt reports them) as the core's positions.

ccxt's unified ``contracts`` are normally a count of contracts of ``contractSize`` each,
but for Deribit ccxt passes the venue's raw amount through (USD for inverse futures,
base coin for options and USDC-linear products: see shared/reference/deribit-ccxt.md), so
there one unit of amount *is* the contract and its size is 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hedger.core.exposure import Position
from hedger.core.instruments import Instrument, Kind

# Exchanges whose ccxt amounts are already in face/coin units rather than contract counts.
AMOUNT_IS_UNITS = frozenset({"deribit"})


class UnsupportedMarketError(ValueError):
    pass


def instrument_from_market(market: Mapping[str, Any], exchange_id: str, venue: str) -> Instrument:
    if market.get("option"):
        kind = Kind.OPTION
    elif market.get("swap"):
        kind = Kind.PERP
    elif market.get("future"):
        kind = Kind.FUTURE
    elif market.get("spot"):
        kind = Kind.SPOT
    else:
        raise UnsupportedMarketError(f"{market.get('symbol')}: unsupported market type")
    size = 1.0 if exchange_id in AMOUNT_IS_UNITS else float(market.get("contractSize") or 1.0)
    return Instrument(
        symbol=str(market["symbol"]),
        kind=kind,
        underlying=str(market["base"]),
        quote=str(market.get("quote") or "USD"),
        contract_size=size,
        inverse=bool(market.get("inverse")) and kind is not Kind.SPOT,
        strike=float(market["strike"]) if kind is Kind.OPTION else None,
        expiry_ms=int(market["expiry"]) if kind in (Kind.OPTION, Kind.FUTURE) else None,
        is_call=(market.get("optionType") == "call") if kind is Kind.OPTION else None,
        venue=venue,
    )


def venue_positions(
    positions: Iterable[Mapping[str, Any]],
    markets: Mapping[str, Mapping[str, Any]],
    exchange_id: str,
    venue: str,
) -> list[Position]:
    """ccxt ``fetch_positions`` rows as signed core positions (flat rows dropped)."""
    out = []
    for row in positions:
        contracts = float(row.get("contracts") or 0.0)
        if contracts == 0.0:
            continue
        sign = 1.0 if row.get("side") == "long" else -1.0
        instrument = instrument_from_market(markets[row["symbol"]], exchange_id, venue)
        entry = row.get("entryPrice")
        out.append(
            Position(instrument, sign * abs(contracts), None if entry is None else float(entry))
        )
    return out


def balance_positions(balance: Mapping[str, Any], venue: str) -> list[Position]:
    """Each currency's equity (ccxt ``fetch_balance`` totals) as a spot holding, less the
    options' value.

    ccxt's ``total`` is Deribit's ``equity``, which includes the mark value of open options
    (and the unrealised P&L of futures). The options are positions of their own whose
    Greeks the exposure computes, so their value is taken out here or it would be counted
    twice; futures P&L stays in, because a coin-margined future's P&L *is* coin held.
    """
    totals = dict(balance.get("total") or {})
    info = balance.get("info") or {}
    summaries = info.get("summaries") if isinstance(info, Mapping) else None
    for summary in summaries or ():
        code = str(summary.get("currency", "")).upper()
        options_value = float(summary.get("options_value") or 0.0)
        if code in totals and options_value:
            totals[code] = float(totals[code]) - options_value
    return [
        Position(Instrument(f"{venue}:{code}", Kind.SPOT, str(code), venue=venue), float(amount))
        for code, amount in sorted(totals.items())
        if amount
    ]
