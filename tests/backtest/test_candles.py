"""Candle files: every layout read to the same closes, gaps counted and never filled, one
line naming any file that cannot be read, all assets on one grid."""

from __future__ import annotations

import gzip
import importlib
import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hedger.backtest.candles import (
    CandleError,
    asset_from_name,
    load_candles,
    parse_asset_map,
    read_candle_file,
)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "data" / "binance-spot"
HOUR_MS = 3_600_000
START_MS = 1_640_995_200_000  # 2022-01-01 00:00 UTC
CLOSES = [46656.13, 46778.14, 46811.77, 46813.2, 46711.05]


def _hours(n: int, start_ms: int = START_MS) -> list[int]:
    return [start_ms + i * HOUR_MS for i in range(n)]


def _ccxt_rows(times: list[int], closes: list[float]) -> str:
    return "".join(
        f"{t},{c - 1},{c + 5},{c - 5},{c},12.5\n" for t, c in zip(times, closes, strict=True)
    )


def test_ccxt_row_layout_without_header(tmp_path: Path) -> None:
    path = tmp_path / "BTC-USD_1h.csv"
    path.write_text(_ccxt_rows(_hours(5), CLOSES))
    series = read_candle_file(path)
    assert series.asset == "BTC"
    assert series.open_ms.tolist() == _hours(5)
    assert series.close.tolist() == CLOSES


def test_binance_twelve_column_klines(tmp_path: Path) -> None:
    header = (
        "open_time,open,high,low,close,volume,close_time,quote_asset_volume,number_of_trades,"
        "taker_buy_base_asset_volume,taker_buy_quote_asset_volume,ignore\n"
    )
    rows = "".join(
        f"{t},1.0,2.0,0.5,{c:.8f},10.0,{t + HOUR_MS - 1},100.0,7,5.0,50.0,0\n"
        for t, c in zip(_hours(5), CLOSES, strict=True)
    )
    path = tmp_path / "BTCUSDT-1h-2022.csv"
    path.write_text(header + rows)
    series = read_candle_file(path)
    assert series.asset == "BTC"
    assert series.open_ms.tolist() == _hours(5)
    assert series.close.tolist() == CLOSES


def test_headers_with_iso_dates_offsets_and_epoch_seconds(tmp_path: Path) -> None:
    """Yahoo-style dates (any case, offsets) and epoch seconds land on the same instants."""
    stamps = [datetime.fromtimestamp(t / 1000, UTC) for t in _hours(5)]
    cet = [s.astimezone(UTC).replace(tzinfo=None) + timedelta(hours=1) for s in stamps]
    iso = tmp_path / "SOL_hourly.csv"
    iso.write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        + "".join(
            f"{d.isoformat()}+01:00,1,2,0.5,{c},{c},9\n" for d, c in zip(cet, CLOSES, strict=True)
        )
    )
    seconds = tmp_path / "eth.csv"
    seconds.write_text(
        "TIMESTAMP,CLOSE\n"
        + "".join(f"{t // 1000},{c}\n" for t, c in zip(_hours(5), CLOSES, strict=True))
    )
    naive = tmp_path / "doge-usdt.csv.gz"
    with gzip.open(naive, "wt") as handle:
        handle.write("time,close\n")
        handle.writelines(
            f"{s:%Y-%m-%d %H:%M:%S},{c}\n" for s, c in zip(stamps, CLOSES, strict=True)
        )
    for path, asset in ((iso, "SOL"), (seconds, "ETH"), (naive, "DOGE")):
        series = read_candle_file(path)
        assert (series.asset, series.open_ms.tolist()) == (asset, _hours(5))
        assert series.close.tolist() == CLOSES


