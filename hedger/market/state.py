"""The latest quote of every instrument, as numpy columns the engine reads in one go.

``MarketState`` is the conflation point between feeds and the engine: a feed overwrites an
instrument's row with the newest ticker and marks it dirty; the engine wakes up, takes a
snapshot of everything that changed and recomputes once, however many ticks arrived meanwhile.
Nothing queues, so a burst of messages costs CPU in the feed but never memory or latency in
the engine.

Rows are fixed at construction (symbol -> row), so a write is an index, not a dict-of-dicts
lookup per field; a new instrument means ``extended`` (a rebuilt state with the old rows
copied). Every write is validated first: a bad tick is counted by reason and dropped, so the
engine only ever sees quotes that passed.

``LiveMarket`` wraps a state with the ``asyncio.Event`` the engine waits on; the state itself
stays synchronous and I/O-free, so tests and the backtester drive it without an event loop.
"""

from __future__ import annotations

import asyncio
import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

__all__ = ["BadTick", "LiveMarket", "MarketSnapshot", "MarketState"]

# Column order of the float block; one row write is one numpy assignment of a tuple, which
# is several times cheaper than one assignment per column on the per-message path.
_BID, _ASK, _MARK, _INDEX, _UNDERLYING, _IV, _RECEIVED = range(7)
_N_FLOAT_COLUMNS = 7
_pack_row = struct.Struct(f"{_N_FLOAT_COLUMNS}d").pack_into  # native order, as numpy's
_ROW_BYTES = 8 * _N_FLOAT_COLUMNS
_INF = math.inf


class BadTick(StrEnum):
    """Why a ticker was dropped instead of written."""

    NAN = "nan"  # a price or IV that is NaN or infinite
    NON_POSITIVE = "non_positive"  # a price (or IV, underlying) at or below zero
    CROSSED = "crossed"  # best bid above best ask
    UNKNOWN_INSTRUMENT = "unknown_instrument"  # not one of the rows we track
    OUT_OF_ORDER = "out_of_order"  # exchange timestamp older than the one already stored
    MALFORMED = "malformed"  # not JSON, or a required field missing / of the wrong type


@dataclass(slots=True, frozen=True)
class MarketSnapshot:
    """A copy of the columns at one instant, plus the rows that changed since the last one.

    Copies, not views: the feed keeps writing while the engine computes on this.
    """

    symbols: tuple[str, ...]
    changed_rows: NDArray[np.intp]
    bid: NDArray[np.float64]
    ask: NDArray[np.float64]
    mark: NDArray[np.float64]
    index: NDArray[np.float64]
    underlying_price: NDArray[np.float64]
    mark_iv: NDArray[np.float64]
    exchange_ts_ms: NDArray[np.int64]
    received_s: NDArray[np.float64]
    updates: NDArray[np.int64]


