from __future__ import annotations

import numpy as np
import pytest

from hedger.backtest.driver import BetaSource, run_hedge
from hedger.backtest.metrics import run_metrics
from hedger.backtest.sim_tape import scenario_for, simulate_tape
from hedger.backtest.tape import Tape
from hedger.config import Config
from tests.backtest.conftest import alts_config

DAY_5M = 288


@pytest.fixture(scope="module")
def tape() -> Tape:
    return simulate_tape(alts_config(), "calm", 3, 2 * DAY_5M, 300_000)


def test_same_seed_same_numbers() -> None:
    cfg = alts_config(half_width=0.1)
    first = run_metrics(run_hedge(simulate_tape(cfg, "calm", 5, DAY_5M, 300_000), cfg))
    again = run_metrics(run_hedge(simulate_tape(cfg, "calm", 5, DAY_5M, 300_000), cfg))
    other = run_metrics(run_hedge(simulate_tape(cfg, "calm", 6, DAY_5M, 300_000), cfg))
    assert first == again
    assert first != other


def test_btc_only_config_runs_the_one_factor_scenario() -> None:
    assert scenario_for("calm", ("BTC",)).name == "calm-1f"
    assert scenario_for("calm", ("BTC", "ETH")).name == "calm"


def test_hedge_pnl_is_the_inverse_perp_move_on_the_position_held(tape: Tape) -> None:
    series = run_hedge(tape, alts_config())
    face = series.hedge_position[:-1, 0]
    mark = tape.hedge_mark[:, 0]
    expected = face * (mark[1:] / mark[:-1] - 1.0)
    assert np.allclose(series.hedge_pnl_usd[1:], expected)
    # Long alts, so the hedge is short BTC: it loses when BTC rises.
    assert (face < 0).all()


def test_costs_are_taker_fee_and_half_spread_on_the_traded_notional(tape: Tape) -> None:
    series = run_hedge(tape, alts_config())
    assert series.trades.sum() > 10
    traded = series.traded_usd.sum()
    assert series.fees_usd.sum() == pytest.approx(0.0005 * traded)
    # The BTC perp quotes about 1 bp wide: half of it paid per fill.
    spread_bps = series.spread_cost_usd.sum() / traded * 1e4
    assert 0.2 < spread_bps < 1.0
    # Turnover is the change of the hedge position.
    assert traded == pytest.approx(np.abs(np.diff(series.hedge_position[:, 0], prepend=0)).sum())


def test_hedged_beta_delta_stays_inside_the_band(tape: Tape) -> None:
    series = run_hedge(tape, alts_config(half_width=0.05), BetaSource.ORACLE)
    deviation = np.abs(series.true_beta_delta[:, 0] - series.target[:, 0])
    # After trading, back to target (rebalance_to: target) up to one 10 USD lot.
    assert deviation.max() < 0.05
    assert run_metrics(series).tracking_error < 0.05


def test_guards_refuse_an_oversized_hedge_and_halt(tape: Tape) -> None:
    data = alts_config().model_dump(mode="python", round_trip=True)
    data["limits"]["max_order_notional_usd"] = 1000.0
    series = run_hedge(tape, Config.model_validate(data))
    assert series.trades.sum() == 0
    # The first bar breaches the limit and trips HALTED; every later intent is refused too.
    assert series.refusals == len(tape)
    assert (series.hedge_position == 0).all()


def test_warmup_bars_feed_betas_but_are_not_measured(tape: Tape) -> None:
    series = run_hedge(tape, alts_config(), warmup_bars=DAY_5M)
    assert len(series.time_ms) == len(tape) - DAY_5M
    assert series.time_ms[0] == tape.time_ms[DAY_5M]


def test_oracle_needs_true_loadings(tape: Tape) -> None:
    from dataclasses import replace

    with pytest.raises(ValueError, match="oracle"):
        run_hedge(replace(tape, true_loadings=None), alts_config(), BetaSource.ORACLE)
