"""Any ccxt.pro exchange's tickers into ``MarketState``: the generic, slower feed.

One ``watch_ticker`` loop per symbol. ``watch_tickers`` over a whole chain returns only the
newest update per call (ccxt's ``newUpdates``), so most instruments would never be seen
(DESIGN.md "Feeds, measured here"); per-symbol loops see every instrument's latest value.
ccxt owns the socket and reconnects inside the next ``watch_ticker`` call after a failure; we
pace those retries with the same jittered backoff as the native feed.

Rows are keyed by the venue's instrument id (``BTC-PERPETUAL``), like the native feed, so both
write the same columns; ccxt symbols (``BTC/USD:BTC``) are resolved after ``load_markets``.

Hyperliquid: ``watch_tickers`` subscribes to ``allMids`` (mid prices only, at the server's
batch cadence); per-symbol ``watch_ticker`` subscribes to ``activeAssetCtx`` (ccxt 4.5.90:
mark, oracle, funding, impact prices, pushed per block), which is why the loops are per
symbol. ccxt's ticker leaves ``markPrice`` and ``indexPrice`` empty there and puts the
impact prices in bid/ask, so the raw ``markPx`` and ``oraclePx`` are read as mark and index
(``with_raw_marks``), and the oracle is gated against the mark like any venue's index.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from hedger.backoff import Backoff
from hedger.market.state import BadTick, LiveMarket
from hedger.tasks import cancel_all

__all__ = ["CcxtFeedStats", "CcxtTickerFeed", "store_ccxt_ticker", "with_raw_marks"]

log = structlog.get_logger("hedger.market")

_NAN = float("nan")


def _number(value: Any) -> float:
    """A number as float, None as NaN; anything else (a bool, a string, a container) raises
    TypeError. ``float()`` alone would read ``True`` as 1.0 and ``"90000"`` as a price."""
    if value is None:
        return _NAN
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


def _price(value: Any) -> float:
    """ccxt's None (and a venue's 0 for an empty side) -> NaN; numbers -> float."""
    return _number(value) or _NAN


def _timestamp(value: Any) -> int:
    """Epoch ms as an int. ccxt gives None for a venue that stamps nothing: 0, which every
    later tick is in order after (the pre-existing behaviour; such a venue has no ordering)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"not a timestamp: {value!r}")
    return int(value)  # a float one (some venues) truncates; NaN raises ValueError


