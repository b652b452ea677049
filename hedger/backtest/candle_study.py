"""How well each estimator's hedge works on real candles: per asset, per estimator, K = 1 and 2.

Every non-factor asset is hedged alone against the factors (the config's first factor, BTC,
for K = 1; that and the config's second factor, or ETH, for K = 2). Each bar is hedged with
the loadings known *before* it: the configured beta pipeline (``make_beta_book``: winsorizer,
estimator, shrinkage toward the prior, prior until warm) folds bar t in only after bar t's
hedged return is taken, so nothing of the future leaks in. Every estimator the core has runs,
whatever the config names; its settings come from the config, re-based on the candles' bar
(``at_bar``), with any change said.

Per asset, over its evaluation bars (bars where it and every factor have a return, after its
first ``min_observations``, the estimators' warm-up):

- out-of-sample variance reduction of log returns, 1 - Var(hedged) / Var(unhedged)
  (Ederington 1979), the same on stress bars (the top 5% of |first factor's return|), and
  the in-sample constant-loading regression (with intercept, the variance-minimising constant
  hedge over the same bars) as the hindsight reference: no real hedger knows it in advance;
- correlation to each factor, calm bars against stress bars;
- turnover of a hedge rebalanced every bar to the new loadings (per year, in multiples of
  the asset's value; price drift included), and what it costs at a fee and half-spread;
  and the part of it the estimator causes (the loadings' own changes).

A figure from fewer than ``min_bars`` bars (``min_stress_bars`` for stress figures) carries a
warning. The portfolio is the equal-weight book of the assets, hedged with their loadings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hedger.backtest.candles import Candles
from hedger.config import BetaConfig, Estimator
from hedger.config.beta_setup import at_bar, make_beta_book
from hedger.config.durations import format_span

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

SECOND_FACTOR = "ETH"
YEAR_SECONDS = 365.0 * 86400.0


@dataclass(slots=True, frozen=True)
class StudySettings:
    fee_bps: float = 5.0
    """taker fee per unit traded (Deribit perpetuals: 0.05%)"""
    half_spread_bps: float = 1.0
    stress_share: float = 0.05
    min_bars: int = 100
    min_stress_bars: int = 30


@dataclass(slots=True, frozen=True)
class EstimatorRun:
    """One estimator at one K on every asset: the loadings used before each bar."""

    name: str
    k: int
    loadings: FloatArray
    """(T, n_assets, K): row t is what was known when bar t opened"""
    settings: dict[str, Any]
    notes: tuple[str, ...]


@dataclass(slots=True)
class CandleStudy:
    candles: Candles
    default_estimator: str
    factors: dict[int, tuple[str, ...]]
    settings: StudySettings
    runs: list[EstimatorRun]
    document: dict[str, Any] = field(default_factory=dict)


def factor_sets(config_factors: Sequence[str], assets: Sequence[str]) -> dict[int, tuple[str, ...]]:
    """K -> factor assets: the config's first factor, then its second or ETH when present."""
    first = config_factors[0]
    if first not in assets:
        raise ValueError(
            f"the candles have no {first}, the first factor (assets: {', '.join(assets)})"
        )
    sets: dict[int, tuple[str, ...]] = {1: (first,)}
    second = config_factors[1] if len(config_factors) > 1 else SECOND_FACTOR
    if second in assets and second != first:
        sets[2] = (first, second)
    return sets


def beta_for(
    beta: BetaConfig, estimator: Estimator, factors: Sequence[str], config_k: int
) -> BetaConfig:
    """The config's beta section for ``estimator`` and these factors; priors only where they
    were given for this many factors (a K = 1 config's priors say nothing of K = 2)."""
    priors = beta.priors if len(factors) == config_k else {}
    return beta.model_copy(update={"estimator": estimator, "priors": priors})


def loadings_before_each_bar(
    beta: BetaConfig,
    assets: Sequence[str],
    factors: Sequence[str],
    returns: FloatArray,
    end_ms: NDArray[np.int64],
) -> FloatArray:
    """(T, n, K): row t from bars 0 .. t-1 only, through the daemon's beta pipeline."""
    book, _ = make_beta_book(beta, assets, factors, int(end_ms[0]) - 1)
    out = np.empty((len(returns), len(assets), len(factors)))
    snapshot = book.snapshot()
    for t in range(len(returns)):
        out[t] = snapshot.loadings
        snapshot = book.fold_returns(returns[t], int(end_ms[t]))
    return out


