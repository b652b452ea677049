"""Candle files in, one aligned grid of closes out: what a backtest on real history reads.

A directory holds one file per asset. Layouts read:

- CSV without a header in ccxt's row layout, ``timestamp_ms,open,high,low,close,volume``
  (Binance's raw 12-column klines have the same first five columns);
- CSV with a header naming a time column (``timestamp``, ``open_time``, ``date``, ...) and a
  ``close`` column, case-insensitive: Binance's 12-column kline header is one such;
- either gzip-compressed (``.csv.gz``); Parquet (``.parquet``) when pyarrow is installed.

Times are epoch seconds, milliseconds or microseconds (told apart by magnitude) or ISO 8601
dates, with an offset or taken as UTC. A candle is stamped at its open. The asset comes from
the file name, the base symbol before a separator or a quote suffix (``BTC-USD_1h.csv``,
``BTCUSDT-1h-2022.csv`` -> BTC), unless an asset map names it. The bar length is the shortest
step between candles; every file must sit on one grid of that step. Missing candles stay
missing (NaN) and are counted per asset; nothing is filled. Anything unreadable is a
``CandleError``: one line naming the file and the reason.
"""

from __future__ import annotations

import csv
import gzip
import importlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hedger.config.durations import format_seconds

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
TIME_COLUMNS = (
    "timestamp",
    "timestamp_ms",
    "open_time",
    "opentime",
    "open time",
    "time",
    "date",
    "datetime",
    "ts",
    "unix",
)
CLOSE_COLUMNS = ("close", "close_price", "c")
QUOTE_SUFFIXES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "DAI", "USD", "EUR", "PERP")
_MISSING = frozenset({"", "nan", "null", "none", "na", "n/a"})
_SEPARATORS = re.compile(r"[-_ .:/]")


class CandleError(ValueError):
    """A candle file (or directory) that cannot be read: ``str()`` names it and says why."""


@dataclass(slots=True, frozen=True)
class CandleSeries:
    """One file: bar open times (strictly increasing) and closes (NaN: no close given)."""

    asset: str
    path: Path
    open_ms: IntArray
    close: FloatArray


@dataclass(slots=True, frozen=True)
class Gaps:
    """Bars missing inside an asset's own span (before its first candle is not a gap)."""

    count: int
    longest_bars: int

    def as_dict(self) -> dict[str, int]:
        return {"count": self.count, "longest_bars": self.longest_bars}


@dataclass(slots=True, frozen=True)
class Candles:
    """Closes of every asset on one regular grid: (T,) open times, (T, n) closes."""

    assets: tuple[str, ...]
    open_ms: IntArray
    close: FloatArray
    bar_ms: int
    gaps: Mapping[str, Gaps]
    files: Mapping[str, Path]

    def column(self, asset: str) -> FloatArray:
        return self.close[:, self.assets.index(asset)]

    def log_returns(self) -> FloatArray:
        """(T - 1, n): bar t's return is close t over close t - 1; NaN across a gap."""
        with np.errstate(invalid="ignore", divide="ignore"):
            returns: FloatArray = np.diff(np.log(self.close), axis=0)
        return returns


