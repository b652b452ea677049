"""``hedger backtest --scenario options-book``: the hedge modes side by side through stress.

One simulated market (``presets.OPTION_MODES_SCENARIO``), one tape and one option chain;
the same book hedged three ways (``presets.OPTION_MODES``): the perp alone, protective puts
with the perp, and the multi-Greek solve with the perp. Each run is ``run_hedge``, the core's
own step bar by bar; the comparison reads, for the whole run and for its stressed bars:

- worst drawdown of the cumulative hedged P&L (USD);
- hedged P&L variance per bar (USD squared) and its standard deviation;
- cost: fees and half spreads paid, perp and options (USD);
- premium: option premium paid, net of premium received (USD; a cash flow, the options'
  value is in the hedged P&L).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from hedger.backtest.driver import BetaSource, RunSeries, run_hedge
from hedger.backtest.metrics import max_drawdown, run_metrics
from hedger.backtest.option_tape import ChainTape, simulate_chain
from hedger.backtest.presets import OPTION_MODES_SCENARIO, option_mode_configs
from hedger.backtest.sim_tape import simulate_tape
from hedger.backtest.tape import FloatArray, Tape
from hedger.config.durations import parse_duration

EXIT_OK = 0
EXIT_BAD_ARGUMENTS = 2


@dataclass(slots=True, frozen=True)
class Window:
    """One stretch of a run (every bar, or the stressed ones)."""

    bars: int
    worst_drawdown_usd: float
    hedged_pnl_variance_usd2: float
    hedged_pnl_usd: float
    unhedged_pnl_variance_usd2: float
    cost_usd: float
    premium_usd: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "bars": self.bars,
            "worst_drawdown_usd": self.worst_drawdown_usd,
            "hedged_pnl_variance_usd2": self.hedged_pnl_variance_usd2,
            "hedged_pnl_std_usd": math.sqrt(self.hedged_pnl_variance_usd2),
            "hedged_pnl_usd": self.hedged_pnl_usd,
            "unhedged_pnl_variance_usd2": self.unhedged_pnl_variance_usd2,
            "cost_usd": self.cost_usd,
            "premium_usd": self.premium_usd,
        }


def window(series: RunSeries, mask: np.ndarray[tuple[int], np.dtype[np.bool_]]) -> Window:
    """``series`` over the bars in ``mask``. Bar 0 opens the run: its trades' cost and
    premium count, its P&L does not (there is none), as in ``run_metrics``."""
    pnl_bars = mask.copy()
    pnl_bars[0] = False
    hedged: FloatArray = series.hedged_pnl_usd[pnl_bars]
    unhedged: FloatArray = series.holdings_pnl_usd[pnl_bars]
    premium = series.premium_usd
    costs = series.fees_usd[mask] + series.spread_cost_usd[mask]
    return Window(
        bars=int(pnl_bars.sum()),
        worst_drawdown_usd=max_drawdown(hedged),
        hedged_pnl_variance_usd2=float(np.var(hedged)) if len(hedged) > 1 else math.nan,
        hedged_pnl_usd=float(hedged.sum()),
        unhedged_pnl_variance_usd2=float(np.var(unhedged)) if len(unhedged) > 1 else math.nan,
        cost_usd=float(costs.sum()),
        premium_usd=0.0 if premium is None else float(premium[mask].sum()),
    )


@dataclass(slots=True, frozen=True)
class ModeResult:
    mode: str
    whole: Window
    stress: Window
    series: RunSeries

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "run": self.whole.as_dict(),
            "stress": self.stress.as_dict(),
            "option_trades": len(self.series.option_trades),
            "perp_trades": len(self.series.intents),
            "refusals": self.series.refusals,
            "metrics": run_metrics(self.series).as_dict(),
        }


def compare_modes(
    seed: int, bars: int, bar_ms: int, warmup_bars: int
) -> tuple[Tape, ChainTape, list[ModeResult]]:
    """Every mode on one tape and chain: ``bars`` bars of ``bar_ms`` after the scenario's
    start, the first ``warmup_bars`` feeding the betas only."""
    configs = option_mode_configs(seed)
    base = configs["perp"]
    tape = simulate_tape(base, OPTION_MODES_SCENARIO, seed, bars, bar_ms)
    chain = simulate_chain(
        OPTION_MODES_SCENARIO, base.factor_assets, seed, tape.time_ms, base.factor_assets
    )
    start = min(max(warmup_bars, 0), len(tape) - 1)
    stressed = chain.stressed[start:]
    results = []
    for mode, cfg in configs.items():
        series = run_hedge(tape, cfg, BetaSource.ESTIMATED, warmup_bars, chain)
        every = np.ones(len(series.time_ms), dtype=np.bool_)
        results.append(ModeResult(mode, window(series, every), window(series, stressed), series))
    return tape, chain, results


def _table(results: list[ModeResult], title: str) -> Table:
    table = Table(title=title)
    for header in ("mode", "window", "worst drawdown", "P&L std", "P&L", "cost", "premium"):
        table.add_column(header, justify="left" if header in ("mode", "window") else "right")
    for r in results:
        for name, w in (("run", r.whole), ("stress", r.stress)):
            table.add_row(
                r.mode,
                f"{name} ({w.bars} bars)",
                f"{w.worst_drawdown_usd:,.0f}",
                f"{math.sqrt(w.hedged_pnl_variance_usd2):,.0f}",
                f"{w.hedged_pnl_usd:,.0f}",
                f"{w.cost_usd:,.0f}",
                f"{w.premium_usd:,.0f}",
            )
    return table


def backtest_option_modes(args: argparse.Namespace) -> int:
    """The CLI's ``--scenario options-book`` without a config or a sweep."""
    import orjson

    try:
        bar_s = parse_duration(args.bar) if args.bar else 60.0
        warmup_s = parse_duration(args.warmup or "1d")
    except ValueError as exc:
        print(f"hedger: --bar/--warmup: {exc}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    if not (bar_s > 0 and args.days > 0):
        print("hedger: --bar and --days must be > 0", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    bar_ms = max(1, round(bar_s * 1000))
    warmup_bars = round(warmup_s * 1000 / bar_ms)
    bars = warmup_bars + max(1, round(args.days * 86_400_000 / bar_ms))
    tape, chain, results = compare_modes(args.seed, bars, bar_ms, warmup_bars)
    document = {
        "scenario": "options-book",
        "source": tape.source,
        "bar_seconds": bar_ms / 1000.0,
        "warmup_bars": warmup_bars,
        "bars": len(results[0].series.time_ms) - 1,
        "stress_bars": results[0].stress.bars,
        "listed_options": len(chain),
        "modes": [r.as_dict() for r in results],
    }
    text = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "option_modes.json").write_bytes(text)
    if args.json or getattr(args, "format", "table") == "json":
        print(text.decode())
    else:
        Console().print(_table(results, f"hedger backtest: options-book on {tape.source}"))
    return EXIT_OK
