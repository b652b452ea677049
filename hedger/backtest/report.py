"""Study results to a terminal table (rich), CSV and JSON, on stdout or to files.

A table never clips a number. On a terminal too narrow for every column, the columns are
split into several tables stacked one under the other, each repeating the run's label;
printed to a file or a pipe, the table is as wide as its widest row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console, JustifyMethod
from rich.table import Table

from hedger.backtest.derman_kamal import DermanKamalRow, Extrapolation
from hedger.backtest.study import RunResult

FORMATS = ("table", "csv", "json")


def _usd(value: float) -> str:
    """Compact USD for a narrow terminal: 950, 12.3k, 4.56M (the files keep every digit)."""
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:.2f}M"
    if size >= 1e4:
        return f"{value / 1e3:.1f}k"
    return f"{value:.0f}"


def _percent(value: float) -> str:
    return f"{value:.1%}"


@dataclass(slots=True, frozen=True)
class Column:
    header: str
    cell: Callable[[RunResult], str]
    justify: JustifyMethod = "right"


def _metric(key: str, fmt: Callable[[float], str]) -> Callable[[RunResult], str]:
    return lambda r: fmt(r.metrics.as_dict()[key])


def _tracking_error(k: int) -> Callable[[RunResult], str]:
    def cell(r: RunResult) -> str:
        errors = r.metrics.tracking_errors or (r.metrics.tracking_error,)
        return f"{errors[k]:.3f}" if k < len(errors) else "-"

    return cell


def _oracle(fmt: Callable[[float], str], key: str) -> Callable[[RunResult], str]:
    return lambda r: "-" if r.oracle is None else fmt(r.oracle.as_dict()[key])


def _short_label(result: RunResult) -> str:
    return " ".join(value for _, value in result.combination.settings) or "base"


def factor_names(results: Sequence[RunResult]) -> list[str]:
    return list(results[0].combination.config.factor_assets) if results else []


def columns(results: Sequence[RunResult]) -> list[Column]:
    """The table's columns: one tracking error per factor when there are several."""
    factors = factor_names(results)
    te = (
        [Column("TE", _tracking_error(0))]
        if len(factors) <= 1
        else [Column(f"TE {f}", _tracking_error(k)) for k, f in enumerate(factors)]
    )
    out = [
        Column("run", _short_label, "left"),
        Column("VR", _metric("variance_reduction", _percent)),
        *te,
        Column("hedge P&L", _metric("hedge_pnl_usd", _usd)),
        Column("cost", _metric("cost_usd", _usd)),
        Column("turnover", _metric("turnover_usd", _usd)),
        Column("trades", _metric("n_trades", "{:.0f}".format)),
        Column("out", _metric("share_outside_band", _percent)),
        Column("max DD", _metric("max_drawdown_usd", _usd)),
    ]
    if any(r.oracle is not None for r in results):
        out += [
            Column("oracle VR", _oracle(_percent, "variance_reduction")),
            Column("oracle cost", _oracle("{:,.0f}".format, "cost_usd")),
        ]
    return out


def _caption(results: Sequence[RunResult]) -> str:
    axes = [path for path, _ in results[0].combination.settings] if results else []
    # Values only in the rows, the swept paths once in the caption: the table stays narrow.
    caption = "TE in factor units; USD elsewhere; out = bars outside the band"
    return f"run = {' '.join(axes)}; {caption}" if axes else caption


# --- fitting a table to a width ------------------------------------------------------------------


def _table_width(widths: Sequence[int]) -> int:
    # rich's default box: a border before each column and one after the last, and one
    # space of padding on each side of every cell.
    return 1 + sum(w + 3 for w in widths)


def column_groups(widths: Sequence[int], width: int | None) -> list[list[int]]:
    """Column indices per stacked table: column 0 (the row's label) starts each group, and
    the others follow in order while the table fits ``width`` (None: one group)."""
    if width is None or _table_width(widths) <= width:
        return [list(range(len(widths)))]
    groups: list[list[int]] = []
    current = [0]
    for i in range(1, len(widths)):
        if len(current) > 1 and _table_width([widths[j] for j in [*current, i]]) > width:
            groups.append(current)
            current = [0]
        current.append(i)
    groups.append(current)
    return groups