def run_estimators(
    candles: Candles, beta: BetaConfig, config_factors: Sequence[str]
) -> tuple[dict[int, tuple[str, ...]], list[EstimatorRun]]:
    factors = factor_sets(config_factors, candles.assets)
    returns = candles.log_returns()
    end_ms = candles.open_ms[1:] + candles.bar_ms  # bar t closes one bar after it opens
    at, notes = at_bar(beta, candles.bar_ms / 1000.0)
    runs = []
    for estimator in Estimator:
        for k, names in factors.items():
            cfg = beta_for(at, estimator, names, len(config_factors))
            run_notes = list(notes)
            if beta.priors and not cfg.priors:
                run_notes.append(
                    f"beta.priors give {len(config_factors)} loading(s) per asset: K = {k} "
                    "uses the default prior"
                )
            loadings = loadings_before_each_bar(cfg, candles.assets, names, returns, end_ms)
            runs.append(
                EstimatorRun(estimator.value, k, loadings, settings_of(cfg), tuple(run_notes))
            )
    return factors, runs


def settings_of(cfg: BetaConfig) -> dict[str, Any]:
    """What the estimator ran with, in bars of the candles."""
    out: dict[str, Any] = {"min_observations": cfg.min_observations}
    if cfg.estimator is Estimator.EWMA:
        out["half_life"] = format_span(cfg.half_life)
        out["half_life_bars"] = round(cfg.half_life_bars, 3)
    elif cfg.estimator is Estimator.ROLLING_OLS:
        out["window"] = format_span(cfg.window)
        out["window_bars"] = cfg.window_bars
    else:
        out["state_noise_per_day"] = cfg.kalman_state_noise
        out["state_noise_per_bar"] = cfg.kalman_state_noise_per_bar
    out["shrinkage_prior_stderr"] = cfg.shrinkage.prior_stderr if cfg.shrinkage.enabled else None
    out["winsorize_sigmas"] = cfg.winsorize_sigmas
    return out


# --- figures ----------------------------------------------------------------------------------


def variance_reduction(hedged: FloatArray, unhedged: FloatArray) -> float:
    if len(unhedged) < 2:
        return math.nan
    var = float(np.var(unhedged))
    return 1.0 - float(np.var(hedged)) / var if var > 0 else math.nan


def ols_residuals(asset: FloatArray, factors: FloatArray) -> FloatArray:
    """Residuals of the in-sample regression with intercept (hindsight)."""
    x = np.column_stack([np.ones(len(asset)), factors])
    coef, *_ = np.linalg.lstsq(x, asset, rcond=None)
    residuals: FloatArray = asset - x @ coef
    return residuals


def _corr(a: FloatArray, b: FloatArray) -> float:
    if len(a) < 3 or not (np.std(a) > 0 and np.std(b) > 0):
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def stress_bars(first_factor: FloatArray, share: float) -> BoolArray:
    """The top ``share`` of bars by |first factor's return|."""
    size = np.abs(first_factor)
    if not len(size):
        return np.zeros(0, dtype=np.bool_)
    cut = np.quantile(size, 1.0 - share)
    stressed: BoolArray = size >= cut
    return stressed


def evaluation_bars(
    returns: FloatArray, col: int, factor_cols: Sequence[int], warmup: int
) -> BoolArray:
    """Bars where the asset and every factor have a return, after the asset's first
    ``warmup`` such bars (the estimators' warm-up)."""
    valid = np.isfinite(returns[:, col]) & np.isfinite(returns[:, list(factor_cols)]).all(axis=1)
    keep = valid.copy()
    keep[np.flatnonzero(valid)[:warmup]] = False
    return keep


def _num(x: float) -> float | None:
    return None if not math.isfinite(x) else round(float(x), 6)


def study(
    candles: Candles,
    beta: BetaConfig,
    config_factors: Sequence[str],
    settings: StudySettings = StudySettings(),
    source: str = "",
) -> CandleStudy:
    factors, runs = run_estimators(candles, beta, config_factors)
    result = CandleStudy(candles, beta.estimator.value, factors, settings, runs)
    result.document = _document(result, beta, source)
    return result


