"""A hedge in flight obeys pause, halt, dry run, shutdown and the age of its decision.

Measured before the fix: with ``max_order_amount`` making ~100 slices, ``/control/pause``
answered "paused" and 105 more slices went out; a reload to ``dry_run: true`` likewise; after
a REST outage the remaining slices of a 34 s old decision were sent. Now the executor's next
slice boundary asks the engine first: the slice in flight finishes, nothing new is sent, and
the stopped intent is journaled with what it filled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hedger.config import Config
from hedger.live.daemon import Daemon, start_daemon, stop_daemon
from hedger.live.engine import Engine
from tests.live.conftest import paper_config, with_updates
from tests.live.test_engine_degraded import with_faults
from tests.live.test_engine_paper import wait_for


def sliced(tmp_path: Path, max_decision_age: float = 600.0, delay_ms: int = 60) -> Config:
    """The paper book's opening hedge (several M USD) in 20k USD slices, each REST call
    slowed so that the slices take seconds, on a real-time venue."""
    cfg = paper_config(tmp_path, speed=1.0)
    cfg = with_updates(
        cfg,
        hedge={"max_order_amount": 20_000.0, "max_decision_age": max_decision_age},
        limits={
            "max_orders_per_minute": 100_000,
            "max_notional_per_hour_usd": 1e9,
            "max_notional_per_day_usd": 1e9,
        },
    )
    return with_faults(cfg, {"delay_ms": delay_ms})


def _sent(engine: Engine, seq: int) -> int:
    return len(engine.journal.orders_of_intent(seq))


def _stopped_events(engine: Engine) -> list[dict[str, Any]]:
    return [payload for _, kind, payload in engine.journal.events() if kind == "intent_stopped"]


async def _first_sliced_intent(engine: Engine, min_sent: int = 3) -> tuple[int, int]:
    """The opening hedge's sequence and legs, once ``min_sent`` of its slices are out."""
    await wait_for(lambda: engine.journal.last_intent_seq() > 0, timeout_s=60)
    seq = engine.journal.last_intent_seq()
    decision = engine.journal.intent_decision(seq)
    assert decision is not None
    legs = len(decision["legs"])
    assert legs >= 20, f"the opening hedge should be sliced, got {legs} legs"
    await wait_for(lambda: _sent(engine, seq) >= min_sent, timeout_s=30)
    return seq, legs


async def _dry_run(daemon: Daemon) -> None:
    cfg = daemon.engine.cfg
    await daemon.engine.apply_config(
        with_updates(cfg, limits={"dry_run": True}), ["limits.dry_run"]
    )


ACTIONS: dict[str, Callable[[Daemon], Any]] = {
    "pause": lambda d: d.engine.pause("by operator (test)"),
    "halt": lambda d: d.engine.halt("test halt"),
    "dry_run": _dry_run,
}


@pytest.mark.parametrize("action", list(ACTIONS))
async def test_no_slice_goes_out_after_the_state_changes(tmp_path: Path, action: str) -> None:
    daemon = await start_daemon(sliced(tmp_path), serve_http=False)
    engine = daemon.engine
    try:
        seq, legs = await _first_sliced_intent(engine)
        done = ACTIONS[action](daemon)
        if asyncio.iscoroutine(done):
            await done
        at_change = _sent(engine, seq)
        await wait_for(lambda: not engine.hedging, timeout_s=30)
        # At most the slice that was already in flight when the state changed.
        assert _sent(engine, seq) <= at_change + 1 < legs
        (stopped,) = [e for e in _stopped_events(engine) if e["intent_seq"] == seq]
        assert stopped["legs_not_sent"] >= legs - at_change - 1
        assert stopped["why"].startswith({"pause": "paused", "halt": "halted"}.get(action, action))
    finally:
        await stop_daemon(daemon)


async def test_shutdown_stops_at_a_slice_boundary(tmp_path: Path) -> None:
    """SIGTERM's path: the slice in flight finishes, nothing new is sent (before the fix
    four more legs went out over 5 s after the signal)."""
    daemon = await start_daemon(sliced(tmp_path), serve_http=False)
    engine = daemon.engine
    seq, legs = await _first_sliced_intent(engine)
    at_stop = _sent(engine, seq)
    await stop_daemon(daemon, cancel_open_orders=False)
    from hedger.execution.journal import Journal

    journal = Journal(engine.journal.path)
    try:
        assert len(journal.orders_of_intent(seq)) <= at_stop + 1 < legs
        assert journal.unresolved_orders() == []
        kinds = [(kind, payload) for _, kind, payload in journal.events()]
        assert any(k == "intent_stopped" and p["why"] == "shutdown" for k, p in kinds)
    finally:
        journal.close()


async def test_an_old_decision_is_not_finished(tmp_path: Path) -> None:
    """Slow REST (0.4 s a call) against a 1 s decision age: the decision stops after a few
    slices instead of trading on a view of the book that is no longer current."""
    daemon = await start_daemon(
        sliced(tmp_path, max_decision_age=1.0, delay_ms=400), serve_http=False
    )
    engine = daemon.engine
    try:
        seq, legs = await _first_sliced_intent(engine, min_sent=1)
        await wait_for(lambda: any(e["intent_seq"] == seq for e in _stopped_events(engine)), 30)
        (stopped,) = [e for e in _stopped_events(engine) if e["intent_seq"] == seq]
        assert "old" in stopped["why"]
        assert _sent(engine, seq) < legs
    finally:
        await stop_daemon(daemon)
