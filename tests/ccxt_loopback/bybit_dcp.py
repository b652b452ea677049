"""Bybit v5's private stream and DCP endpoint, answered in the formats of
bybit-exchange.github.io/docs/v5 ("Connect": ``auth``, ``subscribe``, ``ping``; "Set
Disconnect Cancel All": ``POST /v5/order/disconnected-cancel-all``)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from tests.ccxt_loopback.bybit import API_KEY, NOW_MS, SECRET, assert_signed
from tests.ccxt_loopback.server import Reply, Request
from tests.ccxt_loopback.ws import Connection


class BybitPrivateStream:
    """The private socket's side: authentication against the loopback key, then
    subscriptions (only after auth) and pings."""

    def __init__(self, refuse_auth: bool = False) -> None:
        self.refuse_auth = refuse_auth

    async def __call__(self, connection: Connection, message: Any) -> None:
        op, req_id = message.get("op"), message.get("req_id")
        base = {"req_id": req_id, "conn_id": f"cn{connection.number}"}
        if op == "auth":
            key, expires, signature = message["args"]
            expected = hmac.new(
                SECRET.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256
            ).hexdigest()
            ok = not self.refuse_auth and key == API_KEY and signature == expected
            connection.state["authed"] = ok
            await connection.send(
                {**base, "success": ok, "ret_msg": "" if ok else "error:USVC1111", "op": "auth"}
            )
        elif op in ("subscribe", "unsubscribe"):
            ok = bool(connection.state.get("authed"))
            topics: set[str] = connection.state.setdefault("topics", set())
            if ok and op == "subscribe":
                topics.update(message["args"])
            elif ok:
                topics.difference_update(message["args"])
            await connection.send(
                {**base, "success": ok, "ret_msg": "" if ok else "Request not authorized", "op": op}
            )
        elif op == "ping":
            await connection.send({**base, "op": "pong", "args": [str(NOW_MS)]})


def set_window(request: Request) -> Reply:
    assert_signed(request.body, request.headers)
    return Reply({"retCode": 0, "retMsg": "success", "result": {}, "time": NOW_MS})
