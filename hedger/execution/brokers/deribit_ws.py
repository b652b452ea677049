"""Deribit orders over the daemon's own authenticated websocket, under cancel-on-disconnect.

Deribit cancels a connection's orders when the connection drops, but only with
``private/enable_cancel_on_disconnect`` on and only for orders placed over that same
connection. ccxt places orders over REST, and ccxt.pro's Deribit client neither enables the
switch nor answers heartbeats. So this broker keeps a socket of its own: ``public/auth``
(client signature), ``public/set_heartbeat`` (each ``test_request`` answered with
``public/test``; Deribit closes a socket that does not answer) and
``private/enable_cancel_on_disconnect``, and sends ``private/buy|sell`` on it. Should the
daemon die, hang or lose its network, Deribit cancels every order it left resting (a limit
hedge waiting for its timeout) instead of leaving it to fill unwatched.

REST is the fallback: while the socket is down (never opened, dropped, reconnecting at most
every ``reconnect_after_s``), orders go over REST exactly as ``DeribitBroker`` sends them, and
those are not covered by cancel-on-disconnect. Lookups, cancels and listings always go over
REST (the label lookup's ``usIn`` is what proves a late request absent).

A request written to the socket whose answer never comes (the socket dropped, the answer
timed out) may still have reached Deribit: it raises ccxt ``NetworkError`` and the executor
settles it by label, as any request of unknown fate.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import time
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import orjson
import structlog

from hedger.execution.brokers.client_ids import DERIBIT, ClientIdRule
from hedger.execution.brokers.deribit import DeribitBroker
from hedger.execution.brokers.port import VenueOrder

log = structlog.get_logger("hedger.execution.deribit_ws")


class DeribitWsBroker(DeribitBroker):
    def __init__(
        self,
        client: Any,
        venue: str,
        ws_url: str,
        *,
        heartbeat_s: float = 10.0,
        reconnect_after_s: float = 5.0,
        wall_ms: Any = None,
        client_ids: ClientIdRule = DERIBIT,
    ) -> None:
        super().__init__(client, venue, wall_ms, client_ids)
        self.ws_url = ws_url
        self.heartbeat_s = heartbeat_s
        self.reconnect_after_s = reconnect_after_s
        self.sent_over_socket = 0
        self.sent_over_rest = 0
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._ready = False
        self._last_attempt_s: float | None = None
        self._dropping = False

    @property
    def connected(self) -> bool:
        """Authenticated, heartbeats on, cancel-on-disconnect on, and the socket open."""
        return self._ready and self._ws is not None and not self._ws.closed

    @property
    def _timeout_s(self) -> float:
        return float(self.client.timeout) / 1000.0

    async def connect(self) -> None:
        """Open the socket and arm it; raises ccxt ``NetworkError`` (or the venue's refusal,
        e.g. ``AuthenticationError``) and leaves the broker on REST if any step fails."""
        await self._drop()
        self._last_attempt_s = time.monotonic()
        try:
            self._session = aiohttp.ClientSession()
            self._ws = await self._session.ws_connect(
                self.ws_url, timeout=aiohttp.ClientWSTimeout(ws_close=self._timeout_s)
            )
            self._reader = asyncio.get_running_loop().create_task(self._read(self._ws))
            await self._call("public/auth", self._auth_params())
            await self._call("public/set_heartbeat", {"interval": self.heartbeat_s})
            await self._call("private/enable_cancel_on_disconnect", {"scope": "connection"})
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            await self._drop()
            raise ccxt.NetworkError(f"{self.venue}: websocket {self.ws_url}: {exc!r}") from exc
        except BaseException:
            await self._drop()
            raise
        self._ready = True
        log.info("order_socket_ready", venue=self.venue, url=self.ws_url)

    async def close(self) -> None:
        await self._drop()

    async def place(
        self,
        symbol: str,
        side: str,
        amount: float,
        client_id: str,
        price: float | None = None,
        valid_until_ms: int | None = None,
    ) -> VenueOrder:
        if not self.connected and self._may_reconnect():
            try:
                await self.connect()
            except ccxt.BaseError as exc:
                log.warning("order_socket_unavailable", venue=self.venue, error=repr(exc))
        if not self.connected:
            self.sent_over_rest += 1
            return await super().place(symbol, side, amount, client_id, price, valid_until_ms)
        market = self.client.market(symbol)
        params: dict[str, Any] = {
            "instrument_name": market["id"],
            "amount": float(self.client.amount_to_precision(symbol, amount)),
            "type": "market" if price is None else "limit",
            "label": client_id,
        }
        if price is not None:
            params["price"] = float(self.client.price_to_precision(symbol, price))
        if valid_until_ms is not None:
            params["valid_until"] = valid_until_ms
        self.sent_over_socket += 1
        result = await self._call(f"private/{'buy' if side == 'buy' else 'sell'}", params)
        return self._order(result["order"], symbol)

    # -- the socket -----------------------------------------------------------------------

    def _may_reconnect(self) -> bool:
        last = self._last_attempt_s
        return last is None or time.monotonic() - last >= self.reconnect_after_s

    def _auth_params(self) -> dict[str, Any]:
        timestamp = self._wall_ms()
        nonce = str(timestamp)
        signed = f"{timestamp}\n{nonce}\n"
        signature = hmac.new(
            str(self.client.secret).encode(), signed.encode(), hashlib.sha256
        ).hexdigest()
        return {
            "grant_type": "client_signature",
            "client_id": self.client.apiKey,
            "timestamp": timestamp,
            "signature": signature,
            "nonce": nonce,
            "data": "",
        }

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        """One JSON-RPC request on the socket and its result; the venue's error as ccxt's
        exception for its code (as over REST); no answer: ``NetworkError``."""
        ws = self._ws
        if ws is None or ws.closed:
            raise ccxt.NetworkError(f"{self.venue}: order socket closed")
        rpc_id = next(self._ids)
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rpc_id] = answer
        message = {"jsonrpc": "2.0", "id": rpc_id, "method": method, "params": params}
        try:
            await ws.send_str(orjson.dumps(message).decode())
            response = await asyncio.wait_for(answer, self._timeout_s)
        except TimeoutError:
            raise ccxt.RequestTimeout(f"{self.venue}: {method}: no answer on the socket") from None
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            raise ccxt.NetworkError(f"{self.venue}: {method}: {exc!r}") from exc
        finally:
            self._pending.pop(rpc_id, None)
        if "error" in response:
            body = orjson.dumps(response).decode()
            self.client.handle_errors(200, "", self.ws_url, method, {}, body, response, None, None)
        return response.get("result")

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for message in ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    continue
                frame = orjson.loads(message.data)
                if frame.get("method") == "heartbeat":
                    if (frame.get("params") or {}).get("type") == "test_request":
                        await ws.send_str(
                            orjson.dumps(
                                {"jsonrpc": "2.0", "id": next(self._ids), "method": "public/test"}
                            ).decode()
                        )
                    continue
                waiting = self._pending.get(frame.get("id"))
                if waiting is not None and not waiting.done():
                    waiting.set_result(frame)
        except (aiohttp.ClientError, ConnectionError, RuntimeError, orjson.JSONDecodeError) as exc:
            log.warning("order_socket_failed", venue=self.venue, error=repr(exc))
        finally:
            self._ready = False
            self._fail_pending(f"{self.venue}: order socket closed before the answer")
            # A close we asked for is routine; one the network did is worth a warning.
            (log.info if self._dropping else log.warning)("order_socket_closed", venue=self.venue)

    def _fail_pending(self, reason: str) -> None:
        for waiting in self._pending.values():
            if not waiting.done():
                waiting.set_exception(ccxt.NetworkError(reason))
        self._pending.clear()

    async def _drop(self) -> None:
        self._ready = False
        self._dropping = True
        reader, self._reader = self._reader, None
        ws, self._ws = self._ws, None
        session, self._session = self._session, None
        if ws is not None:
            with contextlib.suppress(aiohttp.ClientError, ConnectionError, RuntimeError):
                await ws.close()
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if session is not None:
            await session.close()
        self._dropping = False
        self._fail_pending(f"{self.venue}: order socket closed")
