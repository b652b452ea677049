"""Built-in backtest portfolios, for scenarios where no config file says what is held.

``options-book``: a dealer's short BTC straddles (a weekly and a monthly expiry) delta-hedged
with BTC-PERPETUAL on the one-factor calm market. Gamma dominates its risk, which is where a
Whalley-Wilmott band, wide when gamma is small and narrow when it is large, should buy the
same variance as a fixed band for less cost.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hedger.config import Config
from hedger.core.pricing import MS_PER_DAY
from hedger.sim import Market
from hedger.sim.chains import OPTION

OPTIONS_BOOK = "options-book"
OPTIONS_BOOK_SCENARIO = "calm-1f"


def _nearest_expiry(market: Market, asset_ix: int, days: float) -> int:
    u = market.universe
    expiries = np.unique(u.expiry_ms[(u.kind == OPTION) & (u.asset == asset_ix)])
    target = market.now_ms + days * MS_PER_DAY
    return int(expiries[np.argmin(np.abs(expiries - target))])


def _atm_strike(market: Market, asset_ix: int, expiry_ms: int) -> float:
    u = market.universe
    listed = (u.kind == OPTION) & (u.asset == asset_ix) & (u.expiry_ms == expiry_ms)
    strikes = np.unique(u.strike[listed])
    spot = float(np.exp(market.process.log_price[asset_ix]))
    return float(strikes[np.argmin(np.abs(strikes - spot))])


def options_book_data(market: Market, qty_btc: float = 10.0) -> dict[str, Any]:
    """A config document: short ``qty_btc`` straddles at the weekly and monthly expiries."""
    btc = market.universe.assets.index("BTC")
    holdings = []
    for days in (7.0, 30.0):
        expiry = _nearest_expiry(market, btc, days)
        strike = _atm_strike(market, btc, expiry)
        date = np.datetime64(expiry, "ms").astype("datetime64[D]").astype(str)
        for kind in ("call", "put"):
            holdings.append(
                {
                    "asset": "BTC",
                    "kind": "option",
                    "qty": -qty_btc,
                    "strike": strike,
                    "expiry": str(date),
                    "option_type": kind,
                    "inverse": True,
                }
            )
    return {
        "name": "options-book",
        "venues": {"sim": {"exchange": "deribit"}},
        "factors": [
            {
                "asset": "BTC",
                "hedge": {"venue": "sim", "symbol": "BTC-PERPETUAL"},
                "target": {"kind": "beta_delta", "value": 0.0},
                "band": {"kind": "absolute", "half_width": 1.0},
            }
        ],
        "portfolio": {"holdings": holdings, "include_venue_positions": False},
        "beta": {"bar": "1m", "half_life": "1d", "min_observations": 30},
        "hedge": {"rebalance_to": "edge", "cooldown": "0s"},
        "limits": {
            "max_order_notional_usd": 1e8,
            "max_hedge_position_usd": 1e8,
            "max_notional_per_hour_usd": 1e9,
            "max_notional_per_day_usd": 1e10,
            "max_orders_per_minute": 1000,
        },
    }


def options_book_config(seed: int = 7) -> Config:
    from hedger.backtest.sim_tape import scenario_for

    market = Market(scenario_for(OPTIONS_BOOK_SCENARIO, ("BTC",)), seed=seed)
    return Config.model_validate(options_book_data(market))