class MarketState:
    """Latest bid/ask/mark/index/underlying/IV per instrument, with timestamps and counters.

    Absent values are NaN: an empty book side, the underlying of a non-option, or a row that
    has not ticked yet (its ``exchange_ts_ms`` is 0 and ``updates`` 0).
    """

    def __init__(self, symbols: Iterable[str]) -> None:
        self.symbols: tuple[str, ...] = tuple(symbols)
        self.rows: dict[str, int] = {symbol: row for row, symbol in enumerate(self.symbols)}
        if len(self.rows) != len(self.symbols):
            raise ValueError(f"duplicate symbols in {self.symbols!r}")
        n = len(self.symbols)
        self._floats = np.full((n, _N_FLOAT_COLUMNS), np.nan, dtype=np.float64)
        # Column views into one row-major block: vectorised reads, and a row write is one
        # contiguous pack (see _make_write_views).
        self.bid = self._floats[:, _BID]
        self.ask = self._floats[:, _ASK]
        self.mark = self._floats[:, _MARK]
        self.index = self._floats[:, _INDEX]
        self.underlying_price = self._floats[:, _UNDERLYING]
        self.mark_iv = self._floats[:, _IV]  # a fraction (0.55), not Deribit's percent (55.0)
        self.received_s = self._floats[:, _RECEIVED]  # monotonic clock of this process
        self.exchange_ts_ms = np.zeros(n, dtype=np.int64)
        self.updates = np.zeros(n, dtype=np.int64)
        # The out-of-order check reads the last timestamp on every message; a list read is
        # cheaper than a numpy scalar read, and this mirror is only ever written with the column.
        self._last_ts_ms: list[int] = [0] * n
        self._dirty = np.zeros(n, dtype=np.bool_)
        self._make_write_views()
        self.rejected: dict[BadTick, int] = dict.fromkeys(BadTick, 0)
        self.accepted = 0

    def _make_write_views(self) -> None:
        # The per-message write goes through the arrays' buffers, not numpy indexing: one
        # struct.pack_into of the whole float row costs ~60 ns against ~210 ns for a numpy row
        # assignment, and memoryview scalar writes about half of numpy's (bench_feed.py).
        self._float_bytes = self._floats.data.cast("B")
        self._ts_view = self.exchange_ts_ms.data
        self._updates_view = self.updates.data
        self._dirty_view = self._dirty.data

    def __len__(self) -> int:
        return len(self.symbols)

    def row_of(self, symbol: str) -> int | None:
        return self.rows.get(symbol)

    # -- the write path (feeds) --------------------------------------------------------------

    def update(
        self,
        row: int,
        bid: float,
        ask: float,
        mark: float,
        index: float,
        underlying: float,
        iv: float,
        exch_ts_ms: int,
        recv_s: float,
    ) -> bool:
        """Validate one ticker and overwrite ``row`` with it; False (and counted) if dropped.

        ``mark`` and ``index`` are required. ``bid``/``ask`` may be NaN for an empty side;
        ``underlying``/``iv`` NaN when the venue does not quote them (non-options). Anything
        present must be finite and positive; ``iv`` is a fraction.
        """
        # Fast path: chained comparisons are False for NaN, so one expression accepts a good
        # tick (NaN allowed only where it means "absent"); the reason is worked out only for
        # the rare bad one. Strings or None from a broken payload raise TypeError here.
        try:
            good = (
                0.0 < mark < _INF
                and 0.0 < index < _INF
                and (bid != bid or 0.0 < bid < _INF)  # noqa: PLR0124 (NaN test)
                and (ask != ask or 0.0 < ask < _INF)  # noqa: PLR0124
                and (underlying != underlying or 0.0 < underlying < _INF)  # noqa: PLR0124
                and (iv != iv or 0.0 < iv < _INF)  # noqa: PLR0124
                and not bid > ask
                and exch_ts_ms >= self._last_ts_ms[row]  # equal is fine: a resend
            )
        except TypeError:
            self.rejected[BadTick.MALFORMED] += 1
            return False
        if not good:
            self.rejected[_reason(bid, ask, mark, index, underlying, iv)] += 1
            return False
        try:
            # The timestamp first: a non-integer (or beyond int64) one fails here, before
            # anything is written.
            self._ts_view[row] = exch_ts_ms
        except (TypeError, ValueError):
            self.rejected[BadTick.MALFORMED] += 1
            return False
        _pack_row(
            self._float_bytes, row * _ROW_BYTES, bid, ask, mark, index, underlying, iv, recv_s
        )
        self._last_ts_ms[row] = exch_ts_ms
        self._updates_view[row] += 1
        self._dirty_view[row] = True
        self.accepted += 1
        return True

    def reject(self, reason: BadTick) -> None:
        """Count a message dropped before it reached ``update`` (unknown name, bad JSON)."""
        self.rejected[reason] += 1

    # -- the read path (engine, guards) ------------------------------------------------------

    def take_changed(self) -> NDArray[np.intp]:
        """Rows written since the last call, and forget them (the engine's conflation step)."""
        rows = np.flatnonzero(self._dirty)
        self._dirty[rows] = False
        return rows

    def snapshot(self) -> MarketSnapshot:
        """Copy every column and take the changed rows, atomically w.r.t. the event loop."""
        return MarketSnapshot(
            symbols=self.symbols,
            changed_rows=self.take_changed(),
            bid=self.bid.copy(),
            ask=self.ask.copy(),
            mark=self.mark.copy(),
            index=self.index.copy(),
            underlying_price=self.underlying_price.copy(),
            mark_iv=self.mark_iv.copy(),
            exchange_ts_ms=self.exchange_ts_ms.copy(),
            received_s=self.received_s.copy(),
            updates=self.updates.copy(),
        )

    def age_seconds(
        self, now_s: float, rows: Sequence[int] | NDArray[np.intp] | None = None
    ) -> NDArray[np.float64]:
        """Seconds since each row was last written (receive clock); inf if it never was."""
        received = self.received_s if rows is None else self.received_s[np.asarray(rows)]
        age = now_s - received
        return np.where(np.isnan(age), np.inf, age)

    def stale(
        self,
        rows: Sequence[int] | NDArray[np.intp] | None,
        now_s: float,
        stale_after_s: float,
    ) -> NDArray[np.bool_]:
        """True where a row has not been written for more than ``stale_after_s`` (or never)."""
        return self.age_seconds(now_s, rows) > stale_after_s

    # -- changing the universe ---------------------------------------------------------------

    def extended(self, symbols: Iterable[str]) -> MarketState:
        """A new state with ``symbols`` appended (existing rows keep their index and data).

        Feeds hold row numbers, so they must be pointed at the new state (and resubscribed);
        rebuilding is rare (a new listing), which is why rows are otherwise fixed.
        """
        new = [s for s in dict.fromkeys(symbols) if s not in self.rows]
        bigger = MarketState(self.symbols + tuple(new))
        n = len(self.symbols)
        bigger._floats[:n] = self._floats
        bigger.exchange_ts_ms[:n] = self.exchange_ts_ms
        bigger._last_ts_ms[:n] = self._last_ts_ms
        bigger.updates[:n] = self.updates
        bigger._dirty[:n] = self._dirty
        bigger.rejected = dict(self.rejected)
        bigger.accepted = self.accepted
        return bigger


