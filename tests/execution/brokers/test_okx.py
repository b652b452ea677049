"""OKX v5 through the real ccxt ``okx`` client and ``OkxBroker``: a BTC hedge on the USDT
swap (amounts in contracts of 0.01 BTC), its alphanumeric ``clOrdId``, and its lookup by
``clOrdId``, as OKX's v5 API documents them."""

from __future__ import annotations

from typing import Any

from hedger.config import Venue
from hedger.execution.brokers import OkxBroker
from hedger.execution.brokers.client_ids import fingerprint, is_own_client_id
from tests.ccxt_loopback.okx import API_KEY, PASSPHRASE, SECRET, Okx
from tests.execution.brokers.conftest import DAEMON, wire

CONFIG = Venue(exchange="okx", api_key=API_KEY, secret=SECRET, password=PASSPHRASE)


async def test_a_btc_hedge_is_placed_in_contracts_and_found_by_its_cl_ord_id(
    under_test: Any,
) -> None:
    v = await under_test(Okx(fill_price="90011.2").routes(), CONFIG)
    assert isinstance(v.broker, OkxBroker)
    mark = len(v.server.requests)

    # 0.56789 BTC of delta to sell: BTC-USDT-SWAP counts contracts of 0.01 BTC, lot 0.01.
    leg = await v.hedge("BTC-USDT-SWAP", "sell", 0.56789, 90_000.0)

    assert (leg.instrument.symbol, leg.instrument.amount_size, leg.instrument.amount_step) == (
        "BTC/USDT:USDT",
        0.01,
        0.01,
    )
    assert leg.amount == 56.78
    # clOrdId: at most 32 letters and digits; the daemon's name travels as its fingerprint.
    cl_ord_id = f"h{fingerprint(DAEMON)}1l0a0"
    assert leg.fill.client_id == cl_ord_id and cl_ord_id.isalnum() and len(cl_ord_id) <= 32
    assert is_own_client_id(cl_ord_id, DAEMON) and not is_own_client_id(cl_ord_id, "alt")
    assert (leg.fill.order.status, leg.fill.order.filled, leg.fill.order.average_price) == (
        "filled",
        56.78,
        90011.2,
    )
    place, lookup = v.server.since(mark)
    # ccxt sends one order as a batch of one; its answer is an acknowledgement (sCode 0).
    assert (place.method, place.path, place.query) == ("POST", "/api/v5/trade/batch-orders", ())
    assert place.json() == [
        {
            "instId": "BTC-USDT-SWAP",
            "side": "sell",
            "ordType": "market",
            "sz": "56.78",
            "tdMode": "cross",
            "clOrdId": cl_ord_id,
        }
    ]
    assert "tag" not in place.json()[0]  # no broker tag: the id is ours
    by_id = [("instId", "BTC-USDT-SWAP"), ("clOrdId", cl_ord_id)]
    assert wire([lookup]) == [("GET", "/api/v5/trade/order", by_id)]

    mark = len(v.server.requests)
    found = await v.broker.find(cl_ord_id, "BTC/USDT:USDT")
    assert [(o.venue_order_id, o.client_id, o.status, o.filled) for o in found.orders] == [
        (leg.fill.order.venue_order_id, cl_ord_id, "filled", 56.78)
    ]
    assert wire(v.server.since(mark)) == [("GET", "/api/v5/trade/order", by_id)]


async def test_an_unknown_cl_ord_id_is_absent(under_test: Any) -> None:
    v = await under_test(Okx().routes(), CONFIG)
    assert (await v.broker.find("h0000000019l0a0", "BTC/USDT:USDT")).orders == []
    (asked,) = v.server.calls("GET", "/api/v5/trade/order")
    assert asked.params == {"instId": "BTC-USDT-SWAP", "clOrdId": "h0000000019l0a0"}
