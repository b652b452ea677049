"""A backtest study: every sweep combination run on one tape, with its oracle twin.

Pure orchestration: the tape comes in, results go out, progress is reported through a
callback (the shell draws the bar), so a study is as reproducible as its tape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from hedger.backtest.driver import BetaSource, RunSeries, run_hedge
from hedger.backtest.layout import LayoutError
from hedger.backtest.metrics import Metrics, run_metrics
from hedger.backtest.sweep import Combination
from hedger.backtest.tape import Tape

Progress = Callable[[int], None]
"""called with the number of runs just completed"""


@dataclass(slots=True, frozen=True)
class RunResult:
    combination: Combination
    metrics: Metrics
    oracle: Metrics | None
    series: RunSeries

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.combination.label,
            "settings": dict(self.combination.settings),
            "metrics": self.metrics.as_dict(),
            "oracle": None if self.oracle is None else self.oracle.as_dict(),
        }


def check_bars(tape: Tape, combinations: list[Combination]) -> None:
    """A beta bar shorter than the tape's would sample the same quote twice: refuse it."""
    step_s = tape.bar_seconds()
    for combo in combinations:
        if combo.config.beta.bar < step_s * (1 - 1e-9):
            raise LayoutError(
                f"{combo.label}: beta.bar ({combo.config.beta.bar:g}s) is shorter than the "
                f"backtest bar ({step_s:g}s); use a longer beta.bar or a shorter --bar"
            )


def run_study(
    tape: Tape,
    combinations: list[Combination],
    warmup_bars: int,
    with_oracle: bool,
    progress: Progress | None = None,
) -> list[RunResult]:
    results = []
    for combo in combinations:
        series = run_hedge(tape, combo.config, BetaSource.ESTIMATED, warmup_bars)
        done = 1
        oracle = None
        if with_oracle and tape.true_loadings is not None:
            oracle = run_metrics(run_hedge(tape, combo.config, BetaSource.ORACLE, warmup_bars))
            done += 1
        results.append(RunResult(combo, run_metrics(series), oracle, series))
        if progress is not None:
            progress(done)
    return results


def chosen_run(results: list[RunResult], how: Literal["first", "best"]) -> RunResult:
    """The run to plot over time: the first, or the one with the highest variance
    reduction (ties: the cheaper)."""
    if how == "first":
        return results[0]
    return max(results, key=lambda r: (r.metrics.variance_reduction, -r.metrics.cost_usd))