def _reason(
    bid: float, ask: float, mark: float, index: float, underlying: float, iv: float
) -> BadTick:
    """Why a tick failed ``update``'s fast check (the slow path, bad ticks only)."""
    if not (math.isfinite(mark) and math.isfinite(index)):
        return BadTick.NAN
    if mark <= 0.0 or index <= 0.0:
        return BadTick.NON_POSITIVE
    for value in (bid, ask, underlying, iv):
        if math.isinf(value):
            return BadTick.NAN
        if value <= 0.0:
            return BadTick.NON_POSITIVE
    if bid > ask:
        return BadTick.CROSSED
    return BadTick.OUT_OF_ORDER  # every value passed, so the timestamp did not


class LiveMarket:
    """A ``MarketState`` plus the event the engine sleeps on: the feeds' only output.

    Feeds call ``update``; the engine calls ``wait_changed`` and gets one snapshot however
    many ticks landed since its last wake-up.
    """

    def __init__(self, state: MarketState) -> None:
        self.state = state
        self.changed = asyncio.Event()

    def update(
        self,
        row: int,
        bid: float,
        ask: float,
        mark: float,
        index: float,
        underlying: float,
        iv: float,
        exch_ts_ms: int,
        recv_s: float,
    ) -> bool:
        if self.state.update(row, bid, ask, mark, index, underlying, iv, exch_ts_ms, recv_s):
            self.changed.set()  # a no-op attribute check when already set
            return True
        return False

    async def wait_changed(self) -> MarketSnapshot:
        """Sleep until any row was written, then snapshot and clear (conflation)."""
        await self.changed.wait()
        # Clear and snapshot with no await between them, so no write can land in the gap;
        # a write after this re-arms the event and is picked up next cycle.
        self.changed.clear()
        return self.state.snapshot()

    def replace_state(self, state: MarketState) -> None:
        """Swap in a rebuilt state (see ``MarketState.extended``); feeds must re-resolve rows."""
        self.state = state
        self.changed.set()
