"""Charts of a study: the cost-versus-risk frontier and one run's hedge over time, as PNG
(matplotlib, Agg: no display needed) and as self-contained HTML (plotly, with plotly.js
embedded so the file opens offline)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import plotly.graph_objects as go
from matplotlib.axes import Axes
from matplotlib.text import Annotation
from matplotlib.transforms import Bbox
from plotly.subplots import make_subplots

from hedger.backtest.study import RunResult

UNHEDGED = "unhedged"
LABEL_OFFSETS_PT = tuple(
    (dx * r, dy * r)
    for r in (1, 2, 3, 4, 6)
    for dx, dy in ((6, 4), (6, -10), (-6, 4), (-6, -10), (0, 8), (0, -14), (10, -3), (-10, -3))
)
"""Where a label may go around its point (points), nearest first."""


@dataclass(slots=True, frozen=True)
class FrontierPoint:
    cost_usd: float
    risk_usd: float
    label: str


def frontier_points(results: Sequence[RunResult]) -> list[FrontierPoint]:
    """One point per distinct (cost, risk): runs that land on the same spot (a band that
    never binds, say) share one label instead of printing over each other."""
    spots: dict[tuple[float, float], list[str]] = {}
    for r in results:
        spot = (round(r.metrics.cost_usd, 6), round(r.metrics.hedged_std_usd, 6))
        spots.setdefault(spot, []).append(_short_label(r))
    return [FrontierPoint(x, y, ", ".join(labels)) for (x, y), labels in spots.items()]


def _short_label(result: RunResult) -> str:
    return " ".join(value for _, value in result.combination.settings) or "base"


def _overlap(a: Bbox, b: Bbox) -> float:
    width = float(min(a.x1, b.x1) - max(a.x0, b.x0))
    height = float(min(a.y1, b.y1) - max(a.y0, b.y0))
    return max(width, 0.0) * max(height, 0.0)


def place_labels(
    ax: Axes,
    points: Sequence[tuple[float, float, str]],
    unlabelled: Sequence[tuple[float, float]] = (),
    fontsize: float = 7.0,
) -> list[Annotation]:
    """Label each point where its text overlaps no other label, no marker (``unlabelled``:
    markers without a label of their own) and not the legend, trying the spots around it
    nearest first, joined to its point by a thin line beyond the nearest ring; where none
    is free (a crowded plot), the least crowded spot."""
    fig = ax.figure
    fig.canvas.draw()  # settle the axes' limits: data-to-pixel transforms depend on them
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    spots = [(x, y) for x, y, _ in points] + list(unlabelled)
    taken = [
        Bbox.from_bounds(px - 5, py - 5, 10, 10)
        for px, py in (ax.transData.transform(spot) for spot in spots)
    ]
    legend = ax.get_legend()
    if legend is not None:
        taken.append(legend.get_window_extent(renderer))
    frame = ax.get_window_extent(renderer)
    placed = []
    for x, y, text in points:
        best: tuple[float, tuple[float, float]] | None = None
        for offset in LABEL_OFFSETS_PT:
            note = _annotate(ax, x, y, text, offset, fontsize)
            box = note.get_window_extent(renderer)
            note.remove()
            crowding = sum(_overlap(box, other) for other in taken)
            crowding += box.width * box.height - _overlap(box, frame)  # outside the axes
            if best is None or crowding < best[0]:
                best = (crowding, offset)
            if crowding == 0:
                break
        assert best is not None
        note = _annotate(ax, x, y, text, best[1], fontsize)
        taken.append(note.get_window_extent(renderer))
        placed.append(note)
    return placed


def _annotate(
    ax: Axes, x: float, y: float, text: str, offset: tuple[float, float], fontsize: float
) -> Annotation:
    far = abs(offset[0]) > 6 or abs(offset[1]) > 10
    return ax.annotate(
        text,
        (x, y),
        xytext=offset,
        textcoords="offset points",
        fontsize=fontsize,
        ha="left" if offset[0] > 0 else ("right" if offset[0] < 0 else "center"),
        arrowprops={"arrowstyle": "-", "lw": 0.4, "alpha": 0.5} if far else None,
    )


def frontier_png(results: Sequence[RunResult], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 5))
    points = frontier_points(results)
    ax.scatter([p.cost_usd for p in points], [p.risk_usd for p in points], label="estimated betas")
    oracle = [r.oracle for r in results if r.oracle is not None]
    if oracle:
        ax.scatter(
            [o.cost_usd for o in oracle],
            [o.hedged_std_usd for o in oracle],
            marker="x",
            label="oracle betas",
        )
    labelled = [(p.cost_usd, p.risk_usd, p.label) for p in points]
    ax.margins(0.15)
    unhedged = _unhedged_std(results)
    if unhedged is not None:
        # Far above the runs (any hedge that works), the unhedged point would squash the
        # frontier into a line: it then sits on the top edge, its value in its label.
        runs = [p.risk_usd for p in points] + [o.hedged_std_usd for o in oracle]
        low, high = min(runs), max(runs)
        top = high + max(high - low, 0.05 * high)
        shown, label = unhedged, UNHEDGED
        if unhedged > top:
            ax.set_ylim(low - 0.15 * (top - low), top)
            shown, label = top, f"{UNHEDGED}: {unhedged:,.0f} (off scale)"
        ax.scatter([0.0], [shown], marker="*", s=90, color="black", label=UNHEDGED, clip_on=False)
        labelled.append((0.0, shown, label))
    ax.set_xlabel("cost: fees + spread (USD)")
    ax.set_ylabel("std of hedged P&L per bar (USD)")
    ax.set_title("Cost versus risk")
    ax.legend(loc="lower right")
    fig.tight_layout()
    place_labels(ax, labelled, [(o.cost_usd, o.hedged_std_usd) for o in oracle])
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _unhedged_std(results: Sequence[RunResult]) -> float | None:
    """The holdings' own P&L std per bar: cost 0, the point every hedge is measured from
    (one tape, so the same for every run)."""
    values = [
        r.metrics.unhedged_std_usd for r in results if np.isfinite(r.metrics.unhedged_std_usd)
    ]
    return values[0] if values else None


def titled_html(fig: go.Figure, title: str) -> str:
    """A self-contained page whose tab says what it is (plotly writes no ``<title>``, and
    browsers then show the first SVG title in it, ``plotly-logomark``)."""
    html = str(fig.to_html(include_plotlyjs=True, full_html=True))
    return html.replace("<head>", f"<head>\n    <title>{escape(title)}</title>", 1)


def frontier_html(
    results: Sequence[RunResult], path: Path, title: str = "Cost versus risk"
) -> None:
    fig = go.Figure()
    points = frontier_points(results)
    fig.add_trace(
        go.Scatter(
            x=[p.cost_usd for p in points],
            y=[p.risk_usd for p in points],
            mode="markers",
            name="estimated betas",
            text=[p.label for p in points],
            hovertemplate="%{text}<br>cost %{x:,.0f} USD<br>std %{y:,.0f} USD<extra></extra>",
        )
    )
    oracle = [(_short_label(r), r.oracle) for r in results if r.oracle is not None]
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
    unhedged = _unhedged_std(results)
    if unhedged is not None:
        fig.add_trace(
            go.Scatter(
                x=[0.0],
                y=[unhedged],
                mode="markers+text",
                marker_symbol="star",
                marker_size=12,
                name=UNHEDGED,
                text=[UNHEDGED],
                textposition="top right",
            )
        )
    fig.update_layout(
        title=title,
        xaxis_title="cost: fees + spread (USD)",
        yaxis_title="std of hedged P&L per bar (USD)",
    )
    path.write_text(titled_html(fig, f"hedger backtest: {title}"), encoding="utf-8")


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
    title = f"Hedge over time: {result.combination.label}"
    fig.update_layout(title=title)
    path.write_text(titled_html(fig, f"hedger backtest: {title}"), encoding="utf-8")


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