def test_parquet_needs_pyarrow_or_says_so(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT.parquet"
    if importlib.util.find_spec("pyarrow") is None:
        path.write_bytes(b"PAR1")
        with pytest.raises(CandleError, match=r"BTCUSDT\.parquet: reading Parquet needs pyarrow"):
            read_candle_file(path)
        return
    pa: Any = importlib.import_module("pyarrow")
    pq: Any = importlib.import_module("pyarrow.parquet")
    pq.write_table(pa.table({"open_time": _hours(5), "Close": CLOSES}), path)
    series = read_candle_file(path)
    assert (series.asset, series.open_ms.tolist(), series.close.tolist()) == (
        "BTC",
        _hours(5),
        CLOSES,
    )


@pytest.mark.parametrize(
    ("name", "asset"),
    [
        ("BTC-USD_1h.csv", "BTC"),
        ("BTCUSDT-1h-2022.csv", "BTC"),
        ("ethusdc_daily.csv.gz", "ETH"),
        ("SOL_USDC-PERPETUAL_1h.csv", "SOL"),
        ("AVAX.parquet", "AVAX"),
        ("USDT.csv", "USDT"),
    ],
)
def test_asset_from_the_file_name(name: str, asset: str) -> None:
    assert asset_from_name(Path(name)) == asset


def test_gaps_are_counted_and_left_missing(tmp_path: Path) -> None:
    times = _hours(10)
    closes = [100.0 + i for i in range(10)]
    keep = [0, 1, 2, 5, 6, 7, 9]  # hours 3-4 and 8 missing
    (tmp_path / "BTC.csv").write_text(_ccxt_rows(times, closes))
    (tmp_path / "SOL.csv").write_text(
        _ccxt_rows([times[i] for i in keep], [closes[i] for i in keep])
    )
    candles = load_candles(tmp_path)
    assert candles.bar_ms == HOUR_MS
    assert candles.gaps["BTC"].count == 0
    assert (candles.gaps["SOL"].count, candles.gaps["SOL"].longest_bars) == (3, 2)
    sol = candles.column("SOL")
    assert np.isnan(sol[[3, 4, 8]]).all() and np.isfinite(sol[keep]).all()
    returns = candles.log_returns()[:, candles.assets.index("SOL")]
    # No return across a gap: the bars on either side of it are missing too.
    assert np.isnan(returns[[2, 3, 4, 7, 8]]).all()
    assert returns[5] == pytest.approx(np.log(106.0 / 105.0))


def test_an_empty_close_is_a_gap_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "BTC.csv"
    path.write_text("date,close\n2022-01-01,100\n2022-01-02,null\n2022-01-03,\n2022-01-04,103\n")
    candles = load_candles(tmp_path)
    assert candles.bar_ms == 86_400_000
    assert (candles.gaps["BTC"].count, candles.gaps["BTC"].longest_bars) == (2, 2)


def test_alignment_on_one_grid_with_late_listings(tmp_path: Path) -> None:
    (tmp_path / "BTC.csv").write_text(_ccxt_rows(_hours(6), [1.0, 2, 3, 4, 5, 6]))
    late = _hours(3, START_MS + 3 * HOUR_MS)
    (tmp_path / "DOT.csv").write_text(_ccxt_rows(late, [7.0, 8, 9]))
    candles = load_candles(tmp_path)
    assert candles.assets == ("BTC", "DOT")
    assert candles.open_ms.tolist() == _hours(6)
    assert np.isnan(candles.column("DOT")[:3]).all()
    assert candles.column("DOT")[3:].tolist() == [7.0, 8, 9]
    assert candles.gaps["DOT"].count == 0  # before a listing is not a gap


def test_asset_map_names_files(tmp_path: Path) -> None:
    (tmp_path / "XBT_1h.csv").write_text(_ccxt_rows(_hours(3), CLOSES[:3]))
    (tmp_path / "wrapped.csv").write_text(_ccxt_rows(_hours(3), CLOSES[:3]))
    candles = load_candles(tmp_path, parse_asset_map("XBT=btc, wrapped.csv=ETH"))
    assert sorted(candles.assets) == ["BTC", "ETH"]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "BTC.csv",
            "date,close\n2022-01-01,abc\n",
            r"BTC\.csv: row 2: close 'abc' is not a number",
        ),
        ("BTC.csv", "date,close\n2022-01-01,-3\n", r"BTC\.csv: row 2: close '-3' must be > 0"),
        ("BTC.csv", "date,open\n2022-01-01,3\n", r"BTC\.csv: no close column"),
        ("BTC.csv", "when,close\n2022-01-01,3\n", r"BTC\.csv: no time column"),
        ("BTC.csv", "date,close\nyesterday,3\n", r"BTC\.csv: row 2: time 'yesterday'"),
        ("BTC.csv", "1640995200000,1,2,3\n", r"BTC\.csv: row 1 has 4 columns"),
        ("BTC.csv", "date,close\n2022-01-02,3\n2022-01-01,4\n", r"times must rise strictly"),
        ("BTC.csv", "date,close\n", r"BTC\.csv: a header and no candles"),
        ("BTC.csv", "", r"BTC\.csv: empty"),
        ("BTC.csv.gz", "not gzip", r"BTC\.csv\.gz: cannot read"),
    ],
)
def test_a_bad_file_is_one_line_naming_it(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(CandleError, match=message) as info:
        load_candles(tmp_path)
    assert "\n" not in str(info.value)


def test_directory_level_errors(tmp_path: Path) -> None:
    with pytest.raises(CandleError, match="no candle files"):
        load_candles(tmp_path)
    with pytest.raises(CandleError, match="not a directory"):
        load_candles(tmp_path / "missing")
    (tmp_path / "BTCUSDT.csv").write_text(_ccxt_rows(_hours(3), CLOSES[:3]))
    (tmp_path / "BTC-USD.csv").write_text(_ccxt_rows(_hours(3), CLOSES[:3]))
    with pytest.raises(CandleError, match="asset BTC again"):
        load_candles(tmp_path)
    with pytest.raises(CandleError, match="expected NAME=ASSET"):
        parse_asset_map("XBT")


def test_a_file_off_the_grid_is_named(tmp_path: Path) -> None:
    (tmp_path / "BTC.csv").write_text(_ccxt_rows(_hours(4), CLOSES[:4]))
    (tmp_path / "ETH.csv").write_text(_ccxt_rows(_hours(4, START_MS + 1_800_000), CLOSES[:4]))
    with pytest.raises(CandleError, match=r"ETH\.csv: candle 1 is off the 1h grid .* by 30m"):
        load_candles(tmp_path)


@pytest.mark.parametrize(
    ("bar", "bars", "first", "btc_close"),
    [("1h", 2184, 2022, 45541.5), ("1d", 1461, 2020, 7200.85)],
)
def test_the_shipped_binance_subset(bar: str, bars: int, first: int, btc_close: float) -> None:
    candles = load_candles(SHIPPED / bar)
    assert sorted(candles.assets) == sorted(
        ["ADA", "AVAX", "BNB", "BTC", "DOGE", "DOT", "ETH", "LINK", "SOL", "XRP"]
    )
    assert candles.bar_ms == {"1h": HOUR_MS, "1d": 86_400_000}[bar]
    assert len(candles.open_ms) == bars
    assert datetime.fromtimestamp(int(candles.open_ms[0]) / 1000, UTC).year == first
    assert all(g.count == 0 for g in candles.gaps.values())
    # The close column, not the open: Binance's first BTC candle of each file opened at
    # 45510.35 (2022-04-01 00:00) and 7195.24 (2020-01-01).
    assert candles.column("BTC")[0] == btc_close