# --- asset names ------------------------------------------------------------------------------


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (*CSV_SUFFIXES, *PARQUET_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def asset_from_name(path: Path) -> str:
    """The base symbol of a file name: its first token, less a quote suffix."""
    token = _SEPARATORS.split(_stem(path).strip(), maxsplit=1)[0].upper()
    for quote in QUOTE_SUFFIXES:
        if token.endswith(quote) and len(token) > len(quote):
            return token[: -len(quote)]
    return token


def parse_asset_map(spec: str) -> dict[str, str]:
    """``NAME=ASSET,...``: NAME is a file name, its stem, or the symbol read from it."""
    out = {}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        name, sep, asset = item.partition("=")
        if not sep or not name.strip() or not asset.strip():
            raise CandleError(f"--asset-map {item!r}: expected NAME=ASSET (e.g. XBTUSD=BTC)")
        out[name.strip().upper()] = asset.strip().upper()
    return out


def _asset_of(path: Path, asset_map: Mapping[str, str]) -> str:
    for key in (path.name, _stem(path), asset_from_name(path)):
        if key.upper() in asset_map:
            return asset_map[key.upper()]
    return asset_from_name(path)


# --- one file ---------------------------------------------------------------------------------


def _epoch_ms(values: Sequence[float]) -> IntArray:
    """Epoch seconds, ms, us or ns, told apart by the largest magnitude in the column."""
    array = np.asarray(values, dtype=np.float64)
    top = float(np.max(np.abs(array))) if len(array) else 0.0
    scale = 1e3 if top < 1e11 else 1.0 if top < 1e14 else 1e-3 if top < 1e17 else 1e-6
    return np.round(array * scale).astype(np.int64)


def _iso_ms(text: str) -> int:
    stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return round(stamp.timestamp() * 1000)


def _times_ms(texts: Sequence[str], path: Path, first_row: int) -> IntArray:
    try:
        return _epoch_ms([float(t) for t in texts])
    except ValueError:
        pass
    out = np.empty(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        try:
            out[i] = _iso_ms(text)
        except ValueError:
            raise CandleError(
                f"{path}: row {first_row + i}: time {text!r} is neither epoch seconds/ms nor "
                "an ISO date"
            ) from None
    return out


def _closes(texts: Sequence[str], path: Path, first_row: int) -> FloatArray:
    out = np.empty(len(texts), dtype=np.float64)
    for i, text in enumerate(texts):
        if text.strip().lower() in _MISSING:
            out[i] = math.nan  # a candle without a close: counted as a gap, not filled
            continue
        try:
            value = float(text)
        except ValueError:
            raise CandleError(
                f"{path}: row {first_row + i}: close {text!r} is not a number"
            ) from None
        if not (math.isfinite(value) and value > 0):
            raise CandleError(f"{path}: row {first_row + i}: close {text!r} must be > 0")
        out[i] = value
    return out


def _column(names: Sequence[str], wanted: Iterable[str]) -> int | None:
    lowered = [n.strip().lstrip("\ufeff").lower() for n in names]
    for name in wanted:
        if name in lowered:
            return lowered.index(name)
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _columns_of(header: Sequence[str], path: Path) -> tuple[int, int]:
    time_col = _column(header, TIME_COLUMNS)
    close_col = _column(header, CLOSE_COLUMNS)
    shown = ",".join(header)[:120]
    if time_col is None:
        raise CandleError(
            f"{path}: no time column (one of {', '.join(TIME_COLUMNS[:6])}, ...) in the "
            f"header {shown!r}"
        )
    if close_col is None:
        raise CandleError(f"{path}: no close column in the header {shown!r}")
    return time_col, close_col


def _read_csv_rows(path: Path) -> list[list[str]]:
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
                return list(csv.reader(handle))
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.reader(handle))
    except UnicodeDecodeError:
        raise CandleError(f"{path}: not UTF-8 text") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CandleError(f"{path}: cannot read: {reason}") from None
    except csv.Error as exc:
        raise CandleError(f"{path}: not CSV: {exc}") from None


def _read_csv(path: Path) -> tuple[IntArray, FloatArray]:
    rows = [row for row in _read_csv_rows(path) if any(cell.strip() for cell in row)]
    if not rows:
        raise CandleError(f"{path}: empty")
    if _is_number(rows[0][0].lstrip("\ufeff")):
        time_col, close_col, first = 0, 4, 0
        if len(rows[0]) < 5:
            raise CandleError(
                f"{path}: row 1 has {len(rows[0])} columns; without a header the layout is "
                "ccxt's timestamp_ms,open,high,low,close,volume"
            )
    else:
        time_col, close_col = _columns_of(rows[0], path)
        first = 1
    body = rows[first:]
    if not body:
        raise CandleError(f"{path}: a header and no candles")
    need = max(time_col, close_col) + 1
    for i, row in enumerate(body):
        if len(row) < need:
            raise CandleError(
                f"{path}: row {first + i + 1} has {len(row)} columns, {need} expected"
            )
    times = _times_ms([row[time_col] for row in body], path, first + 1)
    return times, _closes([row[close_col] for row in body], path, first + 1)


def _read_parquet(path: Path) -> tuple[IntArray, FloatArray]:
    try:  # optional: only Parquet files need it
        pq: Any = importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise CandleError(
            f"{path}: reading Parquet needs pyarrow, which is not installed "
            "(pip install pyarrow, or convert the file to CSV)"
        ) from None
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise CandleError(f"{path}: not a readable Parquet file: {exc}") from None
    time_col, close_col = _columns_of(table.column_names, path)
    times = table.column(time_col).to_pylist()
    closes = table.column(close_col).to_pylist()
    if not times:
        raise CandleError(f"{path}: no candles")
    if isinstance(times[0], datetime):
        stamps = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in times]
        time_ms = np.array([round(t.timestamp() * 1000) for t in stamps], dtype=np.int64)
    else:
        time_ms = _times_ms([str(t) for t in times], path, 1)
    return time_ms, _closes(["" if c is None else str(c) for c in closes], path, 1)


