"""The hedge modes compared on the options book: option legs filled and accounted in the
backtest, and ``hedger backtest --scenario options-book`` side by side."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hedger.backtest import commands as cli
from hedger.backtest.driver import BetaSource, run_hedge
from hedger.backtest.metrics import run_metrics
from hedger.backtest.option_study import ModeResult, compare_modes, window
from hedger.backtest.option_tape import ChainTape, simulate_chain
from hedger.backtest.presets import OPTION_MODES, OPTION_MODES_SCENARIO, option_mode_configs
from hedger.backtest.sim_tape import simulate_tape
from hedger.backtest.tape import Tape

HOUR_1M = 60


Compared = tuple[Tape, ChainTape, list[ModeResult]]


@pytest.fixture(scope="module")
def compared() -> Compared:
    return compare_modes(seed=7, bars=HOUR_1M + 6 * HOUR_1M, bar_ms=60_000, warmup_bars=HOUR_1M)


def test_the_chain_is_the_tapes_market() -> None:
    cfg = option_mode_configs(7)["perp"]
    tape = simulate_tape(cfg, OPTION_MODES_SCENARIO, 7, 30, 60_000)
    chain = simulate_chain(OPTION_MODES_SCENARIO, ("BTC",), 7, tape.time_ms, ("BTC",))
    for row, position in enumerate(tape.layout.positions):
        inst = position.instrument
        if inst.strike is None:
            continue
        (j,) = np.flatnonzero(
            (chain.strike == inst.strike)
            & (chain.expiry_ms == inst.expiry_ms)
            & (chain.is_call == inst.is_call)
        )
        assert chain.mark_iv[:, j] == pytest.approx(tape.implied_vol[:, row])
        assert chain.underlying_price[:, j] == pytest.approx(tape.underlying_price[:, row])


def test_a_chain_changes_nothing_for_the_perp() -> None:
    cfg = option_mode_configs(7)["perp"]
    tape = simulate_tape(cfg, OPTION_MODES_SCENARIO, 7, 240, 60_000)
    chain = simulate_chain(OPTION_MODES_SCENARIO, ("BTC",), 7, tape.time_ms, ("BTC",))
    bare = run_hedge(tape, cfg, BetaSource.ESTIMATED, 30)
    with_chain = run_hedge(tape, cfg, BetaSource.ESTIMATED, 30, chain)
    assert with_chain.intents == bare.intents
    assert with_chain.hedged_pnl_usd == pytest.approx(bare.hedged_pnl_usd, abs=1e-6)
    assert with_chain.option_trades == ()
    assert with_chain.premium_usd is not None and not with_chain.premium_usd.any()


def test_option_modes_trade_options_and_pay_premium(compared: Compared) -> None:
    _, _, results = compared
    by_mode = {r.mode: r for r in results}
    assert tuple(by_mode) == OPTION_MODES
    assert by_mode["perp"].series.option_trades == ()
    assert by_mode["perp"].whole.premium_usd == 0.0
    for mode in ("protective_put", "multi_greek"):
        r = by_mode[mode]
        assert r.series.option_trades, mode
        assert r.whole.premium_usd > 0
        # The options' half spread and fee are costs on top of the perp's.
        assert r.whole.cost_usd > by_mode["perp"].whole.cost_usd
    puts = {t.symbol for t in by_mode["protective_put"].series.option_trades}
    assert all(symbol.endswith("-P") for symbol in puts)


def test_options_cut_the_short_gamma_books_pnl_variance(compared: Compared) -> None:
    _, _, results = compared
    variance = {r.mode: r.whole.hedged_pnl_variance_usd2 for r in results}
    assert variance["multi_greek"] < 0.7 * variance["perp"]
    assert variance["protective_put"] < variance["perp"]


def test_the_window_counts_the_opening_bars_costs_not_its_pnl(compared: Compared) -> None:
    _, _, results = compared
    series = results[2].series
    every = np.ones(len(series.time_ms), dtype=np.bool_)
    w = window(series, every)
    metrics = run_metrics(series)
    assert w.cost_usd == pytest.approx(metrics.cost_usd)
    assert w.worst_drawdown_usd == pytest.approx(metrics.max_drawdown_usd)
    assert w.bars == metrics.bars


def test_cli_options_book_compares_the_modes(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["backtest", "--scenario", "options-book", "--days", "0.05", "--warmup", "30m"]
    code = cli.main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    document = json.loads(out)
    assert [m["mode"] for m in document["modes"]] == list(OPTION_MODES)
    for mode in document["modes"]:
        for key in ("worst_drawdown_usd", "hedged_pnl_variance_usd2", "cost_usd", "premium_usd"):
            assert key in mode["run"] and key in mode["stress"]
    assert document["source"].startswith(f"sim:{OPTION_MODES_SCENARIO}")
