"""A slow network hop on loopback: an HTTP proxy that holds order requests in flight.

It sits between a ccxt client and the paper venue and forwards every REST request as is,
except that the next ``hold`` order requests (``private/buy``/``private/sell``) are held for
``delay_s`` before they are forwarded, whether or not the client is still waiting: the
client times out, the request still lands later, exactly the case that filled one hedge
leg three times.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from tests.loopback_hop import LoopbackHop

_ORDER_PATHS = ("/api/v2/private/buy", "/api/v2/private/sell")


class SlowHop(LoopbackHop):
    def __init__(self, upstream: str) -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.hold = 0
        self.delay_s = 0.0
        self.held = 0
        self.landed = 0
        """held requests that have since been forwarded to the venue."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    async def settled(self) -> None:
        """Every held request has been forwarded (landed or refused by the venue)."""
        while self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _forward(
        self, target: str, headers: dict[str, str], delay_s: float
    ) -> tuple[int, bytes]:
        if delay_s:
            await asyncio.sleep(delay_s)
        assert self.session is not None
        async with self.session.get(self.upstream + target, headers=headers) as response:
            body = await response.read()
        if delay_s:
            self.landed += 1
        return response.status, body

    async def _handle(self, request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() == "authorization"}
        delay_s = 0.0
        if request.path in _ORDER_PATHS and self.hold > 0:
            self.hold -= 1
            self.held += 1
            delay_s = self.delay_s
        # A task of its own: the request goes on to the venue even when the client gives up.
        task = self.spawn(self._forward(request.raw_path, headers, delay_s))
        status, body = await asyncio.shield(task)
        return web.Response(body=body, status=status, content_type="application/json")
