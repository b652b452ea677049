"""Built-in backtest portfolios, for scenarios where no config file says what is held.

``options-book``: a dealer's short BTC straddles (a weekly and a monthly expiry) delta-hedged
with BTC-PERPETUAL on the one-factor calm market. Gamma dominates its risk, which is where a
Whalley-Wilmott band, wide when gamma is small and narrow when it is large, should buy the
same variance as a fixed band for less cost.

``options-book`` without a sweep compares the hedge modes (:func:`option_mode_configs`): the
same straddles plus a 10 BTC treasury, hedged by the perp alone, by protective puts with the
perp, and by the multi-Greek solve with the perp, on the one-factor stress-switching market
(with seed 7, calm for five and a half days, then stressed).
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
OPTION_MODES_SCENARIO = "stress-switching-1f"
OPTION_MODES = ("perp", "protective_put", "multi_greek")
TREASURY_BTC = 10.0


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


def option_mode_data(market: Market, mode: str) -> dict[str, Any]:
    """The options book plus a coin treasury, hedged in ``mode`` (one of ``OPTION_MODES``)."""
    data = options_book_data(market)
    data["portfolio"]["holdings"].append({"asset": "BTC", "kind": "spot", "qty": TREASURY_BTC})
    factor = data["factors"][0]
    factor["hedge"]["mode"] = mode
    # Bands sized for this book at ~90k: 10 short straddles at a weekly and a monthly
    # expiry carry about -120k USD of gamma per 1% and -3k USD of vega per vol point.
    factor["options"] = {
        "candidates": {
            "min_days_to_expiry": 2,
            "max_days_to_expiry": 70,
            "min_abs_delta": 0.1,
            "max_abs_delta": 0.9,
            "max_relative_spread": 0.1,
            "max_candidates": 30,
        },
        "protective_put": {
            "coverage": 1.0,
            "moneyness": 0.95,
            "tenor_days": 30,
            "roll_days": 7,
            "delta_drift": 0.3,
        },
        "multi_greek": {
            "gamma": {"half_width": 40_000, "inner_half_width": 20_000},
            "vega": {"half_width": 2_000, "inner_half_width": 1_000},
            "max_options": 4,
            "max_contracts_per_option": 50,
            "retry_after": "15m",
        },
    }
    data["hedge"]["option_order"] = {"spread_fraction": 0.5, "timeout": "5m"}
    data["option_limits"] = {
        "max_premium_per_day_usd": 5e6,
        "max_net_vega_usd": 1e6,
        "max_contracts_per_order": 50,
        "min_days_to_expiry": 2,
    }
    return data


def option_mode_configs(seed: int = 7) -> dict[str, Config]:
    """One config per hedge mode, on the market of ``OPTION_MODES_SCENARIO``."""
    from hedger.backtest.sim_tape import scenario_for

    market = Market(scenario_for(OPTION_MODES_SCENARIO, ("BTC",)), seed=seed)
    return {mode: Config.model_validate(option_mode_data(market, mode)) for mode in OPTION_MODES}
