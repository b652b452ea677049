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
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from hedger.backtest.recording_format import encode_line
from hedger.market.deribit_feed import ticker_channel

_INSTRUMENTS_ID = 1


@dataclass(slots=True)
class RecordStats:
    frames: int = 0
    tickers: int = 0
    channels: int = 0
    bytes_written: int = 0


ProgressCallback = Callable[[RecordStats, float], None]
"""called with the stats so far and the seconds since recording started"""


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

    async def run(
        self,
        duration_s: float | None = None,
        on_progress: ProgressCallback | None = None,
        progress_every_s: float = 0.5,
    ) -> RecordStats:
        """Record until ``duration_s`` passes or ``stop()``; ``on_progress(stats,
        elapsed_s)`` is called every ``progress_every_s`` meanwhile (and once at the end)."""
        started = time.monotonic()
        reporting = None
        if on_progress is not None:
            reporting = asyncio.create_task(self._report(on_progress, progress_every_s, started))
        try:
            return await self._record(duration_s)
        finally:
            if reporting is not None:
                reporting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporting
            if on_progress is not None:
                on_progress(self.stats, time.monotonic() - started)

    async def _report(self, on_progress: ProgressCallback, every_s: float, started: float) -> None:
        while True:
            on_progress(self.stats, time.monotonic() - started)
            await asyncio.sleep(every_s)

    async def _record(self, duration_s: float | None) -> RecordStats:
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


def _megabytes(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


class RecordProgress:
    """``hedger record``'s progress on stderr: frames, tickers and bytes written, and time
    (a bar towards ``--seconds`` when given). On a terminal it redraws one line; to a file
    or a pipe it prints a plain line every ``plain_every_s`` (no control codes in logs)."""

    def __init__(
        self,
        console: Console,
        path: str | Path,
        duration_s: float | None = None,
        plain_every_s: float = 10.0,
    ) -> None:
        self.console = console
        self.path = Path(path)
        self.duration_s = duration_s
        self.plain_every_s = plain_every_s
        self._next_plain_s = 0.0
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> RecordProgress:
        if self.console.is_terminal:
            columns: list[ProgressColumn] = [TextColumn("recording")]
            columns.append(BarColumn() if self.duration_s else SpinnerColumn())
            columns += [TextColumn("{task.fields[line]}"), TimeElapsedColumn()]
            self._bar = Progress(*columns, console=self.console, transient=False)
            self._bar.start()
            self._task = self._bar.add_task("record", total=self.duration_s, line="connecting")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def line(self, stats: RecordStats) -> str:
        on_disk = self.path.stat().st_size if self.path.exists() else 0
        return (
            f"{stats.frames:,} frames ({stats.tickers:,} tickers, {stats.channels:,} channels), "
            f"{_megabytes(stats.bytes_written)} written, {_megabytes(on_disk)} gzip on disk"
        )

    def update(self, stats: RecordStats, elapsed_s: float) -> None:
        if self._bar is not None and self._task is not None:
            done = min(elapsed_s, self.duration_s) if self.duration_s else elapsed_s
            self._bar.update(self._task, completed=done, line=self.line(stats))
        elif elapsed_s >= self._next_plain_s:
            self._next_plain_s = elapsed_s + self.plain_every_s
            self.console.print(
                f"recording: {self.line(stats)}, {elapsed_s:,.0f} s", highlight=False
            )
