"""Any other venue, through ccxt's unified API only: orders carry ``clientOrderId`` and are
found again by it, statuses are ccxt's unified ones.

What the executor's order safety needs from such a venue, and where it comes from:

- the client id round-trips: sent as ``params={"clientOrderId": ...}`` and read back from
  each parsed order's ``clientOrderId``. A venue whose ccxt parser drops it (Deribit's sets
  it to None; that is why Deribit has a broker of its own) cannot be looked up by client id,
  so an order of unknown fate would look absent: such a venue needs its own broker.
- a lookup by client id that sees finished orders too: ``fetch_order_with_client_order_id``
  where ``has["fetchOrderWithClientOrderId"]`` says the venue supports it, else the open
  orders and then the finished ones (``fetch_orders``, ``fetch_canceled_and_closed_orders``,
  or ``fetch_closed_orders`` plus ``fetch_canceled_orders``), filtered on the client id.
  Those listings are the venue's recent orders only (their default page); the executor
  looks orders up within minutes of sending them.
- no request time-to-live: ``request_deadline_ms`` is None, so the executor only concludes
  that a request of unknown fate never landed after its unknown-order window.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ccxt.async_support as ccxt

from hedger.execution.brokers.client_ids import ClientIdRule, rule_for
from hedger.execution.brokers.port import CcxtRounding, Lookup, VenueOrder

_FINISHED = frozenset({"closed", "canceled", "cancelled", "expired"})
"""ccxt's unified statuses of an order that can no longer fill (``closed`` means no longer
live, not filled: a part-filled IOC or a venue-cancelled remainder is ``closed`` on some
venues)."""


class UnsupportedVenueError(Exception):
    """The venue's ccxt client cannot do what the executor's order safety relies on."""


def order_status(status: str | None, amount: float | None, filled: float | None) -> str:
    """The executor's status (open, filled, cancelled, rejected) of a ccxt unified order.

    A finished order is ``filled`` only if all of it filled, else ``cancelled``: the
    executor sends the unfilled rest of a leg only after its order is known cancelled, and
    reports a leg as filled only if it was. A finished order whose fill the venue does not
    say cannot be settled either way: ValueError. A missing or unmapped status is ``open``
    (not known to be final: the executor keeps asking, and never resends).
    """
    if status == "rejected":
        return "rejected"
    if status in _FINISHED:
        if amount is None or filled is None:
            raise ValueError(f"a {status} order with amount={amount}, filled={filled}")
        return "filled" if filled >= amount * (1.0 - 1e-9) else "cancelled"
    return "open"


def _has(client: Any, feature: str) -> bool:
    return bool(client.has.get(feature))  # True or "emulated"; None and False: not offered


def _finished_calls(client: Any) -> list[str]:
    """ccxt's calls that list finished orders, the fewest that cover closed and cancelled."""
    if _has(client, "fetchOrders"):
        return ["fetch_orders"]
    if _has(client, "fetchCanceledAndClosedOrders"):
        return ["fetch_canceled_and_closed_orders"]
    calls = {
        "fetchClosedOrders": "fetch_closed_orders",
        "fetchCanceledOrders": "fetch_canceled_orders",
    }
    return [call for feature, call in calls.items() if _has(client, feature)]


