"""Instruments: what a position is in, and how its quantity turns into coin exposure.

Quantities are always in *contracts*; ``contract_size`` says what one contract is:

- spot, linear perps/futures, and all options: units of the underlying coin per contract
  (Deribit BTC options: 1 BTC; USDC-linear options carry their own multiplier);
- inverse perps/futures: USD face per contract (Deribit BTC-PERPETUAL: 10 USD).

An inverse contract's coin delta is ``face / price``, so a short of face F has coin delta
``-F / price``; its USD delta is constant (``F * price / price``), so it has no gamma.
Inverse options are priced in coin but their Greeks are in USD on the underlying price
(Deribit's convention), so in a USD-accounted book they behave like linear options; the
premium they cost is already gone from the coin balance, which is counted as spot.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    SPOT = "spot"
    PERP = "perp"
    FUTURE = "future"
    OPTION = "option"


@dataclass(slots=True, frozen=True)
class Instrument:
    """One tradable or held thing. ``underlying`` is the asset whose price drives it."""

    symbol: str
    kind: Kind
    underlying: str
    quote: str = "USD"
    contract_size: float = 1.0
    inverse: bool = False
    strike: float | None = None
    expiry_ms: int | None = None
    is_call: bool | None = None
    venue: str = ""

    def __post_init__(self) -> None:
        if not self.contract_size > 0:
            raise ValueError(f"{self.symbol}: contract_size must be > 0, got {self.contract_size}")
        if self.kind is Kind.OPTION:
            if self.strike is None or not self.strike > 0:
                raise ValueError(f"{self.symbol}: an option needs a strike > 0")
            if self.expiry_ms is None:
                raise ValueError(f"{self.symbol}: an option needs an expiry")
            if self.is_call is None:
                raise ValueError(f"{self.symbol}: an option needs is_call")
        if self.kind is Kind.FUTURE and self.expiry_ms is None:
            raise ValueError(f"{self.symbol}: a dated future needs an expiry")
        if self.kind is Kind.SPOT and self.inverse:
            raise ValueError(f"{self.symbol}: spot cannot be inverse")

    @property
    def is_option(self) -> bool:
        return self.kind is Kind.OPTION

    @property
    def is_delta_one(self) -> bool:
        return self.kind is not Kind.OPTION
