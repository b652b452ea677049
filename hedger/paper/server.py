"""The paper venue over HTTP and websocket: Deribit API v2 as ccxt and ccxt.pro speak it.

REST: ``GET /api/v2/{public|private}/{method}?query`` with a JSON-RPC envelope back.
Websocket: ``/ws/api/v2``, JSON-RPC requests and ``subscription`` pushes on one socket.
Admin (fault injection, state): ``/admin/faults``, ``/admin/drop-ws``, ``/admin/state``.

Websocket sessions keep Deribit's two safety nets: ``private/enable_cancel_on_disconnect``
(scope ``connection``) cancels the orders placed over that socket when it closes, however it
closes; ``public/set_heartbeat`` sends ``test_request``s, and a socket that does not answer
one with ``public/test`` before the next is closed (so cancel-on-disconnect fires).

The market is stepped on a timer (``ticks_per_second``) in simulated time that runs
``speed`` times faster than the wall clock; signatures are checked against the wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from aiohttp import WSMsgType, web

from hedger.paper.auth import ApiKey, AuthError, verify_rest, verify_ws
from hedger.paper.venue import PaperExchange, Published, RpcError
from hedger.sim.matching import Execution
from hedger.sim.orders import Order, Trade

log = structlog.get_logger("hedger.paper")

TOO_MANY_REQUESTS = 10028
TIMED_OUT = 10093
USER_ORDERS = "user.orders.any.any.raw"
USER_TRADES = "user.trades.any.any.raw"


def _envelope(
    now_us: int, result: Any = None, error: dict[str, object] | None = None, rpc_id: Any = None
) -> bytes:
    body: dict[str, Any] = {"jsonrpc": "2.0"}
    if rpc_id is not None:
        body["id"] = rpc_id
    if error is None:
        body["result"] = result
    else:
        body["error"] = error
    body |= {"usIn": now_us, "usOut": now_us, "usDiff": 0, "testnet": True}
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def _push(channel: str, data: Any) -> str:
    message = {
        "jsonrpc": "2.0",
        "method": "subscription",
        "params": {"channel": channel, "data": data},
    }
    return orjson.dumps(message, option=orjson.OPT_SERIALIZE_NUMPY).decode()


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    account: ApiKey | None = None
    channels: set[str] = field(default_factory=set)
    books: dict[str, dict[str, dict[float, float]]] = field(default_factory=dict)
    heartbeat: asyncio.Task[None] | None = None
    test_answered: bool = True
    """Whether the last ``test_request`` was answered with ``public/test``."""
    cancel_on_disconnect: bool = False
    placed: list[str] = field(default_factory=list)
    """Ids of the orders placed over this socket (what cancel-on-disconnect cancels)."""


class PaperVenueServer:
    def __init__(
        self,
        exchange: PaperExchange,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ticks_per_second: float = 10.0,
        speed: float = 1.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.exchange = exchange
        self.host, self.port = host, port
        self.tick_interval = 1.0 / ticks_per_second
        self.speed = speed
        self._wall = wall_clock
        self._sim_origin_ms = exchange.market.now_ms
        self._wall_origin_ms = self._wall_ms()
        self._connections: set[Connection] = set()
        self._subscribers: dict[str, set[Connection]] = defaultdict(set)
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.requests_served = 0
        self.expired_requests = 0  # order requests refused for arriving after valid_until
        self.messages_pushed = 0
        self._closing = asyncio.Event()  # ends held (fault) responses on stop

    # -- lifecycle ------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v2/{scope}/{method}", self._rest)
        app.router.add_get("/ws/api/v2", self._websocket)
        app.router.add_get("/admin/faults", self._get_faults)
        app.router.add_post("/admin/faults", self._set_faults)
        app.router.add_post("/admin/drop-ws", self._drop_ws_now)
        app.router.add_get("/admin/state", self._state)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._tasks = [
            asyncio.create_task(self._tick_loop()),
            asyncio.create_task(self._drop_loop()),
        ]
        log.info("paper_venue_started", rest=self.rest_url, ws=self.ws_url)

    async def stop(self) -> None:
        self._closing.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.drop_websockets()
        if self._runner is not None:
            await self._runner.cleanup()
        log.info("paper_venue_stopped")

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws/api/v2"

    def ccxt_urls(self) -> dict[str, str]:
        return {"rest": self.rest_url, "ws": self.ws_url}

    # -- clocks ---------------------------------------------------------------------------

    def _wall_ms(self) -> int:
        return int(self._wall() * 1000)

    def sim_now_ms(self) -> int:
        elapsed = self._wall_ms() - self._wall_origin_ms
        return max(self.exchange.market.now_ms, self._sim_origin_ms + int(elapsed * self.speed))

    # -- REST -----------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        faults = self.exchange.faults
        if faults.plan.delay_ms:
            await asyncio.sleep(faults.plan.delay_ms / 1000.0)
        now_us = self._wall_ms() * 1000
        if faults.should_fail_request():
            return self._injected_error(now_us)
        method = f"{request.match_info['scope']}/{request.match_info['method']}"
        params = dict(request.rel_url.query)
        try:
            account = None
            if method.startswith("private/"):
                account = verify_rest(
                    self.exchange.accounts,
                    request.headers.get("Authorization"),
                    request.method,
                    request.raw_path,
                    self._wall_ms(),
                )
            self._refuse_expired(method, params)
            result = self.exchange.call(method, params, account)
        except AuthError as exc:
            error = {"code": exc.code, "message": exc.message, "data": {"reason": exc.reason}}
            return web.Response(
                body=_envelope(now_us, error=error), status=401, content_type="application/json"
            )
        except RpcError as exc:
            body = _envelope(now_us, error=exc.to_deribit())
            return web.Response(body=body, status=exc.http_status, content_type="application/json")
        finally:
            self.requests_served += 1
            await self._publish_placed()
        if method in ("private/buy", "private/sell") and faults.take_order_timeout():
            # The order is on the book; the answer never comes: "did my order go through?"
            log.warning("fault_order_timeout", method=method, params=params)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), faults.plan.hang_s)
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=504)
        return web.Response(body=_envelope(now_us, result), content_type="application/json")

    def _refuse_expired(self, method: str, params: Mapping[str, Any]) -> None:
        """Deribit's ``valid_until``: an order request that reaches the matching engine after
        that instant (the server's clock, the one ``usIn`` shows) is refused, never placed;
        clients rely on it to prove that a timed-out request can no longer land."""
        if method not in ("private/buy", "private/sell") or "valid_until" not in params:
            return
        try:
            valid_until = int(params["valid_until"])
        except (TypeError, ValueError):
            raise RpcError(11029, "invalid_arguments", "valid_until must be epoch ms") from None
        if self._wall_ms() > valid_until:
            self.expired_requests += 1
            # The code is this venue's own: ccxt maps unlisted codes to ExchangeError, which
            # is what a refusal at the matching engine's door is.
            raise RpcError(TIMED_OUT, "timed_out", f"arrived after valid_until {valid_until}")

    def _injected_rpc_error(self) -> dict[str, Any]:
        """An injected failure as a JSON-RPC error on the socket (a 429 is Deribit's rate
        limit code; anything else its internal error)."""
        if self.exchange.faults.plan.error_status == 429:
            return {"code": TOO_MANY_REQUESTS, "message": "too_many_requests"}
        return {"code": 11094, "message": "internal_server_error"}

    def _injected_error(self, now_us: int) -> web.Response:
        status = self.exchange.faults.plan.error_status
        if status == 429:
            error = {
                "code": TOO_MANY_REQUESTS,
                "message": "too_many_requests",
                "data": {"reason": "fault injection"},
            }
            return web.Response(
                body=_envelope(now_us, error=error), status=429, content_type="application/json"
            )
        return web.Response(text=f"{status} injected by the paper venue", status=status)

    # -- websocket ------------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, heartbeat=None, max_msg_size=1 << 22)
        await ws.prepare(request)
        conn = Connection(ws)
        self._connections.add(conn)
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await self._on_ws_message(conn, message.data)
                elif message.type is WSMsgType.ERROR:
                    break
        finally:
            self._forget(conn)
        return ws

    def _forget(self, conn: Connection) -> None:
        self._connections.discard(conn)
        for channel in conn.channels:
            self._subscribers[channel].discard(conn)
        if conn.heartbeat is not None:
            conn.heartbeat.cancel()
        self._cancel_on_disconnect(conn)

    def _cancel_on_disconnect(self, conn: Connection) -> None:
        """The socket is gone: with cancel-on-disconnect on, every order placed over it
        that is still open is cancelled (pushed to the account's other sockets with the
        next publish). Runs once per connection."""
        placed, conn.placed = conn.placed, []
        if not conn.cancel_on_disconnect or conn.account is None:
            return
        cancelled = 0
        for order_id in placed:
            try:
                self.exchange.call("private/cancel", {"order_id": order_id}, conn.account)
                cancelled += 1
            except RpcError:
                pass  # filled or cancelled meanwhile: nothing left to cancel
        log.info("paper_cancel_on_disconnect", account=conn.account.name, cancelled=cancelled)

    async def _on_ws_message(self, conn: Connection, text: str) -> None:
        try:
            request = orjson.loads(text)
            method, params, rpc_id = (
                request["method"],
                request.get("params") or {},
                request.get("id"),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            error = {"code": -32700, "message": "Parse error", "data": {"reason": "not JSON-RPC"}}
            await conn.ws.send_str(_envelope(self._wall_ms() * 1000, error=error).decode())
            return
        now_us = self._wall_ms() * 1000
        ordering = method in ("private/buy", "private/sell")
        faults = self.exchange.faults
        if ordering:
            # The venue's faults apply to orders whichever way they arrive (REST or socket).
            if faults.plan.delay_ms:
                await asyncio.sleep(faults.plan.delay_ms / 1000.0)
            if faults.should_fail_request():
                await conn.ws.send_str(
                    _envelope(now_us, error=self._injected_rpc_error(), rpc_id=rpc_id).decode()
                )
                return
        try:
            result = await self._ws_call(conn, method, params)
        except AuthError as exc:
            error = {"code": exc.code, "message": exc.message, "data": {"reason": exc.reason}}
            await conn.ws.send_str(_envelope(now_us, error=error, rpc_id=rpc_id).decode())
            # ccxt stalls on an error frame; closing makes its waiting calls fail at once.
            await conn.ws.close()
            return
        except RpcError as exc:
            await conn.ws.send_str(
                _envelope(now_us, error=exc.to_deribit(), rpc_id=rpc_id).decode()
            )
            return
        finally:
            await self._publish_placed()
        if ordering and faults.take_order_timeout():
            # The order is on the book; its answer never comes on the socket.
            log.warning("fault_order_timeout", method=method, params=params, via="websocket")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), faults.plan.hang_s)
            return
        await conn.ws.send_str(_envelope(now_us, result, rpc_id=rpc_id).decode())
        if method.endswith("/subscribe"):
            await self._send_book_snapshots(conn, result)

    async def _ws_call(self, conn: Connection, method: str, params: dict[str, Any]) -> Any:
        if method == "public/auth":
            conn.account = verify_ws(self.exchange.accounts, params, self._wall_ms())
            return {
                "access_token": f"paper-{conn.account.name}-{id(conn):x}",
                "refresh_token": "paper-refresh",
                "expires_in": 31_536_000,
                "token_type": "bearer",
                "scope": "connection",
            }
        if method in ("public/subscribe", "private/subscribe"):
            return self._subscribe(conn, method, params.get("channels") or [])
        if method in ("public/unsubscribe", "private/unsubscribe"):
            return self._unsubscribe(conn, params.get("channels") or [])
        if method in (
            "private/enable_cancel_on_disconnect",
            "private/disable_cancel_on_disconnect",
            "private/get_cancel_on_disconnect",
        ):
            return self._cancel_on_disconnect_setting(conn, method, params)
        if method == "public/test":
            conn.test_answered = True
        if method == "public/set_heartbeat":
            interval = float(params.get("interval", 30))
            if interval < 10:
                raise RpcError(11029, "invalid_arguments", "heartbeat interval must be >= 10 s")
            if conn.heartbeat is not None:
                conn.heartbeat.cancel()
            conn.heartbeat = asyncio.create_task(self._heartbeat(conn, interval))
            return "ok"
        if method == "public/disable_heartbeat":
            if conn.heartbeat is not None:
                conn.heartbeat.cancel()
            return "ok"
        self._refuse_expired(method, params)
        result = self.exchange.call(method, params, conn.account)
        if method in ("private/buy", "private/sell"):
            conn.placed.append(str(result["order"]["order_id"]))
        return result

    def _cancel_on_disconnect_setting(
        self, conn: Connection, method: str, params: Mapping[str, Any]
    ) -> Any:
        if conn.account is None:
            raise RpcError(13009, "unauthorized", f"{method} needs public/auth first")
        scope = str(params.get("scope", "connection"))
        if scope != "connection":
            # Deribit's "account" scope (every connection of the key) is not simulated.
            raise RpcError(11029, "invalid_arguments", f"scope {scope!r}: only connection")
        if method == "private/get_cancel_on_disconnect":
            return {"scope": scope, "enabled": conn.cancel_on_disconnect}
        conn.cancel_on_disconnect = method == "private/enable_cancel_on_disconnect"
        return "ok"

    def _subscribe(self, conn: Connection, method: str, channels: Iterable[str]) -> list[str]:
        accepted = []
        for channel in channels:
            kind = channel.split(".", 1)[0]
            if kind == "user" and conn.account is None:
                raise RpcError(13009, "unauthorized", f"{channel} needs public/auth first")
            if kind in ("ticker", "book"):
                self.exchange.call(
                    "public/ticker", {"instrument_name": channel.split(".")[1]}, None
                )
            elif kind != "user":
                raise RpcError(11029, "invalid_arguments", f"unsupported channel {channel!r}")
            conn.channels.add(channel)
            self._subscribers[channel].add(conn)
            accepted.append(channel)
        return accepted

    def _unsubscribe(self, conn: Connection, channels: Iterable[str]) -> list[str]:
        removed = [c for c in channels if c in conn.channels]
        for channel in removed:
            conn.channels.discard(channel)
            self._subscribers[channel].discard(conn)
            conn.books.pop(channel, None)
        return removed

    async def _heartbeat(self, conn: Connection, interval: float) -> None:
        message = orjson.dumps(
            {"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}}
        ).decode()
        while not conn.ws.closed:
            await asyncio.sleep(interval)
            if not conn.test_answered:
                # Deribit closes a socket that leaves a test_request unanswered.
                log.warning("paper_heartbeat_missed", interval_s=interval)
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await conn.ws.close(code=1000, message=b"heartbeat not answered")
                self._forget(conn)
                return
            conn.test_answered = False
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.ws.send_str(message)

    async def drop_websockets(self) -> int:
        dropped = 0
        for conn in list(self._connections):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.ws.close(code=1011, message=b"dropped by the paper venue")
            self._forget(conn)
            dropped += 1
        self.exchange.faults.injected["ws_drops"] += dropped
        return dropped

    # -- publishing -----------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        while True:
            started = time.perf_counter()
            try:
                published = self.exchange.step(self.sim_now_ms())
                await self._publish(published)
            except Exception:  # a bad tick must not kill the venue
                log.exception("paper_venue_tick_failed")
            await asyncio.sleep(max(0.0, self.tick_interval - (time.perf_counter() - started)))

    async def _drop_loop(self) -> None:
        while True:
            every = self.exchange.faults.plan.ws_drop_every_s
            await asyncio.sleep(every if every else 0.5)
            if every and self.exchange.faults.plan.ws_drop_every_s == every:
                await self.drop_websockets()

    async def _send(self, subscribers: Iterable[Connection], text: str) -> None:
        for conn in list(subscribers):
            if conn.ws.closed:
                continue
            try:
                await conn.ws.send_str(text)
                self.messages_pushed += 1
            except (ConnectionError, RuntimeError):
                self._forget(conn)

    async def _publish(self, published: Published) -> None:
        exchange = self.exchange
        for i in published.instruments:
            name = exchange.instrument_name(i)
            if exchange.faults.is_paused(name):
                continue
            ticker: dict[str, object] | None = None  # built once, only if someone listens
            for interval in ("100ms", "raw"):
                channel = f"ticker.{name}.{interval}"
                subscribers = self._subscribers.get(channel)
                if subscribers:
                    ticker = ticker or exchange.ticker_of(i)
                    await self._send(subscribers, _push(channel, ticker))
            for interval in ("100ms", "raw"):
                channel = f"book.{name}.{interval}"
                for conn in list(self._subscribers.get(channel, ())):
                    await self._send_book(conn, channel, name, snapshot=False)
        await self._publish_user(
            published.events.orders, published.events.trades, published.events.accounts
        )

    async def _publish_placed(self) -> None:
        placed: list[Execution] = self.exchange.take_placed()
        if not placed:
            return
        orders = [e.order for e in placed]
        trades = [t for e in placed for t in e.trades]
        await self._publish_user(orders, trades, {o.account for o in orders})

    async def _publish_user(
        self, orders: Iterable[Order], trades: Iterable[Trade], accounts: Iterable[str]
    ) -> None:
        by_account_orders: dict[str, list[Order]] = defaultdict(list)
        by_account_trades: dict[str, list[Trade]] = defaultdict(list)
        for order in orders:
            by_account_orders[order.account].append(order)
        for trade in trades:
            by_account_trades[trade.account].append(trade)
        touched = set(accounts)
        if not (by_account_orders or by_account_trades or touched):
            return
        for conn in list(self._connections):
            if conn.account is None:
                continue
            name = conn.account.name
            if USER_ORDERS in conn.channels:
                for order in by_account_orders.get(name, ()):
                    await self._send((conn,), _push(USER_ORDERS, order.to_deribit()))
            if USER_TRADES in conn.channels and by_account_trades.get(name):
                rows = [t.to_deribit() for t in by_account_trades[name]]
                await self._send((conn,), _push(USER_TRADES, rows))
            if name in touched:
                for channel in conn.channels:
                    if channel.startswith("user.portfolio."):
                        currency = channel.rsplit(".", 1)[1].upper()
                        await self._send(
                            (conn,), _push(channel, self.exchange.summary_of(name, currency))
                        )

    async def _send_book_snapshots(self, conn: Connection, channels: Any) -> None:
        for channel in channels if isinstance(channels, list) else ():
            if channel.startswith("book."):
                await self._send_book(conn, channel, channel.split(".")[1], snapshot=True)

    async def _send_book(self, conn: Connection, channel: str, name: str, snapshot: bool) -> None:
        """Deribit's book channel: a snapshot of ``new`` rows, then new/change/delete deltas."""
        book = self.exchange.call("public/get_order_book", {"instrument_name": name}, None)
        current = {side: {float(p): float(a) for p, a in book[side]} for side in ("bids", "asks")}
        previous = {} if snapshot else conn.books.get(channel, {})
        conn.books[channel] = current
        data: dict[str, Any] = {
            "type": "snapshot" if snapshot else "change",
            "instrument_name": name,
            "timestamp": book.get("timestamp"),
            "change_id": self.exchange.market.book_version,
        }
        changed = snapshot
        for side in ("bids", "asks"):
            before, after = previous.get(side, {}), current[side]
            rows: list[list[Any]] = [["delete", p, 0.0] for p in before if p not in after]
            for price, amount in after.items():
                if price not in before:
                    rows.append(["new", price, amount])
                elif before[price] != amount:
                    rows.append(["change", price, amount])
            data[side] = rows
            changed = changed or bool(rows)
        if changed:
            await self._send((conn,), _push(channel, data))

    # -- admin ----------------------------------------------------------------------------

    async def _get_faults(self, request: web.Request) -> web.Response:
        return web.json_response(self.exchange.faults.plan.as_dict())

    async def _set_faults(self, request: web.Request) -> web.Response:
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("expected a JSON object of fault settings")
            self.exchange.faults.update(changes)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        log.info("paper_faults_changed", changes=changes)
        return web.json_response(self.exchange.faults.plan.as_dict())

    async def _drop_ws_now(self, request: web.Request) -> web.Response:
        return web.json_response({"dropped": await self.drop_websockets()})

    async def _state(self, request: web.Request) -> web.Response:
        market = self.exchange.market
        return web.json_response(
            {
                "sim_time_ms": market.now_ms,
                "regime": str(market.regime),
                "connections": len(self._connections),
                "requests_served": self.requests_served,
                "messages_pushed": self.messages_pushed,
                "faults_injected": self.exchange.faults.injected,
                "asset_prices": market.asset_prices,
            }
        )
