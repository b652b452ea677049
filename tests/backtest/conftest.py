"""Small configs for backtests: built in code so each test says what it holds."""

from __future__ import annotations

from typing import Any

from hedger.config import Config

GENEROUS_LIMITS = {
    "max_order_notional_usd": 1e8,
    "max_hedge_position_usd": 1e8,
    "max_notional_per_hour_usd": 1e9,
    "max_notional_per_day_usd": 1e10,
    "max_orders_per_minute": 1000,
}


def alts_config(half_width: float = 0.02, **beta: Any) -> Config:
    """SOL, ETH and AVAX spot against BTC-PERPETUAL (the paper config's alts)."""
    return Config.model_validate(
        {
            "venues": {"sim": {"exchange": "deribit"}},
            "factors": [
                {
                    "asset": "BTC",
                    "hedge": {"venue": "sim", "symbol": "BTC-PERPETUAL"},
                    "band": {"half_width": half_width},
                }
            ],
            "portfolio": {
                "holdings": [
                    {"asset": "SOL", "qty": 2000},
                    {"asset": "ETH", "qty": 40},
                    {"asset": "AVAX", "qty": 5000},
                ]
            },
            "beta": {
                "bar": "5m",
                "half_life": "2d",
                "window": "7d",
                "min_observations": 30,
                **beta,
            },
            "hedge": {"cooldown": "0s"},
            "limits": GENEROUS_LIMITS,
        }
    )
