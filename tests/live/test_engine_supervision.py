"""Every long-running task is supervised: the feeds' own loops and a SIGHUP reload too.

Before, a feed loop that raised died unnoticed (its rows went stale, with no reason given
anywhere) and a SIGHUP reload ran as a bare task.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hedger.live.daemon import start_daemon, stop_daemon
from hedger.market.deribit_feed import DeribitTickerFeed
from tests.live.conftest import paper_config
from tests.live.test_engine_paper import wait_for


async def test_a_feed_loop_that_raises_halts_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_run = DeribitTickerFeed.run

    async def run_then_fail(feed: DeribitTickerFeed) -> None:
        if feed.market.state.accepted == 0:
            raise RuntimeError("parser bug")
        await real_run(feed)

    monkeypatch.setattr(DeribitTickerFeed, "run", run_then_fail)
    daemon = await start_daemon(paper_config(tmp_path), serve_http=False)
    engine = daemon.engine
    try:
        await wait_for(lambda: engine.trading_state == "halted", timeout_s=15)
        assert "feed-paper" in (engine.guard_state.reason or "")
        assert "parser bug" in (engine.guard_state.reason or "")
        assert engine.stats.task_failures["feed-paper"] == 1
        kinds = [kind for _, kind, _ in engine.journal.events()]
        assert "task_failed" in kinds
    finally:
        await stop_daemon(daemon)
