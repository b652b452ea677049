"""``hedger fetch-candles``: OHLCV history from any ccxt venue, one CSV per asset, resumable.

Each asset's candles come from ccxt's ``fetch_ohlcv`` page by page (ccxt paces the requests
with its rate limiter) and are appended to ``<ASSET>-<QUOTE>_<timeframe>.csv`` in ccxt's row
layout (``timestamp_ms,open,high,low,close,volume``, no header), which ``hedger backtest
--candles`` reads. A page is written as soon as it arrives, so an interrupted fetch keeps
what it had; run again, it resumes after the file's last candle. Only closed candles are
written: the one still forming would be wrong forever once appended.

An asset is the venue's spot market for it (quotes in ``--quote`` order), else its
perpetual; a full ccxt symbol (``BTC/USDT``) or a venue id (``BTC-PERPETUAL``) picks one.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hedger.backoff import Backoff, retry
from hedger.backtest.candles import CandleError, read_candle_file
from hedger.config.durations import parse_duration

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_ARGUMENTS = 2
DEFAULT_QUOTES = ("USDT", "USDC", "USD", "FDUSD", "BUSD")
_RETRY = Backoff(initial_s=0.5, cap_s=5.0)
_GIVE_UP_S = 10.0


class FetchError(Exception):
    """What stopped a fetch, said for an operator; ``exit_code`` 2 (arguments) or 1 (venue)."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_ARGUMENTS) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(slots=True, frozen=True)
