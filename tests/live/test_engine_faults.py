"""The live engine never dies silently: an order error nobody classified halts it, loudly.

Before the fix an error that ccxt does not classify as network or exchange trouble
(``BadResponse``, ``NullResponse``, a ``KeyError`` in a response parser, ...) escaped
``Engine._hedge``: the cycle task ended with no log line, no more cycles ran, ``/readyz``
stayed 200 and the order stayed ``pending`` until restart. Here a broker wrapped around the
real paper-venue broker raises each of them at each executor step; the engine must end
HALTED with the reason, journaled, not ready, still cycling, and the order's fate settled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt
import pytest

from hedger.config import OrderConfig
from hedger.execution.brokers import Lookup, VenueOrder
from hedger.live.daemon import start_daemon, stop_daemon
from hedger.obs.http import readiness
from tests.live.conftest import move_target, paper_config, with_updates
from tests.live.test_engine_paper import wait_for


class FaultyBroker:
    """The real broker, except that ``step`` raises ``error`` once (after the request did
    reach the venue when ``lands``)."""

    def __init__(self, real: Any, step: str, error: BaseException, lands: bool) -> None:
        self.real, self.step, self.error, self.lands = real, step, error, lands
        self.venue = real.venue
        self.armed = True

    def _fire(self, step: str) -> bool:
        if self.armed and step == self.step:
            self.armed = False
            return True
        return False

    async def request_deadline_ms(self, ttl_s: float) -> int | None:
        deadline: int | None = await self.real.request_deadline_ms(ttl_s)
        return deadline

    async def place(self, *args: Any, **kwargs: Any) -> VenueOrder:
        if self._fire("place"):
            if self.lands:
                await self.real.place(*args, **kwargs)
            raise self.error
        order: VenueOrder = await self.real.place(*args, **kwargs)
        return order

    async def find(self, client_id: str, symbol: str) -> Lookup:
        if self._fire("find"):
            raise self.error
        lookup: Lookup = await self.real.find(client_id, symbol)
        return lookup

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        orders: list[VenueOrder] = await self.real.open_orders(symbol)
        return orders

    async def cancel(self, venue_order_id: str, symbol: str) -> VenueOrder:
        if self._fire("cancel"):
            raise self.error
        order: VenueOrder = await self.real.cancel(venue_order_id, symbol)
        return order


UNCLASSIFIED = [
    ccxt.BadResponse("unparseable"),
    ccxt.NullResponse("empty"),
    KeyError("order_state"),
    RuntimeError("a bug"),
]


@pytest.mark.parametrize("lands", [True, False], ids=["landed", "lost"])
@pytest.mark.parametrize("error", UNCLASSIFIED, ids=lambda e: type(e).__name__)
async def test_an_unclassified_order_error_halts_loudly(
    tmp_path: Path, error: BaseException, lands: bool
) -> None:
    daemon = await start_daemon(paper_config(tmp_path), serve_http=False)
    engine = daemon.engine
    executor = engine.executors["paper"]
    executor.broker = FaultyBroker(executor.broker, "place", error, lands)
    try:
        await wait_for(lambda: engine.trading_state == "halted", timeout_s=30)
        assert type(error).__name__ in (engine.guard_state.reason or "")
        assert any(r.startswith("halted") for r in readiness(engine))
        state = engine.journal.last_trading_state()
        assert state is not None and state.state == "halted"
        assert engine.journal.unresolved_orders() == []  # found and adopted, or proven absent
        cycles = engine.stats.cycles
        await wait_for(lambda: engine.stats.cycles > cycles + 5)  # still computing
        orders = [(o.status,) for o in engine.journal.orders()]
        assert [s for (s,) in orders] == (["filled"] if lands else ["not_sent"])
    finally:
        await stop_daemon(daemon)


@pytest.mark.parametrize(
    "error", [ccxt.BadResponse("unparseable"), KeyError("result")], ids=lambda e: type(e).__name__
)
async def test_an_unclassified_lookup_error_halts_with_the_order_unknown(
    tmp_path: Path, error: BaseException
) -> None:
    """The order's request timed out and the lookup answer cannot be read: its fate is
    unknown, so the engine halts and nothing more is sent."""
    daemon = await start_daemon(paper_config(tmp_path), serve_http=False)
    engine = daemon.engine
    executor = engine.executors["paper"]
    faulty = FaultyBroker(executor.broker, "place", ccxt.RequestTimeout("held"), lands=False)
    executor.broker = faulty

    async def find_fails(client_id: str, symbol: str) -> Lookup:
        raise error

    faulty.find = find_fails  # type: ignore[method-assign]
    try:
        await wait_for(lambda: engine.trading_state == "halted", timeout_s=30)
        assert type(error).__name__ in (engine.guard_state.reason or "")
        (unknown,) = engine.journal.unresolved_orders()
        assert unknown.status == "unknown"
    finally:
        await stop_daemon(daemon, cancel_open_orders=False)


async def test_a_network_error_while_cancelling_a_limit_is_retried(tmp_path: Path) -> None:
    # A real-time market: an offer at the touch for 0.1 s rarely fills, so the limit is
    # cancelled, and that cancel's answer is lost on the network.
    order = OrderConfig(type="limit", limit_timeout=0.1, limit_offset_bps=0.0)
    cfg = with_updates(paper_config(tmp_path, speed=1.0), hedge={"order": order})
    daemon = await start_daemon(cfg, serve_http=False)
    engine = daemon.engine
    executor = engine.executors["paper"]
    executor.broker = FaultyBroker(executor.broker, "cancel", ccxt.RequestTimeout("lost"), False)
    try:
        await wait_for(lambda: not executor.broker.armed, 60)  # type: ignore[attr-defined]
        await wait_for(lambda: any(h.result == "filled" for h in engine.recent_hedges), 30)
        assert engine.trading_state == "running"
        await wait_for(lambda: not engine.hedging)
        assert [o.status for o in engine.journal.unresolved_orders()] == []
    finally:
        await stop_daemon(daemon)


async def test_a_dead_background_task_halts_the_engine(tmp_path: Path) -> None:
    daemon = await start_daemon(paper_config(tmp_path), serve_http=False)
    engine = daemon.engine

    async def broken() -> None:
        raise ValueError("reconcile parser bug")

    try:
        engine.tasks.spawn(broken(), "engine-test")
        await wait_for(lambda: engine.trading_state == "halted")
        assert "engine-test" in (engine.guard_state.reason or "")
        events = [p for _, k, p in engine.journal.events() if k == "task_failed"]
        assert events == [{"task": "engine-test", "error": "ValueError: reconcile parser bug"}]
    finally:
        await stop_daemon(daemon)


async def test_readiness_turns_while_an_order_is_awaited_through_a_rest_outage(
    tmp_path: Path,
) -> None:
    """Before the fix nothing recomputed while the cycle awaited an order: during a 30 s
    REST outage ``/readyz`` stayed 200. Now the pulse keeps staleness current and readiness
    names the stuck cycle and the failing venue."""
    cfg = with_updates(paper_config(tmp_path), market={"stale_after": 2.0})
    # Orders over REST here: the outage is the REST API's (the order socket is the default).
    venue = cfg.venues["paper"].model_copy(update={"order_socket": False})
    cfg = cfg.model_copy(update={"venues": {"paper": venue}})
    daemon = await start_daemon(cfg, serve_http=False)
    engine = daemon.engine
    plan = daemon.paper["paper"].exchange.faults.plan
    try:
        await wait_for(lambda: engine.inside_band() is True, timeout_s=30)
        await wait_for(lambda: not readiness(engine), timeout_s=10)
        plan.update({"error_share": 1.0, "error_status": 503})
        await move_target(engine, 0.5)
        await wait_for(lambda: engine.hedging, timeout_s=10)
        await wait_for(lambda: any("no cycle for" in r for r in readiness(engine)), 15)
        await wait_for(lambda: any("REST failing" in r for r in readiness(engine)), 15)
        assert engine.hedging
        plan.update({"error_share": 0.0})
        await wait_for(lambda: not engine.hedging, timeout_s=60)
        await wait_for(lambda: not readiness(engine), timeout_s=15)
        assert engine.journal.unresolved_orders() == []
    finally:
        await stop_daemon(daemon)


async def test_an_older_positions_read_never_replaces_a_newer_one(tmp_path: Path) -> None:
    """Before the fix four tasks wrote the positions with no sequence: a slow read that
    started first and answered last overwrote the newer one."""
    import asyncio

    daemon = await start_daemon(paper_config(tmp_path), serve_http=False)
    engine = daemon.engine
    link = engine.links["paper"]
    real = link.positions
    try:
        await wait_for(lambda: any(h.result == "filled" for h in engine.recent_hedges), 30)
        await wait_for(lambda: not engine.hedging)
        newer = await real()
        hedge = [p for p in newer if p.instrument.symbol == "BTC/USD:BTC"]
        assert hedge, "the opening hedge should be a venue position by now"
        older = [p for p in newer if p.instrument.symbol != "BTC/USD:BTC"]
        answers = iter([(0.5, older), (0.0, newer)])

        async def scripted() -> list[Any]:
            delay_s, positions = next(answers)
            await asyncio.sleep(delay_s)
            return positions

        link.positions = scripted  # type: ignore[method-assign]
        slow = asyncio.create_task(engine.refresh_positions())
        await asyncio.sleep(0.05)
        await engine.refresh_positions()  # started second, answers first
        await slow
        assert any(p.instrument.symbol == "BTC/USD:BTC" for p in engine.positions)
    finally:
        link.positions = real  # type: ignore[method-assign]
        await stop_daemon(daemon)
