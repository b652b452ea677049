"""``hedger backtest --candles DIR``: the shell around the candle study, and its tables.

Without ``--config`` the study runs the configuration's defaults against BTC (and ETH for
K = 2). The tables are Markdown-shaped, so the README can show them as printed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from hedger.backtest.candle_study import StudySettings, study
from hedger.backtest.candles import CandleError, describe, load_candles, parse_asset_map
from hedger.config import BetaConfig, load_config

EXIT_OK = 0
EXIT_BAD_ARGUMENTS = 2
_CLASHING = (("replay", "--replay"), ("bar", "--bar"), ("warmup", "--warmup"))


def backtest_candles(args: argparse.Namespace) -> int:
    """The command: load, study, print (JSON or tables), optionally write JSON to --out.
    A ConfigError reaches the caller, which prints it as for every backtest."""
    try:
        for attribute, flag in _CLASHING:
            if getattr(args, attribute, None):
                raise CandleError(f"{flag} does not apply with --candles (the bar comes from them)")
        if getattr(args, "sweep", None):
            raise CandleError("--sweep does not apply with --candles: run one config per call")
        output = "json" if args.json else str(getattr(args, "format", "table"))
        if output not in ("json", "table"):
            raise CandleError(f"--format {output} does not apply with --candles (table, json)")
        if args.fee_bps < 0 or args.half_spread_bps < 0:
            raise CandleError("--fee-bps and --half-spread-bps must be >= 0")
        asset_map = parse_asset_map(args.asset_map) if args.asset_map else None
        candles = load_candles(args.candles, asset_map)
        if args.config:
            cfg = load_config(args.config)
            beta, factors = cfg.beta, cfg.factor_assets
        else:
            beta, factors = BetaConfig(), ("BTC",)
        settings = StudySettings(fee_bps=args.fee_bps, half_spread_bps=args.half_spread_bps)
        result = study(candles, beta, factors, settings, source=str(args.candles))
    except (CandleError, ValueError) as exc:
        print(f"hedger backtest: {exc}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    document = result.document
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "candles.json").write_text(dumps(document) + "\n", encoding="utf-8")
    if output == "json":
        print(dumps(document))
    else:
        console = Console(width=200)
        console.print(f"hedger backtest: {args.candles}: {describe(candles)}")
        print_tables(document, console)
    return EXIT_OK


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, allow_nan=False)


_SHORT = {"rolling_ols": "rolling"}


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _flag(row: dict[str, Any]) -> str:
    return " !" if row.get("warnings") else ""


def vr_table(document: dict[str, Any]) -> Table:
    """Out-of-sample VR per asset, estimator and K, beside the hindsight regression."""
    ks = sorted(document["factors"], key=int)
    names = list(document["estimators"])
    table = Table(box=box.MARKDOWN, pad_edge=False, show_edge=True)
    table.add_column("asset")
    table.add_column("bars", justify="right")
    for k in ks:
        table.add_column(f"K{k} OLS", justify="right")
        for name in names:
            table.add_column(f"K{k} {_SHORT.get(name, name)}", justify="right")
    rows = [(a, r) for a, r in document["assets"].items()]
    for asset, row in rows:
        cells = [asset + _flag(row), str(row["bars"])]
        for k in ks:
            cells.append(_fmt(row["vr_in_sample_ols"][k]))
            cells += [_fmt(row["vr_out_of_sample"][n][k]) for n in names]
        table.add_row(*cells)
    mean = document["mean"]
    cells = ["mean", ""]
    for k in ks:
        cells.append(_fmt(mean["vr_in_sample_ols"][k]))
        cells += [_fmt(mean["vr_out_of_sample"][n][k]) for n in names]
    table.add_row(*cells)
    portfolio = document["portfolio"]
    if portfolio:
        cells = ["book", str(portfolio["bars"])]
        for k in ks:
            cells.append("")
            cells += [_fmt(portfolio["vr_out_of_sample"][n][k]) for n in names]
        table.add_row(*cells)
    return table


def stress_table(document: dict[str, Any]) -> Table:
    """The default estimator on stress bars, correlations calm/stress, and the cost."""
    ks = sorted(document["factors"], key=int)
    name = document["default_estimator"]
    factors = document["factors"][ks[-1]]
    table = Table(box=box.MARKDOWN, pad_edge=False, show_edge=True)
    table.add_column("asset")
    table.add_column("stress bars", justify="right")
    for k in ks:
        table.add_column(f"K{k} stress", justify="right")
        table.add_column(f"K{k} OLS", justify="right")
    for factor in factors:
        table.add_column(f"ρ{factor} calm", justify="right")
        table.add_column(f"ρ{factor} stress", justify="right")
    for k in ks:
        table.add_column(f"K{k} turns/yr", justify="right")
        table.add_column(f"K{k} bp/yr", justify="right")
    for asset, row in document["assets"].items():
        cells = [asset + _flag(row), str(row["stress_bars"])]
        for k in ks:
            cells += [_fmt(row["vr_stress"][name][k]), _fmt(row["vr_stress_in_sample_ols"][k])]
        for factor in factors:
            cells.append(_fmt(row["correlation"]["calm"][factor], 2))
            cells.append(_fmt(row["correlation"]["stress"][factor], 2))
        for k in ks:
            cells += [
                _fmt(row["turnover_per_year"][name][k], 1),
                _fmt(row["cost_bps_per_year"][name][k], 0),
            ]
        table.add_row(*cells)
    return table


def print_tables(document: dict[str, Any], console: Console) -> None:
    name = document["default_estimator"]
    costs = document["costs"]
    lines = [
        "",
        "Variance reduction of log returns out of sample (each bar hedged with the loadings known",
        "before it), per estimator and K, beside the in-sample constant-loading regression (OLS,",
        "hindsight); book: the equal-weight book of the assets:",
    ]
    for line in lines:
        console.print(line, markup=False, highlight=False)
    console.print(vr_table(document))
    lines = [
        "",
        f"{name} (the config's estimator) on stress bars (top 5% of |{document['factors']['1'][0]}"
        " return|), against OLS; correlations calm and in stress;",
        "turnover per year of a hedge rebalanced every bar (multiples of the asset's value) and "
        f"its cost at {costs['fee_bps']:g} bp fee + {costs['half_spread_bps']:g} bp half-spread:",
    ]
    for line in lines:
        console.print(line, markup=False, highlight=False)
    console.print(stress_table(document))
    warnings = list(document["warnings"])
    for asset, row in document["assets"].items():
        warnings += [f"{asset}: {w}" for w in row["warnings"]]
    if warnings:
        console.print()
        for line in warnings:
            console.print(f"! {line}", markup=False, highlight=False)
