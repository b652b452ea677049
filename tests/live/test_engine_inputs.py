"""One writer: what other tasks read is posted to the cycle, which alone applies it.

Before, the reconciliation timer, the fill watcher and a reload each swapped positions, book
and universe from their own task; a slower, older read could land over a newer one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from hedger.live.book_plan import BookPlan
from hedger.live.daemon import start_daemon, stop_daemon
from hedger.live.inputs import PositionsRead
from tests.live.conftest import move_target, paper_config
from tests.live.test_engine_paper import wait_for


async def test_a_background_read_is_applied_by_the_cycle_task(tmp_path: Path) -> None:
    daemon = await start_daemon(paper_config(tmp_path), serve_http=False)
    engine = daemon.engine
    committed_by: list[asyncio.Task[object] | None] = []
    real_commit = engine._commit

    def spy(plan: BookPlan) -> None:
        committed_by.append(asyncio.current_task())
        real_commit(plan)

    try:
        await wait_for(lambda: engine.stats.cycles > 0 and not engine.hedging)
        engine._commit = spy  # type: ignore[method-assign]
        await engine.poll_positions()  # the reconciliation timer's read, from this task
        reader = asyncio.current_task()
        assert reader not in committed_by, "the reader swapped the book itself"
        await wait_for(lambda: bool(committed_by))
        assert all(task is engine._cycle_task for task in committed_by), committed_by
    finally:
        await stop_daemon(daemon)


async def test_an_older_read_posted_after_a_newer_one_is_dropped(tmp_path: Path) -> None:
    daemon = await start_daemon(paper_config(tmp_path), serve_http=False)
    engine = daemon.engine
    try:
        await wait_for(lambda: engine.stats.cycles > 0 and not engine.hedging)
        older_seq = engine._next_read()
        await engine.refresh_positions()  # started later, applied first
        held = engine.positions
        engine.inputs.post(PositionsRead(older_seq, (), asked_venues=True))
        await wait_for(lambda: engine.stats.superseded_position_reads == 1)
        assert engine.positions is held
    finally:
        await stop_daemon(daemon)


async def test_a_reload_is_applied_by_the_cycle_and_returns_once_applied(tmp_path: Path) -> None:
    daemon = await start_daemon(paper_config(tmp_path), serve_http=False)
    engine = daemon.engine
    try:
        await wait_for(lambda: engine.stats.cycles > 0)
        await move_target(engine, 1.25)
        assert engine.cfg.factors[0].target.value == 1.25
        assert engine.params.factors[0].target.value == 1.25
    finally:
        await stop_daemon(daemon)
