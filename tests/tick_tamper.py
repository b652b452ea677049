"""A websocket hop on loopback that can corrupt one ticker push on its way to the daemon.

It relays Deribit JSON-RPC frames between the daemon's feed and the paper venue both ways;
``tamper(instrument, edit)`` rewrites the next push of that instrument's ticker with
``edit(data)`` (a dict edit), the way a bad tick would arrive from a real venue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from tests.loopback_hop import LoopbackHop

Edit = Callable[[dict[str, Any]], None]


class TickTamper(LoopbackHop):
    def __init__(self, upstream_ws: str) -> None:
        super().__init__()
        self.upstream_ws = upstream_ws
        self._edits: dict[str, list[Edit]] = {}
        self.tampered = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/api/v2"

    def tamper(self, instrument: str, edit: Edit) -> None:
        self._edits.setdefault(instrument, []).append(edit)

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/ws/api/v2", self._handle)

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
        assert self.session is not None
        async with self.session.ws_connect(self.upstream_ws) as up:

            async def to_venue() -> None:
                async for msg in down:
                    if msg.type is WSMsgType.TEXT:
                        await up.send_str(msg.data)

            pump = self.spawn(to_venue())
            try:
                async for msg in up:
                    if msg.type is WSMsgType.TEXT:
                        await down.send_str(self._edit(msg.data))
            finally:
                pump.cancel()
        await down.close()
        return down
