"""An aiohttp server on an ephemeral loopback port that records every request and answers
from a table of routes (``(method, path) -> handler``)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web


@dataclass(slots=True, frozen=True)
class Request:
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    """The query string's pairs, in the order the client sent them."""
    raw_query: str
    """The query string as sent (what signatures cover)."""
    body: str
    headers: Mapping[str, str]

    @property
    def params(self) -> dict[str, str]:
        return dict(self.query)

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> tuple[tuple[str, str], ...]:
        """An ``application/x-www-form-urlencoded`` body's pairs, in order."""
        return tuple(parse_qsl(self.body, keep_blank_values=True))


@dataclass(slots=True, frozen=True)
class Reply:
    payload: Any
    status: int = 200


Handler = Callable[[Request], "Reply | Awaitable[Reply]"]


@dataclass
class LoopbackVenue:
    routes: dict[tuple[str, str], Handler]
    requests: list[Request] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    base_url: str = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._serve)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, http: web.Request) -> web.Response:
        raw_query = http.rel_url.raw_query_string
        request = Request(
            method=http.method,
            path=http.path,
            query=tuple(parse_qsl(raw_query, keep_blank_values=True)),
            raw_query=raw_query,
            body=await http.text(),
            headers=dict(http.headers),
        )
        self.requests.append(request)
        handler = self.routes.get((http.method, http.path))
        if handler is None:
            return web.json_response({"unrouted": f"{http.method} {http.path}"}, status=404)
        reply = handler(request)
        if inspect.isawaitable(reply):
            reply = await reply
        assert isinstance(reply, Reply)
        return web.Response(
            text=json.dumps(reply.payload), status=reply.status, content_type="application/json"
        )

    def calls(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if (r.method, r.path) == (method, path)]

    def since(self, mark: int) -> list[Request]:
        """Requests after the first ``mark`` (``mark = len(venue.requests)`` earlier)."""
        return self.requests[mark:]
