"""Binance (spot, USD-M and COIN-M futures): the client id travels as ``newClientOrderId``
and an order is found again with ``origClientOrderId`` on the order query.

``GET /fapi/v1/order`` (futures) and ``GET /api/v3/order`` (spot) answer for open and
finished orders alike; an unknown id is ``-2013 Order does not exist`` (ccxt
``OrderNotFound``). Binance forgets orders cancelled or expired without a fill after three
days, long after the executor's lookups. ccxt sends futures orders with
``newOrderRespType=RESULT``, so a market order's answer is already final.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ccxt.async_support as ccxt

from hedger.execution.brokers.client_ids import BINANCE, ClientIdRule
from hedger.execution.brokers.unified import UnifiedBroker


class BinanceBroker(UnifiedBroker):
    has_venue_lookup = True

    def __init__(self, client: Any, venue: str, client_ids: ClientIdRule = BINANCE) -> None:
        super().__init__(client, venue, client_ids)
        # ccxt refuses to list open orders of every symbol unless told it is meant (that
        # costs 40 times the weight on futures): reconciliation does so at start and stop.
        listing = client.options.setdefault("fetchOpenOrders", {})
        if isinstance(listing, dict):
            listing["warnWithoutSymbol"] = False

    async def _venue_lookup(self, client_id: str, symbol: str) -> list[Mapping[str, Any]]:
        try:
            order = await self.client.fetch_order(
                None, symbol, params={"origClientOrderId": client_id}
            )
        except ccxt.OrderNotFound:
            return []
        return [order] if order.get("clientOrderId") in (None, client_id) else []