def _document(result: CandleStudy, beta: BetaConfig, source: str) -> dict[str, Any]:
    candles, settings = result.candles, result.settings
    returns = candles.log_returns()
    assets = candles.assets
    all_factors = result.factors[max(result.factors)]
    factor_cols = [assets.index(f) for f in all_factors]
    first = factor_cols[0]
    bar_s = candles.bar_ms / 1000.0
    bars_per_year = YEAR_SECONDS / bar_s
    cost_per_unit = (settings.fee_bps + settings.half_spread_bps) / 1e4
    names = [e.value for e in Estimator]
    ks = sorted(result.factors)
    per_asset: dict[str, Any] = {}
    portfolio_hedged: dict[tuple[str, int], list[FloatArray]] = {}
    portfolio_rows: list[tuple[BoolArray, FloatArray]] = []
    for col, asset in enumerate(assets):
        if asset in all_factors:
            continue
        keep = evaluation_bars(returns, col, factor_cols, beta.min_observations)
        n = int(keep.sum())
        a = returns[keep, col]
        f = returns[keep][:, factor_cols]
        stress = stress_bars(f[:, 0], settings.stress_share) if n else np.zeros(0, np.bool_)
        n_stress = int(stress.sum())
        row: dict[str, Any] = {"bars": n, "stress_bars": n_stress}
        warnings = []
        if n < settings.min_bars:
            warnings.append(f"only {n} bars: every figure of {asset} is noise-prone")
        if n_stress < settings.min_stress_bars:
            warnings.append(f"stress figures of {asset} rest on {n_stress} bars")
        vr_ols: dict[str, float | None] = {}
        vr_stress_ols: dict[str, float | None] = {}
        for k in ks:
            if n < 3:
                vr_ols[str(k)] = vr_stress_ols[str(k)] = None
                continue
            resid = ols_residuals(a, f[:, :k])
            vr_ols[str(k)] = _num(variance_reduction(resid, a))
            vr_stress_ols[str(k)] = _num(variance_reduction(resid[stress], a[stress]))
        row["vr_in_sample_ols"] = vr_ols
        row["vr_stress_in_sample_ols"] = vr_stress_ols
        oos: dict[str, dict[str, float | None]] = {name: {} for name in names}
        oos_stress: dict[str, dict[str, float | None]] = {name: {} for name in names}
        turnover: dict[str, dict[str, float | None]] = {name: {} for name in names}
        loading_turnover: dict[str, dict[str, float | None]] = {name: {} for name in names}
        cost: dict[str, dict[str, float | None]] = {name: {} for name in names}
        for run in result.runs:
            k = run.k
            b = run.loadings[:, col, :]  # (T, K) known before each bar
            hedged_all = returns[:, col] - np.einsum("tk,tk->t", b, returns[:, factor_cols[:k]])
            hedged = hedged_all[keep]
            oos[run.name][str(k)] = _num(variance_reduction(hedged, a))
            oos_stress[run.name][str(k)] = _num(variance_reduction(hedged[stress], a[stress]))
            yearly = _turnover_per_year(b, returns, col, factor_cols[:k], keep, bars_per_year)
            turnover[run.name][str(k)] = _num(yearly)
            loading_turnover[run.name][str(k)] = _num(
                _loading_turnover_per_year(b, keep, bars_per_year)
            )
            cost[run.name][str(k)] = _num(yearly * cost_per_unit * 1e4)
            portfolio_hedged.setdefault((run.name, k), []).append(
                np.where(keep, hedged_all, np.nan)
            )
        row["vr_out_of_sample"] = oos
        row["vr_stress"] = oos_stress
        row["turnover_per_year"] = turnover
        row["loading_turnover_per_year"] = loading_turnover
        row["cost_bps_per_year"] = cost
        row["correlation"] = _correlations(a, f, stress, all_factors)
        row["warnings"] = warnings
        per_asset[asset] = row
        portfolio_rows.append((keep, np.where(keep, returns[:, col], np.nan)))
    document: dict[str, Any] = {
        "source": source,
        "bar_seconds": bar_s,
        "bars": len(candles.open_ms),
        "start": _iso(int(candles.open_ms[0])),
        "end": _iso(int(candles.open_ms[-1])),
        "factors": {str(k): list(v) for k, v in result.factors.items()},
        "default_estimator": result.default_estimator,
        "estimators": {
            name: {str(r.k): r.settings for r in result.runs if r.name == name} for name in names
        },
        "costs": {"fee_bps": settings.fee_bps, "half_spread_bps": settings.half_spread_bps},
        "gaps": {asset: gaps.as_dict() for asset, gaps in candles.gaps.items()},
        "warnings": sorted({note for r in result.runs for note in r.notes})
        + [
            f"{a}: {g.count} missing bars (longest {g.longest_bars})"
            for a, g in candles.gaps.items()
            if g.count
        ],
        "assets": per_asset,
        "mean": _means(per_asset, names, ks),
        "portfolio": _portfolio(
            portfolio_rows, portfolio_hedged, names, ks, first, returns, settings
        ),
    }
    return document


