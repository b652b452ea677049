"""The venue as the executor sees it: place by client id, look an id up, list, cancel.

A thin port over a ccxt client, so the executor's logic is the same for every venue and
its tests run against the paper venue through the real ccxt code path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

# Deribit's order states; ccxt's unified status loses "untriggered" and partial fills.
_STATUS = {"open": "open", "filled": "filled", "cancelled": "cancelled", "rejected": "rejected"}


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
    """open, filled, cancelled or rejected."""


class Broker(Protocol):
    venue: str

    async def place(
        self, symbol: str, side: str, amount: float, client_id: str, price: float | None = None
    ) -> VenueOrder: ...

    async def find(self, client_id: str, symbol: str) -> list[VenueOrder]: ...

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]: ...

    async def cancel(self, venue_order_id: str, symbol: str) -> VenueOrder: ...


def _from_deribit(raw: dict[str, Any], symbol: str) -> VenueOrder:
    average = raw.get("average_price") or None
    return VenueOrder(
        venue_order_id=str(raw["order_id"]),
        client_id=str(raw.get("label") or ""),
        symbol=symbol,
        side=str(raw["direction"]),
        amount=float(raw["amount"]),
        filled=float(raw.get("filled_amount") or 0.0),
        average_price=None if average is None else float(average),
        status=_STATUS.get(str(raw["order_state"]), str(raw["order_state"])),
    )


class DeribitBroker:
    """Deribit through ccxt: the client id travels as Deribit's ``label`` (ccxt never maps
    its unified ``clientOrderId`` back), and is found with ``get_order_state_by_label``."""

    def __init__(self, client: Any, venue: str) -> None:
        self.client = client
        self.venue = venue

    async def place(
        self, symbol: str, side: str, amount: float, client_id: str, price: float | None = None
    ) -> VenueOrder:
        order_type = "market" if price is None else "limit"
        order = await self.client.create_order(
            symbol, order_type, side, amount, price, params={"label": client_id}
        )
        return _from_deribit(order["info"], symbol)

    async def find(self, client_id: str, symbol: str) -> list[VenueOrder]:
        market = self.client.market(symbol)
        response = await self.client.private_get_get_order_state_by_label(
            {"currency": market["base"], "label": client_id}
        )
        return [_from_deribit(raw, symbol) for raw in response["result"]]

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        orders = await self.client.fetch_open_orders(symbol)
        return [_from_deribit(o["info"], o["symbol"]) for o in orders]

    async def cancel(self, venue_order_id: str, symbol: str) -> VenueOrder:
        order = await self.client.cancel_order(venue_order_id, symbol)
        return _from_deribit(order["info"], symbol)
