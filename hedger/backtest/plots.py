"""Charts of a study: the cost-versus-risk frontier and one run's hedge over time, as PNG
(matplotlib, Agg: no display needed) and as self-contained HTML (plotly, with plotly.js
embedded so the file opens offline)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hedger.backtest.study import RunResult


def frontier_png(results: Sequence[RunResult], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 5))
    cost = [r.metrics.cost_usd for r in results]
    risk = [r.metrics.hedged_std_usd for r in results]
    ax.scatter(cost, risk, label="estimated betas")
    for r, x, y in zip(results, cost, risk, strict=True):
        ax.annotate(r.combination.label, (x, y), fontsize=6, alpha=0.7)
    oracle = [r.oracle for r in results if r.oracle is not None]
    if oracle:
        ax.scatter(
            [o.cost_usd for o in oracle],
            [o.hedged_std_usd for o in oracle],
            marker="x",
            label="oracle betas",
        )
    ax.set_xlabel("cost: fees + spread (USD)")
    ax.set_ylabel("std of hedged P&L per bar (USD)")
    ax.set_title("Cost versus risk")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def frontier_html(results: Sequence[RunResult], path: Path) -> None:
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[r.metrics.cost_usd for r in results],
            y=[r.metrics.hedged_std_usd for r in results],
            mode="markers",
            name="estimated betas",
            text=[r.combination.label for r in results],
        )
    )
    oracle = [(r.combination.label, r.oracle) for r in results if r.oracle is not None]
    if oracle:
        fig.add_trace(
            go.Scatter(
                x=[o.cost_usd for _, o in oracle],
                y=[o.hedged_std_usd for _, o in oracle],
                mode="markers",
                marker_symbol="x",
                name="oracle betas",
                text=[label for label, _ in oracle],
            )
        )
    fig.update_layout(
        title="Cost versus risk",
        xaxis_title="cost: fees + spread (USD)",
        yaxis_title="std of hedged P&L per bar (USD)",
    )
    fig.write_html(path, include_plotlyjs=True, full_html=True)


def _times(result: RunResult) -> np.ndarray[tuple[int], np.dtype[np.datetime64]]:
    times: np.ndarray[tuple[int], np.dtype[np.datetime64]] = result.series.time_ms.astype(
        "datetime64[ms]"
    )
    return times


def run_png(result: RunResult, factors: Sequence[str], path: Path) -> None:
    s = result.series
    t = _times(result)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for k, name in enumerate(factors):
        top.plot(t, s.beta_delta[:, k], label=f"{name} beta-delta (run's betas)", lw=0.8)
        if np.isfinite(s.true_beta_delta[:, k]).any():
            top.plot(t, s.true_beta_delta[:, k], label=f"{name} beta-delta (true)", lw=0.8)
        top.plot(t, s.target[:, k] + s.band_half_width[:, k], "k:", lw=0.6)
        top.plot(t, s.target[:, k] - s.band_half_width[:, k], "k:", lw=0.6)
        bottom.step(t, s.hedge_position[:, k], where="post", label=f"{name} hedge (amount)")
    top.set_ylabel("factor units")
    top.legend(fontsize=7)
    bottom.set_ylabel("hedge position")
    bottom.legend(fontsize=7)
    fig.suptitle(f"Hedge over time: {result.combination.label}")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_html(result: RunResult, factors: Sequence[str], path: Path) -> None:
    s = result.series
    t = _times(result)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True)
    for k, name in enumerate(factors):
        fig.add_trace(go.Scatter(x=t, y=s.beta_delta[:, k], name=f"{name} beta-delta"), 1, 1)
        if np.isfinite(s.true_beta_delta[:, k]).any():
            fig.add_trace(
                go.Scatter(x=t, y=s.true_beta_delta[:, k], name=f"{name} beta-delta (true)"), 1, 1
            )
        fig.add_trace(
            go.Scatter(x=t, y=s.hedge_position[:, k], name=f"{name} hedge", line_shape="hv"), 2, 1
        )
    fig.update_layout(title=f"Hedge over time: {result.combination.label}")
    fig.write_html(path, include_plotlyjs=True, full_html=True)


def write_plots(
    results: Sequence[RunResult], chosen: RunResult, factors: Sequence[str], out: Path
) -> dict[str, str]:
    files = {
        "frontier_png": out / "frontier.png",
        "frontier_html": out / "frontier.html",
        "run_png": out / "run.png",
        "run_html": out / "run.html",
    }
    frontier_png(results, files["frontier_png"])
    frontier_html(results, files["frontier_html"])
    run_png(chosen, factors, files["run_png"])
    run_html(chosen, factors, files["run_html"])
    return {k: str(v) for k, v in files.items()}
