"""Bybit v5, answered in the formats of bybit-exchange.github.io/docs/v5: instruments info
per category, ``POST /v5/order/create`` (``orderId`` and ``orderLinkId`` only), open orders
on ``/v5/order/realtime`` and finished ones on ``/v5/order/history``, both filterable by
``orderLinkId``."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from typing import Any

from tests.ccxt_loopback.server import Reply, Request

API_KEY = "bybit-key"
SECRET = "bybit-secret"
NOW_MS = 1_796_000_000_000


def _ok(result: Any) -> Reply:
    return Reply({"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": NOW_MS})


def _perp(
    symbol: str,
    base: str,
    quote: str,
    settle: str,
    contract: str,
    tick: str,
    step: str,
    min_qty: str,
    notional: str,
) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "contractType": contract,
        "status": "Trading",
        "baseCoin": base,
        "quoteCoin": quote,
        "launchTime": "1585526400000",
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": "2",
        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
        "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": tick},
        "lotSizeFilter": {
            "maxOrderQty": "1190.000",
            "minOrderQty": min_qty,
            "qtyStep": step,
            "postOnlyMaxOrderQty": "1190.000",
            "maxMktOrderQty": "500.000",
            "minNotionalValue": notional,
        },
        "unifiedMarginTrade": True,
        "fundingInterval": 480,
        "settleCoin": settle,
        "copyTrading": "both",
        "upperFundingRate": "0.00375",
        "lowerFundingRate": "-0.00375",
        "isPreListing": False,
        "preListingInfo": None,
        "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
    }


INSTRUMENTS = {
    "spot": [
        {
            "symbol": "BTCUSDT",
            "baseCoin": "BTC",
            "quoteCoin": "USDT",
            "innovation": "0",
            "status": "Trading",
            "marginTrading": "utaOnly",
            "stTag": "0",
            "lotSizeFilter": {
                "basePrecision": "0.000001",
                "quotePrecision": "0.00000001",
                "minOrderQty": "0.000048",
                "maxOrderQty": "71.73956243",
                "minOrderAmt": "1",
                "maxOrderAmt": "2000000",
            },
            "priceFilter": {"tickSize": "0.01"},
            "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
        }
    ],
    "linear": [
        _perp("BTCUSDT", "BTC", "USDT", "USDT", "LinearPerpetual", "0.10", "0.001", "0.001", "5"),
        _perp("SOLUSDT", "SOL", "USDT", "USDT", "LinearPerpetual", "0.010", "0.1", "0.1", "5"),
    ],
    "inverse": [
        _perp("BTCUSD", "BTC", "USD", "BTC", "InversePerpetual", "0.50", "1", "1", ""),
    ],
    "option": [],
}


SETTLE = {
    row["symbol"]: row["settleCoin"] for row in INSTRUMENTS["linear"] + INSTRUMENTS["inverse"]
}


class Bybit:
    """The venue's side: a unified account whose market orders fill at once."""

    def __init__(self, fill_price: str = "90010.5") -> None:
        self.fill_price = fill_price
        self.orders: dict[str, dict[str, Any]] = {}
        self.categories: dict[str, str] = {}
        self._ids = itertools.count(1)

    def routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("GET", "/v5/market/instruments-info"): self.instruments,
            ("GET", "/v5/asset/coin/query-info"): lambda _: _ok({"rows": []}),
            ("POST", "/v5/order/create"): self.create,
            ("GET", "/v5/order/realtime"): self.realtime,
            ("GET", "/v5/order/history"): self.history,
        }

    def instruments(self, request: Request) -> Reply:
        category = request.params["category"]
        rows = [] if request.params.get("status") == "PreLaunch" else INSTRUMENTS[category]
        return _ok({"category": category, "list": rows, "nextPageCursor": ""})

    def create(self, request: Request) -> Reply:
        assert_signed(request.body, request.headers)
        body = request.json()
        order_id = f"1321003749386327{next(self._ids):03d}"
        market = body["orderType"] == "Market"
        self.categories[body["orderLinkId"]] = body["category"]
        self.orders[body["orderLinkId"]] = {
            "orderId": order_id,
            "orderLinkId": body["orderLinkId"],
            "blockTradeId": "",
            "symbol": body["symbol"],
            "price": body.get("price", "0"),
            "qty": body["qty"],
            "side": body["side"],
            "isLeverage": "",
            "positionIdx": 0,
            "orderStatus": "Filled" if market else "New",
            "createType": "CreateByUser",
            "cancelType": "UNKNOWN",
            "rejectReason": "EC_NoError",
            "avgPrice": self.fill_price if market else "",
            "leavesQty": "0" if market else body["qty"],
            "leavesValue": "0",
            "cumExecQty": body["qty"] if market else "0",
            "cumExecValue": "0",
            "cumExecFee": "0",
            "timeInForce": "IOC" if market else "GTC",
            "orderType": body["orderType"],
            "stopOrderType": "",
            "orderIv": "",
            "marketUnit": "",
            "triggerPrice": "",
            "takeProfit": "",
            "stopLoss": "",
            "tpslMode": "",
            "ocoTriggerBy": "",
            "tpLimitPrice": "",
            "slLimitPrice": "",
            "tpTriggerBy": "",
            "slTriggerBy": "",
            "triggerDirection": 0,
            "triggerBy": "",
            "lastPriceOnCreated": "",
            "basePrice": "",
            "reduceOnly": False,
            "closeOnTrigger": False,
            "placeType": "",
            "smpType": "None",
            "smpGroup": 0,
            "smpOrderId": "",
            "createdTime": str(NOW_MS),
            "updatedTime": str(NOW_MS),
        }
        return _ok({"orderId": order_id, "orderLinkId": body["orderLinkId"]})

    def _listed(self, request: Request, statuses: set[str]) -> Reply:
        assert_signed(request.raw_query, request.headers)
        query = request.params
        link, symbol, settle = (
            query.get("orderLinkId"),
            query.get("symbol"),
            query.get("settleCoin"),
        )
        rows = [
            o
            for o in self.orders.values()
            if o["orderStatus"] in statuses
            and self.categories[o["orderLinkId"]] == query["category"]
            and link in (None, o["orderLinkId"])
            and symbol in (None, o["symbol"])
            and settle in (None, SETTLE[o["symbol"]])
        ]
        return _ok({"category": request.params["category"], "list": rows, "nextPageCursor": ""})

    def realtime(self, request: Request) -> Reply:
        return self._listed(request, {"New", "PartiallyFilled", "Untriggered"})

    def history(self, request: Request) -> Reply:
        return self._listed(
            request, {"Filled", "Cancelled", "Rejected", "PartiallyFilledCanceled", "Deactivated"}
        )


def assert_signed(payload: str, headers: Any) -> None:
    """HMAC-SHA256 of timestamp + key + recv window + (query or JSON body)."""
    assert headers.get("X-BAPI-API-KEY") == API_KEY
    signed = headers["X-BAPI-TIMESTAMP"] + API_KEY + headers["X-BAPI-RECV-WINDOW"] + payload
    expected = hmac.new(SECRET.encode(), signed.encode(), hashlib.sha256).hexdigest()
    assert headers["X-BAPI-SIGN"] == expected, "bad signature"


__all__ = ["API_KEY", "SECRET", "Bybit", "json"]
