"""Hedge effectiveness of one run: pure functions of its per-bar series.

- Variance reduction (Ederington 1979, "The hedging performance of the new futures
  markets", J. Finance 34(1)): ``1 - Var(hedged P&L) / Var(unhedged P&L)`` per bar. For a
  cross-hedge with the minimum-variance ratio it equals rho^2, the squared correlation of
  the holdings with the hedge, which is the ceiling an oracle run approaches.
- Tracking error: standard deviation of beta-delta minus target after each bar's trading,
  in factor units, on the true loadings when the market is simulated (what the book really
  carries), else on the loadings the run used.
- Worst drawdown: the largest fall of cumulative hedged P&L from a previous peak (USD).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from hedger.backtest.driver import RunSeries
from hedger.backtest.tape import FloatArray


def variance_reduction(hedged: FloatArray, unhedged: FloatArray) -> float:
    """Ederington's measure; NaN when the unhedged P&L never moved (or has < 2 bars)."""
    if len(unhedged) < 2:
        return math.nan
    var_unhedged = float(np.var(unhedged))
    if not var_unhedged > 0:
        return math.nan
    return 1.0 - float(np.var(hedged)) / var_unhedged


def tracking_error(beta_delta: FloatArray, target: FloatArray) -> float:
    deviation = beta_delta - target
    deviation = deviation[np.isfinite(deviation)]
    return _std(deviation)


def _std(values: FloatArray) -> float:
    return float(np.std(values)) if len(values) >= 2 else math.nan


def max_drawdown(pnl: FloatArray) -> float:
    """Largest peak-to-trough fall of the cumulative P&L, as a positive USD amount; the
    running peak starts at 0 (the P&L before the first bar)."""
    if not len(pnl):
        return 0.0
    cumulative = np.concatenate([[0.0], np.cumsum(pnl)])
    return float(np.max(np.maximum.accumulate(cumulative) - cumulative))


def share_outside_band(outside: np.ndarray[tuple[int, ...], np.dtype[np.bool_]]) -> float:
    """Share of bars on which any factor's deviation was outside its band before trading."""
    flags = np.asarray(outside if outside.ndim == 1 else outside.any(axis=1))
    return float(flags.mean()) if flags.size else math.nan


@dataclass(slots=True, frozen=True)
class Metrics:
    bars: int
    variance_reduction: float
    tracking_error: float
    """factor units, first factor (``tracking_errors[0]``)"""
    hedge_pnl_usd: float
    fees_usd: float
    spread_cost_usd: float
    turnover_usd: float
    n_trades: int
    share_outside_band: float
    max_drawdown_usd: float
    unhedged_std_usd: float
    hedged_std_usd: float
    refusals: int
    tracking_errors: tuple[float, ...] = ()
    """factor units, one per factor in the config's order"""

    @property
    def cost_usd(self) -> float:
        return self.fees_usd + self.spread_cost_usd

    def as_dict(self) -> dict[str, float | int]:
        out: dict[str, float | int] = asdict(self)
        out["cost_usd"] = self.cost_usd
        return out


def run_metrics(series: RunSeries) -> Metrics:
    # Bar 0 opens the run and carries no P&L: leave it out of every per-bar statistic.
    hedged = series.hedged_pnl_usd[1:]
    unhedged = series.holdings_pnl_usd[1:]
    beta_delta = series.true_beta_delta
    if not np.isfinite(beta_delta).any():
        beta_delta = series.beta_delta
    errors = tuple(
        tracking_error(beta_delta[1:, k], series.target[1:, k]) for k in range(beta_delta.shape[1])
    )
    return Metrics(
        bars=len(hedged),
        variance_reduction=variance_reduction(hedged, unhedged),
        tracking_error=errors[0],
        hedge_pnl_usd=float(series.hedge_pnl_usd.sum()),
        fees_usd=float(series.fees_usd.sum()),
        spread_cost_usd=float(series.spread_cost_usd.sum()),
        turnover_usd=float(series.traded_usd.sum()),
        n_trades=int(series.trades.sum()),
        share_outside_band=share_outside_band(series.outside_band[1:]),
        max_drawdown_usd=max_drawdown(hedged),
        unhedged_std_usd=_std(unhedged),
        hedged_std_usd=_std(hedged),
        refusals=series.refusals,
        tracking_errors=errors,
    )
