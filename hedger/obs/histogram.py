"""A fixed-bucket histogram the engine fills and the metrics collector reads at scrape time.

Cheap enough for every cycle (one bisect and two adds), free of any Prometheus object on the
hot path, and keeps the last samples for quantiles in /status and the benchmarks.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Sequence

import numpy as np

CYCLE_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
)  # fmt: skip
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram:
    def __init__(self, buckets: Sequence[float], keep: int = 10_000) -> None:
        self.bounds = tuple(buckets)
        self.counts = [0] * (len(self.bounds) + 1)  # the last is +Inf
        self.total = 0.0
        self.n = 0
        self.recent: deque[float] = deque(maxlen=keep)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.n += 1
        self.recent.append(value)

    def cumulative(self) -> list[tuple[str, int]]:
        """Prometheus buckets: (upper bound, count of samples <= it), ending at +Inf."""
        out, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out

    def quantile(self, q: float) -> float:
        """Of the recent samples; NaN before the first."""
        if not self.recent:
            return float("nan")
        return float(np.quantile(np.fromiter(self.recent, np.float64), q))
