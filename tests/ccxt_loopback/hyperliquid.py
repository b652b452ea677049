"""Hyperliquid, answered in the formats of hyperliquid.gitbook.io (for developers, API):
``POST /info`` (``spotMeta``, ``spotMetaAndAssetCtxs``, ``metaAndAssetCtxs``, ``perpDexs``,
``userAbstraction``, ``allMids``, ``orderStatus`` by oid or cloid, ``unknownOid``) and
``POST /exchange`` (signed actions: ``approveBuilderFee``, ``order`` with its statuses)."""

from __future__ import annotations

import itertools
from typing import Any

from tests.ccxt_loopback.server import Reply, Request

WALLET = "0x5e9ee1089755c3435139848e47e6635505d5a13a"
"""The main account (any address: ccxt sends it, signatures come from the key)."""
PRIVATE_KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
"""An API wallet's key (the web3 documentation's example key; worthless)."""
NOW_MS = 1_796_000_000_000

PERP_META = {
    "universe": [
        {"name": "BTC", "szDecimals": 5, "maxLeverage": 40, "marginTableId": 56},
        {"name": "ETH", "szDecimals": 4, "maxLeverage": 25, "marginTableId": 55},
        {"name": "kPEPE", "szDecimals": 0, "maxLeverage": 10, "marginTableId": 52},
    ],
    "marginTables": [],
}
PERP_CTXS = [
    {
        "dayNtlVlm": "1169046.29",
        "funding": "0.0000125",
        "impactPxs": ["90010.0", "90012.0"],
        "markPx": "90011.0",
        "midPx": "90011.5",
        "openInterest": "688.11",
        "oraclePx": "90020.0",
        "premium": "0.00031774",
        "prevDayPx": "89022.0",
    },
    {
        "dayNtlVlm": "845046.29",
        "funding": "0.0000100",
        "impactPxs": ["3001.1", "3001.3"],
        "markPx": "3001.2",
        "midPx": "3001.25",
        "openInterest": "12000.0",
        "oraclePx": "3001.0",
        "premium": "0.0001",
        "prevDayPx": "2950.0",
    },
    {
        "dayNtlVlm": "4046.29",
        "funding": "0.0000130",
        "impactPxs": ["0.012101", "0.012111"],
        "markPx": "0.012105",
        "midPx": "0.012106",
        "openInterest": "9000000.0",
        "oraclePx": "0.012100",
        "premium": "0.0002",
        "prevDayPx": "0.0121",
    },
]
SPOT_META = {
    "tokens": [
        {
            "name": "USDC",
            "szDecimals": 8,
            "weiDecimals": 8,
            "index": 0,
            "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054",
            "isCanonical": True,
            "evmContract": None,
            "fullName": None,
        },
        {
            "name": "UBTC",
            "szDecimals": 5,
            "weiDecimals": 10,
            "index": 197,
            "tokenId": "0x8f254b963e8468305d409b33aa137c67",
            "isCanonical": False,
            "evmContract": None,
            "fullName": "Unit Bitcoin",
        },
    ],
    "universe": [{"name": "@142", "tokens": [1, 0], "index": 0, "isCanonical": False}],
}
SPOT_CTXS = [
    {
        "dayNtlVlm": "8906.0",
        "markPx": "90005.0",
        "midPx": "90004.5",
        "prevDayPx": "89000.0",
        "circulatingSupply": "21000000.0",
        "coin": "@142",
    },
]
MIDS = {"BTC": "90011.5", "ETH": "3001.25", "kPEPE": "0.012106", "@142": "90004.5"}


class Hyperliquid:
    """The venue's side: an IOC order fills in full at the mid, its cloid remembered."""

    def __init__(self) -> None:
        self.orders: dict[str, dict[str, Any]] = {}
        self.actions: list[dict[str, Any]] = []
        self._oids = itertools.count(77747314)

    def routes(self) -> dict[tuple[str, str], Any]:
        return {("POST", "/info"): self.info, ("POST", "/exchange"): self.exchange}

    def info(self, request: Request) -> Reply:
        query = request.json()
        kind = query["type"]
        if kind == "spotMeta":
            return Reply(SPOT_META)
        if kind == "spotMetaAndAssetCtxs":
            return Reply([SPOT_META, SPOT_CTXS])
        if kind == "metaAndAssetCtxs":
            return Reply([PERP_META, PERP_CTXS])
        if kind == "perpDexs":
            return Reply([None])  # the first perp dex (the default one) only
        if kind == "userAbstraction":
            return Reply("default")
        if kind == "allMids":
            return Reply(MIDS)
        if kind == "orderStatus":
            found = self.orders.get(str(query["oid"]))
            if found is None:
                return Reply({"status": "unknownOid"})
            return Reply({"status": "order", "order": found})
        return Reply({"status": "err", "response": f"unserved info type {kind}"}, status=422)

    def exchange(self, request: Request) -> Reply:
        body = request.json()
        action = body["action"]
        self.actions.append(body)
        if action["type"] == "approveBuilderFee":
            return Reply({"status": "ok", "response": {"type": "default"}})
        if action["type"] == "order":
            statuses = [self._fill(order) for order in action["orders"]]
            return Reply(
                {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}
            )
        return Reply({"status": "err", "response": f"unserved action {action['type']}"})

    def _fill(self, order: dict[str, Any]) -> dict[str, Any]:
        oid = next(self._oids)
        coin = PERP_META["universe"][int(order["a"])]["name"]
        mid = MIDS[str(coin)]
        record = {
            "order": {
                "coin": coin,
                "side": "B" if order["b"] else "A",
                "limitPx": order["p"],
                "sz": "0.0",
                "oid": oid,
                "timestamp": NOW_MS,
                "triggerCondition": "N/A",
                "isTrigger": False,
                "triggerPx": "0.0",
                "children": [],
                "isPositionTpsl": False,
                "reduceOnly": order["r"],
                "orderType": "Limit",
                "origSz": order["s"],
                "tif": order["t"]["limit"]["tif"],
                "cloid": order.get("c"),
            },
            "status": "filled",
            "statusTimestamp": NOW_MS,
        }
        self.orders[str(oid)] = record
        if order.get("c"):
            self.orders[order["c"]] = record
        return {"filled": {"totalSz": order["s"], "avgPx": mid, "oid": oid}}
