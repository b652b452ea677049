"""OKX v5, answered in the formats of www.okx.com/docs-v5: public instruments per type,
``POST /api/v5/trade/order`` and ``/api/v5/trade/batch-orders`` (acknowledgements with
``sCode``), ``GET /api/v5/trade/order`` by ``clOrdId``, and ``51603 Order does not
exist``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
from typing import Any

from tests.ccxt_loopback.server import Reply, Request

API_KEY = "okx-key"
SECRET = "okx-secret"
PASSPHRASE = "okx-passphrase"
NOW_MS = 1_796_000_000_000


def _ok(data: list[Any]) -> Reply:
    return Reply({"code": "0", "msg": "", "data": data})


def _instrument(inst_type: str, inst_id: str, **fields: str) -> dict[str, Any]:
    row = {
        "alias": "",
        "baseCcy": "",
        "category": "1",
        "ctMult": "",
        "ctType": "",
        "ctVal": "",
        "ctValCcy": "",
        "expTime": "",
        "instFamily": "",
        "instId": inst_id,
        "instType": inst_type,
        "lever": "",
        "listTime": "1573557408000",
        "lotSz": "",
        "maxIcebergSz": "",
        "maxLmtAmt": "",
        "maxLmtSz": "",
        "maxMktAmt": "",
        "maxMktSz": "",
        "maxStopSz": "",
        "maxTriggerSz": "",
        "maxTwapSz": "",
        "minSz": "",
        "optType": "",
        "quoteCcy": "",
        "settleCcy": "",
        "state": "live",
        "stk": "",
        "tickSz": "",
        "uly": "",
    }
    row.update(fields)
    return row


INSTRUMENTS = {
    "SPOT": [
        _instrument(
            "SPOT",
            "BTC-USDT",
            baseCcy="BTC",
            quoteCcy="USDT",
            lotSz="0.00000001",
            minSz="0.00001",
            tickSz="0.1",
            lever="10",
            maxLmtSz="9999999999",
            maxMktSz="1000000",
        ),
    ],
    "SWAP": [
        _instrument(
            "SWAP",
            "BTC-USDT-SWAP",
            ctMult="1",
            ctType="linear",
            ctVal="0.01",
            ctValCcy="BTC",
            instFamily="BTC-USDT",
            lever="100",
            lotSz="0.01",
            maxLmtSz="100000000",
            maxMktSz="12000",
            minSz="0.01",
            settleCcy="USDT",
            tickSz="0.1",
            uly="BTC-USDT",
        ),
        _instrument(
            "SWAP",
            "BTC-USD-SWAP",
            ctMult="1",
            ctType="inverse",
            ctVal="100",
            ctValCcy="USD",
            instFamily="BTC-USD",
            lever="100",
            lotSz="1",
            maxLmtSz="100000000",
            maxMktSz="10000",
            minSz="1",
            settleCcy="BTC",
            tickSz="0.1",
            uly="BTC-USD",
        ),
        _instrument(
            "SWAP",
            "SOL-USDT-SWAP",
            ctMult="1",
            ctType="linear",
            ctVal="1",
            ctValCcy="SOL",
            instFamily="SOL-USDT",
            lever="50",
            lotSz="0.01",
            maxLmtSz="1000000",
            maxMktSz="50000",
            minSz="0.01",
            settleCcy="USDT",
            tickSz="0.01",
            uly="SOL-USDT",
        ),
    ],
    "FUTURES": [],
    "OPTION": [],
}


class Okx:
    """The venue's side: market orders fill at once, limit orders rest."""

    def __init__(self, fill_price: str = "90011.2") -> None:
        self.fill_price = fill_price
        self.orders: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(312269865356374016)

    def routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("GET", "/api/v5/public/instruments"): self.instruments,
            ("GET", "/api/v5/asset/currencies"): lambda _: _ok([]),
            ("POST", "/api/v5/trade/order"): self.place,
            # ccxt's default for one order: a batch of one.
            ("POST", "/api/v5/trade/batch-orders"): self.place,
            ("GET", "/api/v5/trade/order"): self.order,
        }

    def instruments(self, request: Request) -> Reply:
        return _ok(INSTRUMENTS[request.params["instType"]])

    def place(self, request: Request) -> Reply:
        assert_signed(request, request.body)
        body = request.json()
        if isinstance(body, list):
            (body,) = body
        order_id = str(next(self._ids))
        market = body["ordType"] == "market"
        self.orders[body["clOrdId"]] = {
            "accFillSz": body["sz"] if market else "0",
            "algoClOrdId": "",
            "algoId": "",
            "attachAlgoClOrdId": "",
            "attachAlgoOrds": [],
            "avgPx": self.fill_price if market else "",
            "cTime": str(NOW_MS),
            "cancelSource": "",
            "cancelSourceReason": "",
            "category": "normal",
            "ccy": "",
            "clOrdId": body["clOrdId"],
            "fee": "-0.0009" if market else "0",
            "feeCcy": "USDT",
            "fillPx": self.fill_price if market else "",
            "fillSz": body["sz"] if market else "0",
            "fillTime": str(NOW_MS) if market else "",
            "instId": body["instId"],
            "instType": "SWAP",
            "isTpLimit": "false",
            "lever": "3",
            "ordId": order_id,
            "ordType": body["ordType"],
            "pnl": "0",
            "posSide": "net",
            "px": body.get("px", ""),
            "pxType": "",
            "pxUsd": "",
            "pxVol": "",
            "quickMgnType": "",
            "rebate": "0",
            "rebateCcy": "USDT",
            "reduceOnly": "false",
            "side": body["side"],
            "slOrdPx": "",
            "slTriggerPx": "",
            "slTriggerPxType": "",
            "source": "",
            "state": "filled" if market else "live",
            "stpId": "",
            "stpMode": "cancel_maker",
            "sz": body["sz"],
            "tag": "",
            "tdMode": body["tdMode"],
            "tgtCcy": "",
            "tpOrdPx": "",
            "tpTriggerPx": "",
            "tpTriggerPxType": "",
            "tradeId": "",
            "uTime": str(NOW_MS),
        }
        return Reply(
            {
                "code": "0",
                "msg": "",
                "data": [
                    {
                        "clOrdId": body["clOrdId"],
                        "ordId": order_id,
                        "tag": "",
                        "ts": str(NOW_MS),
                        "sCode": "0",
                        "sMsg": "Order placed",
                    }
                ],
                "inTime": str(NOW_MS * 1000),
                "outTime": str(NOW_MS * 1000 + 1500),
            }
        )

    def order(self, request: Request) -> Reply:
        assert_signed(request, "")
        found = self.orders.get(request.params.get("clOrdId", ""))
        if found is None:
            return Reply({"code": "51603", "msg": "Order does not exist", "data": []})
        return _ok([found])


def assert_signed(request: Request, body: str) -> None:
    """Base64 HMAC-SHA256 of timestamp + method + path (+ query) + body."""
    headers = request.headers
    assert headers["OK-ACCESS-KEY"] == API_KEY
    assert headers["OK-ACCESS-PASSPHRASE"] == PASSPHRASE
    target = request.path + (f"?{request.raw_query}" if request.raw_query else "")
    signed = headers["OK-ACCESS-TIMESTAMP"] + request.method + target + body
    digest = hmac.new(SECRET.encode(), signed.encode(), hashlib.sha256).digest()
    assert headers["OK-ACCESS-SIGN"] == base64.b64encode(digest).decode(), "bad signature"
