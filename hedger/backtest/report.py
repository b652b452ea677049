"""Study results to a terminal table (rich), CSV and JSON files."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from hedger.backtest.derman_kamal import DermanKamalRow, Extrapolation
from hedger.backtest.study import RunResult


def _usd(value: float) -> str:
    """Compact USD for a narrow terminal: 950, 12.3k, 4.56M (the files keep every digit)."""
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:.2f}M"
    if size >= 1e4:
        return f"{value / 1e3:.1f}k"
    return f"{value:.0f}"


_COLUMNS: tuple[tuple[str, str, Callable[[float], str]], ...] = (
    ("variance_reduction", "VR", "{:.1%}".format),
    ("tracking_error", "TE", "{:.3f}".format),
    ("hedge_pnl_usd", "hedge P&L", _usd),
    ("cost_usd", "cost", _usd),
    ("turnover_usd", "turnover", _usd),
    ("n_trades", "trades", "{:.0f}".format),
    ("share_outside_band", "out", "{:.1%}".format),
    ("max_drawdown_usd", "max DD", _usd),
)


def _short_label(result: RunResult) -> str:
    return " ".join(value for _, value in result.combination.settings) or "base"


def results_table(results: Sequence[RunResult], title: str) -> Table:
    table = Table(title=title)
    axes = [path for path, _ in results[0].combination.settings] if results else []
    # Values only in the rows, the swept paths once in the caption: the table stays narrow.
    caption = "TE in factor units; USD elsewhere; out = bars outside the band"
    table.caption = f"run = {' '.join(axes)}; {caption}" if axes else caption
    table.add_column("run")
    for _, header, _ in _COLUMNS:
        table.add_column(header, justify="right")
    with_oracle = any(r.oracle is not None for r in results)
    if with_oracle:
        table.add_column("oracle VR", justify="right")
        table.add_column("oracle cost", justify="right")
    for r in results:
        values = r.metrics.as_dict()
        cells = [_short_label(r)] + [fmt(values[key]) for key, _, fmt in _COLUMNS]
        if with_oracle:
            o = r.oracle
            cells += (
                ["-", "-"]
                if o is None
                else [
                    f"{o.variance_reduction:.1%}",
                    f"{o.cost_usd:,.0f}",
                ]
            )
        table.add_row(*cells)
    return table


def print_results(results: Sequence[RunResult], title: str, console: Console) -> None:
    console.print(results_table(results, title))


def flat_rows(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        row: dict[str, Any] = {"run": r.combination.label, **dict(r.combination.settings)}
        row.update(r.metrics.as_dict())
        if r.oracle is not None:
            row.update({f"oracle_{k}": v for k, v in r.oracle.as_dict().items()})
        rows.append(row)
    return rows


def write_csv(results: Sequence[RunResult], path: Path) -> None:
    rows = flat_rows(results)
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def write_json(document: dict[str, Any], path: Path) -> None:
    path.write_bytes(
        orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    )


def dumps(document: dict[str, Any]) -> str:
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def derman_kamal_table(rows: Sequence[DermanKamalRow], fit: Extrapolation, paths: int) -> Table:
    table = Table(title=f"Derman-Kamal: short ATM call delta-hedged N times ({paths:,} paths)")
    for header in ("N", "std P&L", "formula", "ratio", "2nd order", "exact", "MC/exact"):
        table.add_column(header, justify="right", no_wrap=True)
    for r in rows:
        table.add_row(
            str(r.n_rebalances),
            f"{r.std_pnl:.4f}",
            f"{r.std_formula:.4f}",
            f"{r.ratio:.4f}±{r.ratio_stderr:.4f}",
            f"{r.std_second_order:.4f}",
            f"{r.std_exact:.4f}",
            f"{r.ratio_exact:.4f}±{r.ratio_exact_stderr:.4f}",
        )
    table.caption = (
        f"ratio(N) = {fit.limit:.4f} ± {fit.limit_stderr:.4f} {fit.slope:+.3f}/sqrt(N); "
        "exact: discrete-time std by quadrature; 2nd order: its Gamma expansion"
    )
    return table
