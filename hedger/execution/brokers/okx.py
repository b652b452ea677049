"""OKX: the client id travels as ``clOrdId`` (up to 32 letters and digits) and an order is
found again with ``clOrdId`` on ``GET /api/v5/trade/order``, which answers for open and
finished orders alike; an unknown id is ``51603 Order does not exist`` (ccxt
``OrderNotFound``). ccxt places a single order as a batch of one
(``POST /api/v5/trade/batch-orders``), whose answer is an acknowledgement without a state:
the order is then looked up by its id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ccxt.async_support as ccxt

from hedger.execution.brokers.client_ids import OKX, ClientIdRule
from hedger.execution.brokers.unified import UnifiedBroker


class OkxBroker(UnifiedBroker):
    has_venue_lookup = True

    def __init__(self, client: Any, venue: str, client_ids: ClientIdRule = OKX) -> None:
        super().__init__(client, venue, client_ids)

    async def _venue_lookup(self, client_id: str, symbol: str) -> list[Mapping[str, Any]]:
        try:
            order = await self.client.fetch_order(None, symbol, params={"clOrdId": client_id})
        except ccxt.OrderNotFound:
            return []
        return [order] if order.get("clientOrderId") in (None, client_id) else []
