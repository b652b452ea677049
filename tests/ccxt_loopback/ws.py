"""A websocket server on an ephemeral loopback port that records every JSON message a client
sends and answers through a venue's handler (``handler(connection, message)``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web


@dataclass
class Connection:
    """One client connection as the handler sees it."""

    number: int
    socket: web.WebSocketResponse
    state: dict[str, Any] = field(default_factory=dict)

    async def send(self, payload: Any) -> None:
        await self.socket.send_str(json.dumps(payload))


Handler = Callable[[Connection, Any], Awaitable[None]]


@dataclass
class LoopbackSocket:
    handler: Handler
    path: str = "/ws"
    received: list[tuple[int, Any]] = field(default_factory=list)
    """(connection number, message) in arrival order."""
    connections: list[Connection] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get(self.path, self._serve)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.url = f"ws://127.0.0.1:{port}{self.path}"
        return self.url

    async def stop(self) -> None:
        await self.drop_all()
        if self._runner is not None:
            await self._runner.cleanup()

    async def drop_all(self) -> None:
        """Close every open connection from the server's side (a cut network, a restart)."""
        await asyncio.gather(*(c.socket.close() for c in self.connections if not c.socket.closed))

    @property
    def open_connections(self) -> int:
        return sum(1 for c in self.connections if not c.socket.closed)

    def messages(self, connection: int | None = None) -> list[Any]:
        return [m for n, m in self.received if connection in (None, n)]

    async def _serve(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        connection = Connection(len(self.connections), socket)
        self.connections.append(connection)
        async for frame in socket:
            if frame.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                message = json.loads(frame.data)
                self.received.append((connection.number, message))
                await self.handler(connection, message)
        return socket
