"""Which broker a venue gets, and the unified broker's reading of ccxt orders (no sockets)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import ccxt.async_support as ccxt_async
import pytest

from hedger.config import Venue
from hedger.execution.brokers import (
    BinanceBroker,
    BybitBroker,
    DeribitBroker,
    HyperliquidBroker,
    OkxBroker,
    UnifiedBroker,
    UnsupportedVenueError,
    make_broker,
    order_status,
)
from hedger.execution.brokers.deribit_ws import DeribitWsBroker
from hedger.live.venue_link import VenueLink

OTHERS = {
    "binance": BinanceBroker,
    "binanceusdm": BinanceBroker,
    "binancecoinm": BinanceBroker,
    "bybit": BybitBroker,
    "okx": OkxBroker,
    "hyperliquid": HyperliquidBroker,
    "kraken": UnifiedBroker,
    "coinbase": UnifiedBroker,
}


@pytest.fixture
async def clients() -> AsyncIterator[dict[str, Any]]:
    made = {name: getattr(ccxt_async, name)() for name in ["deribit", *OTHERS]}
    yield made
    for client in made.values():
        await client.close()


async def test_each_venue_family_gets_its_broker_any_other_venue_the_unified_one(
    clients: dict[str, Any],
) -> None:
    assert type(make_broker(clients["deribit"], "d", "deribit")) is DeribitBroker
    for name, kind in OTHERS.items():
        broker = make_broker(clients[name], name, name)
        assert type(broker) is kind, name
        assert broker.venue == name
        assert await broker.request_deadline_ms(10.0) is None  # no time-to-live: the window


@pytest.mark.parametrize(
    ("exchange", "order_socket", "kind"),
    [
        ("deribit", True, DeribitWsBroker),  # orders over the daemon's own socket (default)
        ("deribit", False, DeribitBroker),
        ("bybit", True, BybitBroker),  # the setting is Deribit's only
    ],
)
async def test_venue_link_chooses_the_broker_by_ccxt_id(
    exchange: str, order_socket: bool, kind: type
) -> None:
    link = VenueLink("v", Venue(exchange=exchange, order_socket=order_socket))
    try:
        assert type(link.broker) is kind
        assert link.broker.venue == "v"
    finally:
        await link.client.close()


async def test_a_venue_that_cannot_list_finished_orders_is_refused() -> None:
    client = ccxt_async.kraken()
    client.has = {**client.has, "fetchClosedOrders": False, "fetchOrders": False}
    try:
        with pytest.raises(UnsupportedVenueError, match="lookup of finished orders"):
            make_broker(client, "k", "kraken")
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("status", "amount", "filled", "expected"),
    [
        ("open", 100.0, 0.0, "open"),
        ("open", 100.0, 40.0, "open"),
        ("closed", 100.0, 100.0, "filled"),
        ("closed", 0.3, 0.1 + 0.2, "filled"),  # float noise is not a missing fill
        ("closed", 100.0, 40.0, "cancelled"),  # ended part-filled: the rest may be sent
        ("closed", 100.0, 0.0, "cancelled"),
        ("canceled", 100.0, 0.0, "cancelled"),
        ("canceled", 100.0, 40.0, "cancelled"),
        ("canceled", 100.0, 100.0, "filled"),  # the fill won the race with the cancel
        ("expired", 100.0, 30.0, "cancelled"),
        ("rejected", 100.0, 0.0, "rejected"),
        (None, 100.0, None, "open"),  # no state yet: not final, never resent
        ("pending_cancel", 100.0, 0.0, "open"),  # unmapped by ccxt: not final
    ],
)
def test_unified_status_is_read_as_the_executor_needs(
    status: str | None, amount: float, filled: float | None, expected: str
) -> None:
    assert order_status(status, amount, filled) == expected


def test_a_finished_order_of_unknown_fill_is_not_guessed() -> None:
    with pytest.raises(ValueError, match="closed order"):
        order_status("closed", 100.0, None)


class BareAckClient:
    """A venue answering create and cancel with ids only (as Bybit's v5 API does), and
    listing orders with ccxt's unified fields; records the unified calls made."""

    id = "bare"

    def __init__(self, echo: str | None = None) -> None:
        self.has = dict.fromkeys(
            ["createOrder", "cancelOrder", "fetchOpenOrders", "fetchOrders"], True
        )
        self.calls: list[str] = []
        self.echo = echo
        self.orders: list[dict[str, Any]] = []

    async def create_order(self, *args: Any, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("create_order")
        cid = params["clientOrderId"]
        self.orders.append(
            {"id": "9", "clientOrderId": cid, "symbol": "X/USDT:USDT", "side": "buy",
             "amount": 2.0, "filled": 2.0, "average": 10.0, "status": "closed"}
        )  # fmt: skip
        return {"id": "9", "clientOrderId": self.echo or cid, "status": None}

    async def fetch_open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        self.calls.append("fetch_open_orders")
        return [o for o in self.orders if o["status"] == "open"]

    async def fetch_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        self.calls.append("fetch_orders")
        return self.orders


async def test_an_acknowledgement_without_state_is_settled_by_a_lookup() -> None:
    client = BareAckClient()
    placed = await UnifiedBroker(client, "b").place("X/USDT:USDT", "buy", 2.0, "h-1-0-0")
    assert (placed.venue_order_id, placed.client_id, placed.status, placed.filled) == (
        "9",
        "h-1-0-0",
        "filled",
        2.0,
    )
    assert client.calls == ["create_order", "fetch_open_orders", "fetch_orders"]


async def test_a_venue_that_rewrites_the_client_id_stops_the_order_flow() -> None:
    # Lookups by the id sent would never find the order: an order of unknown fate would
    # look absent and be sent again. Refuse loudly instead (the executor halts on it).
    broker = UnifiedBroker(BareAckClient(echo="x-h-1-0-0"), "b")
    with pytest.raises(UnsupportedVenueError, match="the venue answered 'x-h-1-0-0'"):
        await broker.place("X/USDT:USDT", "buy", 2.0, "h-1-0-0")
