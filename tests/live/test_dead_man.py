"""Dead-man's switches through the real ccxt clients against loopback venues: the exact
request each venue documents to arm, refresh and disarm, and the daemon's loop around them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from hedger.config import Venue
from hedger.config.models import VenueUrls
from hedger.execution.bybit_dcp import DcpError
from hedger.live.dead_man import (
    BinanceCountdown,
    BybitDcp,
    DeadManSwitch,
    OkxDeadMan,
    make_dead_man,
)
from hedger.live.venue_client import make_client
from tests.ccxt_loopback import binanceusdm, bybit, okx
from tests.ccxt_loopback.bybit_dcp import BybitPrivateStream, set_window
from tests.ccxt_loopback.server import LoopbackVenue, Reply, Request
from tests.ccxt_loopback.ws import LoopbackSocket
from tests.market.conftest import eventually

ARMED = {"enabled": True, "timeout": "60s", "refresh_every": "15s"}
UNPACED = {"enabled": False}
"""ccxt's pacing off: a switch's request costs 10 units (1 s of OKX's bucket) and the loop
test beats every 50 ms."""

OpenVenue = Callable[[dict[tuple[str, str], Any], Venue], Awaitable[tuple[LoopbackVenue, Any]]]


@pytest.fixture
async def open_venue() -> AsyncIterator[OpenVenue]:
    """``open_venue(routes, cfg)``: a loopback server and the real ccxt client the config
    makes, pointed at it, markets loaded."""
    opened: list[tuple[LoopbackVenue, Any]] = []

    async def open_(routes: dict[tuple[str, str], Any], cfg: Venue) -> tuple[LoopbackVenue, Any]:
        server = LoopbackVenue(routes)
        base = await server.start()
        client = make_client(cfg.model_copy(update={"urls": VenueUrls(rest=base)}))
        opened.append((server, client))
        await client.load_markets()
        return server, client

    yield open_
    for server, client in opened:
        await client.close()
        await server.stop()


def armed(switch: DeadManSwitch) -> bool:
    """Read afresh (a plain attribute read would stay narrowed across the awaits)."""
    return switch.armed


def _form(request: Request) -> list[tuple[str, str]]:
    """A signed form body with its clock and signature blanked (the fixture checks those)."""
    volatile = {"timestamp", "signature", "recvWindow"}
    return [(k, "*" if k in volatile else v) for k, v in request.form()]


# --- OKX ---------------------------------------------------------------------------------------


def _okx_routes(answers: list[dict[str, Any]] | None = None) -> dict[tuple[str, str], Any]:
    pending = list(answers or [])

    def cancel_all_after(request: Request) -> Reply:
        okx.assert_signed(request, request.body)
        if pending:
            return Reply(pending.pop(0))
        seconds = request.json()["timeOut"]
        trigger = "0" if seconds == "0" else str(okx.NOW_MS // 1000 + int(seconds))
        return Reply(
            {
                "code": "0",
                "msg": "",
                "data": [{"triggerTime": trigger, "tag": "", "ts": str(okx.NOW_MS // 1000)}],
            }
        )

    return {
        **okx.Okx().routes(),
        ("POST", "/api/v5/trade/cancel-all-after"): cancel_all_after,
    }


OKX = Venue(
    exchange="okx",
    api_key=okx.API_KEY,
    secret=okx.SECRET,
    password=okx.PASSPHRASE,
    dead_man=ARMED,
    rate_limit=UNPACED,
)


async def test_okx_arms_and_disarms_cancel_all_after(open_venue: OpenVenue) -> None:
    server, client = await open_venue(_okx_routes(), OKX)
    switch = make_dead_man(client, "okx", OKX, lambda: ())
    assert isinstance(switch, OkxDeadMan)
    mark = len(server.requests)

    await switch.refresh()
    await switch.refresh()
    assert armed(switch)
    await switch.disarm()
    assert not armed(switch)

    sent = server.since(mark)
    assert [(r.method, r.path, r.query) for r in sent] == [
        ("POST", "/api/v5/trade/cancel-all-after", ())
    ] * 3
    # timeOut in seconds, a string as OKX documents it; 0 stops the timer.
    assert [r.json() for r in sent] == [{"timeOut": "60"}, {"timeOut": "60"}, {"timeOut": "0"}]


async def test_the_loop_refreshes_on_its_beat_survives_a_refusal_and_disarms_on_stop(
    open_venue: OpenVenue,
) -> None:
    busy = {"code": "50001", "msg": "Service temporarily unavailable", "data": []}
    server, client = await open_venue(_okx_routes([busy]), OKX)
    switch = OkxDeadMan(client, "okx", timeout_s=10.0, refresh_every_s=0.05)
    stop = asyncio.Event()
    loop = asyncio.create_task(switch.run(stop))
    await eventually(lambda: switch.refreshes >= 3, timeout_s=10)
    assert switch.failures == 1 and switch.consecutive_failures == 0
    stop.set()
    await asyncio.wait_for(loop, 10)
    bodies = [r.json()["timeOut"] for r in server.calls("POST", "/api/v5/trade/cancel-all-after")]
    assert bodies[-1] == "0" and set(bodies[:-1]) == {"10"}
    assert len(bodies) == switch.refreshes + switch.failures + 1
    assert not armed(switch)


async def test_cancelling_the_loop_leaves_the_timer_to_run_out(open_venue: OpenVenue) -> None:
    """A crash is what the switch is for: only a planned stop disarms it."""
    server, client = await open_venue(_okx_routes(), OKX)
    switch = OkxDeadMan(client, "okx", timeout_s=10.0, refresh_every_s=0.05)
    loop = asyncio.create_task(switch.run(asyncio.Event()))
    await eventually(lambda: switch.refreshes >= 1, timeout_s=10)
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop
    sent = [r.json()["timeOut"] for r in server.calls("POST", "/api/v5/trade/cancel-all-after")]
    assert "0" not in sent and armed(switch)


# --- Binance USD-M ------------------------------------------------------------------------------


def _binance_routes() -> dict[tuple[str, str], Any]:
    def countdown(request: Request) -> Reply:
        binanceusdm.assert_signed(request.body, request.headers)
        form = dict(request.form())
        return Reply({"symbol": form["symbol"], "countdownTime": form["countdownTime"]})

    return {
        **binanceusdm.BinanceUsdm().routes(),
        ("POST", "/fapi/v1/countdownCancelAll"): countdown,
    }


BINANCE = Venue(
    exchange="binanceusdm",
    api_key=binanceusdm.API_KEY,
    secret=binanceusdm.SECRET,
    dead_man={**ARMED, "timeout": "2m"},
    rate_limit=UNPACED,
)


async def test_binance_counts_down_per_hedge_symbol_and_stops_one_that_left(
    open_venue: OpenVenue,
) -> None:
    server, client = await open_venue(_binance_routes(), BINANCE)
    hedged = ["BTCUSDT", "ETH/USDT:USDT"]  # a venue id and a unified symbol, as configs write
    switch = make_dead_man(client, "usdm", BINANCE, lambda: hedged)
    assert isinstance(switch, BinanceCountdown)
    mark = len(server.requests)

    await switch.refresh()
    hedged.remove("ETH/USDT:USDT")  # a reload dropped the ETH hedge
    await switch.refresh()
    await switch.disarm()

    sent = server.since(mark)
    assert {(r.method, r.path, r.query) for r in sent} == {
        ("POST", "/fapi/v1/countdownCancelAll", ())
    }

    def countdown(symbol: str, ms: str) -> list[tuple[str, str]]:
        return [
            ("timestamp", "*"),
            ("symbol", symbol),
            ("countdownTime", ms),
            ("recvWindow", "*"),
            ("signature", "*"),
        ]

    assert [_form(r) for r in sent] == [
        countdown("BTCUSDT", "120000"),
        countdown("ETHUSDT", "120000"),
        countdown("ETHUSDT", "0"),  # left the set: its timer is stopped
        countdown("BTCUSDT", "120000"),
        countdown("BTCUSDT", "0"),  # disarm: countdownTime 0 per armed symbol
    ]
    assert switch.armed_ids == set() and not armed(switch)


async def test_binance_sets_every_timer_before_raising_the_first_refusal(
    open_venue: OpenVenue,
) -> None:
    routes = _binance_routes()
    accept = routes[("POST", "/fapi/v1/countdownCancelAll")]

    def refuse_btc(request: Request) -> Reply:
        if dict(request.form())["symbol"] == "BTCUSDT":
            return Reply({"code": -1121, "msg": "Invalid symbol."}, status=400)
        return accept(request)  # type: ignore[no-any-return]

    routes[("POST", "/fapi/v1/countdownCancelAll")] = refuse_btc
    server, client = await open_venue(routes, BINANCE)
    switch = BinanceCountdown(client, "usdm", 60.0, 15.0, lambda: ["BTCUSDT", "ETHUSDT"])
    with pytest.raises(Exception, match="Invalid symbol"):
        await switch.refresh()
    assert switch.armed_ids == {"ETHUSDT"}
    symbols = [
        dict(r.form())["symbol"] for r in server.calls("POST", "/fapi/v1/countdownCancelAll")
    ]
    assert symbols == ["BTCUSDT", "ETHUSDT"]


# --- Bybit --------------------------------------------------------------------------------------


BYBIT = Venue(
    exchange="bybit",
    api_key=bybit.API_KEY,
    secret=bybit.SECRET,
    accounts=["unified"],
    dead_man={**ARMED, "refresh_every": "15s"},
    rate_limit=UNPACED,
)


@pytest.fixture
async def private_stream() -> AsyncIterator[LoopbackSocket]:
    socket = LoopbackSocket(BybitPrivateStream(), path="/v5/private")
    await socket.start()
    yield socket
    await socket.stop()


def _bybit_routes() -> dict[tuple[str, str], Any]:
    return {
        **bybit.Bybit().routes(),
        ("POST", "/v5/order/disconnected-cancel-all"): set_window,
    }


async def test_bybit_sets_the_window_once_and_keeps_a_dcp_subscription_pinged(
    open_venue: OpenVenue, private_stream: LoopbackSocket
) -> None:
    server, client = await open_venue(_bybit_routes(), BYBIT)
    switch = make_dead_man(client, "bybit", BYBIT, lambda: (), bybit_ws_url=private_stream.url)
    assert isinstance(switch, BybitDcp)
    mark = len(server.requests)

    await switch.refresh()
    await switch.refresh()
    assert armed(switch)

    (window,) = server.since(mark)
    assert (window.method, window.path, window.query) == (
        "POST",
        "/v5/order/disconnected-cancel-all",
        (),
    )
    assert json.loads(window.body) == {"timeWindow": 60, "product": "DERIVATIVES"}
    ops = [(m["op"], m.get("args")) for m in private_stream.messages(0)]
    assert [op for op, _ in ops] == ["auth", "subscribe", "ping", "ping"]
    assert ops[1] == ("subscribe", ["dcp.future"])
    assert private_stream.connections[0].state["topics"] == {"dcp.future"}

    # A planned stop: unsubscribe first (no window of 0 exists: Bybit takes 3 to 300 s).
    await switch.disarm()
    assert private_stream.messages(0)[-1]["op"] == "unsubscribe"
    assert private_stream.connections[0].state["topics"] == set()
    await eventually(lambda: private_stream.open_connections == 0)
    assert len(server.since(mark)) == 1 and not armed(switch)


async def test_bybit_resubscribes_after_its_socket_is_cut(
    open_venue: OpenVenue, private_stream: LoopbackSocket
) -> None:
    _, client = await open_venue(_bybit_routes(), BYBIT)
    switch = make_dead_man(client, "bybit", BYBIT, lambda: (), bybit_ws_url=private_stream.url)
    assert switch is not None
    await switch.refresh()
    await private_stream.drop_all()
    with pytest.raises(DcpError):
        await switch.refresh()  # the cut is noticed on the next beat
    assert not armed(switch)
    await switch.refresh()  # and the beat after reconnects
    assert armed(switch) and len(private_stream.connections) == 2
    assert [m["op"] for m in private_stream.messages(1)] == ["auth", "subscribe", "ping"]
    await switch.disarm()


async def test_bybit_refusing_the_key_fails_the_refresh(open_venue: OpenVenue) -> None:
    refusing = LoopbackSocket(BybitPrivateStream(refuse_auth=True), path="/v5/private")
    await refusing.start()
    try:
        _, client = await open_venue(_bybit_routes(), BYBIT)
        switch = make_dead_man(client, "bybit", BYBIT, lambda: (), bybit_ws_url=refusing.url)
        assert switch is not None
        with pytest.raises(DcpError, match="bybit refused auth"):
            await switch.refresh()
        assert not armed(switch)
        await eventually(lambda: refusing.open_connections == 0)
    finally:
        await refusing.stop()


def test_a_switch_that_is_off_is_none() -> None:
    assert make_dead_man(None, "okx", Venue(exchange="okx"), lambda: ()) is None
