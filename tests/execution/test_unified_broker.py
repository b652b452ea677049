"""The unified-ccxt broker against the real paper venue, alone and under the executor.

The venue speaks Deribit, and ccxt's Deribit parser never reads the client id back (its
``parse_order`` sets ``clientOrderId`` to None, against real Deribit too): a broker that
uses only unified calls cannot find a Deribit order by client id, which is why Deribit has
its own broker. To drive the unified broker through ccxt's real code path here, the client
below differs from ``ccxt.async_support.deribit`` in one line: its parser reads the label
back as ``clientOrderId``, as ccxt's parsers of Binance, Bybit or OKX read their venues'
echoed client ids. Requests, signing, the unified methods and error mapping are ccxt's own.

ccxt's ``fetch_closed_orders`` calls Deribit's ``private/get_order_history_by_instrument``,
which the paper venue does not serve (yet): ``_serve_order_history`` stands in for it with
Deribit's documented semantics (closed orders only, newest first, ``count`` default 20, and
without ``include_unfilled`` no order that closed unfilled), and steps aside once the venue
serves the method itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt_async
import pytest

from hedger.execution.brokers import DeribitBroker, UnifiedBroker
from hedger.execution.executor import Executor
from hedger.execution.journal import Journal
from hedger.paper.auth import ApiKey
from hedger.paper.server import PaperVenueServer
from tests.execution.conftest import SYMBOL, record_intent, wall_ms
from tests.paper.conftest import admin, make_server, point_at

HISTORY = "private/get_order_history_by_instrument"


class LabelEchoDeribit(ccxt_async.deribit):  # type: ignore[misc]
    """ccxt's Deribit client whose parser reads the order's label back as its client id."""

    def parse_order(self, order: dict[str, Any], market: Any = None) -> Any:
        parsed = super().parse_order(order, market)
        parsed["clientOrderId"] = order.get("label") or None
        return parsed


def _serve_order_history(server: PaperVenueServer) -> None:
    exchange = server.exchange
    if exchange.knows(HISTORY):
        return

    def history(params: Mapping[str, Any], account: ApiKey | None) -> list[dict[str, object]]:
        assert account is not None
        unfilled = str(params.get("include_unfilled", "false")).lower() == "true"
        rows = [
            o
            for o in exchange.engine.orders.values()
            if o.account == account.name
            and o.instrument_name == params["instrument_name"]
            and str(o.state) != "open"
            and (unfilled or o.filled_lots > 0)
        ]
        rows.sort(key=lambda o: (o.last_update_timestamp, o.creation_timestamp), reverse=True)
        offset, count = int(params.get("offset", 0)), int(params.get("count", 20))
        return [o.to_deribit() for o in rows[offset : offset + count]]

    exchange._methods[HISTORY] = history


@pytest.fixture
async def venue() -> AsyncIterator[PaperVenueServer]:
    server = make_server(history_minutes=0)
    _serve_order_history(server)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client(venue: PaperVenueServer) -> AsyncIterator[Any]:
    ex = point_at(LabelEchoDeribit({"apiKey": "paper", "secret": "paper"}), venue, timeout_ms=800)
    await ex.load_markets()
    yield ex
    await ex.close()


@pytest.fixture
def broker(client: Any) -> UnifiedBroker:
    return UnifiedBroker(client, "paper")


def _labels(venue: PaperVenueServer, prefix: str) -> list[tuple[str, str]]:
    orders = venue.exchange.engine.orders.values()
    return sorted((o.label, str(o.state)) for o in orders if o.label.startswith(prefix))


async def _far_bid(client: Any) -> float:
    """A buy price that will not fill for seconds."""
    bid = (await client.fetch_ticker(SYMBOL))["bid"]
    return float(client.price_to_precision(SYMBOL, bid * 0.8))


# -- the broker alone -----------------------------------------------------------------------


async def test_market_order_is_placed_with_its_client_id_and_found_filled(
    venue: PaperVenueServer, broker: UnifiedBroker
) -> None:
    placed = await broker.place(SYMBOL, "buy", 100, "u-1")
    assert (placed.client_id, placed.status, placed.filled, placed.side) == (
        "u-1",
        "filled",
        100,
        "buy",
    )
    assert _labels(venue, "u-") == [("u-1", "filled")]  # clientOrderId became the label
    found = await broker.find("u-1", SYMBOL)
    assert [(o.venue_order_id, o.status, o.filled) for o in found.orders] == [
        (placed.venue_order_id, "filled", 100.0)
    ]
    assert found.venue_time_ms is None  # unified calls do not carry the venue's clock
    assert (await broker.find("u-2", SYMBOL)).orders == []


async def test_resting_limit_is_found_open_listed_and_cancelled(
    venue: PaperVenueServer, client: Any, broker: UnifiedBroker
) -> None:
    placed = await broker.place(SYMBOL, "buy", 100, "u-rest", price=await _far_bid(client))
    assert (placed.status, placed.filled) == ("open", 0.0)
    (found,) = (await broker.find("u-rest", SYMBOL)).orders
    assert (found.venue_order_id, found.status) == (placed.venue_order_id, "open")
    listed = await broker.open_orders(SYMBOL)
    assert [(o.client_id, o.status) for o in listed] == [("u-rest", "open")]
    assert [o.client_id for o in await broker.open_orders()] == ["u-rest"]

    cancelled = await broker.cancel(placed.venue_order_id, SYMBOL)
    assert (cancelled.venue_order_id, cancelled.client_id, cancelled.status) == (
        placed.venue_order_id,
        "u-rest",
        "cancelled",
    )
    assert await broker.open_orders(SYMBOL) == []
    assert _labels(venue, "u-") == [("u-rest", "cancelled")]
    # Deribit's order history leaves out orders that closed unfilled (no include_unfilled
    # in a unified call): gone from every listing. The executor relies on cancel's answer.
    assert (await broker.find("u-rest", SYMBOL)).orders == []


async def test_part_filled_order_that_ended_is_cancelled_not_filled(
    client: Any, broker: UnifiedBroker
) -> None:
    # An IOC buy bigger than the whole book: it takes what is there and the rest is
    # cancelled by the venue. It must not read as "filled" (the executor would not send
    # the rest), whatever ccxt's unified status says.
    book = await client.fetch_order_book(SYMBOL)
    size = float(client.amount_to_precision(SYMBOL, sum(a[1] for a in book["asks"]) + 100_000))
    limit = float(book["asks"][min(2, len(book["asks"]) - 1)][0])
    await client.create_order(
        SYMBOL, "limit", "buy", size, limit, {"clientOrderId": "u-ioc", "timeInForce": "IOC"}
    )
    (found,) = (await broker.find("u-ioc", SYMBOL)).orders
    assert found.status == "cancelled"
    assert 0 < found.filled < found.amount == size


async def test_round_price_and_amount_on_the_market_precision(
    client: Any, broker: UnifiedBroker
) -> None:
    deribit = DeribitBroker(client, "paper")
    for rounding in (broker, deribit):
        assert rounding.round_price(SYMBOL, 90_000.3) == 90_000.5  # tick 0.5, nearest
        assert rounding.round_amount(SYMBOL, 109.0) == 100.0  # lot 10, never more than asked
        with pytest.raises(ccxt_async.InvalidOrder):
            rounding.round_amount(SYMBOL, 9.0)  # less than one lot


# -- the executor with the unified broker ---------------------------------------------------


def _executor(journal: Journal, broker: UnifiedBroker, window_s: float = 1.0) -> Executor:
    return Executor(
        journal,
        broker,
        daemon_name="t",
        clock=wall_ms,
        lookup_timeout_s=10.0,
        order_ttl_s=0.8,  # asked for, but the unified broker offers none
        unknown_window_s=window_s,
        backoff_initial_s=0.05,
        backoff_max_s=0.5,
    )


async def test_timed_out_answer_is_found_by_client_id_not_resent(
    venue: PaperVenueServer, broker: UnifiedBroker, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    seq = record_intent(journal)
    await admin(venue, "/admin/faults", {"order_timeouts": 1, "hang_s": 3})
    fill = await _executor(journal, broker).execute(seq, 0, SYMBOL, "buy", 100)
    assert (fill.attempts, fill.order.status, fill.filled_total) == (1, "filled", 100.0)
    assert _labels(venue, f"t-{seq}-") == [(f"t-{seq}-0-0", "filled")]
    (record,) = journal.orders_of_intent(seq)
    assert (record.status, record.valid_until_ms) == ("filled", None)
    kinds = [kind for _, kind, _ in journal.events(fill.client_id)]
    assert kinds == ["order_send_failed", "order_filled"]


async def test_lost_request_is_resent_only_after_the_unknown_window(
    venue: PaperVenueServer, broker: UnifiedBroker, tmp_path: Path
) -> None:
    # The first request dies at the venue's door (503, never placed), and lookups fail for
    # a while too. Without a time-to-live nothing proves it will not land: its leg is sent
    # again only once the venue has shown it absent for the whole window.
    journal = Journal(tmp_path / "j.sqlite")
    seq = record_intent(journal)
    await admin(venue, "/admin/faults", {"error_share": 1.0, "error_status": 503})

    async def lift() -> None:
        await asyncio.sleep(0.3)
        await admin(venue, "/admin/faults", {"error_share": 0.0})

    lifting = asyncio.create_task(lift())
    fill = await _executor(journal, broker, window_s=1.0).execute(seq, 0, SYMBOL, "buy", 100)
    await lifting
    lost, sent = journal.orders_of_intent(seq)
    assert (lost.status, sent.status, fill.attempts) == ("abandoned", "filled", 2)
    assert sent.created_ms - lost.created_ms >= 1_000
    assert _labels(venue, f"t-{seq}-") == [(f"t-{seq}-0-1", "filled")]


async def test_unfilled_limit_is_cancelled_before_the_rest_goes_at_market(
    venue: PaperVenueServer, client: Any, broker: UnifiedBroker, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    seq = record_intent(journal)
    fill = await _executor(journal, broker).execute(
        seq, 0, SYMBOL, "buy", 100, limit_price=await _far_bid(client), limit_timeout_s=0.5
    )
    assert fill.filled_total == 100 and fill.order.status == "filled"
    limit, market = journal.orders_of_intent(seq)
    assert (limit.status, limit.filled_qty, market.status) == ("cancelled", 0.0, "filled")
    assert limit.updated_ms <= market.created_ms
    assert _labels(venue, f"t-{seq}-") == [
        (f"t-{seq}-0-0", "cancelled"),
        (f"t-{seq}-0-1", "filled"),
    ]
