"""Deribit API v2, answered in the formats of docs.deribit.com (as ccxt reads them: see
shared/reference/deribit-ccxt.md): currencies and instruments, ``public/get_time``,
``private/buy|sell`` (``{order, trades}``), ``private/get_order_state_by_label``; every
private request's ``deri-hmac-sha256`` signature is checked."""

from __future__ import annotations

import hashlib
import hmac
import itertools
from typing import Any

from tests.ccxt_loopback.server import Reply, Request

API_KEY = "deribit-key"
SECRET = "deribit-secret"
NOW_MS = 1_796_000_000_000

CURRENCIES = [
    {"currency": "BTC", "currency_long": "Bitcoin", "withdrawal_fee": 0.0001},
    {"currency": "ETH", "currency_long": "Ethereum", "withdrawal_fee": 0.0006},
    {"currency": "USDC", "currency_long": "USD Coin", "withdrawal_fee": 1.0},
]


def _instrument(name: str, kind: str, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "instrument_name": name,
        "kind": kind,
        "taker_commission": 0.0005,
        "maker_commission": 0.0,
        "is_active": True,
        "creation_timestamp": 1534242287000,
        "expiration_timestamp": 32503708800000,
    }
    row.update(fields)
    return row


INSTRUMENTS = [
    _instrument(
        "BTC-PERPETUAL",
        "future",
        settlement_period="perpetual",
        base_currency="BTC",
        counter_currency="USD",
        quote_currency="USD",
        settlement_currency="BTC",
        contract_size=10.0,
        min_trade_amount=10.0,
        tick_size=0.5,
    ),
    _instrument(
        "ETH-PERPETUAL",
        "future",
        settlement_period="perpetual",
        base_currency="ETH",
        counter_currency="USD",
        quote_currency="USD",
        settlement_currency="ETH",
        contract_size=1.0,
        min_trade_amount=1.0,
        tick_size=0.05,
    ),
    _instrument(
        "BTC_USDC-PERPETUAL",
        "future",
        settlement_period="perpetual",
        base_currency="BTC",
        counter_currency="USDC",
        quote_currency="USDC",
        settlement_currency="USDC",
        contract_size=0.001,
        min_trade_amount=0.001,
        tick_size=1.0,
    ),
    _instrument(
        "BTC-25DEC26-100000-C",
        "option",
        settlement_period="month",
        base_currency="BTC",
        counter_currency="USD",
        quote_currency="BTC",
        settlement_currency="BTC",
        strike=100000.0,
        option_type="call",
        contract_size=1.0,
        min_trade_amount=0.1,
        tick_size=0.0001,
        taker_commission=0.0003,
        maker_commission=0.0003,
        expiration_timestamp=1798185600000,
        creation_timestamp=1790000000000,
    ),
    _instrument(
        "BTC_USDC",
        "spot",
        base_currency="BTC",
        counter_currency="USDC",
        quote_currency="USDC",
        contract_size=0.0001,
        min_trade_amount=0.0001,
        tick_size=1.0,
        taker_commission=0.0,
    ),
]


def _answer(result: Any) -> Reply:
    return Reply(
        {
            "jsonrpc": "2.0",
            "result": result,
            "usIn": NOW_MS * 1000,
            "usOut": NOW_MS * 1000 + 50,
            "usDiff": 50,
            "testnet": True,
        }
    )


class Deribit:
    """The venue's side: market orders fill at once at ``fill_price``, kept by label."""

    def __init__(self, fill_price: float = 90000.5) -> None:
        self.fill_price = fill_price
        self.orders: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("GET", "/api/v2/public/get_currencies"): lambda _: _answer(CURRENCIES),
            ("GET", "/api/v2/public/get_instruments"): lambda _: _answer(INSTRUMENTS),
            ("GET", "/api/v2/public/get_time"): lambda _: _answer(NOW_MS),
            ("GET", "/api/v2/private/buy"): self.trade,
            ("GET", "/api/v2/private/sell"): self.trade,
            ("GET", "/api/v2/private/get_order_state_by_label"): self.by_label,
        }

    def trade(self, request: Request) -> Reply:
        assert_signed(request)
        params = request.params
        market = params["type"] == "market"
        amount = float(params["amount"])
        order = {
            "order_id": f"ORD-{next(self._ids)}",
            "instrument_name": params["instrument_name"],
            "direction": request.path.rsplit("/", 1)[1],
            "order_type": params["type"],
            "order_state": "filled" if market else "open",
            "amount": amount,
            "filled_amount": amount if market else 0.0,
            "average_price": self.fill_price if market else 0.0,
            "price": "market_price" if market else float(params["price"]),
            "label": params.get("label", ""),
            "time_in_force": "good_til_cancelled",
            "post_only": False,
            "reduce_only": False,
            "creation_timestamp": NOW_MS,
            "last_update_timestamp": NOW_MS,
            "commission": 0.0000011 if market else 0.0,
        }
        self.orders.append(order)
        return _answer({"order": order, "trades": []})

    def by_label(self, request: Request) -> Reply:
        assert_signed(request)
        params = request.params
        found = [
            o
            for o in self.orders
            if o["label"] == params["label"] and o["instrument_name"].startswith(params["currency"])
        ]
        return _answer(found)


def assert_signed(request: Request) -> None:
    """``deri-hmac-sha256``: HMAC of ts, nonce, method, the raw request target and body."""
    scheme, _, fields = request.headers["Authorization"].partition(" ")
    assert scheme == "deri-hmac-sha256"
    parts = dict(field.split("=", 1) for field in fields.split(","))
    assert parts["id"] == API_KEY
    target = request.path + (f"?{request.raw_query}" if request.raw_query else "")
    signed = f"{parts['ts']}\n{parts['nonce']}\n{request.method}\n{target}\n\n"
    expected = hmac.new(SECRET.encode(), signed.encode(), hashlib.sha256).hexdigest()
    assert parts["sig"] == expected, "bad signature"
