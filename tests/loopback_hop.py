"""What every loopback hop of the tests shares: an aiohttp server on an ephemeral port, a
client session to the venue behind it, and background tasks ended on stop."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
from aiohttp import web


class LoopbackHop:
    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()
        self.session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        self.session = aiohttp.ClientSession()

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        if self.session is not None:
            await self.session.close()
        if self._runner is not None:
            await self._runner.cleanup()