def _widths(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    return [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]


def fitted_tables(
    title: str,
    caption: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int | None,
    justify: Sequence[JustifyMethod] | None = None,
) -> list[Table]:
    """The table as one or more tables, none wider than ``width``; every cell in full
    (a cell wider than the whole terminal folds onto a second line, never an ellipsis)."""
    widths = _widths(headers, rows)
    groups = column_groups(widths, width)
    tables = []
    for n, group in enumerate(groups):
        table = Table(title=title if n == 0 else None, title_justify="left")
        if n == len(groups) - 1:
            table.caption = caption
            table.caption_justify = "left"
        for i in group:
            side: JustifyMethod = "right" if justify is None else justify[i]
            table.add_column(headers[i], justify=side, overflow="fold", min_width=widths[i])
        for row in rows:
            table.add_row(*(row[i] for i in group))
        tables.append(table)
    return tables


def print_fitted(
    console: Console,
    title: str,
    caption: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    justify: Sequence[JustifyMethod] | None = None,
) -> None:
    """On a terminal: stacked to its width. To a file or pipe: one table, as wide as it
    needs (a redirected console would otherwise clip it at 80 columns)."""
    width = console.width if console.is_terminal else None
    tables = fitted_tables(title, caption, headers, rows, width, justify)
    if width is None:
        natural = _table_width(_widths(headers, rows))
        console = Console(file=console.file, width=max(natural, len(title)), no_color=True)
    for table in tables:
        console.print(table)


def print_results(results: Sequence[RunResult], title: str, console: Console) -> None:
    cols = columns(results)
    rows = [[c.cell(r) for c in cols] for r in results]
    justify = [c.justify for c in cols]
    print_fitted(console, title, _caption(results), [c.header for c in cols], rows, justify)


# --- files ---------------------------------------------------------------------------------------


def flat_rows(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """One row per run with every metric in full; per-factor tracking errors as
    ``tracking_error_<factor>``."""
    factors = factor_names(results)
    rows = []
    for r in results:
        row: dict[str, Any] = {"run": r.combination.label, **dict(r.combination.settings)}
        row.update(_flat_metrics(r.metrics.as_dict(), factors))
        if r.oracle is not None:
            oracle = _flat_metrics(r.oracle.as_dict(), factors)
            row.update({f"oracle_{k}": v for k, v in oracle.items()})
        rows.append(row)
    return rows


def _flat_metrics(metrics: dict[str, Any], factors: Sequence[str]) -> dict[str, Any]:
    errors = metrics.pop("tracking_errors", ())
    if len(factors) > 1:
        metrics.update({f"tracking_error_{f}": e for f, e in zip(factors, errors, strict=False)})
    return metrics


def csv_text(results: Sequence[RunResult]) -> str:
    rows = flat_rows(results)
    fields = list(dict.fromkeys(k for row in rows for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def write_csv(results: Sequence[RunResult], path: Path) -> None:
    path.write_text(csv_text(results), encoding="utf-8")


def write_json(document: dict[str, Any], path: Path) -> None:
    path.write_bytes(
        orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    )


def dumps(document: dict[str, Any]) -> str:
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def emit(
    results: Sequence[RunResult],
    document: dict[str, Any],
    fmt: str,
    title: str,
    console: Console,
) -> None:
    """The study on stdout as ``--format`` asks (one of ``FORMATS``): a table, CSV rows, or
    the JSON document."""
    if fmt == "json":
        console.file.write(dumps(document) + "\n")
    elif fmt == "csv":
        console.file.write(csv_text(results))
    else:
        print_results(results, title, console)


# --- Derman-Kamal --------------------------------------------------------------------------------

DK_HEADERS = ("N", "std P&L", "formula", "ratio", "2nd order", "exact", "MC/exact")


def _dk_rows(rows: Sequence[DermanKamalRow]) -> list[list[str]]:
    return [
        [
            str(r.n_rebalances),
            f"{r.std_pnl:.4f}",
            f"{r.std_formula:.4f}",
            f"{r.ratio:.4f}±{r.ratio_stderr:.4f}",
            f"{r.std_second_order:.4f}",
            f"{r.std_exact:.4f}",
            f"{r.ratio_exact:.4f}±{r.ratio_exact_stderr:.4f}",
        ]
        for r in rows
    ]


def _dk_title(paths: int) -> str:
    return f"Derman-Kamal: short ATM call delta-hedged N times ({paths:,} paths)"


def _dk_caption(fit: Extrapolation) -> str:
    return (
        f"ratio(N) = {fit.limit:.4f} ± {fit.limit_stderr:.4f} {fit.slope:+.3f}/sqrt(N); "
        "exact: discrete-time std by quadrature; 2nd order: its Gamma expansion"
    )


def derman_kamal_table(rows: Sequence[DermanKamalRow], fit: Extrapolation, paths: int) -> Table:
    """One table (for a wide enough console); ``print_derman_kamal`` fits any width."""
    (table,) = fitted_tables(_dk_title(paths), _dk_caption(fit), DK_HEADERS, _dk_rows(rows), None)
    return table


def emit_derman_kamal(
    rows: Sequence[DermanKamalRow],
    fit: Extrapolation,
    document: dict[str, Any],
    fmt: str,
    console: Console,
) -> None:
    """The theory check on stdout as ``--format`` asks."""
    if fmt == "json":
        console.file.write(dumps(document) + "\n")
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(list(rows[0].as_dict()) if rows else [])
        writer.writerows(list(r.as_dict().values()) for r in rows)
        console.file.write(out.getvalue())
    else:
        paths = int(document["paths"])
        print_fitted(console, _dk_title(paths), _dk_caption(fit), DK_HEADERS, _dk_rows(rows))
