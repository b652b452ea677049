"""The executor against the real paper venue through ccxt: exactly one order per leg."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt_async
import pytest

from hedger.execution.brokers import DeribitBroker
from hedger.execution.executor import Executor, OrderRefusedError
from hedger.execution.journal import Journal
from hedger.paper.server import PaperVenueServer
from tests.execution.conftest import SYMBOL, record_intent, wall_ms
from tests.paper.conftest import admin, point_at


@pytest.fixture
async def client(venue: PaperVenueServer) -> AsyncIterator[Any]:
    ex = point_at(ccxt_async.deribit({"apiKey": "paper", "secret": "paper"}), venue, timeout_ms=800)
    await ex.load_markets()
    yield ex
    await ex.close()


def _executor(journal: Journal, client: Any) -> Executor:
    return Executor(
        journal,
        DeribitBroker(client, "paper"),
        daemon_name="t",
        clock=wall_ms,
        lookup_timeout_s=10.0,
        order_ttl_s=0.8,
        unknown_window_s=1.0,
        backoff_initial_s=0.05,
        backoff_max_s=0.5,
    )


async def _faults(venue: PaperVenueServer, **changes: Any) -> None:
    await admin(venue, "/admin/faults", changes)


def _venue_orders(venue: PaperVenueServer, prefix: str) -> list[Any]:
    return [o for o in venue.exchange.engine.orders.values() if o.label.startswith(prefix)]


async def test_a_hedge_is_sent_once_and_journaled(
    venue: PaperVenueServer, client: Any, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    seq = record_intent(journal)
    fill = await _executor(journal, client).execute(seq, 0, SYMBOL, "buy", 100)
    assert fill.order.status == "filled" and fill.attempts == 1
    (record,) = journal.orders_of_intent(seq)
    assert record.status == "filled" and record.venue_order_id == fill.order.venue_order_id
    assert [kind for _, kind, _ in journal.events(fill.client_id)] == ["order_filled"]
    assert len(_venue_orders(venue, f"t-{seq}-")) == 1


async def test_timed_out_ack_is_found_by_id_not_resent(
    venue: PaperVenueServer, client: Any, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    seq = record_intent(journal)
    await _faults(venue, order_timeouts=1, hang_s=3)
    fill = await _executor(journal, client).execute(seq, 0, SYMBOL, "buy", 100)
    assert fill.attempts == 1 and fill.order.status == "filled"
    assert len(_venue_orders(venue, f"t-{seq}-")) == 1
    kinds = [kind for _, kind, _ in journal.events(fill.client_id)]
    assert kinds == ["order_send_failed", "order_filled"]


async def test_rate_limit_burst_backs_off_without_duplicates(
    venue: PaperVenueServer, client: Any, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    seq = record_intent(journal)
    await _faults(venue, error_share=1.0, error_status=429)

    async def lift() -> None:
        await asyncio.sleep(1.0)
        await _faults(venue, error_share=0.0)

    lifting = asyncio.create_task(lift())
    fill = await _executor(journal, client).execute(seq, 0, SYMBOL, "buy", 100)
    await lifting
    assert fill.order.status == "filled"
    assert len(_venue_orders(venue, f"t-{seq}-")) == 1
    records = journal.orders_of_intent(seq)
    assert [r.status for r in records][-1] == "filled"
    assert all(
        r.status == "not_sent" for r in records[:-1]
    )  # refused at the door, never resent blind


async def test_refused_order_is_journaled_and_not_retried(
    venue: PaperVenueServer, client: Any, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    seq = record_intent(journal)
    await _faults(venue, reject_orders=True)
    with pytest.raises(OrderRefusedError, match="InsufficientFunds"):
        await _executor(journal, client).execute(seq, 0, SYMBOL, "buy", 100)
    (record,) = journal.orders_of_intent(seq)
    assert record.status == "rejected"


async def test_restart_after_a_crash_between_journaled_and_acked(
    venue: PaperVenueServer, client: Any, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite"
    journal = Journal(path)
    seq = record_intent(journal)
    # The previous run journaled the order and sent it, then died before the ack.
    journal.record_order(
        now_ms=wall_ms(),
        client_id=f"t-{seq}-0-0",
        intent_seq=seq,
        leg=0,
        attempt=0,
        venue="paper",
        symbol=SYMBOL,
        side="buy",
        qty=100.0,
    )
    await DeribitBroker(client, "paper").place(SYMBOL, "buy", 100, f"t-{seq}-0-0")
    # ...and another whose request never left.
    journal.record_order(
        now_ms=wall_ms(),
        client_id=f"t-{seq}-1-0",
        intent_seq=seq,
        leg=1,
        attempt=0,
        venue="paper",
        symbol=SYMBOL,
        side="buy",
        qty=100.0,
        valid_until_ms=wall_ms() + 300,  # the venue refuses it if it ever arrives later
    )
    journal.close()

    restarted = _executor(Journal(path), client)
    resolved = {r.client_id: r.status for r in await restarted.reconcile()}
    assert resolved == {f"t-{seq}-0-0": "filled", f"t-{seq}-1-0": "not_sent"}
    assert len(_venue_orders(venue, f"t-{seq}-")) == 1
    assert restarted.journal.unresolved_orders() == []


async def test_unfilled_limit_is_cancelled_before_the_rest_goes_at_market(
    venue: PaperVenueServer, client: Any, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    seq = record_intent(journal)
    bid = (await client.fetch_ticker(SYMBOL))["bid"]
    far = float(client.price_to_precision(SYMBOL, bid * 0.8))  # will not fill in 0.5 s
    fill = await _executor(journal, client).execute(
        seq, 0, SYMBOL, "buy", 100, limit_price=far, limit_timeout_s=0.5, amount_step=10
    )
    assert fill.filled_total == 100 and fill.order.status == "filled"
    limit, market = journal.orders_of_intent(seq)
    assert (limit.attempt, limit.status, limit.filled_qty) == (0, "cancelled", 0.0)
    assert (market.attempt, market.status, market.qty) == (1, "filled", 100.0)
    # The limit was known cancelled before the market order was even journaled.
    assert limit.updated_ms <= market.created_ms
    states = sorted((o.label, o.state) for o in _venue_orders(venue, f"t-{seq}-"))
    assert states == [(f"t-{seq}-0-0", "cancelled"), (f"t-{seq}-0-1", "filled")]


async def test_marketable_limit_fills_as_one_order(
    venue: PaperVenueServer, client: Any, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    seq = record_intent(journal)
    ask = (await client.fetch_ticker(SYMBOL))["ask"]
    through = float(client.price_to_precision(SYMBOL, ask * 1.01))
    fill = await _executor(journal, client).execute(
        seq, 0, SYMBOL, "buy", 100, limit_price=through, limit_timeout_s=2.0, amount_step=10
    )
    assert fill.filled_total == 100 and fill.attempts == 1
    (record,) = journal.orders_of_intent(seq)
    assert record.status == "filled"
    assert len(_venue_orders(venue, f"t-{seq}-")) == 1
