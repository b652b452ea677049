"""``hedger record``: write what the native feed receives, frame by frame, for replays.

Connects to a Deribit-dialect websocket, asks for the instrument list (its reply is recorded,
so a replay knows lots and fees), subscribes ``ticker.<name>.<interval>`` for the given
instruments (all active ones if none are given) and appends every text frame to a
gzip-compressed JSON-lines file (``hedger.backtest.recording_format``) with its receive time.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from hedger.backtest.recording_format import encode_line
from hedger.market.deribit_feed import ticker_channel

_INSTRUMENTS_ID = 1


@dataclass(slots=True)
class RecordStats:
    frames: int = 0
    tickers: int = 0
    channels: int = 0
    bytes_written: int = 0


def _wall_ms() -> int:
    return int(time.time() * 1000)


class TickerRecorder:
    """Records ``url`` into ``path`` until ``duration_s`` elapses or ``stop()``."""

    def __init__(
        self,
        url: str,
        path: str | Path,
        instruments: Iterable[str] = (),
        *,
        interval: str = "100ms",
        subscribe_chunk: int = 100,
        clock_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        self.url = url
        self.path = Path(path)
        self.instruments = tuple(dict.fromkeys(instruments))
        self.interval = interval
        self.subscribe_chunk = subscribe_chunk
        self.clock_ms = clock_ms
        self.stats = RecordStats()
        self._stopping = asyncio.Event()
        self._next_id = _INSTRUMENTS_ID

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, duration_s: float | None = None) -> RecordStats:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        timeout = aiohttp.ClientTimeout(total=None, connect=10.0)
        # A fast gzip level: the recorder must keep up with the feed it records.
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.ws_connect(self.url, max_msg_size=1 << 24) as ws,
        ):
            with gzip.open(self.path, "wb", compresslevel=3) as out:
                await self._send(ws, "public/get_instruments", {"currency": "any"})
                receiving = asyncio.create_task(self._receive(ws, out))
                stopping = asyncio.create_task(self._stopping.wait())
                await asyncio.wait(
                    {receiving, stopping},
                    timeout=duration_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for task in (receiving, stopping):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        return self.stats

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, method: str, params: Any) -> None:
        message = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params}
        self._next_id += 1
        await ws.send_str(orjson.dumps(message).decode())

    async def _subscribe(self, ws: aiohttp.ClientWebSocketResponse, names: Iterable[str]) -> None:
        channels = [ticker_channel(name, self.interval) for name in names]
        self.stats.channels = len(channels)
        for start in range(0, len(channels), self.subscribe_chunk):
            chunk = channels[start : start + self.subscribe_chunk]
            await self._send(ws, "public/subscribe", {"channels": chunk})

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse, out: Any) -> None:
        subscribed = False
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            line = encode_line(self.clock_ms(), message.data)
            out.write(line)
            self.stats.frames += 1
            self.stats.bytes_written += len(line)
            if '"subscription"' in message.data:
                self.stats.tickers += 1
            elif not subscribed:
                reply = orjson.loads(message.data)
                if reply.get("id") == _INSTRUMENTS_ID:
                    subscribed = True
                    await self._subscribe(ws, self.instruments or _active_names(reply))


def _active_names(reply: Any) -> list[str]:
    rows = reply.get("result") or []
    return [str(r["instrument_name"]) for r in rows if r.get("is_active", True)]
