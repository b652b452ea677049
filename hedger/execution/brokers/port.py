"""The venue as the executor sees it: place by client id, look an id up, list, cancel.

A thin port over a ccxt client, so the executor's logic is the same for every venue and
its tests run against the paper venue through the real ccxt code path. One implementation
per venue family (``make_broker`` picks it by the venue's ccxt id).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(slots=True, frozen=True)
class VenueOrder:
    venue_order_id: str
    client_id: str
    symbol: str
    side: str
    amount: float
    filled: float
    average_price: float | None
    status: str
    """open, filled, cancelled or rejected. ``filled`` means the whole amount filled; an order
    that ended part-filled (cancelled, expired, an IOC remainder) is ``cancelled``."""
    fee: float | None = None
    """Fees charged on the fills so far, in ``fee_currency``; None where the venue's answer
    does not say."""
    fee_currency: str | None = None


@dataclass(slots=True, frozen=True)
class Lookup:
    """What the venue knows of one client id, and when it said so."""

    orders: list[VenueOrder]
    venue_time_ms: int | None
    """The venue's own clock when it handled the lookup (Deribit's ``usIn``), or None where
    the venue does not say: compared with a request's time-to-live, it proves absence."""


class Broker(Protocol):
    venue: str

    async def place(
        self,
        symbol: str,
        side: str,
        amount: float,
        client_id: str,
        price: float | None = None,
        valid_until_ms: int | None = None,
    ) -> VenueOrder: ...

    async def request_deadline_ms(self, ttl_s: float) -> int | None:
        """The venue-clock instant after which a request sent now is refused if it arrives,
        or None if the venue offers no request time-to-live."""
        ...

    async def find(self, client_id: str, symbol: str) -> Lookup: ...

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]: ...

    async def cancel(self, venue_order_id: str, symbol: str) -> VenueOrder: ...

    def round_price(self, symbol: str, price: float) -> float:
        """``price`` on the market's tick (nearest)."""
        ...

    def round_amount(self, symbol: str, amount: float) -> float:
        """``amount`` down to the market's lot (never more than asked)."""
        ...


class CcxtRounding:
    """Prices and amounts on a market's precision, as ccxt formats them for the request.

    ``round_amount`` truncates, and raises ccxt ``InvalidOrder`` when less than one lot
    remains (ccxt's ``amount_to_precision``); ``round_price`` rounds to the nearest tick.
    Both need the markets loaded.
    """

    client: Any

    def round_price(self, symbol: str, price: float) -> float:
        return float(self.client.price_to_precision(symbol, price))

    def round_amount(self, symbol: str, amount: float) -> float:
        return float(self.client.amount_to_precision(symbol, amount))
