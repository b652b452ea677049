"""Each fault the paper venue can inject, shown happening as configured, through ccxt."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import ccxt.async_support as ccxt_async
import pytest

from hedger.paper.faults import FaultPlan, FaultPlanError, Faults
from hedger.paper.serve import build_server
from hedger.paper.server import PaperVenueServer
from tests.paper.conftest import admin as _admin
from tests.paper.conftest import point_at

ROOT = Path(__file__).resolve().parents[2]


async def test_delay_slows_every_response(venue: PaperVenueServer, rest: Any) -> None:
    await rest.load_markets()
    await _admin(venue, "/admin/faults", {"delay_ms": 300})
    started = time.perf_counter()
    await rest.fetch_ticker("BTC/USD:BTC")
    assert time.perf_counter() - started >= 0.3


async def test_rate_limit_answers_429_that_ccxt_reads_as_ddos(
    venue: PaperVenueServer, rest: Any
) -> None:
    await rest.load_markets()
    await _admin(venue, "/admin/faults", {"error_share": 1.0, "error_status": 429})
    with pytest.raises(ccxt_async.DDoSProtection):
        await rest.fetch_ticker("BTC/USD:BTC")
    await _admin(venue, "/admin/faults", {"error_share": 0.0})
    assert (await rest.fetch_ticker("BTC/USD:BTC"))["symbol"] == "BTC/USD:BTC"


async def test_server_errors_for_a_share_of_requests(venue: PaperVenueServer, rest: Any) -> None:
    await rest.load_markets()
    await _admin(venue, "/admin/faults", {"error_share": 0.5, "error_status": 503, "seed": 1})
    outcomes = []
    for _ in range(40):
        try:
            await rest.fetch_ticker("BTC/USD:BTC")
            outcomes.append("ok")
        except ccxt_async.ExchangeNotAvailable:
            outcomes.append("503")
    assert 8 <= outcomes.count("503") <= 32, outcomes
    state = await _admin(venue, "/admin/state")
    assert state["faults_injected"]["errors"] == outcomes.count("503")


async def test_order_accepted_but_response_times_out(venue: PaperVenueServer) -> None:
    client = point_at(
        ccxt_async.deribit({"apiKey": "paper", "secret": "paper"}), venue, timeout_ms=800
    )
    try:
        await client.load_markets()
        await _admin(venue, "/admin/faults", {"order_timeouts": 1, "hang_s": 3})
        with pytest.raises(ccxt_async.RequestTimeout):
            await client.create_order(
                "BTC/USD:BTC", "market", "buy", 100, params={"label": "lost-ack"}
            )
        # The order went through: it is on the venue, findable by its label.
        found = await client.private_get_get_order_state_by_label(
            {"currency": "BTC", "label": "lost-ack"}
        )
        assert [o["order_state"] for o in found["result"]] == ["filled"]
        positions = {p["symbol"]: p for p in await client.fetch_positions()}
        assert positions["BTC/USD:BTC"]["contracts"] == 100
    finally:
        await client.close()


async def test_rejected_orders_are_refused_with_insufficient_funds(
    venue: PaperVenueServer, rest: Any
) -> None:
    await rest.load_markets()
    await _admin(venue, "/admin/faults", {"reject_orders": True})
    with pytest.raises(ccxt_async.InsufficientFunds):
        await rest.create_order("BTC/USD:BTC", "market", "buy", 100)
    assert await rest.fetch_positions() == []


async def test_drop_websockets_now_and_ccxt_reconnects(venue: PaperVenueServer, pro: Any) -> None:
    await asyncio.wait_for(pro.watch_ticker("BTC/USD:BTC"), 10)
    dropped = await _admin(venue, "/admin/drop-ws")
    assert dropped["dropped"] == 1
    assert (await _admin(venue, "/admin/state"))["connections"] == 0
    # ccxt either surfaces the drop once or reconnects inside this call.
    with contextlib.suppress(ccxt_async.NetworkError):
        await asyncio.wait_for(pro.watch_ticker("BTC/USD:BTC"), 10)
    ticker = await asyncio.wait_for(pro.watch_ticker("BTC/USD:BTC"), 10)
    assert ticker["symbol"] == "BTC/USD:BTC"
    assert (await _admin(venue, "/admin/state"))["connections"] == 1  # a new socket


async def test_drop_websockets_every_n_seconds(venue: PaperVenueServer, pro: Any) -> None:
    await _admin(venue, "/admin/faults", {"ws_drop_every_s": 1.0})
    drops = 0
    deadline = time.monotonic() + 3.5
    while time.monotonic() < deadline:
        try:
            await asyncio.wait_for(pro.watch_ticker("BTC/USD:BTC"), 2)
        except ccxt_async.NetworkError:
            drops += 1
    state = await _admin(venue, "/admin/state")
    assert state["faults_injected"]["ws_drops"] >= 2 and drops >= 2


async def test_paused_instrument_goes_stale_while_others_tick(
    venue: PaperVenueServer, pro: Any
) -> None:
    await asyncio.wait_for(pro.watch_ticker("BTC/USD:BTC"), 10)
    await asyncio.wait_for(pro.watch_ticker("ETH/USD:ETH"), 10)
    await _admin(venue, "/admin/faults", {"paused": ["BTC-PERPETUAL"]})
    await asyncio.sleep(0.2)  # let a tick in flight land
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(pro.watch_ticker("BTC/USD:BTC"), 1.0)
    assert (await asyncio.wait_for(pro.watch_ticker("ETH/USD:ETH"), 5))["symbol"] == "ETH/USD:ETH"
    await _admin(venue, "/admin/faults", {"paused": []})
    assert (await asyncio.wait_for(pro.watch_ticker("BTC/USD:BTC"), 5))["symbol"] == "BTC/USD:BTC"


async def test_bad_fault_settings_are_refused(venue: PaperVenueServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(venue.rest_url + "/admin/faults", json={"error_share": 2}) as r:
            assert r.status == 400 and "error_share" in (await r.json())["error"]
        async with session.post(venue.rest_url + "/admin/faults", json={"nope": 1}) as r:
            assert r.status == 400 and "unknown fault settings" in (await r.json())["error"]


# -- validation: a refused update changes nothing ------------------------------------------

BAD_UPDATES = [
    # (update, the field the error must name)
    ({"error_share": 1.0, "error_status": 200}, "error_status"),
    ({"delay_ms": "slow"}, "delay_ms"),
    ({"error_share": "0.5"}, "error_share"),
    ({"error_share": -0.1}, "error_share"),
    ({"error_share": 1.5}, "error_share"),
    ({"delay_ms": -1}, "delay_ms"),
    ({"hang_s": float("inf")}, "hang_s"),
    ({"ws_drop_every_s": 0}, "ws_drop_every_s"),
    ({"order_timeouts": -1}, "order_timeouts"),
    ({"order_timeouts": 1.5}, "order_timeouts"),
    ({"order_timeouts": True}, "order_timeouts"),
    ({"reject_orders": "yes"}, "reject_orders"),
    ({"reject_code": 42}, "reject_code"),
    ({"paused": "BTC-PERPETUAL"}, "paused"),
    ({"paused": ["BTC-PERPETUAL", 3]}, "paused.1"),
    ({"seed": -1}, "seed"),
    ({"error_share": 0.2, "nope": 1}, "nope"),
]


@pytest.mark.parametrize(("changes", "field"), BAD_UPDATES)
def test_a_refused_update_changes_nothing_and_names_the_field(
    changes: dict[str, Any], field: str
) -> None:
    faults = Faults(FaultPlan(delay_ms=5.0, paused=["ETH-PERPETUAL"]))
    before = faults.plan.as_dict()
    with pytest.raises(FaultPlanError) as refused:
        faults.update(changes)
    message = str(refused.value)
    assert field in message and "\n" not in message, message
    assert faults.plan.as_dict() == before
    assert not faults.should_fail_request()


def test_a_valid_update_applies_whole_and_keeps_the_rest() -> None:
    faults = Faults(FaultPlan(delay_ms=5.0))
    faults.update({"error_share": 1, "error_status": 503, "paused": ["BTC-PERPETUAL"]})
    assert (
        faults.plan.as_dict()
        == FaultPlan(
            delay_ms=5.0, error_share=1.0, error_status=503, paused=["BTC-PERPETUAL"]
        ).as_dict()
    )
    faults.update({"ws_drop_every_s": 2.5})
    faults.update({"ws_drop_every_s": None})
    assert faults.plan.ws_drop_every_s is None and faults.should_fail_request()


@pytest.mark.parametrize("settings", [[1], "error_share", 3, None])
def test_settings_that_are_not_an_object_are_refused(settings: object) -> None:
    with pytest.raises(FaultPlanError, match="must be a JSON object"):
        FaultPlan.parse(settings)


async def test_admin_refuses_a_bad_update_whole_and_the_venue_keeps_serving(
    venue: PaperVenueServer, rest: Any
) -> None:
    await rest.load_markets()
    before = await _get_faults(venue)
    async with aiohttp.ClientSession() as session:
        for changes in ({"error_share": 1.0, "delay_ms": "slow"}, {"paused": "BTC-PERPETUAL"}):
            async with session.post(venue.rest_url + "/admin/faults", json=changes) as r:
                error = (await r.json())["error"]
                assert r.status == 400, error
                assert ("delay_ms" in error or "paused" in error) and "\n" not in error
    assert await _get_faults(venue) == before
    assert (await rest.fetch_ticker("BTC/USD:BTC"))["symbol"] == "BTC/USD:BTC"


async def _get_faults(venue: PaperVenueServer) -> Any:
    url = venue.rest_url + "/admin/faults"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.json()


def test_start_up_plan_goes_through_the_same_validation() -> None:
    # ``hedger paper-venue --faults`` and ``venues.*.paper.faults`` both build through here.
    with pytest.raises(ValueError, match=r"fault setting error_share: .*got '0\.1'"):
        build_server(faults={"error_share": "0.1"}, history_minutes=0)
    with pytest.raises(ValueError, match="unknown fault settings: delay"):
        build_server(faults={"delay": 10}, history_minutes=0)


def test_command_line_faults_refused_with_exit_2_and_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hedger.cli", "paper-venue", "--faults", '{"paused": "BTC"}'],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,  # a plan that slips through starts a venue that serves until killed
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().startswith("paper-venue: fault setting paused: ")
    assert len(result.stderr.strip().splitlines()) == 1
