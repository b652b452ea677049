"""Wire views of the market, built lazily per instrument: Deribit ticker, order book, book
summary and index rows. Only these functions make Python dicts; the step never does."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from hedger.sim.market import Market

I64 = NDArray[np.int64]


def _num(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _top(m: Market, i: int) -> dict[str, object]:
    q, lot = m.quotes, float(m.universe.lot[i])
    bid_lots, ask_lots = int(q.bid_lots[i, 0]), int(q.ask_lots[i, 0])
    return {
        "best_bid_price": float(q.bid_price[i, 0]) if bid_lots else 0.0,
        "best_bid_amount": round(bid_lots * lot, 10),
        "best_ask_price": float(q.ask_price[i, 0]) if ask_lots else 0.0,
        "best_ask_amount": round(ask_lots * lot, 10),
    }


def _change_pct(m: Market, i: int) -> float:
    """Percent change since the session opened (08:00 UTC), 0 from a zero open."""
    opened = float(m.session_open[i])
    return (float(m.mark_price[i]) / opened - 1.0) * 100.0 if opened else 0.0


def ticker(m: Market, i: int) -> dict[str, object]:
    """``public/ticker`` result for instrument ``i`` (also the ``ticker.*`` channel payload)."""
    inst = m.universe.instruments[i]
    mark = float(m.mark_price[i])
    out: dict[str, object] = {
        "instrument_name": inst.instrument_name,
        "timestamp": m.now_ms,
        "state": "open" if m.active[i] else "closed",
        **_top(m, i),
        "mark_price": mark,
        "index_price": float(m.index_price[i]),
        "last_price": _num(m.last_price[i]),
        "settlement_price": float(m.settlement_price[i]),
        "open_interest": float(m.open_interest[i]),
        "estimated_delivery_price": float(m.index_price[i]),
        "stats": {
            "volume": float(m.volume[i]),
            "volume_usd": float(m.volume_usd[i]),
            "low": float(m.low[i]),
            "high": float(m.high[i]),
            "price_change": _change_pct(m, i),
        },
    }
    if not m.active[i]:
        out["delivery_price"] = float(m.delivery_price[i])
    if inst.is_perpetual:
        row = int(m.perp_row[i])
        out["current_funding"] = float(m.funding.current[row])
        out["funding_8h"] = float(m.funding.funding_8h[row])
        out["interest_value"] = 0.0
    if inst.is_option:
        r = int(m.option_row[i])
        out |= {
            "underlying_price": float(m.underlying_price[i]),
            "underlying_index": m.universe.underlying_index[i],
            "interest_rate": 0.0,
            "mark_iv": float(m.mark_iv[r]) * 100.0,
            "bid_iv": float(m.bid_iv[r]) * 100.0,
            "ask_iv": float(m.ask_iv[r]) * 100.0,
            "greeks": {
                "delta": float(m.delta[r]),
                "gamma": float(m.gamma[r]),
                "vega": float(m.vega[r]),
                "theta": float(m.theta[r]),
                "rho": 0.0,
            },
        }
    return out


def order_book(
    m: Market,
    i: int,
    depth: int | None = None,
    bid_lots: I64 | None = None,
    ask_lots: I64 | None = None,
) -> dict[str, object]:
    """``public/get_order_book``; pass the matching engine's remaining lots (after fills this
    step) as ``bid_lots``/``ask_lots`` to show what is really left."""
    q, lot = m.quotes, float(m.universe.lot[i])
    bl = q.bid_lots[i] if bid_lots is None else bid_lots
    al = q.ask_lots[i] if ask_lots is None else ask_lots
    n = q.levels if depth is None else min(depth, q.levels)
    bids = [[float(q.bid_price[i, k]), round(int(bl[k]) * lot, 10)] for k in range(n) if bl[k] > 0]
    asks = [[float(q.ask_price[i, k]), round(int(al[k]) * lot, 10)] for k in range(n) if al[k] > 0]
    return {
        "instrument_name": m.universe.instruments[i].instrument_name,
        "timestamp": m.now_ms,
        "change_id": m.book_version,
        "state": "open" if m.active[i] else "closed",
        "bids": bids,
        "asks": asks,
        **_top(m, i),
        "mark_price": float(m.mark_price[i]),
        "index_price": float(m.index_price[i]),
    }


def book_summary(m: Market, i: int) -> dict[str, object]:
    """One row of ``public/get_book_summary_by_currency``."""
    inst = m.universe.instruments[i]
    top = _top(m, i)
    mark = float(m.mark_price[i])
    out: dict[str, object] = {
        "instrument_name": inst.instrument_name,
        "base_currency": inst.base_currency,
        "quote_currency": inst.quote_currency,
        "creation_timestamp": m.now_ms,
        "last": _num(m.last_price[i]),
        "bid_price": top["best_bid_price"] if top["best_bid_amount"] else None,
        "ask_price": top["best_ask_price"] if top["best_ask_amount"] else None,
        "mark_price": mark,
        "high": float(m.high[i]),
        "low": float(m.low[i]),
        "volume": float(m.volume[i]),
        "volume_usd": float(m.volume_usd[i]),
        "open_interest": float(m.open_interest[i]),
        "estimated_delivery_price": float(m.index_price[i]),
        "price_change": _change_pct(m, i),
    }
    if inst.is_option:
        out["underlying_price"] = float(m.underlying_price[i])
        out["underlying_index"] = m.universe.underlying_index[i]
        out["mark_iv"] = float(m.mark_iv[m.option_row[i]]) * 100.0
    if inst.is_perpetual:
        row = int(m.perp_row[i])
        out["current_funding"] = float(m.funding.current[row])
        out["funding_8h"] = float(m.funding.funding_8h[row])
    return out


def index_prices(m: Market) -> dict[str, float]:
    px = m.asset_prices
    return {inst.price_index: px[inst.base_currency] for inst in m.universe.instruments}
