"""Listed instruments, with every field Deribit's ``public/get_instruments`` returns.

Names follow Deribit: ``BTC-PERPETUAL``, ``BTC-25DEC26``, ``BTC-25DEC26-100000-C`` (inverse,
coin-settled), ``SOL_USDC-PERPETUAL``, ``SOL_USDC-25DEC26-200-C`` (USDC-linear), ``BTC_USDC``
(spot); decimal strikes print with ``d`` for the point (``XRP_USDC-26DEC25-2d5-C``).
"""

from __future__ import annotations

from dataclasses import dataclass

# Deribit's expiration_timestamp for perpetuals and spot (year 3000).
PERPETUAL_EXPIRY_MS = 32_503_708_800_000
USDC = "USDC"
USD = "USD"


@dataclass(slots=True, frozen=True)
class SimInstrument:
    instrument_id: int
    instrument_name: str
    kind: str  # Deribit kind: "future" (perps too), "option", "spot"
    base_currency: str
    counter_currency: str
    quote_currency: str
    settlement_currency: str | None  # None for spot
    settlement_period: str | None  # "perpetual" | "day" | "week" | "month"; None for spot
    contract_size: float
    min_trade_amount: float
    tick_size: float
    taker_commission: float
    maker_commission: float
    expiration_timestamp: int
    creation_timestamp: int
    price_index: str  # "btc_usd", "sol_usdc"
    inverse: bool
    strike: float | None = None
    option_type: str | None = None  # "call" | "put"

    @property
    def is_perpetual(self) -> bool:
        return self.settlement_period == "perpetual"

    @property
    def is_future(self) -> bool:
        """A dated future (not a perpetual)."""
        return self.kind == "future" and not self.is_perpetual

    @property
    def is_option(self) -> bool:
        return self.kind == "option"

    @property
    def is_spot(self) -> bool:
        return self.kind == "spot"

    @property
    def is_call(self) -> bool:
        return self.option_type == "call"

    def to_deribit(self, *, is_active: bool = True) -> dict[str, object]:
        """One row of ``public/get_instruments``; ``is_active`` comes from the market (expiry)."""
        row: dict[str, object] = {
            "instrument_name": self.instrument_name,
            "instrument_id": self.instrument_id,
            "kind": self.kind,
            "base_currency": self.base_currency,
            "counter_currency": self.counter_currency,
            "quote_currency": self.quote_currency,
            "contract_size": self.contract_size,
            "min_trade_amount": self.min_trade_amount,
            "tick_size": self.tick_size,
            "taker_commission": self.taker_commission,
            "maker_commission": self.maker_commission,
            "is_active": is_active,
            "expiration_timestamp": self.expiration_timestamp,
            "creation_timestamp": self.creation_timestamp,
            "price_index": self.price_index,
            "instrument_type": "reversed" if self.inverse else "linear",
        }
        # ccxt reads settlement_period "perpetual" on spot as a swap: omit it for spot.
        if self.settlement_currency is not None:
            row["settlement_currency"] = self.settlement_currency
        if self.settlement_period is not None:
            row["settlement_period"] = self.settlement_period
        if self.kind == "future":
            row["future_type"] = row["instrument_type"]
        if self.is_option:
            row["strike"] = self.strike
            row["option_type"] = self.option_type
        return row


def strike_code(strike: float) -> str:
    text = f"{strike:.10g}"
    return text.replace(".", "d")


def prefix(asset: str, inverse: bool) -> str:
    return asset if inverse else f"{asset}_{USDC}"


def price_index(asset: str, inverse: bool) -> str:
    return f"{asset.lower()}_usd" if inverse else f"{asset.lower()}_usdc"


def perpetual_name(asset: str, inverse: bool) -> str:
    return f"{prefix(asset, inverse)}-PERPETUAL"


def future_name(asset: str, inverse: bool, expiry_code: str) -> str:
    return f"{prefix(asset, inverse)}-{expiry_code}"


def option_name(asset: str, inverse: bool, expiry_code: str, strike: float, is_call: bool) -> str:
    return f"{prefix(asset, inverse)}-{expiry_code}-{strike_code(strike)}-{'C' if is_call else 'P'}"


def spot_name(asset: str) -> str:
    return f"{asset}_{USDC}"
