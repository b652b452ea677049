"""Binance USD-M futures, answered in the formats of Binance's derivatives API docs
(developers.binance.com/docs/derivatives/usds-margined-futures): exchange information,
``POST /fapi/v1/order`` (``newOrderRespType=RESULT``), ``GET /fapi/v1/order`` by
``origClientOrderId``, and ``-2013 Order does not exist`` for an unknown id."""

from __future__ import annotations

import hashlib
import hmac
import itertools
from typing import Any

from tests.ccxt_loopback.server import Reply, Request

API_KEY = "binance-key"
SECRET = "binance-secret"
NOW_MS = 1_796_000_000_000


def _filters(tick: str, min_price: str, step: str, min_qty: str, notional: str) -> list[Any]:
    return [
        {
            "filterType": "PRICE_FILTER",
            "maxPrice": "4529764",
            "minPrice": min_price,
            "tickSize": tick,
        },
        {"filterType": "LOT_SIZE", "maxQty": "1000", "minQty": min_qty, "stepSize": step},
        {"filterType": "MARKET_LOT_SIZE", "maxQty": "120", "minQty": min_qty, "stepSize": step},
        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
        {"filterType": "MIN_NOTIONAL", "notional": notional},
        {
            "filterType": "PERCENT_PRICE",
            "multiplierUp": "1.0500",
            "multiplierDown": "0.9500",
            "multiplierDecimal": "4",
        },
    ]


def _symbol(
    symbol: str,
    base: str,
    contract: str,
    delivery_ms: int,
    filters: list[Any],
    price_precision: int,
    qty_precision: int,
) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "pair": f"{base}USDT",
        "contractType": contract,
        "deliveryDate": delivery_ms,
        "onboardDate": 1569398400000,
        "status": "TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": base,
        "quoteAsset": "USDT",
        "marginAsset": "USDT",
        "pricePrecision": price_precision,
        "quantityPrecision": qty_precision,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": ["PoW"],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": filters,
        "orderTypes": [
            "LIMIT",
            "MARKET",
            "STOP",
            "STOP_MARKET",
            "TAKE_PROFIT",
            "TAKE_PROFIT_MARKET",
            "TRAILING_STOP_MARKET",
        ],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        "permissionSets": ["GRID", "COPY"],
    }


EXCHANGE_INFO = {
    "timezone": "UTC",
    "serverTime": NOW_MS,
    "futuresType": "U_MARGINED",
    "rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
        {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
    ],
    "exchangeFilters": [],
    "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
    "symbols": [
        _symbol(
            "BTCUSDT",
            "BTC",
            "PERPETUAL",
            4133404800000,
            _filters("0.10", "556.80", "0.001", "0.001", "100"),
            2,
            3,
        ),
        _symbol(
            "ETHUSDT",
            "ETH",
            "PERPETUAL",
            4133404800000,
            _filters("0.01", "39.86", "0.001", "0.001", "20"),
            2,
            3,
        ),
        _symbol(
            "1000PEPEUSDT",
            "1000PEPE",
            "PERPETUAL",
            4133404800000,
            _filters("0.0000001", "0.0000010", "1", "1", "5"),
            7,
            0,
        ),
        _symbol(
            "BTCUSDT_261225",
            "BTC",
            "CURRENT_QUARTER",
            1798185600000,
            _filters("0.10", "576.30", "0.001", "0.001", "5"),
            1,
            3,
        ),
    ],
}


class BinanceUsdm:
    """The venue's side: orders by client id, each filled in full at ``fill_price``."""

    def __init__(self, fill_price: str = "90012.30") -> None:
        self.fill_price = fill_price
        self.orders: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(4_000_000_001)

    def routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("GET", "/fapi/v1/exchangeInfo"): lambda _: Reply(EXCHANGE_INFO),
            # ccxt reads the spot wallet's coins (and margin pairs) with any key set.
            ("GET", "/sapi/v1/capital/config/getall"): lambda _: Reply([]),
            ("GET", "/sapi/v1/margin/allPairs"): lambda _: Reply([]),
            ("GET", "/sapi/v1/margin/isolated/allPairs"): lambda _: Reply([]),
            ("POST", "/fapi/v1/order"): self.new_order,
            ("GET", "/fapi/v1/order"): self.query_order,
            ("GET", "/fapi/v1/openOrders"): self.open_orders,
        }

    def new_order(self, request: Request) -> Reply:
        form = dict(request.form())
        assert_signed(request.body, request.headers)
        order_id = next(self._ids)
        filled = form["type"] == "MARKET"
        order = {
            "orderId": order_id,
            "symbol": form["symbol"],
            "status": "FILLED" if filled else "NEW",
            "clientOrderId": form["newClientOrderId"],
            "price": form.get("price", "0"),
            "avgPrice": self.fill_price if filled else "0.00",
            "origQty": form["quantity"],
            "executedQty": form["quantity"] if filled else "0",
            "cumQty": form["quantity"] if filled else "0",
            "cumQuote": "0",
            "timeInForce": form.get("timeInForce", "GTC"),
            "type": form["type"],
            "reduceOnly": False,
            "closePosition": False,
            "side": form["side"],
            "positionSide": "BOTH",
            "stopPrice": "0",
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": form["type"],
            "priceMatch": "NONE",
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "goodTillDate": 0,
            "updateTime": NOW_MS,
        }
        self.orders[form["newClientOrderId"]] = order
        return Reply(order)

    def query_order(self, request: Request) -> Reply:
        assert_signed(request.raw_query, request.headers)
        order = self.orders.get(request.params.get("origClientOrderId", ""))
        if order is None:
            return Reply({"code": -2013, "msg": "Order does not exist."}, status=400)
        return Reply({**order, "time": NOW_MS})

    def open_orders(self, request: Request) -> Reply:
        assert_signed(request.raw_query, request.headers)
        symbol = request.params.get("symbol")
        return Reply(
            [
                {**o, "time": NOW_MS}
                for o in self.orders.values()
                if o["status"] == "NEW" and symbol in (None, o["symbol"])
            ]
        )


def assert_signed(payload: str, headers: Any) -> None:
    """HMAC-SHA256 over the query/body before ``&signature=``, keyed by the secret."""
    assert headers.get("X-MBX-APIKEY") == API_KEY
    signed, _, signature = payload.rpartition("&signature=")
    expected = hmac.new(SECRET.encode(), signed.encode(), hashlib.sha256).hexdigest()
    assert signature == expected, "bad signature"
