"""One-minute OHLC bars of the delta-one instruments, for ``get_tradingview_chart_data``.

The venue records marks as the market steps; before it opens it simulates its own past (the
same process, stepped coarsely) so a client can warm its betas from ``fetch_ohlcv`` at once.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from hedger.core.units import MINUTE_MS

RESOLUTION_MINUTES = {
    "1": 1,
    "3": 3,
    "5": 5,
    "10": 10,
    "15": 15,
    "30": 30,
    "60": 60,
    "120": 120,
    "180": 180,
    "360": 360,
    "720": 720,
    "1D": 1440,
}


@dataclass(slots=True)
class Bars:
    start_ms: list[int] = field(default_factory=list)
    open: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)
    low: list[float] = field(default_factory=list)
    close: list[float] = field(default_factory=list)
    volume: list[float] = field(default_factory=list)

    def record(self, ts_ms: int, price: float, traded: float = 0.0) -> None:
        bucket = ts_ms - ts_ms % MINUTE_MS
        if self.start_ms and self.start_ms[-1] == bucket:
            self.high[-1] = max(self.high[-1], price)
            self.low[-1] = min(self.low[-1], price)
            self.close[-1] = price
            self.volume[-1] += traded
            return
        if self.start_ms and bucket < self.start_ms[-1]:
            return  # the past is not rewritten
        self.start_ms.append(bucket)
        self.open.append(price)
        self.high.append(price)
        self.low.append(price)
        self.close.append(price)
        self.volume.append(traded)


class History:
    def __init__(self, max_minutes: int = 60 * 24 * 31) -> None:
        self._bars: dict[str, Bars] = {}
        self._max = max_minutes

    def record(self, instrument_name: str, ts_ms: int, price: float, traded: float = 0.0) -> None:
        bars = self._bars.setdefault(instrument_name, Bars())
        bars.record(ts_ms, price, traded)
        if len(bars.start_ms) > self._max + 1024:
            for column in (bars.start_ms, bars.open, bars.high, bars.low, bars.close, bars.volume):
                del column[:1024]

    def chart(
        self, instrument_name: str, resolution: str, start_ms: int, end_ms: int
    ) -> dict[str, object]:
        """Deribit's chart payload: parallel arrays, one row per bar starting in [start, end]."""
        minutes = RESOLUTION_MINUTES.get(resolution)
        if minutes is None:
            raise ValueError(f"unsupported resolution {resolution!r}")
        width = minutes * MINUTE_MS
        bars = self._bars.get(instrument_name, Bars())
        lo = bisect.bisect_left(bars.start_ms, start_ms - start_ms % width)
        hi = bisect.bisect_right(bars.start_ms, end_ms)
        out: dict[str, list[float]] = {
            k: [] for k in ("ticks", "open", "high", "low", "close", "volume", "cost")
        }
        for j in range(lo, hi):
            tick = bars.start_ms[j] - bars.start_ms[j] % width
            if out["ticks"] and out["ticks"][-1] == tick:
                out["high"][-1] = max(out["high"][-1], bars.high[j])
                out["low"][-1] = min(out["low"][-1], bars.low[j])
                out["close"][-1] = bars.close[j]
                out["volume"][-1] += bars.volume[j]
                out["cost"][-1] += bars.volume[j] * bars.close[j]
                continue
            out["ticks"].append(tick)
            out["open"].append(bars.open[j])
            out["high"].append(bars.high[j])
            out["low"].append(bars.low[j])
            out["close"].append(bars.close[j])
            out["volume"].append(bars.volume[j])
            out["cost"].append(bars.volume[j] * bars.close[j])
        return {"status": "ok" if out["ticks"] else "no_data", **out}
