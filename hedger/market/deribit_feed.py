"""Deribit's public ticker channel, natively: one websocket, orjson straight into the columns.

This is the fast path (DESIGN.md "Feeds, measured here": aiohttp + orjson ~243k msgs/s against
~21k for ccxt.pro). ``websockets`` is not installed in this project, so the socket is aiohttp's.

The protocol part (``handle_frame``) is a plain function over a frame and a
``LiveMarket``; ``DeribitTickerFeed`` only moves frames and keeps the connection alive:
subscribe in chunks, answer the venue's heartbeat, notice silence, reconnect forever with
jittered exponential backoff and subscribe again.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import aiohttp
import orjson
import structlog

from hedger.backoff import Backoff
from hedger.market.state import BadTick, LiveMarket

__all__ = [
    "DeribitTickerFeed",
    "FeedStats",
    "FrameKind",
    "handle_frame",
    "ticker_channel",
]

log = structlog.get_logger("hedger.market")

_NAN = float("nan")
_YIELD_EVERY = 64  # messages between forced yields to the event loop (~0.2 ms of work)
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


class FrameKind(Enum):
    TICKER = "ticker"  # a ticker push, stored or counted as bad
    HEARTBEAT = "heartbeat"  # the venue's test_request: must be answered with public/test
    REPLY = "reply"  # a result for one of our requests
    ERROR = "error"  # an error for one of our requests
    OTHER = "other"  # malformed or not ours; already counted where it matters


def ticker_channel(instrument_name: str, interval: str = "100ms") -> str:
    return f"ticker.{instrument_name}.{interval}"


def handle_frame(market: LiveMarket, frame: str | bytes, recv_s: float) -> FrameKind:
    """Route one websocket frame: a ticker push is validated and stored in its row; anything
    else is classified for the caller, which owns the socket (heartbeat answers, logging).

    This is the per-message hot path (budget ~2 us with the parse, DESIGN.md), so the ticker
    is read inline: no per-field ``float()`` (orjson already gives floats or ints, which numpy
    takes; a string, null, bool or container where a number belongs is counted as malformed
    by ``MarketState.update``), and no intermediate objects. Only ticker channels are
    subscribed, so a push is read as a ticker without looking at its channel; a push of any
    other shape is counted as malformed.
    """
    state = market.state
    try:
        message = _loads(frame)
        if message.get("method") != "subscription":
            return _control_frame(market, message)
        data = message["params"]["data"]
        row = state.rows.get(data["instrument_name"])
        if row is None:
            state.reject(BadTick.UNKNOWN_INSTRUMENT)
            return FrameKind.TICKER
        bid = data["best_bid_price"]
        ask = data["best_ask_price"]
        underlying = data.get("underlying_price")  # options only
        iv = data.get("mark_iv")
        # Where a bool would reach update() as something else: ``false or NaN`` reads as an
        # empty side and ``true / 100`` as an IV of 1%. (``true or NaN`` stays True, and
        # update() refuses it.)
        if bid is False or ask is False or iv is True or iv is False:
            state.reject(BadTick.MALFORMED)
            return FrameKind.TICKER
        if state.update(
            row,
            # Deribit quotes an empty book side as null (deep OTM options: 0): no quote, not
            # a bad tick, so the mark still lands.
            bid or _NAN,
            ask or _NAN,
            data["mark_price"],
            data["index_price"],
            _NAN if underlying is None else underlying,
            # Deribit's IV is in percent; the columns hold fractions (Black-76 sigma).
            _NAN if iv is None else iv / 100.0,
            data["timestamp"],
            recv_s,
        ):
            market.changed.set()
    except (_JSONDecodeError, KeyError, TypeError, AttributeError):
        state.reject(BadTick.MALFORMED)
        return FrameKind.OTHER
    return FrameKind.TICKER


def _control_frame(market: LiveMarket, message: Any) -> FrameKind:
    try:
        if message.get("method") == "heartbeat":
            if message["params"]["type"] == "test_request":
                return FrameKind.HEARTBEAT
            return FrameKind.OTHER
        if "error" in message:
            return FrameKind.ERROR
        if "result" in message:
            return FrameKind.REPLY
    except (KeyError, TypeError):
        pass
    market.state.reject(BadTick.MALFORMED)
    return FrameKind.OTHER


@dataclass(slots=True)
class FeedStats:
    """Counters an operator reads on /status; bad ticks by reason live in ``MarketState``."""

    messages: int = 0
    tickers: int = 0
    reconnects: int = 0  # connections opened after the first
    connect_failures: int = 0  # attempts that never got a socket (venue down, refused)
    heartbeats_answered: int = 0
    silences: int = 0  # sockets closed by us for saying nothing for too long
    rpc_errors: int = 0
    connected: bool = False


class DeribitTickerFeed:
    """Streams ``ticker.<name>.<interval>`` for ``instruments`` into ``market`` until stopped.

    ``silence_timeout_s``: with the venue's heartbeat on, a healthy socket is never silent for
    longer than ``heartbeat_s``; after this long without any frame the socket is presumed dead
    and replaced (a half-open TCP connection otherwise looks like a quiet market forever).
    """

    def __init__(
        self,
        market: LiveMarket,
        url: str,
        instruments: Iterable[str],
        *,
        interval: str = "100ms",
        heartbeat_s: int = 10,
        silence_timeout_s: float | None = None,
        backoff: Backoff | None = None,
        subscribe_chunk: int = 100,
        connect_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if heartbeat_s < 10:
            raise ValueError(f"Deribit's heartbeat interval is at least 10 s, got {heartbeat_s}")
        self.market = market
        self.url = url
        self.instruments = tuple(dict.fromkeys(instruments))
        self.channels = [ticker_channel(name, interval) for name in self.instruments]
        self.heartbeat_s = heartbeat_s
        self.silence_timeout_s = silence_timeout_s or 2.0 * heartbeat_s + 1.0
        self.backoff = backoff or Backoff()
        self.subscribe_chunk = subscribe_chunk
        self.connect_timeout_s = connect_timeout_s
        self.stats = FeedStats()
        self._clock = clock
        self._rng = rng or random.Random()
        self._next_id = 0
        self._subscribing: dict[int, list[str]] = {}  # request id -> channels, for errors
        self._last_frame_s = 0.0
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def bad_ticks(self) -> dict[BadTick, int]:
        return self.market.state.rejected

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="deribit-ticker-feed")
        return self._task

    async def stop(self) -> None:
        """Close the socket and end ``run``; safe to call twice or before ``start``."""
        self._stopping.set()
        if self._ws is not None:
            await self._ws.close()  # a polite close frame while the socket is still good
        if self._task is not None:
            # Cancel as well: stop() may land mid-connect or mid-subscribe, where no closed
            # socket would end the task.
            self._task.cancel()
            # A loop that died of an error was reported by whoever supervises it; stopping
            # must still succeed.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def run(self) -> None:
        """Connect, stream, and reconnect forever (until ``stop``)."""
        attempt = 0
        opened = 0
        # Bound only the connect: a total timeout would also cut the long-lived socket.
        timeout = aiohttp.ClientTimeout(total=None, connect=self.connect_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not self._stopping.is_set():
                tickers_before, opened_before = self.stats.tickers, opened
                try:
                    async with session.ws_connect(
                        self.url,
                        autoping=True,
                        max_msg_size=1 << 24,
                        # A silent socket may be half-open: don't wait 10 s for a close reply.
                        timeout=aiohttp.ClientWSTimeout(ws_close=1.0),
                    ) as ws:
                        self._ws = ws
                        if opened:
                            self.stats.reconnects += 1
                        opened += 1
                        self.stats.connected = True
                        log.info("feed_connected", feed="deribit", url=self.url, attempt=attempt)
                        await self._subscribe(ws)
                        await self._stream(ws)
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    log.warning("feed_disconnected", feed="deribit", error=repr(exc))
                    if opened == opened_before:  # never got a socket, as opposed to losing one
                        self.stats.connect_failures += 1
                except Exception:
                    # A bug on our side must not end the feed silently: the rows would just
                    # go stale. Log it loudly and reconnect like after any other failure.
                    log.exception("feed_failed", feed="deribit")
                finally:
                    self._ws = None
                    self.stats.connected = False
                if self._stopping.is_set():
                    break
                # A connection that delivered data was healthy: start the backoff over.
                attempt = 0 if self.stats.tickers > tickers_before else attempt + 1
                delay_s = self.backoff.delay_s(attempt, self._rng)
                log.info("feed_reconnecting", feed="deribit", delay_s=round(delay_s, 3))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay_s)

    # -- one connection ----------------------------------------------------------------------

    async def _request(
        self, ws: aiohttp.ClientWebSocketResponse, method: str, params: dict[str, Any]
    ) -> int:
        self._next_id += 1
        message = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params}
        # Text frames: JSON-RPC over websocket is text on Deribit (binary frames are ignored).
        await ws.send_str(orjson.dumps(message).decode())
        return self._next_id

    async def _subscribe(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._subscribing.clear()  # replies to a dead socket's requests never come
        await self._request(ws, "public/set_heartbeat", {"interval": self.heartbeat_s})
        # Chunked: one request per few hundred channels keeps each frame well under the
        # venue's message limits, and one bad instrument only fails its own chunk.
        for start in range(0, len(self.channels), self.subscribe_chunk):
            chunk = self.channels[start : start + self.subscribe_chunk]
            request_id = await self._request(ws, "public/subscribe", {"channels": chunk})
            self._subscribing[request_id] = chunk

    async def _stream(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        # No per-receive timeout: aiohttp builds a timeout context per call, which costs
        # about as much as the parse. A watchdog task checks the last frame's time instead.
        market, stats, clock = self.market, self.stats, self._clock
        text, binary = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY
        self._last_frame_s = clock()
        watchdog = asyncio.create_task(self._watch_silence(ws))
        try:
            while True:
                message = await ws.receive()
                if message.type is not text and message.type is not binary:
                    return  # closed, closing or error: the caller reconnects
                self._last_frame_s = recv_s = clock()
                stats.messages += 1
                if not stats.messages % _YIELD_EVERY:
                    # aiohttp returns buffered frames without suspending, so under a burst
                    # this loop would never give the engine (or anything else) a turn.
                    await asyncio.sleep(0)
                kind = handle_frame(market, message.data, recv_s)
                if kind is FrameKind.TICKER:
                    stats.tickers += 1
                elif kind is FrameKind.HEARTBEAT:
                    await self._request(ws, "public/test", {})
                    stats.heartbeats_answered += 1
                elif kind is not FrameKind.OTHER:
                    self._on_reply(kind, orjson.loads(message.data))
        finally:
            watchdog.cancel()

    def _on_reply(self, kind: FrameKind, reply: dict[str, Any]) -> None:
        channels = self._subscribing.pop(reply.get("id", -1), None)
        if kind is FrameKind.ERROR:
            # Say which instruments will stay stale: usually a wrong or expired name.
            self.stats.rpc_errors += 1
            log.warning("feed_rpc_error", feed="deribit", error=reply["error"], channels=channels)

    async def _watch_silence(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Close a socket that has been silent too long; ``_stream`` then sees it closed."""
        check_every_s = self.silence_timeout_s / 4
        while not ws.closed:
            await asyncio.sleep(check_every_s)
            silent_s = self._clock() - self._last_frame_s
            if silent_s > self.silence_timeout_s:
                log.warning("feed_silent", feed="deribit", silent_s=round(silent_s, 3))
                self.stats.silences += 1
                await ws.close()
                return