class UnifiedBroker(CcxtRounding):
    """A venue through ccxt's unified calls only (see the module docstring). A venue family
    whose API finds an order by client id directly says so in ``_venue_lookup`` (a
    subclass: ``brokers/binance.py``, ``bybit.py``, ``okx.py``, ``hyperliquid.py``)."""

    has_venue_lookup = False
    """Whether ``_venue_lookup`` asks the venue for the client id itself."""

    def __init__(self, client: Any, venue: str, client_ids: ClientIdRule | None = None) -> None:
        self.client = client
        self.venue = venue
        self.client_ids = client_ids if client_ids is not None else rule_for("")
        self._by_client_id = _has(client, "fetchOrderWithClientOrderId")
        self._finished = _finished_calls(client)
        needs = ["createOrder", "cancelOrder", "fetchOpenOrders"]
        missing = [feature for feature in needs if not _has(client, feature)]
        if not (self._by_client_id or self._finished or self.has_venue_lookup):
            missing.append("a lookup of finished orders")
        if missing:
            raise UnsupportedVenueError(
                f"venue {venue!r} (ccxt {client.id!r}) lacks {', '.join(missing)}: the hedger "
                "could not find its orders again by client id; it needs a broker of its own"
            )

    async def request_deadline_ms(self, ttl_s: float) -> int | None:
        # None: ccxt's unified API has no request time-to-live. Some venues have one
        # (Binance's recvWindow, Hyperliquid's expiresAfter), but a deadline proves nothing
        # unless a lookup also says the venue's clock when it answered (the executor's proof
        # is "answered after the deadline and still absent"); unified calls do not return
        # it. Without it the executor waits out its unknown-order window instead.
        return None

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
        order_type = "market" if price is None else "limit"
        answer = await self.client.create_order(
            symbol, order_type, side, amount, price, params={"clientOrderId": client_id}
        )
        echoed = answer.get("clientOrderId")
        if echoed is not None and echoed != client_id:
            # The venue rewrote the id: lookups by it would never find the order.
            raise UnsupportedVenueError(
                f"{self.venue}: sent clientOrderId {client_id!r}, the venue answered {echoed!r}"
            )
        return await self._settled(answer, symbol, client_id, side, amount)

    async def _venue_lookup(self, client_id: str, symbol: str) -> list[Mapping[str, Any]]:
        """The venue's own answer to "which orders carry this client id" (ccxt orders)."""
        raise NotImplementedError

    async def find(self, client_id: str, symbol: str) -> Lookup:
        if self.has_venue_lookup:
            found = await self._venue_lookup(client_id, symbol)
            return Lookup([self._order(o, symbol, client_id) for o in found], None)
        if self._by_client_id:
            try:
                order = await self.client.fetch_order_with_client_order_id(client_id, symbol)
            except ccxt.OrderNotFound:
                return Lookup([], None)
            # The venue looked it up by our id; some parsers do not repeat it.
            found = [order] if order.get("clientOrderId") in (None, client_id) else []
            return Lookup([self._order(o, symbol, client_id) for o in found], None)
        orders = await self._listed(client_id, symbol)
        seen: dict[str, VenueOrder] = {}
        for raw in orders:
            if raw.get("clientOrderId") == client_id:
                order = self._order(raw, symbol)
                seen.setdefault(order.venue_order_id, order)
        return Lookup(list(seen.values()), None)

    async def _listed(self, client_id: str, symbol: str) -> list[Mapping[str, Any]]:
        # Open orders first, then finished ones: an order that lands and fills between the
        # two calls is in the second; one that lands and rests after the first call is
        # seen by the executor's next lookup.
        open_now: list[Mapping[str, Any]] = await self.client.fetch_open_orders(symbol)
        if any(o.get("clientOrderId") == client_id for o in open_now):
            return open_now
        finished: list[Mapping[str, Any]] = []
        for call in self._finished:
            finished += await getattr(self.client, call)(symbol)
        return finished

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        orders = await self.client.fetch_open_orders(symbol)
        return [self._order(o, symbol or "") for o in orders]

    async def cancel(self, venue_order_id: str, symbol: str) -> VenueOrder:
        answer = await self.client.cancel_order(venue_order_id, symbol)
        return await self._settled(answer, symbol, "", "", None, venue_order_id)

    async def _settled(
        self,
        answer: Mapping[str, Any],
        symbol: str,
        client_id: str,
        side: str,
        amount: float | None,
        venue_order_id: str | None = None,
    ) -> VenueOrder:
        """The order an answer to create/cancel is about. Some venues answer with an id and
        no state (Bybit): then the order is looked up by client id; if it is not listed yet,
        it is ``open`` (acknowledged, fate not final) and the executor's lookups settle it."""
        if answer.get("status") is not None:
            return self._order(answer, symbol, client_id, side, amount, venue_order_id)
        client_id = str(answer.get("clientOrderId") or client_id)
        venue_order_id = str(answer.get("id") or venue_order_id or "")
        if client_id:
            for order in (await self.find(client_id, symbol)).orders:
                if order.venue_order_id == venue_order_id or not venue_order_id:
                    return order
        if not venue_order_id:
            raise ValueError(f"{self.venue}: an order answer without an id")
        return VenueOrder(
            venue_order_id, client_id, symbol, side, float(amount or 0.0), 0.0, None, "open"
        )

    def _order(
        self,
        raw: Mapping[str, Any],
        symbol: str,
        client_id: str = "",
        side: str = "",
        amount: float | None = None,
        venue_order_id: str | None = None,
    ) -> VenueOrder:
        """A parsed ccxt order; the other arguments stand in where the answer omits them."""
        venue_order_id = raw.get("id") or venue_order_id
        if not venue_order_id:
            raise ValueError(f"{self.venue}: an order answer without an id")
        size = raw.get("amount")
        size = amount if size is None else float(size)
        filled = raw.get("filled")
        filled = None if filled is None else float(filled)
        average = raw.get("average") or None
        fee = raw.get("fee") if isinstance(raw.get("fee"), Mapping) else None
        fee_cost = None if fee is None else fee.get("cost")
        return VenueOrder(
            venue_order_id=str(venue_order_id),
            client_id=str(raw.get("clientOrderId") or client_id),
            symbol=str(raw.get("symbol") or symbol),
            side=str(raw.get("side") or side),
            amount=float(size or 0.0),
            filled=filled or 0.0,
            average_price=None if average is None else float(average),
            status=order_status(raw.get("status"), size, filled),
            fee=None if fee_cost is None else abs(float(fee_cost)),
            fee_currency=None if fee is None or fee_cost is None else fee.get("currency"),
        )
