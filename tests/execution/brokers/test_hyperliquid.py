"""Hyperliquid through the real ccxt ``hyperliquid`` client and ``HyperliquidBroker``: a BTC
hedge on the perpetual as an IOC limit through the mid by the configured slippage, with
ccxt's builder fee off, its 128-bit ``cloid``, and its lookup by ``orderStatus``, as
Hyperliquid's API documents them."""

from __future__ import annotations

from typing import Any

from hedger.config import Venue
from hedger.execution.brokers import HyperliquidBroker
from hedger.execution.brokers.client_ids import HYPERLIQUID, fingerprint, parse_client_id
from tests.ccxt_loopback.hyperliquid import PRIVATE_KEY, WALLET, Hyperliquid
from tests.execution.brokers.conftest import DAEMON

CONFIG = Venue(
    exchange="hyperliquid",
    wallet_address=WALLET,
    private_key=PRIVATE_KEY,
    hyperliquid={"market_slippage": 0.01},
)


async def test_a_btc_hedge_is_an_ioc_limit_through_the_mid_found_by_its_cloid(
    under_test: Any,
) -> None:
    venue = Hyperliquid()
    v = await under_test(venue.routes(), CONFIG)
    assert isinstance(v.broker, HyperliquidBroker)
    # Loading markets with keys set: ccxt approves its builder, at 0% since the fee is off,
    # and (set_referrer off) never sends setReferrer.
    (approval,) = venue.actions
    assert approval["action"]["type"] == "approveBuilderFee"
    assert approval["action"]["maxFeeRate"] == "0%"
    mark = len(v.server.requests)

    # 0.012345 BTC of delta to sell: the perp counts BTC in lots of 0.00001, rounded down
    # (ccxt alone would round 0.012345 up to 0.01235).
    leg = await v.hedge("BTC/USDC:USDC", "sell", 0.012345, 90_000.0)

    assert (leg.instrument.venue_id, leg.instrument.asset, leg.instrument.amount_step) == (
        "0",
        "BTC",
        0.00001,
    )
    assert leg.amount == 0.01234
    cloid = "0x" + fingerprint(DAEMON) + f"{1:016x}" + f"{0:04x}" + f"{0:04x}"
    assert leg.fill.client_id == cloid and HYPERLIQUID.alphabet.fullmatch(cloid)
    parts = parse_client_id(cloid)
    assert parts is not None and (parts.intent_seq, parts.leg, parts.attempt) == (1, 0, 0)
    assert (leg.fill.order.status, leg.fill.order.filled) == ("filled", 0.01234)

    mids, order, lookup = v.server.since(mark)
    assert (mids.method, mids.path, mids.json()) == ("POST", "/info", {"type": "allMids"})
    assert (order.method, order.path) == ("POST", "/exchange")
    sent = order.json()
    assert sent["action"] == {
        "type": "order",
        # 1% through the 90 011.5 mid for a sell: 89 111.385, at Hyperliquid's 5
        # significant figures; IOC, so what cannot fill there is cancelled by the venue.
        "orders": [
            {
                "a": 0,
                "b": False,
                "p": "89111",
                "s": "0.01234",
                "r": False,
                "t": {"limit": {"tif": "Ioc"}},
                "c": cloid,
            }
        ],
        "grouping": "na",
        # ccxt attaches its builder once approved; with the fee off, at 0.
        "builder": {"b": "0x6530512a6c89c7cfcebc3ba7fcd9ada5f30827a6", "f": 0},
    }
    assert set(sent) == {"action", "nonce", "signature"}
    assert set(sent["signature"]) == {"r", "s", "v"}
    # The answer ({"filled": {totalSz, avgPx, oid}}) has no state: looked up by cloid.
    assert (lookup.path, lookup.json()) == (
        "/info",
        {"type": "orderStatus", "user": WALLET, "oid": cloid},
    )

    mark = len(v.server.requests)
    found = await v.broker.find(cloid, "BTC/USDC:USDC")
    assert [(o.client_id, o.status, o.filled) for o in found.orders] == [(cloid, "filled", 0.01234)]
    (again,) = v.server.since(mark)
    assert again.json() == {"type": "orderStatus", "user": WALLET, "oid": cloid}


async def test_an_unknown_cloid_is_absent(under_test: Any) -> None:
    v = await under_test(Hyperliquid().routes(), CONFIG)
    other = "0x" + "ab" * 16
    assert (await v.broker.find(other, "BTC/USDC:USDC")).orders == []
    (asked,) = [r for r in v.server.requests if r.json().get("type") == "orderStatus"]
    assert asked.json()["oid"] == other
