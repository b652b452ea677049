"""The beta section at any bar: spans in bars or durations, Kalman noise per unit time,
spans too short for ``min_observations`` refused (or, re-based for candles, raised and said)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hedger.config import BetaConfig, ConfigError, Estimator, load_config, parse_config
from hedger.config.beta_setup import at_bar, make_beta_book, make_estimator
from hedger.config.durations import Bars
from hedger.core.beta import EwmaBeta, KalmanBeta, RollingOlsBeta

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = """
venues:
  deribit: {exchange: deribit}
factors:
  - asset: btc
    hedge: {venue: deribit, symbol: BTC-PERPETUAL}
"""


def _issues(text: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "test.yaml", {})
    return {issue.path: str(issue) for issue in info.value.issues}


def test_half_life_and_window_in_bars_mean_the_same_at_any_bar() -> None:
    for bar in ("1m", "1h", "1d"):
        cfg = parse_config(
            MINIMAL + f"beta: {{bar: {bar}, half_life: 24 bars, window: 60 bars}}\n", env={}
        ).beta
        assert cfg.half_life == Bars(24.0) and cfg.half_life_bars == 24.0
        assert cfg.window_bars == 60


def test_durations_keep_their_clock_meaning() -> None:
    cfg = parse_config(MINIMAL + "beta: {bar: 1h, half_life: 2d, window: 7d}\n", env={}).beta
    assert (cfg.half_life_bars, cfg.window_bars) == (48.0, 168)


def test_kalman_state_noise_is_per_unit_time() -> None:
    per_minute = parse_config(MINIMAL + "beta: {kalman_state_noise: 2e-6/1m}\n", env={}).beta
    per_day = parse_config(MINIMAL + "beta: {bar: 1h, kalman_state_noise: 2.88e-3}\n", env={}).beta
    assert per_minute.kalman_state_noise == pytest.approx(2.88e-3)
    assert per_minute.kalman_state_noise_per_bar == pytest.approx(2e-6)  # 1m bars
    assert per_day.kalman_state_noise_per_bar == pytest.approx(1.2e-4)  # 1h bars
    est = make_estimator(
        per_day.model_copy(update={"estimator": Estimator.KALMAN}), 2, 1, np.ones((2, 1))
    )
    assert isinstance(est, KalmanBeta)
    assert est.q.tolist() == pytest.approx([1.2e-4, 1.2e-4])


def test_a_half_life_under_the_floor_is_refused_with_the_numbers() -> None:
    issues = _issues(MINIMAL + "beta: {bar: 1h, half_life: 6h}\n")
    assert list(issues) == ["beta.half_life"]
    message = issues["beta.half_life"]
    assert "half_life (6h) is 6 bars of 1h" in message
    assert "under 10.4 bars" in message and "min_observations (30)" in message


def test_a_window_of_too_few_bars_is_refused_with_the_numbers() -> None:
    issues = _issues(MINIMAL + "beta: {half_life: 100 bars, window: 20 bars}\n")
    assert list(issues) == ["beta.window"]
    assert "window (20 bars) holds 20 bars of 1m" in issues["beta.window"]
    assert "at least min_observations (30) bars" in issues["beta.window"]


def test_bar_counts_survive_a_dump_and_reload() -> None:
    """Sweeps and reload diffs dump the config and validate it again."""
    cfg = parse_config(MINIMAL + "beta: {half_life: 300 bars}\n", env={}).beta
    dumped = cfg.model_dump(mode="python")
    assert dumped["half_life"] == "300 bars"
    assert BetaConfig.model_validate(dumped) == cfg


def test_at_daily_bars_the_shipped_config_is_raised_and_says_so() -> None:
    """`half_life: 1d` on daily candles is one bar: a backtest raises it to the floor and
    says so, where the config itself would be refused."""
    beta = load_config(ROOT / "config" / "paper.yaml", env={}).beta
    daily, notes = at_bar(beta, 86_400.0)
    assert daily.bar == 86_400.0
    assert daily.half_life == Bars(20.8) and daily.window == Bars(60.0)
    assert any("half_life (1d) is 1 bar of 1d: under 20.8 bars" in n for n in notes)
    assert any("window (1w) holds 7 bars of 1d" in n and "raised to 60 bars" in n for n in notes)
    hourly, none = at_bar(beta, 3_600.0)
    assert none == [] and (hourly.half_life_bars, hourly.window_bars) == (24.0, 168)
    in_bars, _ = at_bar(beta.model_copy(update={"half_life": Bars(30.0)}), 86_400.0)
    assert in_bars.half_life == Bars(30.0)


def test_estimators_get_their_spans_in_bars() -> None:
    cfg = BetaConfig(bar=3_600.0, half_life="2d", window="3d")
    ewma = make_estimator(cfg, 3, 1, np.zeros((3, 1)))
    assert isinstance(ewma, EwmaBeta) and ewma.decay == pytest.approx(2 ** (-1 / 48))
    rolling = make_estimator(
        cfg.model_copy(update={"estimator": Estimator.ROLLING_OLS}), 3, 1, np.zeros((3, 1))
    )
    assert isinstance(rolling, RollingOlsBeta) and rolling.window_bars == 72


def test_shrinkage_is_on_by_default_toward_an_equal_split() -> None:
    """A short history leans on the prior; an asset without one moves with the market,
    split equally between the factors."""
    cfg = BetaConfig()
    assert cfg.shrinkage.enabled and cfg.shrinkage.prior_stderr == 0.3
    book, defaulted = make_beta_book(cfg, ["BTC", "ETH", "SOL"], ["BTC", "ETH"], 0)
    assert defaulted == ["SOL"]
    assert book.prior_stderr == 0.3
    assert book.prior[2].tolist() == [0.5, 0.5]
