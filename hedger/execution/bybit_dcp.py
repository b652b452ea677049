"""Bybit's disconnection protection (DCP): the private websocket that keeps it from firing.

Bybit's switch is not a timer pushed back over REST. ``POST /v5/order/disconnected-cancel-all``
only sets the window (3 to 300 s) of an account-level feature that Bybit enables on request
(the account manager turns DCP on; without it the call is refused). What fires it is a
private websocket subscribed to the ``dcp`` topic going quiet: when every connection that
subscribed to it has been gone for the window, Bybit cancels all the account's orders of that
product. So the daemon holds one such socket, authenticated (``op: auth``, HMAC-SHA256 of
``GET/realtime{expires}``), subscribed to ``dcp.future`` (derivatives), and pinged
(``op: ping``) at least every 20 s, as Bybit asks of every private socket.

A clean stop unsubscribes before closing, so a planned shutdown does not cancel resting
orders; a crash, a hang or a lost network leaves the subscription to lapse, and Bybit cancels.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
import structlog

log = structlog.get_logger("hedger.execution.bybit_dcp")

PRIVATE_WS = {
    "live": "wss://stream.bybit.com/v5/private",
    "testnet": "wss://stream-testnet.bybit.com/v5/private",
    "demo": "wss://stream-demo.bybit.com/v5/private",
}
"""bybit-exchange.github.io/docs/v5/ws/connect: the private stream of each environment."""

TOPICS = {"DERIVATIVES": "dcp.future", "SPOT": "dcp.spot", "OPTIONS": "dcp.option"}
"""The DCP topic of each ``product`` of ``disconnected-cancel-all``."""

MAX_PING_S = 20.0
"""Bybit drops a private socket that is not pinged about this often."""


class DcpError(Exception):
    """Bybit refused (``success: false``), or did not answer in time."""


def _wall_ms() -> int:
    return int(time.time() * 1000)


class BybitDcpSocket:
    """One private socket subscribed to a DCP topic. Not reentrant: one caller at a time
    (the dead-man's switch's loop)."""

    def __init__(
        self,
        url: str,
        api_key: str,
        secret: str,
        topic: str = TOPICS["DERIVATIVES"],
        *,
        reply_timeout_s: float = 10.0,
        wall_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        self.url = url
        self.topic = topic
        self.reply_timeout_s = reply_timeout_s
        self._api_key = api_key
        self._secret = secret
        self._wall_ms = wall_ms
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._req_ids = itertools.count(1)

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def open(self) -> None:
        """Connect, authenticate and subscribe; closes what it opened if any step fails."""
        await self.close(unsubscribe=False)
        self._session = aiohttp.ClientSession()
        try:
            try:
                async with asyncio.timeout(self.reply_timeout_s):
                    self._ws = await self._session.ws_connect(
                        self.url, timeout=aiohttp.ClientWSTimeout(ws_close=self.reply_timeout_s)
                    )
            except TimeoutError:
                raise DcpError(f"no connection within {self.reply_timeout_s} s") from None
            expires = self._wall_ms() + 10_000
            signature = hmac.new(
                self._secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256
            ).hexdigest()
            await self._request("auth", [self._api_key, expires, signature])
            await self._request("subscribe", [self.topic])
        except BaseException:
            await self.close(unsubscribe=False)
            raise
        log.info("dcp_subscribed", topic=self.topic)

    async def ping(self) -> None:
        await self._request("ping", None, answer=("pong", "ping"))

    async def close(self, *, unsubscribe: bool) -> None:
        """Close the socket; ``unsubscribe`` first on a planned stop (see the module doc)."""
        ws, session = self._ws, self._session
        self._ws = self._session = None
        if ws is not None and not ws.closed and unsubscribe:
            try:
                await self._request_on(ws, "unsubscribe", [self.topic])
            except Exception as exc:  # closing anyway; the window decides what happens
                log.warning("dcp_unsubscribe_failed", error=repr(exc))
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        if session is not None:
            await session.close()

    async def _request(
        self, op: str, args: list[Any] | None, answer: tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        if self._ws is None or self._ws.closed:
            raise DcpError("the DCP socket is not open")
        return await self._request_on(self._ws, op, args, answer)

    async def _request_on(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        op: str,
        args: list[Any] | None,
        answer: tuple[str, ...] | None = None,
    ) -> dict[str, Any]:
        """Send ``op`` and read until its answer; what else arrives (the topic's own pushes)
        is not ours to act on."""
        message: dict[str, Any] = {"req_id": str(next(self._req_ids)), "op": op}
        if args is not None:
            message["args"] = args
        await ws.send_bytes(orjson.dumps(message))
        wanted = answer or (op,)
        try:
            async with asyncio.timeout(self.reply_timeout_s):
                while True:
                    frame = await ws.receive()
                    if frame.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                        reply = orjson.loads(frame.data)
                        if isinstance(reply, dict) and reply.get("op") in wanted:
                            if reply.get("success") is False:
                                raise DcpError(f"bybit refused {op}: {reply.get('ret_msg')!r}")
                            return reply
                    elif frame.type in (
                        aiohttp.WSMsgType.CLOSE,
                        aiohttp.WSMsgType.CLOSING,
                        aiohttp.WSMsgType.CLOSED,
                        aiohttp.WSMsgType.ERROR,
                    ):
                        raise DcpError(f"the DCP socket closed while waiting for {op}")
        except TimeoutError:
            raise DcpError(f"no answer to {op} within {self.reply_timeout_s} s") from None
