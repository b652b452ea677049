"""Hyperliquid: the client id travels as the order's ``cloid`` (a 128-bit hex number) and an
order is found again with ``orderStatus``, the cloid standing in for the order id; an
unknown one is ``unknownOid`` (ccxt ``OrderNotFound``).

Hyperliquid has no market order. ccxt sends one as an IOC limit ``slippage`` through a
price it is given; this broker gives it the venue's mid (``allMids``) and the configured
slippage (``hyperliquid.market_slippage``, set as the client's ``defaultSlippage``), so an
IOC "market" order never fills further than that from the mid, and the part that cannot is
cancelled by the venue (the executor sees it ``cancelled`` with what filled).

ccxt rounds amounts to the nearest lot here, not down: ``round_amount`` truncates, as the
executor's port promises (never more than asked).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ccxt.async_support as ccxt
from ccxt.base.decimal_to_precision import TICK_SIZE, TRUNCATE, decimal_to_precision

from hedger.execution.brokers.client_ids import HYPERLIQUID, ClientIdRule
from hedger.execution.brokers.port import VenueOrder
from hedger.execution.brokers.unified import UnifiedBroker

DEFAULT_SLIPPAGE = 0.01


class HyperliquidBroker(UnifiedBroker):
    has_venue_lookup = True

    def __init__(self, client: Any, venue: str, client_ids: ClientIdRule = HYPERLIQUID) -> None:
        super().__init__(client, venue, client_ids)

    @property
    def slippage(self) -> float:
        """How far through the mid a market order may fill (a fraction)."""
        return float(self.client.options.get("defaultSlippage") or DEFAULT_SLIPPAGE)

    async def mid_price(self, symbol: str) -> float:
        """The venue's mid for ``symbol`` now (``allMids``, keyed by the coin's name)."""
        info = self.client.market(symbol)["info"]
        query: dict[str, Any] = {"type": "allMids"}
        if info.get("dex"):
            query["dex"] = info["dex"]
        mids = await self.client.public_post_info(query)
        coin = str(info["name"])
        if coin not in mids:
            raise ccxt.ExchangeError(f"{self.venue}: allMids has no mid for {coin} ({symbol})")
        return float(mids[coin])

    async def place(
        self,
        symbol: str,
        side: str,
        amount: float,
        client_id: str,
        price: float | None = None,
        valid_until_ms: int | None = None,
    ) -> VenueOrder:
        if valid_until_ms is not None:
            raise ValueError(f"{self.venue}: no request time-to-live (request_deadline_ms)")
        params: dict[str, Any] = {"clientOrderId": client_id}
        if price is None:
            order_type, reference = "market", await self.mid_price(symbol)
            params["slippage"] = str(self.slippage)
        else:
            order_type, reference = "limit", price
        answer = await self.client.create_order(
            symbol, order_type, side, amount, reference, params=params
        )
        # The answer is {"filled": {...}} or {"resting": {...}} without a state or the
        # cloid: the lookup below gives both.
        return await self._settled(
            {"id": answer.get("id"), "clientOrderId": client_id}, symbol, client_id, side, amount
        )

    async def _venue_lookup(self, client_id: str, symbol: str) -> list[Mapping[str, Any]]:
        try:
            order = await self.client.fetch_order(client_id, symbol)
        except ccxt.OrderNotFound:
            return []
        return [order] if order.get("clientOrderId") in (None, client_id) else []

    def round_amount(self, symbol: str, amount: float) -> float:
        step = self.client.market(symbol)["precision"]["amount"]
        rounded = decimal_to_precision(amount, TRUNCATE, step, TICK_SIZE)
        if float(rounded) <= 0:
            raise ccxt.InvalidOrder(f"{self.venue}: {amount} {symbol} is less than one lot")
        return float(rounded)