def _first(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None


RAW_MARK_INDEX: Mapping[str, tuple[str, str]] = {"hyperliquid": ("markPx", "oraclePx")}
"""Exchanges whose ccxt ticker leaves mark and index empty while the raw payload carries
them: the raw field names of each."""


def _decimal(value: Any) -> Any:
    """A venue's decimal string as float; anything else is passed on for
    ``store_ccxt_ticker`` to refuse (a bool, a number where a string was promised)."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def with_raw_marks(exchange_id: str, ticker: Mapping[str, Any]) -> Mapping[str, Any]:
    """``ticker`` with ``markPrice``/``indexPrice`` read from the raw payload where ccxt
    leaves them empty for ``exchange_id`` (``RAW_MARK_INDEX``); other tickers unchanged."""
    names = RAW_MARK_INDEX.get(exchange_id)
    info = ticker.get("info")
    if names is None or not isinstance(info, Mapping):
        return ticker
    out = dict(ticker)
    for unified, raw in zip(("markPrice", "indexPrice"), names, strict=True):
        if out.get(unified) is None and info.get(raw) is not None:
            out[unified] = _decimal(info[raw])
    return out


def store_ccxt_ticker(
    market: LiveMarket, row: int, ticker: Mapping[str, Any], recv_s: float
) -> bool:
    """Write one unified ccxt ticker into ``row``; False (counted) if dropped.

    Exchanges without a mark or index price (spot venues) fall back to the mid, then the last
    trade, so the row still carries a usable price. Underlying and IV are not unified fields:
    they are read from the raw payload under Deribit's names, NaN elsewhere. Every field must
    be a number (or absent): a bool or a numeric string is malformed, as on the native feed.
    """
    try:
        info = ticker.get("info") or {}
        bid, ask = _price(ticker.get("bid")), _price(ticker.get("ask"))
        mid = 0.5 * (bid + ask)  # NaN if either side is missing
        mark = _first(ticker.get("markPrice"), None if math.isnan(mid) else mid, ticker.get("last"))
        index = _first(ticker.get("indexPrice"), mark)
        return market.update(
            row,
            bid,
            ask,
            _number(mark),
            _number(index),
            _number(info.get("underlying_price")),
            _number(info.get("mark_iv")) / 100.0,  # Deribit: percent
            _timestamp(ticker.get("timestamp")),
            recv_s,
        )
    except (TypeError, ValueError, AttributeError, OverflowError):
        market.state.reject(BadTick.MALFORMED)
        return False


@dataclass(slots=True)
class CcxtFeedStats:
    tickers: int = 0
    watch_errors: int = 0  # failed watch_ticker calls (one socket drop fails every loop)
    recoveries: int = 0  # loops that got a ticker again after a failure


class CcxtTickerFeed:
    """Streams tickers for ``instruments`` (venue ids, the state's row keys) from ``exchange``,
    an already-configured ``ccxt.pro`` client; the caller owns (and closes) the client."""

    def __init__(
        self,
        market: LiveMarket,
        exchange: Any,
        instruments: Iterable[str],
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        supervise: Callable[[asyncio.Task[Any], str], None] | None = None,
    ) -> None:
        self.market = market
        self._supervise = supervise
        self.exchange = exchange
        self.instruments = tuple(dict.fromkeys(instruments))
        self.backoff = backoff or Backoff()
        self.stats = CcxtFeedStats()
        self._clock = clock
        self._rng = rng or random.Random()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        """Load markets (retrying with backoff), then start one watch loop per instrument."""
        attempt = 0
        while not self.exchange.markets:
            try:
                await self.exchange.load_markets()
            except Exception as exc:  # ccxt's NetworkError and friends: the venue may be down
                delay_s = self.backoff.delay_s(attempt, self._rng)
                attempt += 1
                log.warning("feed_markets_failed", feed="ccxt", error=repr(exc), delay_s=delay_s)
                await asyncio.sleep(delay_s)
        for instrument in self.instruments:
            markets = self.exchange.markets_by_id.get(instrument)
            if not markets:
                raise ValueError(
                    f"{instrument!r} is not listed on {self.exchange.id}; "
                    "check the instrument names in the config"
                )
            symbol = markets[0]["symbol"]
            task = asyncio.create_task(self._watch(instrument, symbol), name=f"ccxt-{symbol}")
            self._tasks.append(task)
            if self._supervise is not None:
                self._supervise(task, f"feed-{symbol}")

    async def stop(self) -> None:
        self._stopping.set()
        await cancel_all(self._tasks)
        self._tasks = []

    async def _watch(self, instrument: str, symbol: str) -> None:
        import ccxt  # ccxt's import is slow; only the generic feed pays for it

        market, stats, clock = self.market, self.stats, self._clock
        attempt = 0
        while not self._stopping.is_set():
            try:
                ticker = await self.exchange.watch_ticker(symbol)
            except Exception as exc:  # anything: a dead loop would leave its row stale forever
                stats.watch_errors += 1
                delay_s = self.backoff.delay_s(attempt, self._rng)
                attempt += 1
                log.warning(
                    "feed_watch_failed",
                    feed="ccxt",
                    symbol=symbol,
                    error=repr(exc),
                    network=isinstance(exc, ccxt.NetworkError),
                    delay_s=round(delay_s, 3),
                )
                await asyncio.sleep(delay_s)
                continue
            if attempt:
                stats.recoveries += 1
                attempt = 0
            stats.tickers += 1
            # Look the row up each time: the state may have been rebuilt (new listings).
            row = market.state.rows.get(instrument)
            if row is None:
                market.state.reject(BadTick.UNKNOWN_INSTRUMENT)
                continue
            store_ccxt_ticker(market, row, with_raw_marks(self.exchange.id, ticker), clock())