class Fetched:
    asset: str
    symbol: str
    path: Path
    new: int
    total: int
    first_ms: int | None
    last_ms: int | None

    def line(self) -> str:
        span = ""
        if self.first_ms is not None and self.last_ms is not None:
            span = f" ({_iso(self.first_ms)} to {_iso(self.last_ms)})"
        return (
            f"{self.asset}: {self.symbol}: {self.new} new candles{span} -> {self.path} "
            f"({self.total} in all)"
        )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def parse_time(text: str, now_ms: int, flag: str) -> int:
    """Epoch ms from epoch seconds or ms, a duration back from now ('30d'), or an ISO date
    ('2022-01-01', with a time and an offset, or taken as UTC)."""
    text = text.strip()
    if text.isdigit():
        value = int(text)
        return value * 1000 if value < 10**11 else value
    try:
        return now_ms - round(parse_duration(text) * 1000)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FetchError(
            f"{flag} {text!r}: use an ISO date (2022-01-01), epoch ms, or a duration ago (30d)"
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return round(stamp.timestamp() * 1000)


def pick_symbol(markets: Mapping[str, Mapping[str, Any]], asset: str, quotes: Sequence[str]) -> str:
    """The market to read ``asset``'s history from (see the module doc)."""
    if asset in markets:
        return asset
    for market in markets.values():
        if market.get("id") == asset:
            return str(market["symbol"])
    base = asset.upper()
    listed = [m for m in markets.values() if str(m.get("base", "")).upper() == base]
    for kind in ("spot", "swap"):
        for quote in quotes:
            for market in listed:
                if market.get("type") == kind and str(market.get("quote")).upper() == quote:
                    return str(market["symbol"])
    for market in listed:
        if market.get("type") in ("spot", "swap"):
            return str(market["symbol"])
    raise FetchError(f"asset {asset}: no spot or perpetual market for it on this venue")


def _file_name(asset: str, market: Mapping[str, Any], timeframe: str) -> str:
    quote = str(market.get("quote") or "X").upper()
    return f"{asset.upper()}-{quote}_{timeframe}.csv"


def _resume_from(path: Path) -> tuple[int | None, int]:
    """(open time of the file's last candle, candles in it); the file must be ours."""
    if not path.exists() or path.stat().st_size == 0:
        return None, 0
    with path.open(encoding="utf-8") as handle:
        first = handle.readline().split(",")
    if len(first) < 6 or not first[0].strip().isdigit():
        raise FetchError(
            f"{path}: exists and is not in ccxt's row layout (timestamp_ms,open,high,low,close,"
            "volume): move it, or choose another --out"
        )
    try:
        series = read_candle_file(path)
    except CandleError as exc:
        raise FetchError(f"cannot resume: {exc}") from None
    return int(series.open_ms[-1]), len(series.open_ms)


async def fetch_asset(
    client: Any,
    asset: str,
    timeframe: str,
    since_ms: int | None,
    until_ms: int | None,
    out_dir: Path,
    quotes: Sequence[str],
    page_limit: int,
    sleep: Callable[[float], Any] = asyncio.sleep,
) -> Fetched:
    symbol = pick_symbol(client.markets, asset, quotes)
    path = out_dir / _file_name(asset, client.markets[symbol], timeframe)
    last_ms, total = _resume_from(path)
    tf_ms = int(client.parse_timeframe(timeframe) * 1000)
    if last_ms is not None:
        cursor = last_ms + tf_ms
    elif since_ms is not None:
        cursor = since_ms
    else:
        raise FetchError(f"{path} does not exist yet: --since says where its history starts")
    new = 0
    first_new: int | None = None
    rng = random.Random()
    while True:
        now_ms = int(client.milliseconds())
        stop_ms = now_ms if until_ms is None else min(until_ms, now_ms)
        if cursor + tf_ms > stop_ms:
            break  # the next candle has not closed yet (or is past --until)

        async def page(at: int = cursor) -> list[list[float]]:
            rows: list[list[float]] = await client.fetch_ohlcv(symbol, timeframe, at, page_limit)
            return rows

        rows = await retry(
            page,
            retry_on=_transient_errors(),
            give_up_s=_GIVE_UP_S,
            pacing=_RETRY,
            rng=rng,
            sleep=sleep,
        )
        fresh = [
            row
            for row in rows
            if int(row[0]) >= cursor and int(row[0]) + tf_ms <= stop_ms and row[4] is not None
        ]
        if not fresh:
            if rows and int(rows[-1][0]) >= cursor:
                break  # only the candle still forming (or past --until) is left
            # A venue that answers by time window (Deribit) has nothing in this one: a gap in
            # its history, or before the market listed. Look in the next window.
            cursor += page_limit * tf_ms
            continue
        _append(path, fresh)
        new += len(fresh)
        first_new = first_new if first_new is not None else int(fresh[0][0])
        cursor = int(fresh[-1][0]) + tf_ms
    last = cursor - tf_ms if new else last_ms
    return Fetched(asset.upper(), symbol, path, new, total + new, first_new, last)


def _append(path: Path, rows: Sequence[Sequence[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        for row in rows:
            writer.writerow([int(row[0]), *(_number(v) for v in row[1:6])])
        handle.flush()


def _number(value: Any) -> str:
    return "" if value is None else repr(float(value))


def _transient_errors() -> tuple[type[BaseException], ...]:
    import ccxt.async_support as ccxt_async

    return (ccxt_async.RequestTimeout, ccxt_async.DDoSProtection)


def make_client(venue: str, url: str | None, timeout_s: float) -> Any:
    import ccxt.async_support as ccxt_async

    factory = getattr(ccxt_async, venue, None)
    if venue not in ccxt_async.exchanges or factory is None:
        raise FetchError(f"--venue {venue!r}: not a ccxt exchange id (e.g. binance, deribit)")
    client = factory({"enableRateLimit": True, "timeout": round(timeout_s * 1000)})
    if url:
        api = client.urls.get("api")
        if isinstance(api, dict):
            client.urls["api"] = {key: url for key in api}
        else:
            client.urls["api"] = url
    return client


async def fetch_candles(args: argparse.Namespace) -> list[Fetched]:
    import ccxt.async_support as ccxt_async

    client = make_client(args.venue, args.url, args.timeout)
    where = f"venue {args.venue}" + (f" at {args.url}" if args.url else "")
    try:
        try:
            await client.load_markets()
        except ccxt_async.NetworkError as exc:
            raise FetchError(f"cannot reach {where}: {_short(exc)}", EXIT_FAILED) from None
        except ccxt_async.ExchangeError as exc:
            raise FetchError(f"{where} refused: {_short(exc)}", EXIT_FAILED) from None
        if not client.has.get("fetchOHLCV"):
            raise FetchError(f"{where} offers no OHLCV history through ccxt")
        if client.timeframes and args.timeframe not in client.timeframes:
            offered = ", ".join(client.timeframes)
            raise FetchError(f"--timeframe {args.timeframe}: {where} offers {offered}")
        now_ms = int(client.milliseconds())
        since = parse_time(args.since, now_ms, "--since") if args.since else None
        until = parse_time(args.until, now_ms, "--until") if args.until else None
        quotes = [q.strip().upper() for q in args.quote.split(",") if q.strip()]
        out_dir = Path(args.out)
        assets = [a.strip() for a in args.assets.split(",") if a.strip()]
        if not assets:
            raise FetchError("--assets: name at least one asset (e.g. BTC,ETH,SOL)")
        done = []
        for asset in assets:
            try:
                done.append(
                    await fetch_asset(
                        client, asset, args.timeframe, since, until, out_dir, quotes, args.limit
                    )
                )
            except ccxt_async.NetworkError as exc:
                raise FetchError(
                    f"{asset}: lost {where}: {_short(exc)} (run again to resume)", EXIT_FAILED
                ) from None
            except ccxt_async.ExchangeError as exc:
                raise FetchError(f"{asset}: {where} refused: {_short(exc)}", EXIT_FAILED) from None
            print(done[-1].line(), file=sys.stderr)
        return done
    finally:
        await client.close()


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."


def cmd_fetch_candles(args: argparse.Namespace) -> int:
    if args.limit < 1:
        print(f"hedger fetch-candles: --limit must be >= 1, got {args.limit}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    try:
        asyncio.run(fetch_candles(args))
    except FetchError as exc:
        print(f"hedger fetch-candles: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"hedger fetch-candles: {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("hedger fetch-candles: interrupted (run again to resume)", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fetch = sub.add_parser(
        "fetch-candles",
        help="download OHLCV history from a ccxt venue for `backtest --candles`",
        description="Append each asset's closed candles to <ASSET>-<QUOTE>_<timeframe>.csv in "
        "DIR (ccxt's row layout), resuming after the last one already there.",
    )
    fetch.add_argument("--venue", required=True, help="ccxt exchange id, e.g. binance")
    fetch.add_argument("--assets", required=True, help="comma-separated, e.g. BTC,ETH,SOL")
    fetch.add_argument("--timeframe", default="1h", help="ccxt timeframe, e.g. 1h, 1d")
    fetch.add_argument(
        "--since", help="start of a new file's history: 2022-01-01, epoch ms, or 30d (ago)"
    )
    fetch.add_argument("--until", help="stop before this time (same forms as --since)")
    fetch.add_argument("--out", required=True, metavar="DIR")
    fetch.add_argument(
        "--quote",
        default=",".join(DEFAULT_QUOTES),
        help="quote currencies to prefer, in order (spot first, then perpetuals)",
    )
    fetch.add_argument("--url", help="the venue's REST base URL (a paper venue, a mirror)")
    fetch.add_argument("--limit", type=int, default=1000, help="candles per request")
    fetch.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    fetch.set_defaults(handler=cmd_fetch_candles)
