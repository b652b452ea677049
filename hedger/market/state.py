"""The latest quote of every instrument, as numpy columns the engine reads in one go.

``MarketState`` is the conflation point between feeds and the engine: a feed overwrites an
instrument's row with the newest ticker and sets one event; the engine wakes up, reads the
columns once and recomputes once, however many ticks arrived meanwhile.
Nothing queues, so a burst of messages costs CPU in the feed but never memory or latency in
the engine.

Rows are fixed at construction (symbol -> row), so a write is an index, not a dict-of-dicts
lookup per field; a new instrument means ``extended`` (a rebuilt state with the old rows
copied). Every write is validated first: a bad tick is counted by reason and dropped, so the
engine only ever sees quotes that passed. These are shape checks on one tick (numbers, finite,
positive, uncrossed, in order, not from the future); whether a price is plausible against its
own history, index and book is ``hedger.core.plausibility``'s question, asked once per cycle.

``LiveMarket`` wraps a state with the ``asyncio.Event`` the engine waits on; the state itself
stays synchronous and I/O-free, so tests and the backtester drive it without an event loop.
"""

from __future__ import annotations

import asyncio
import math
import struct
import time
from collections.abc import Iterable, Sequence
from enum import StrEnum
from numbers import Real

import numpy as np
from numpy.typing import NDArray

__all__ = ["BadTick", "LiveMarket", "MarketState"]

# Column order of the float block; one row write is one numpy assignment of a tuple, which
# is several times cheaper than one assignment per column on the per-message path.
_BID, _ASK, _MARK, _INDEX, _UNDERLYING, _IV, _RECEIVED = range(7)
_N_FLOAT_COLUMNS = 7
_pack_row = struct.Struct(f"{_N_FLOAT_COLUMNS}d").pack_into  # native order, as numpy's
_ROW_BYTES = 8 * _N_FLOAT_COLUMNS
_INF = math.inf
_INT64_MAX = 2**63 - 1
# set_clock calls closer together than this keep the previous rate: clock_ms is whole
# milliseconds, so a shorter span would make the rate estimate noise.
_RATE_WINDOW_S = 0.25


class BadTick(StrEnum):
    """Why a ticker was dropped instead of written."""

    NAN = "nan"  # a price or IV that is NaN or infinite
    NON_POSITIVE = "non_positive"  # a price (or IV, underlying) at or below zero
    CROSSED = "crossed"  # best bid above best ask
    UNKNOWN_INSTRUMENT = "unknown_instrument"  # not one of the rows we track
    OUT_OF_ORDER = "out_of_order"  # exchange timestamp older than the one already stored
    MALFORMED = "malformed"  # not JSON, a field missing, or not a number (a bool is not one)
    FUTURE = "future"  # exchange timestamp too far ahead of the receive clock


