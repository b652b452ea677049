"""The study's charts: frontier labels that never print over each other, the unhedged
point, and HTML pages titled for what they show."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.transforms import Bbox

from hedger.backtest.plots import UNHEDGED, frontier_points, place_labels, write_plots
from hedger.backtest.sim_tape import simulate_tape
from hedger.backtest.study import RunResult, run_study
from hedger.backtest.sweep import Combination
from hedger.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def _overlap(a: Bbox, b: Bbox) -> bool:
    return bool(a.overlaps(b))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_labels_of_a_crowded_frontier_do_not_collide(seed: int) -> None:
    """Before: every run's label was printed at its point, over its neighbours'."""
    rng = np.random.default_rng(seed)
    # A sweep's typical frontier: most runs bunched at low cost, a few spread out.
    xs = np.concatenate([rng.uniform(300, 450, 10), rng.uniform(450, 1000, 4)])
    ys = np.concatenate([rng.uniform(255, 261, 10), rng.uniform(255, 261, 4)])
    labels = [f"{w} {h}" for w in (0.1, 0.25, 0.5, 1, 2, 4, 8) for h in ("1h", "1d")]
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.scatter(xs, ys)
    notes = place_labels(ax, list(zip(xs, ys, labels, strict=True)))
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    boxes = [note.get_window_extent(renderer) for note in notes]
    assert [note.get_text() for note in notes] == labels
    for i, box in enumerate(boxes):
        for j in range(i):
            assert not _overlap(box, boxes[j]), (labels[i], labels[j])
        for k, (x, y) in enumerate(zip(xs, ys, strict=True)):
            px, py = ax.transData.transform((x, y))
            inside = box.x0 <= px <= box.x1 and box.y0 <= py <= box.y1
            assert not inside, f"label {labels[i]!r} covers the point of {labels[k]!r}"
    plt.close(fig)


@pytest.fixture(scope="module")
def study() -> list[RunResult]:
    """Two runs of the paper config on a short simulated tape: one hedges, one with a
    band too wide to ever trade, which lands where the unhedged book is."""
    cfg = load_config(ROOT / "config" / "paper.yaml")
    wide = cfg.factors[0].model_copy(
        update={"band": cfg.factors[0].band.model_copy(update={"half_width": 1e6})}
    )
    combos = [
        Combination((("hedge.band.half_width", "0.25"),), cfg),
        Combination(
            (("hedge.band.half_width", "1e6"),), cfg.model_copy(update={"factors": [wide]})
        ),
        Combination(
            (("hedge.band.half_width", "1e6 again"),), cfg.model_copy(update={"factors": [wide]})
        ),
    ]
    tape = simulate_tape(cfg, "stress-switching", 7, 60 + 240, 60_000)
    return run_study(tape, combos, 60, with_oracle=False)


def test_runs_on_the_same_spot_share_one_label(study: list[RunResult]) -> None:
    points = frontier_points(study)
    assert len(points) == 2
    assert points[1].label == "1e6, 1e6 again"


def test_pages_are_titled_and_the_unhedged_point_is_drawn(
    study: list[RunResult], tmp_path: Path
) -> None:
    """Before: both HTML pages had no <title>, so browsers showed "plotly-logomark"."""
    files = write_plots(study, study[0], ["BTC"], tmp_path)
    for name in ("frontier_html", "run_html"):
        html = Path(files[name]).read_text()
        head = html.split("</head>", 1)[0]
        titles = re.findall(r"<title>([^<]*)</title>", head)
        assert len(titles) == 1 and titles[0].startswith("hedger backtest: "), titles
    frontier = Path(files["frontier_html"]).read_text()
    assert f'"name":"{UNHEDGED}"' in frontier
    unhedged = study[0].metrics.unhedged_std_usd
    # The never-trading run is the unhedged book: the same P&L std, at no cost.
    assert study[1].metrics.hedged_std_usd == pytest.approx(unhedged)
    assert study[1].metrics.cost_usd == 0
    assert Path(files["frontier_png"]).stat().st_size > 10_000
