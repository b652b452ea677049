"""One recorded tape, two drivers of ``core.cycle.step``: the same decisions, bar by bar.

The live driver is the daemon's own ``Engine`` (its universe and quote map from the venue's
real market metadata, its market state fed frame by frame through the native feed's
``handle_frame``, its cycle on the recording's clock); the backtest driver is
``hedger backtest --replay`` (``replay_lines`` then ``run_hedge``). Both run in dry run, so
neither fills and every decision can be compared: the bars' instants, each factor's
beta-delta and band, and every approved intent. Before the one step, prices, staleness
(receive clock live, exchange clock in replay), costs and cooldowns were computed twice.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hedger.backtest.driver import run_hedge
from hedger.backtest.record import TickerRecorder
from hedger.backtest.recording_format import read_recording
from hedger.backtest.replay import replay_bars, replay_lines
from hedger.config import Config, VenueUrls, load_config
from hedger.execution.journal import Journal
from hedger.live.engine import Engine
from hedger.live.venue_link import VenueLink
from hedger.market.state import LiveMarket, MarketState
from tests.live.conftest import ROOT, with_updates
from tests.paper.conftest import make_server

BAR_MS = 200


def _parity_config(tmp_path: Path, rest_url: str) -> Config:
    cfg = load_config(ROOT / "config" / "paper.yaml")
    venue = cfg.venues["paper"].model_copy(
        update={"paper": None, "urls": VenueUrls(rest=rest_url, ws="ws://127.0.0.1:9/unused")}
    )
    factor = cfg.factors[0]
    # A narrow band and a short cooldown: many decisions in a few seconds of tape.
    narrow = factor.model_copy(update={"band": factor.band.model_copy(update={"half_width": 0.01})})
    cfg = cfg.model_copy(
        update={
            "venues": {"paper": venue},
            "factors": [narrow],
            "journal": cfg.journal.model_copy(update={"path": str(tmp_path / "j.sqlite")}),
        }
    )
    return with_updates(
        cfg,
        portfolio={"include_venue_positions": False},
        limits={"dry_run": True, "max_orders_per_minute": 10_000},
        hedge={"cooldown": 0.5},
    )


async def test_live_engine_and_backtest_decide_the_same_on_one_tape(tmp_path: Path) -> None:
    server = make_server(ticks_per_second=20.0, history_minutes=10)
    await server.start()
    cfg = _parity_config(tmp_path, server.rest_url)
    clock = {"ms": int(time.time() * 1000), "s": 0.0}
    link = VenueLink("paper", cfg.venues["paper"])
    journal = Journal(tmp_path / "j.sqlite")
    engine = Engine(
        cfg,
        {"paper": link},
        journal,
        clock_ms=lambda: int(clock["ms"]),
        monotonic=lambda: float(clock["s"]),
    )
    path = tmp_path / "tape.jsonl.gz"
    try:
        await link.connect()
        engine.load_hedge_markets()
        await engine.refresh_positions()
        assert engine.universe is not None
        streamed = engine.universe.subscriptions["paper"]
        await TickerRecorder(server.ws_url, path, streamed).run(duration_s=3.0)
    finally:
        await server.stop()
        await link.close()
    lines = list(read_recording(path))

    # The backtest driver over the lines.
    tape = replay_lines(cfg, lines, BAR_MS)
    series = run_hedge(tape, cfg)

    # The live driver: the engine's own market state and cycle, on the tape's clock, its
    # estimators started where the backtest's start (the first bar).
    clock["ms"] = int(tape.time_ms[0])
    engine._commit(engine._plan(cfg, engine.positions, reset_betas=True))
    link.market = LiveMarket(MarketState(streamed))
    live: list[tuple[int, Any]] = []
    for clock["ms"], clock["s"] in replay_bars(link.market, [lines], BAR_MS):
        checked = engine.compute(int(clock["ms"]), float(clock["s"]))
        decision = engine.decision_of("BTC")
        assert decision is not None
        approved = () if checked is None else checked.approved
        live.append(
            (
                int(clock["ms"]),
                decision.beta_delta,
                decision.band_half_width,
                [(a.factor, a.side, a.amount) for a in approved],
            )
        )
    journal.close()

    assert len(live) == len(tape) >= 10
    assert [t for t, *_ in live] == tape.time_ms.tolist()
    live_beta_delta = np.array([b for _, b, _, _ in live])
    np.testing.assert_allclose(live_beta_delta, series.beta_delta[:, 0], rtol=1e-9)
    np.testing.assert_allclose([w for _, _, w, _ in live], series.band_half_width[:, 0])
    live_intents = [(t, *intent) for t, _, _, intents in live for intent in intents]
    backtest_intents = [(i.at_ms, i.factor, i.side, i.qty) for i in series.intents]
    assert live_intents == backtest_intents
    assert len(backtest_intents) >= 2, "the tape should make several hedges due"
    assert series.trades.sum() == 0  # dry run on both sides


@pytest.mark.parametrize("module", ["hedger.live.engine", "hedger.backtest.driver"])
def test_both_drivers_call_the_one_step(module: str) -> None:
    """Neither driver may call the core's decision functions on its own again."""
    import importlib
    import inspect

    source = inspect.getsource(importlib.import_module(module))
    assert "step(" in source
    for private_copy in ("decide(", "guards.check(", "exposure(book"):
        assert private_copy not in source, f"{module} calls {private_copy} itself"
