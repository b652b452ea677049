"""The listed options a hedge may trade, as the core's ``OptionChain``, from a venue's ccxt
market metadata and its streamed quotes.

Which options are streamed is decided when the book is planned (every option of the
factor's underlyings expiring inside the candidate window); each cycle reads their latest
quotes from the venue's ``MarketState`` columns. Prices stay in the venue's unit (coin for
Deribit's inverse options), IVs are fractions, ages are on the receive clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hedger.core.option_candidates import OptionChain
from hedger.core.units import DAY_MS
from hedger.market.state import MarketState

Market = Mapping[str, Any]


def chain_ids(
    markets: Mapping[str, Market],
    underlyings: Sequence[str],
    now_ms: int,
    min_days: float,
    max_days: float,
) -> list[str]:
    """Venue ids of the options on ``underlyings`` expiring inside the window, by expiry
    then strike (a stable order: a growing chain only appends)."""
    wanted = set(underlyings)
    found = []
    for market in markets.values():
        if not market.get("option") or market.get("active") is False:
            continue
        expiry = market.get("expiry")
        if market.get("base") not in wanted or expiry is None:
            continue
        days = (int(expiry) - now_ms) / DAY_MS
        if min_days <= days <= max_days:
            found.append((int(expiry), float(market.get("strike") or 0.0), str(market["id"])))
    return [instrument_id for *_, instrument_id in sorted(found)]


def build_chain(
    instrument_ids: Sequence[str],
    by_id: Mapping[str, Market],
    state: MarketState,
    now_s: float,
    hedge_amount: Mapping[str, float],
) -> OptionChain:
    """The chain of ``instrument_ids`` (each a row of ``state``); ``hedge_amount`` per id is
    what the hedge itself holds, in the venue's amount unit."""
    metas = [by_id[i] for i in instrument_ids]
    rows = np.array([state.rows[i] for i in instrument_ids], dtype=np.intp)

    def column(key: str, default: float = np.nan) -> np.ndarray[Any, np.dtype[np.float64]]:
        return np.array([float(m.get(key) or default) for m in metas], dtype=np.float64)

    def precision(key: str) -> np.ndarray[Any, np.dtype[np.float64]]:
        return np.array(
            [float((m.get("precision") or {}).get(key) or np.nan) for m in metas],
            dtype=np.float64,
        )

    amount_step = precision("amount")
    minimum = np.array(
        [float(((m.get("limits") or {}).get("amount") or {}).get("min") or 0.0) for m in metas]
    )
    age = now_s - state.received_s[rows]
    age[np.isnan(age)] = np.inf
    return OptionChain(
        symbols=tuple(instrument_ids),
        underlying=tuple(str(m["base"]) for m in metas),
        strike=column("strike"),
        expiry_ms=column("expiry"),
        is_call=np.array([m.get("optionType") == "call" for m in metas], dtype=np.bool_),
        inverse=np.array([bool(m.get("inverse")) for m in metas], dtype=np.bool_),
        contract_size=column("contractSize", 1.0),
        amount_step=amount_step,
        min_amount=np.where(minimum > 0, minimum, amount_step),
        taker_fee=column("taker", 0.0),
        mark=state.mark[rows].copy(),
        bid=state.bid[rows].copy(),
        ask=state.ask[rows].copy(),
        underlying_price=state.underlying_price[rows].copy(),
        mark_iv=state.mark_iv[rows].copy(),
        hedge_amount=np.array([hedge_amount.get(i, 0.0) for i in instrument_ids]),
        age_s=age,
        price_tick=precision("price"),
    )
