"""Bybit v5: the client id travels as ``orderLinkId`` and an order is found again by
``orderLinkId`` on ``GET /v5/order/realtime`` (open orders) and then
``GET /v5/order/history`` (finished ones). ccxt's ``fetch_order`` is not used: on a unified
account it reaches only the last 500 orders and refuses without ``acknowledged``.

``POST /v5/order/create`` answers with the ids only, so a placed order is looked up at
once for its state. Before each order ccxt asks whether the account is unified (two
private requests) unless the client is told: ``accounts: [unified]`` in the venue's config.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hedger.execution.brokers.client_ids import BYBIT, ClientIdRule
from hedger.execution.brokers.port import VenueOrder
from hedger.execution.brokers.unified import UnifiedBroker


class BybitBroker(UnifiedBroker):
    has_venue_lookup = True

    def __init__(self, client: Any, venue: str, client_ids: ClientIdRule = BYBIT) -> None:
        super().__init__(client, venue, client_ids)

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        """Without a symbol, every settle coin of every contract category loaded: Bybit
        lists open contract orders per category and settle coin (ccxt's default is the
        linear USDT ones only), so inverse and USDC orders would go unseen."""
        if symbol is not None:
            return await super().open_orders(symbol)
        books = sorted(
            {
                ("inverse" if m.get("inverse") else "linear", str(m["settle"]))
                for m in (self.client.markets or {}).values()
                if m.get("contract") and not m.get("option") and m.get("settle")
            }
        )
        orders: list[VenueOrder] = []
        for sub_type, settle in books:
            params = {"type": "swap", "subType": sub_type, "settleCoin": settle}
            listed = await self.client.fetch_open_orders(None, params=params)
            orders += [self._order(o, "") for o in listed]
        return orders

    async def _venue_lookup(self, client_id: str, symbol: str) -> list[Mapping[str, Any]]:
        # Open first, then finished: an order that fills between the two calls is in the
        # second; one that lands and rests after the first is seen by the next lookup.
        by_link = {"orderLinkId": client_id}
        found: list[Mapping[str, Any]] = await self.client.fetch_open_orders(symbol, params=by_link)
        if not found:
            found = await self.client.fetch_canceled_and_closed_orders(symbol, params=by_link)
        return [o for o in found if o.get("clientOrderId") in (None, client_id)]