def read_candle_file(path: str | Path, asset: str | None = None) -> CandleSeries:
    path = Path(path)
    lowered = path.name.lower()
    if lowered.endswith(PARQUET_SUFFIXES):
        open_ms, close = _read_parquet(path)
    elif lowered.endswith(CSV_SUFFIXES):
        open_ms, close = _read_csv(path)
    else:
        raise CandleError(f"{path}: not a candle file (.csv, .csv.gz, .parquet)")
    steps = np.diff(open_ms)
    if (steps <= 0).any():
        row = int(np.flatnonzero(steps <= 0)[0]) + 2
        raise CandleError(
            f"{path}: times must rise strictly; candle {row} is not after candle {row - 1}"
        )
    return CandleSeries(asset or asset_from_name(path), path, open_ms, close)


# --- a directory --------------------------------------------------------------------------------


def candle_files(directory: Path) -> list[Path]:
    suffixes = (*CSV_SUFFIXES, *PARQUET_SUFFIXES)
    return sorted(p for p in directory.iterdir() if p.name.lower().endswith(suffixes))


def _gaps(present: NDArray[np.bool_]) -> Gaps:
    """Missing bars between an asset's first and last candle, and the longest run."""
    seen = np.flatnonzero(present)
    if len(seen) == 0:
        return Gaps(0, 0)
    inside = ~present[seen[0] : seen[-1] + 1]
    if not inside.any():
        return Gaps(0, 0)
    edges = np.diff(np.concatenate([[0], inside.astype(np.int8), [0]]))
    runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    return Gaps(int(inside.sum()), int(runs.max()))


def align(series: Sequence[CandleSeries]) -> Candles:
    """Every series on one grid: the shortest step between candles, from the first candle
    to the last. A series off that grid (an offset, or a step that is not a multiple) is an
    error naming it."""
    steps = [np.diff(s.open_ms) for s in series]
    all_steps = np.concatenate(steps) if steps else np.zeros(0, dtype=np.int64)
    if not len(all_steps):
        raise CandleError("need at least two candles in some file to tell the bar length")
    bar_ms = int(all_steps.min())
    origin = min(int(s.open_ms[0]) for s in series)
    for s in series:
        off = (s.open_ms - origin) % bar_ms
        if off.any():
            at = int(np.flatnonzero(off)[0])
            raise CandleError(
                f"{s.path}: candle {at + 1} is off the {format_seconds(bar_ms / 1000)} grid "
                f"of the other files by {format_seconds(int(off[at]) / 1000)}"
            )
    last = max(int(s.open_ms[-1]) for s in series)
    grid = np.arange(origin, last + bar_ms, bar_ms, dtype=np.int64)
    close = np.full((len(grid), len(series)), np.nan)
    gaps = {}
    for col, s in enumerate(series):
        rows = ((s.open_ms - origin) // bar_ms).astype(np.intp)
        close[rows, col] = s.close
        gaps[s.asset] = _gaps(np.isfinite(close[:, col]))
    return Candles(
        assets=tuple(s.asset for s in series),
        open_ms=grid,
        close=close,
        bar_ms=bar_ms,
        gaps=gaps,
        files={s.asset: s.path for s in series},
    )


def load_candles(directory: str | Path, asset_map: Mapping[str, str] | None = None) -> Candles:
    """Every candle file in ``directory``, one per asset, aligned (see the module doc)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CandleError(f"{directory}: not a directory")
    paths = candle_files(directory)
    if not paths:
        raise CandleError(f"{directory}: no candle files (.csv, .csv.gz, .parquet)")
    mapping = {k.upper(): v.upper() for k, v in (asset_map or {}).items()}
    seen: dict[str, Path] = {}
    series = []
    for path in paths:
        asset = _asset_of(path, mapping)
        if asset in seen:
            raise CandleError(
                f"{path}: asset {asset} again (also {seen[asset].name}); keep one file per "
                "asset, or name them apart with --asset-map"
            )
        seen[asset] = path
        series.append(read_candle_file(path, asset))
    return align(series)


def describe(candles: Candles) -> str:
    """One line: assets, bars, span."""
    start = datetime.fromtimestamp(int(candles.open_ms[0]) / 1000, UTC)
    end = datetime.fromtimestamp(int(candles.open_ms[-1]) / 1000, UTC)
    return (
        f"{len(candles.assets)} assets, {len(candles.open_ms)} bars of "
        f"{format_seconds(candles.bar_ms / 1000)}, {start:%Y-%m-%d %H:%M} to "
        f"{end:%Y-%m-%d %H:%M} UTC"
    )
