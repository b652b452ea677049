"""Deribit: the client id travels as Deribit's ``label``, requests carry ``valid_until``."""

from __future__ import annotations

import time
from typing import Any

from ccxt.base.errors import BaseError

from hedger.execution.brokers.client_ids import DERIBIT, ClientIdRule
from hedger.execution.brokers.port import CcxtRounding, Lookup, VenueOrder

# Deribit's order states; ccxt's unified status loses "untriggered" and partial fills.
_STATUS = {"open": "open", "filled": "filled", "cancelled": "cancelled", "rejected": "rejected"}


def _from_deribit(raw: dict[str, Any], symbol: str, fee_currency: str | None = None) -> VenueOrder:
    average = raw.get("average_price") or None
    commission = raw.get("commission")
    return VenueOrder(
        venue_order_id=str(raw["order_id"]),
        client_id=str(raw.get("label") or ""),
        symbol=symbol,
        side=str(raw["direction"]),
        amount=float(raw["amount"]),
        filled=float(raw.get("filled_amount") or 0.0),
        average_price=None if average is None else float(average),
        status=_STATUS.get(str(raw["order_state"]), str(raw["order_state"])),
        # Deribit's order carries its commission in the settlement currency (BTC for the
        # inverse BTC-PERPETUAL); ccxt's own parse drops the currency.
        fee=None if commission is None else abs(float(commission)),
        fee_currency=fee_currency if commission is not None else None,
    )


def _venue_ms(response: Any) -> int | None:
    us_in = response.get("usIn") if isinstance(response, dict) else None
    return int(us_in) // 1000 if isinstance(us_in, int) and not isinstance(us_in, bool) else None


class DeribitBroker(CcxtRounding):
    """Deribit through ccxt: the client id travels as Deribit's ``label`` (ccxt never maps
    its unified ``clientOrderId`` back: its ``parse_order`` sets it to None), and is found
    with ``get_order_state_by_label``.

    Requests carry ``valid_until`` (ms on Deribit's clock): the matching engine refuses an
    order that reaches it later, so once Deribit's clock has passed that instant a lookup
    that finds nothing proves the request can never land. Deribit stamps every answer with
    ``usIn``; the offset to our wall clock is learned from those stamps.
    """

    def __init__(
        self, client: Any, venue: str, wall_ms: Any = None, client_ids: ClientIdRule = DERIBIT
    ) -> None:
        self.client = client
        self.venue = venue
        self.client_ids = client_ids
        self._wall_ms = wall_ms or (lambda: int(time.time() * 1000))
        self._offset_ms: int | None = None

    def _learn_clock(self, venue_ms: int | None) -> None:
        if venue_ms is not None:
            self._offset_ms = venue_ms - self._wall_ms()

    async def request_deadline_ms(self, ttl_s: float) -> int | None:
        if self._offset_ms is None:
            response = await self.client.public_get_get_time()
            self._learn_clock(_venue_ms(response))
            if self._offset_ms is None:
                self._learn_clock(int(response["result"]))
        assert self._offset_ms is not None
        return self._wall_ms() + self._offset_ms + int(ttl_s * 1000)

    async def place(
        self,
        symbol: str,
        side: str,
        amount: float,
        client_id: str,
        price: float | None = None,
        valid_until_ms: int | None = None,
    ) -> VenueOrder:
        order_type = "market" if price is None else "limit"
        params: dict[str, Any] = {"label": client_id}
        if valid_until_ms is not None:
            params["valid_until"] = valid_until_ms
        order = await self.client.create_order(
            symbol, order_type, side, amount, price, params=params
        )
        return self._order(order["info"], symbol)

    async def find(self, client_id: str, symbol: str) -> Lookup:
        market = self.client.market(symbol)
        response = await self.client.private_get_get_order_state_by_label(
            {"currency": market["base"], "label": client_id}
        )
        venue_ms = _venue_ms(response)
        self._learn_clock(venue_ms)
        return Lookup([self._order(raw, symbol) for raw in response["result"]], venue_ms)

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        orders = await self.client.fetch_open_orders(symbol)
        return [self._order(o["info"], o["symbol"]) for o in orders]

    async def cancel(self, venue_order_id: str, symbol: str) -> VenueOrder:
        order = await self.client.cancel_order(venue_order_id, symbol)
        return self._order(order["info"], symbol)

    def _order(self, raw: dict[str, Any], symbol: str) -> VenueOrder:
        try:
            settle = self.client.market(symbol).get("settle")
        except BaseError:  # markets not loaded: the fee keeps no currency, nothing worse
            settle = None
        return _from_deribit(raw, symbol, None if settle is None else str(settle))
