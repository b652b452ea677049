"""A websocket hop on loopback that can corrupt one ticker push on its way to the daemon.

It relays Deribit JSON-RPC frames between the daemon's feed and the paper venue both ways;
``tamper(instrument, edit)`` rewrites the next push of that instrument's ticker with
``edit(data)`` (a dict edit), the way a bad tick would arrive from a real venue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
from aiohttp import WSMsgType, web

Edit = Callable[[dict[str, Any]], None]


class TickTamper:
    def __init__(self, upstream_ws: str) -> None:
        self.upstream_ws = upstream_ws
        self._edits: dict[str, list[Edit]] = {}
        self.tampered = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._pumps: set[asyncio.Task[None]] = set()
        self.url = ""

    def tamper(self, instrument: str, edit: Edit) -> None:
        self._edits.setdefault(instrument, []).append(edit)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ws/api/v2", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"ws://127.0.0.1:{self._runner.addresses[0][1]}/ws/api/v2"
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        for task in list(self._pumps):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _edit(self, text: str) -> str:
        if not self._edits or '"subscription"' not in text:
            return text
        message = orjson.loads(text)
        data = message.get("params", {}).get("data")
        if not isinstance(data, dict):
            return text
        queue = self._edits.get(str(data.get("instrument_name")))
        if not queue:
            return text
        queue.pop(0)(data)
        self.tampered += 1
        return orjson.dumps(message).decode()

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        down = web.WebSocketResponse()
        await down.prepare(request)
        assert self._session is not None
        async with self._session.ws_connect(self.upstream_ws) as up:

            async def to_venue() -> None:
                async for msg in down:
                    if msg.type is WSMsgType.TEXT:
                        await up.send_str(msg.data)

            pump = asyncio.create_task(to_venue())
            self._pumps.add(pump)
            try:
                async for msg in up:
                    if msg.type is WSMsgType.TEXT:
                        await down.send_str(self._edit(msg.data))
            finally:
                pump.cancel()
                self._pumps.discard(pump)
        await down.close()
        return down
