"""The configured beta pipeline: estimator, winsorizer, shrinkage and priors as a BetaBook.

Shared by the live engine and the backtester so both estimate betas the same way.

Warm start: history comes at ``beta.warmup.timeframe`` (e.g. 1h candles) while live bars are
``beta.bar`` long (e.g. 1m). Loadings are ratios of cross-moments, so bars of a different
length estimate the same loadings; an hour bar carries about as much information as the 60
minute bars inside it, and weighs as much in the moments, since its variance is 60 times
larger. Only the decay is counted in bars, so history fades as if it were recent minutes:
the live bars take over within a few half-lives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from hedger.config import BetaConfig, Estimator
from hedger.config.durations import Bars
from hedger.core.bars import BarSampler, Winsorizer
from hedger.core.beta import (
    BetaBook,
    BetaEstimator,
    EwmaBeta,
    KalmanBeta,
    RollingOlsBeta,
    min_half_life_bars,
)
from hedger.core.factors import factor_indices, prior_loadings


def make_estimator(
    cfg: BetaConfig, n_assets: int, k: int, prior: NDArray[np.float64]
) -> BetaEstimator:
    if cfg.estimator is Estimator.EWMA:
        return EwmaBeta(n_assets, k, cfg.half_life_bars, min_obs=cfg.min_observations)
    if cfg.estimator is Estimator.ROLLING_OLS:
        return RollingOlsBeta(n_assets, k, cfg.window_bars, min_obs=cfg.min_observations)
    return KalmanBeta(
        n_assets,
        k,
        cfg.kalman_state_noise_per_bar,
        prior=prior,
        prior_stderr=cfg.shrinkage.prior_stderr,
        min_obs=cfg.min_observations,
    )


def at_bar(cfg: BetaConfig, bar_seconds: float) -> tuple[BetaConfig, list[str]]:
    """``cfg`` on bars of ``bar_seconds`` (a backtest on candles), and what had to change.

    Durations keep their clock meaning and bar counts their count. A span that would then be
    too short for ``min_observations`` (a 1-day half-life on daily candles is one bar) is
    raised to the shortest that is not, in bars, and the change is said, with the numbers:
    a config refuses such a span outright, but a backtest must still run every estimator.
    """
    at = cfg.model_copy(update={"bar": bar_seconds})
    problems = at.span_problems()
    update: dict[str, Bars] = {}
    notes = []
    if "half_life" in problems:
        update["half_life"] = Bars(round(min_half_life_bars(cfg.min_observations), 1))
        notes.append(f"beta.{problems['half_life']}: raised to {update['half_life']}")
    if "window" in problems:
        update["window"] = Bars(cfg.min_observations)
        notes.append(f"beta.{problems['window']}: raised to {update['window']}")
    return (at.model_copy(update=update) if update else at), notes


def make_beta_book(
    cfg: BetaConfig, assets: Sequence[str], factors: Sequence[str], start_ms: int
) -> tuple[BetaBook, list[str]]:
    """The pipeline for ``assets`` (factors among them), and the assets with no prior."""
    prior, defaulted = prior_loadings(assets, factors, cfg.priors)
    n, k = len(assets), len(factors)
    winsorizer = (
        Winsorizer(n, cfg.winsorize_sigmas, cfg.half_life_bars)
        if cfg.winsorize_sigmas is not None
        else None
    )
    book = BetaBook(
        make_estimator(cfg, n, k, prior),
        BarSampler(n, int(cfg.bar * 1000), start_ms),
        factor_indices(assets, factors),
        prior,
        prior_stderr=cfg.shrinkage.prior_stderr if cfg.shrinkage.enabled else None,
        winsorizer=winsorizer,
    )
    return book, [a for a, flag in zip(assets, defaulted, strict=True) if flag]


def align_closes(
    assets: Sequence[str],
    series: Mapping[str, tuple[NDArray[np.int64], NDArray[np.float64]]],
    constant: Sequence[str] = (),
) -> NDArray[np.float64]:
    """(T, n) closes on the union of timestamps, previous-tick filled, oldest first.

    An asset in ``constant`` (cash) is 1.0 throughout; an asset without history is NaN
    (the estimators mask it) until its first close.
    """
    stamps = np.unique(np.concatenate([ts for ts, _ in series.values()] or [np.zeros(0, np.int64)]))
    out = np.full((len(stamps), len(assets)), np.nan)
    for col, asset in enumerate(assets):
        if asset in constant:
            out[:, col] = 1.0
            continue
        if asset not in series:
            continue
        ts, closes = series[asset]
        if not len(ts):
            continue
        order = np.argsort(ts, kind="stable")
        ts, closes = ts[order], closes[order]
        at = np.searchsorted(ts, stamps, side="right") - 1
        out[:, col] = np.where(at >= 0, closes[np.maximum(at, 0)], np.nan)
    return out
