"""Backtest tables that fit: the README's sweep, printed to a file and to an 80-column
terminal (a real one, in tmux), shows every column in full; K = 2 shows both tracking errors.

The sweep is the README's own command (read from the README), on a shorter tape so that it
runs in seconds: same scenario, same axes, so the same columns and the same kind of values.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hedger.backtest import commands as cli
from hedger.backtest.report import column_groups
from hedger.backtest.sim_tape import simulate_tape
from hedger.backtest.study import run_study
from hedger.backtest.sweep import combinations
from hedger.config import load_config
from tests.net import wait_until

ROOT = Path(__file__).resolve().parents[2]
SHORTER = ["--days", "0.25", "--warmup", "2h"]


def readme_sweep() -> list[str]:
    """The README's sweep command, as arguments after ``hedger``, without its ``--out``."""
    text = (ROOT / "README.md").read_text()
    found = re.search(r"hedger (backtest [^\n]*\\\n[^\n]*--sweep[^\n]*)", text)
    assert found is not None, "the README lost its sweep command"
    args = shlex.split(found[1].replace("\\\n", " "))
    out = args.index("--out")
    return args[:out] + args[out + 2 :]


def _command(tmp_path: Path) -> list[str]:
    args = readme_sweep()
    days = args.index("--days")
    return [*args[:days], *args[days + 2 :], *SHORTER, "--out", str(tmp_path), "--no-plots"]


def table_cells(text: str) -> tuple[list[str], dict[str, list[str]]]:
    """Headers and, per run label, its cells, read off (possibly stacked) rich tables; a
    stacked table repeats the label column, which is kept once."""
    headers: list[str] = []
    rows: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.startswith("┃"):
            cells = [c.strip() for c in line.strip("┃").split("┃")]
            headers += cells if not headers else cells[1:]
        elif line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            known = rows.setdefault(cells[0], [cells[0]])
            known += cells[1:]
    return headers, rows


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def test_the_readme_sweep_prints_every_column_in_full_to_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: redirected to a file, the table was cut at 80 columns (``93.…``)."""
    text = _run(_command(tmp_path), capsys)
    assert "…" not in text
    headers, rows = table_cells(text)
    assert text.count("┃ run ") == 1  # one table: a file has room for every column
    assert headers == [
        "run",
        "VR",
        "TE",
        "hedge P&L",
        "cost",
        "turnover",
        "trades",
        "out",
        "max DD",
        "oracle VR",
        "oracle cost",
    ]
    with (tmp_path / "results.csv").open() as handle:
        written = list(csv.DictReader(handle))
    assert len(rows) == len(written) == 12
    for row in written:
        label = f"{row['hedge.band.half_width']} {row['beta.half_life']}"
        cells = rows[label]
        assert len(cells) == len(headers), cells
        assert cells[1] == f"{float(row['variance_reduction']):.1%}"
        assert cells[headers.index("trades")] == row["n_trades"]
    assert max(len(line) for line in text.splitlines()) > 80  # wider than a terminal


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_readme_sweep_fits_an_80_column_terminal_with_every_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: on 80 columns rich squeezed the columns and clipped values to ``93.…``."""
    wide = _run(_command(tmp_path / "file"), capsys)
    conf = tmp_path / "tmux.conf"
    conf.write_text("set -g remain-on-exit on\nset -g history-limit 5000\n")
    tmux = ["tmux", "-S", str(tmp_path / "tmux.sock"), "-f", str(conf)]
    command = shlex.join([sys.executable, "-m", "hedger.cli", *_command(tmp_path / "terminal")])
    # rich takes COLUMNS over the terminal's size: the pane's own width must win.
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", "bt", "-x", "80", "-y", "40", "-c", str(ROOT), command],
        check=True,
        env=env,
    )
    try:

        def finished() -> bool:
            shown = subprocess.run(
                [*tmux, "display-message", "-p", "-t", "bt", "#{pane_dead}"],
                capture_output=True,
                text=True,
                check=True,
            )
            return shown.stdout.strip() == "1"

        wait_until(finished, 180, "the backtest in the terminal", every_s=0.5)
        screen = subprocess.run(
            [*tmux, "capture-pane", "-p", "-t", "bt", "-S", "-", "-E", "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        subprocess.run([*tmux, "kill-server"], check=False, capture_output=True)
    assert "…" not in screen, screen
    assert max(len(line.rstrip()) for line in screen.splitlines()) <= 80
    assert screen.count("┃ run ") >= 2, screen  # stacked: too wide for one table
    # The same columns and the same values, cell for cell, as the table in the file.
    assert table_cells(screen) == table_cells(wide)


def test_column_groups_keep_the_label_and_fit_the_width() -> None:
    widths = [6, 5, 5, 9, 5, 8, 6, 4, 6, 9, 11]
    groups = column_groups(widths, 40)
    assert len(groups) > 1 and all(g[0] == 0 for g in groups)
    assert [i for g in groups for i in g[1:]] == list(range(1, len(widths)))  # in order
    for group in groups:
        assert 1 + sum(widths[i] + 3 for i in group) <= 40
    assert column_groups(widths, None) == column_groups(widths, 200) == [list(range(11))]
    # A column wider than the terminal still gets a table of its own (and folds).
    assert column_groups([6, 50, 5], 40) == [[0, 1], [0, 2]]


# --- K = 2 ----------------------------------------------------------------------------------------


def test_two_factors_report_both_tracking_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: K = 2 backtests reported one tracking error, factor 0's."""
    base = ["backtest", "--config", "config/two-factor.yaml", "--scenario", "stress-switching"]
    base += [*SHORTER, "--no-oracle"]
    document = json.loads(_run([*base, "--format", "json"], capsys))
    assert document["factors"] == ["BTC", "ETH"]
    (run,) = document["runs"]
    errors = run["metrics"]["tracking_errors"]
    assert len(errors) == 2 and all(math.isfinite(e) and e > 0 for e in errors)
    assert run["metrics"]["tracking_error"] == errors[0]

    rows = list(csv.DictReader(io.StringIO(_run([*base, "--format", "csv"], capsys))))
    assert float(rows[0]["tracking_error_BTC"]) == errors[0]
    assert float(rows[0]["tracking_error_ETH"]) == errors[1]
    assert "tracking_errors" not in rows[0]

    headers, cells = table_cells(_run(base, capsys))
    assert "TE BTC" in headers and "TE ETH" in headers and "TE" not in headers
    (row,) = cells.values()
    assert row[headers.index("TE ETH")] == f"{errors[1]:.3f}"


def test_each_factors_tracking_error_is_its_own_deviation_from_target() -> None:
    cfg = load_config(ROOT / "config" / "two-factor.yaml")
    tape = simulate_tape(cfg, "stress-switching", 7, 120 + 360, 60_000)
    (result,) = run_study(tape, combinations(cfg, []), 120, with_oracle=False)
    s = result.series
    for k in range(2):
        deviation = (s.true_beta_delta - s.target)[1:, k]
        deviation = deviation[np.isfinite(deviation)]
        assert result.metrics.tracking_errors[k] == pytest.approx(float(np.std(deviation)))
