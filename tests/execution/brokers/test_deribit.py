"""Deribit through the real ccxt ``deribit`` client and ``DeribitBroker``: a BTC hedge on the
inverse perpetual (amounts in USD), its ``label`` and ``valid_until``, and its lookup by
label, as Deribit's API v2 documents them (every request's signature checked)."""

from __future__ import annotations

from typing import Any

from hedger.config import Venue
from hedger.execution.brokers import DeribitBroker
from tests.ccxt_loopback.deribit import API_KEY, NOW_MS, SECRET, Deribit
from tests.execution.brokers.conftest import DAEMON, wire

CONFIG = Venue(exchange="deribit", api_key=API_KEY, secret=SECRET)


async def test_an_inverse_btc_hedge_is_placed_with_its_label_and_found_by_it(
    under_test: Any,
) -> None:
    v = await under_test(Deribit(fill_price=90000.5).routes(), CONFIG)
    assert isinstance(v.broker, DeribitBroker)
    mark = len(v.server.requests)

    # 0.5 BTC of delta to sell at 90 000: BTC-PERPETUAL's amount is USD (ccxt passes
    # Deribit's own amount through), a multiple of its 10 USD lot.
    leg = await v.hedge("BTC-PERPETUAL", "sell", 0.5, 90_000.0, order_ttl_s=10.0)

    assert (leg.instrument.symbol, leg.instrument.inverse, leg.instrument.amount_size) == (
        "BTC/USD:BTC",
        True,
        1.0,
    )
    assert leg.amount == 45_000
    assert leg.fill.client_id == f"{DAEMON}-1-0-0"
    assert (leg.fill.order.status, leg.fill.order.filled) == ("filled", 45_000)
    sent = v.server.since(mark)
    assert wire(sent, volatile=frozenset({"valid_until"})) == [
        ("GET", "/api/v2/public/get_time", []),
        (
            "GET",
            "/api/v2/private/sell",
            [
                ("instrument_name", "BTC-PERPETUAL"),
                ("amount", "45000"),
                ("type", "market"),
                ("label", "alt-book-1-0-0"),
                ("valid_until", "*"),
            ],
        ),
    ]
    # 10 s after Deribit's own clock (get_time answered NOW_MS), not ours: the few ms
    # between learning the clock and sending are all that may add.
    assert 0 <= int(sent[1].params["valid_until"]) - (NOW_MS + 10_000) < 1_000

    mark = len(v.server.requests)
    found = await v.broker.find(leg.fill.client_id, leg.instrument.symbol)
    assert [(o.venue_order_id, o.client_id, o.status) for o in found.orders] == [
        (leg.fill.order.venue_order_id, "alt-book-1-0-0", "filled")
    ]
    assert found.venue_time_ms == NOW_MS  # usIn: what proves absence after valid_until
    assert wire(v.server.since(mark)) == [
        (
            "GET",
            "/api/v2/private/get_order_state_by_label",
            [("currency", "BTC"), ("label", "alt-book-1-0-0")],
        )
    ]