def _turnover_per_year(
    b: FloatArray,
    returns: FloatArray,
    col: int,
    factor_cols: Sequence[int],
    keep: BoolArray,
    bars_per_year: float,
) -> float:
    """Mean per-bar trade, per year, of a hedge reset every bar to the new loadings: after
    bar t the hedge of factor k is worth b_t,k e^(r_f - r_a) per unit of the asset's value,
    and is traded to b_t+1,k."""
    t = np.flatnonzero(keep[:-1])
    if not len(t):
        return math.nan
    drift = np.exp(returns[t][:, list(factor_cols)] - returns[t, col][:, None])
    trades = np.abs(b[t + 1] - b[t] * drift).sum(axis=1)
    trades = trades[np.isfinite(trades)]
    return float(trades.mean() * bars_per_year) if len(trades) else math.nan


def _loading_turnover_per_year(b: FloatArray, keep: BoolArray, bars_per_year: float) -> float:
    """The part of the turnover the estimator causes: sum over factors of |change of the
    loadings| per bar, per year (a constant loading scores 0)."""
    t = np.flatnonzero(keep[:-1])
    if not len(t):
        return math.nan
    return float(np.abs(b[t + 1] - b[t]).sum(axis=1).mean() * bars_per_year)


def _correlations(
    a: FloatArray, f: FloatArray, stress: BoolArray, factors: Sequence[str]
) -> dict[str, dict[str, float | None]]:
    calm = ~stress
    return {
        "calm": {name: _num(_corr(a[calm], f[calm, i])) for i, name in enumerate(factors)},
        "stress": {name: _num(_corr(a[stress], f[stress, i])) for i, name in enumerate(factors)},
    }


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(float(np.mean(present)), 6) if present else None


def _means(per_asset: dict[str, Any], names: Sequence[str], ks: Sequence[int]) -> dict[str, Any]:
    rows = list(per_asset.values())
    out: dict[str, Any] = {
        "vr_in_sample_ols": {
            str(k): _mean([r["vr_in_sample_ols"][str(k)] for r in rows]) for k in ks
        },
        "vr_stress_in_sample_ols": {
            str(k): _mean([r["vr_stress_in_sample_ols"][str(k)] for r in rows]) for k in ks
        },
    }
    keys = (
        "vr_out_of_sample",
        "vr_stress",
        "turnover_per_year",
        "loading_turnover_per_year",
        "cost_bps_per_year",
    )
    for key in keys:
        out[key] = {
            name: {str(k): _mean([r[key][name][str(k)] for r in rows]) for k in ks}
            for name in names
        }
    return out


def _portfolio(
    rows: list[tuple[BoolArray, FloatArray]],
    hedged: dict[tuple[str, int], list[FloatArray]],
    names: Sequence[str],
    ks: Sequence[int],
    first: int,
    returns: FloatArray,
    settings: StudySettings,
) -> dict[str, Any]:
    """The equal-weight book of the assets evaluated on each bar, hedged with their
    loadings (its hedged return is the mean of theirs)."""
    if not rows:
        return {}
    present = np.array([keep for keep, _ in rows]).any(axis=0)
    book = _row_mean(np.array([r for _, r in rows]))[present]
    stress = stress_bars(returns[present, first], settings.stress_share)
    out: dict[str, Any] = {"bars": int(present.sum()), "vr_out_of_sample": {}, "vr_stress": {}}
    for name in names:
        out["vr_out_of_sample"][name] = {}
        out["vr_stress"][name] = {}
        for k in ks:
            h = _row_mean(np.array(hedged[(name, k)]))[present]
            out["vr_out_of_sample"][name][str(k)] = _num(variance_reduction(h, book))
            out["vr_stress"][name][str(k)] = _num(variance_reduction(h[stress], book[stress]))
    return out


def _row_mean(columns: FloatArray) -> FloatArray:
    """Mean over the first axis, skipping NaN; NaN where nothing is present."""
    present = np.isfinite(columns)
    count = present.sum(axis=0)
    total = np.where(present, columns, 0.0).sum(axis=0)
    mean: FloatArray = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return mean


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