class MarketState:
    """Latest bid/ask/mark/index/underlying/IV per instrument, with timestamps and counters.

    Absent values are NaN: an empty book side, the underlying of a non-option, or a row that
    has not ticked yet (its ``exchange_ts_ms`` is 0 and ``updates`` 0).

    ``max_ahead_ms``: how far an exchange timestamp may lead the receive clock (mapped to epoch
    milliseconds, see ``set_clock``) before the tick is refused as ``BadTick.FUTURE``. It
    covers clock skew between venue and host, not latency (which only makes ticks older).
    """

    def __init__(self, symbols: Iterable[str], *, max_ahead_ms: int = 5_000) -> None:
        if max_ahead_ms < 0:
            raise ValueError(f"max_ahead_ms must be >= 0, got {max_ahead_ms}")
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
        self._make_write_views()
        self.rejected: dict[BadTick, int] = dict.fromkeys(BadTick, 0)
        self.accepted = 0
        self.max_ahead_ms = max_ahead_ms
        self._rate_anchor: tuple[int, float] | None = None
        # Until the owner calls set_clock, the host's own clocks at construction map recv_s.
        self._map_clock(int(time.time() * 1000), time.monotonic(), 1.0)

    def _map_clock(self, now_ms: int, now_s: float, rate: float) -> None:
        self._clock_rate = rate
        # A tick's timestamp is bounded by ``recv_s * _ms_per_s + _lead_ms``: the epoch ms of
        # recv_s plus the allowance, folded into one multiply-add.
        self._ms_per_s = 1000.0 * rate
        self._lead_ms = now_ms - now_s * self._ms_per_s + self.max_ahead_ms
        self._ts_bound = -1  # recomputed from the new mapping by the next tick

    def set_clock(self, now_ms: int, now_s: float) -> None:
        """Tie the receive clock to epoch time: ``now_s`` (the monotonic clock feeds stamp
        ``recv_s`` with) is ``now_ms`` on the owner's clock. Call it periodically (every cycle).

        The owner's clock may be simulated and run faster than the monotonic one (the paper
        venue's ``speed``); its rate is measured between calls at least a quarter second
        apart so that ticks received between two calls are not refused for that speed. The
        rate is never taken below 1: a slow or stepped-back wall clock must not make the
        bound stricter than real time.
        """
        anchor, rate = self._rate_anchor, self._clock_rate
        if anchor is None or now_s < anchor[1]:
            self._rate_anchor = (now_ms, now_s)
        elif now_s - anchor[1] >= _RATE_WINDOW_S:
            rate = max(1.0, (now_ms - anchor[0]) / ((now_s - anchor[1]) * 1000.0))
            self._rate_anchor = (now_ms, now_s)
        self._map_clock(now_ms, now_s, rate)

    def _make_write_views(self) -> None:
        # The per-message write goes through the arrays' buffers, not numpy indexing: one
        # struct.pack_into of the whole float row costs ~60 ns against ~210 ns for a numpy row
        # assignment, and memoryview scalar writes about half of numpy's (bench_feed.py).
        self._float_bytes = self._floats.data.cast("B")
        self._ts_view = self.exchange_ts_ms.data
        self._updates_view = self.updates.data

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
        present must be a finite, positive number (a bool is not a number); ``iv`` is a
        fraction. ``exch_ts_ms`` is an int, not older than the row's last one and at most
        ``max_ahead_ms`` ahead of ``recv_s`` mapped to epoch time (``set_clock``).
        """
        # Fast path: chained comparisons are False for NaN, so one expression accepts a good
        # tick (NaN allowed only where it means "absent"); the reason is worked out only for
        # the rare bad one. Strings, None or containers raise TypeError in a comparison. A
        # bool does not: it is an int, so True compares as 1 and must be refused by identity
        # (False compares as 0 and fails the positivity test into the slow path).
        try:
            good = (
                0.0 < mark < _INF
                and 0.0 < index < _INF
                and (bid != bid or 0.0 < bid < _INF)  # noqa: PLR0124 (NaN test)
                and (ask != ask or 0.0 < ask < _INF)  # noqa: PLR0124
                and (underlying != underlying or 0.0 < underlying < _INF)  # noqa: PLR0124
                and (iv != iv or 0.0 < iv < _INF)  # noqa: PLR0124
                and not bid > ask
                and mark is not True
                and index is not True
                and bid is not True
                and ask is not True
                and underlying is not True
                and iv is not True
                and type(exch_ts_ms) is int
                and exch_ts_ms >= self._last_ts_ms[row]  # equal is fine: a resend
            )
        except TypeError:
            self.rejected[BadTick.MALFORMED] += 1
            return False
        if not good:
            self.rejected[_reason(bid, ask, mark, index, underlying, iv, exch_ts_ms)] += 1
            return False
        # Ahead of the receive time (mapped to epoch ms) by more than the allowance: refused,
        # so it never becomes the high-water mark that would drop every real tick after it.
        # The bound grows with recv_s, so one computed for an earlier message is a stricter
        # one: an int compare against it clears nearly every tick, and the float arithmetic
        # runs only when a tick passes it (about once per max_ahead_ms, or a bad tick).
        if exch_ts_ms > self._ts_bound:
            bound = min(recv_s * self._ms_per_s + self._lead_ms, _INT64_MAX)
            if not exch_ts_ms <= bound:  # written so that a NaN recv_s refuses too
                too_big = exch_ts_ms > _INT64_MAX  # not a timestamp the column can hold
                self.rejected[BadTick.MALFORMED if too_big else BadTick.FUTURE] += 1
                return False
            self._ts_bound = int(bound)
        self._ts_view[row] = exch_ts_ms  # an int in [0, bound]: it fits, nothing can raise
        _pack_row(
            self._float_bytes, row * _ROW_BYTES, bid, ask, mark, index, underlying, iv, recv_s
        )
        self._last_ts_ms[row] = exch_ts_ms
        self._updates_view[row] += 1
        self.accepted += 1
        return True

    def reject(self, reason: BadTick) -> None:
        """Count a message dropped before it reached ``update`` (unknown name, bad JSON)."""
        self.rejected[reason] += 1

    # -- the read path (engine, guards) ------------------------------------------------------

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
        bigger = MarketState(self.symbols + tuple(new), max_ahead_ms=self.max_ahead_ms)
        n = len(self.symbols)
        bigger._floats[:n] = self._floats
        bigger.exchange_ts_ms[:n] = self.exchange_ts_ms
        bigger._last_ts_ms[:n] = self._last_ts_ms
        bigger.updates[:n] = self.updates
        bigger.rejected = dict(self.rejected)
        bigger.accepted = self.accepted
        # The same clock mapping: the feeds keep stamping with the same monotonic clock.
        bigger._rate_anchor = self._rate_anchor
        bigger._clock_rate, bigger._ms_per_s = self._clock_rate, self._ms_per_s
        bigger._lead_ms, bigger._ts_bound = self._lead_ms, self._ts_bound
        return bigger


def _reason(
    bid: object,
    ask: object,
    mark: object,
    index: object,
    underlying: object,
    iv: object,
    exch_ts_ms: object,
) -> BadTick:
    """Why a tick failed ``update``'s fast check (the slow path, bad ticks only)."""
    floats: list[float] = []
    for value in (mark, index, bid, ask, underlying, iv):
        if isinstance(value, bool) or not isinstance(value, Real):
            return BadTick.MALFORMED
        floats.append(float(value))
    if type(exch_ts_ms) is not int or not 0 <= exch_ts_ms <= _INT64_MAX:
        return BadTick.MALFORMED
    mark_f, index_f, bid_f, ask_f, underlying_f, iv_f = floats
    if not (math.isfinite(mark_f) and math.isfinite(index_f)):
        return BadTick.NAN
    if mark_f <= 0.0 or index_f <= 0.0:
        return BadTick.NON_POSITIVE
    for value_f in (bid_f, ask_f, underlying_f, iv_f):
        if math.isinf(value_f):
            return BadTick.NAN
        if value_f <= 0.0:
            return BadTick.NON_POSITIVE
    if bid_f > ask_f:
        return BadTick.CROSSED
    return BadTick.OUT_OF_ORDER  # every value passed, so the timestamp did not


class LiveMarket:
    """A ``MarketState`` plus the event the engine sleeps on: the feeds' only output.

    Feeds call ``update``; the engine waits on ``changed`` (shared by every venue's market)
    and reads the columns once however many ticks landed since its last wake-up.
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

    def replace_state(self, state: MarketState) -> None:
        """Swap in a rebuilt state (see ``MarketState.extended``); feeds must re-resolve rows."""
        self.state = state
        self.changed.set()
