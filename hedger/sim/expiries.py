"""Deribit-style expiry calendar, computed from epoch milliseconds.

Every expiry is at 08:00 UTC. Dailies expire every day, weeklies on Fridays, monthlies on the
last Friday of a month; a date that is several of these is labelled by the longest
(``settlement_period`` "month" > "week" > "day"), as Deribit does.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime

from hedger.core.units import DAY_MS, HOUR_MS

EXPIRY_OFFSET_MS = 8 * HOUR_MS
FRIDAY = 4
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
# Epoch day 0 (1970-01-01) was a Thursday.
_EPOCH_WEEKDAY = 3


@dataclass(slots=True, frozen=True, order=True)
class Expiry:
    timestamp_ms: int
    settlement_period: str  # "day" | "week" | "month"

    @property
    def code(self) -> str:
        return expiry_code(self.timestamp_ms)


def weekday(ms: int) -> int:
    """Monday = 0 ... Sunday = 6, in UTC."""
    return (ms // DAY_MS + _EPOCH_WEEKDAY) % 7


def next_settlement(now_ms: int) -> int:
    """The first 08:00 UTC strictly after ``now_ms``."""
    return ((now_ms - EXPIRY_OFFSET_MS) // DAY_MS + 1) * DAY_MS + EXPIRY_OFFSET_MS


def settlement_session(now_ms: int) -> int:
    """Index of the 08:00-to-08:00 UTC session containing ``now_ms``."""
    return (now_ms - EXPIRY_OFFSET_MS) // DAY_MS


def next_dailies(now_ms: int, n: int) -> list[int]:
    first = next_settlement(now_ms)
    return [first + i * DAY_MS for i in range(n)]


def next_fridays(now_ms: int, n: int) -> list[int]:
    first = next_settlement(now_ms)
    first += ((FRIDAY - weekday(first)) % 7) * DAY_MS
    return [first + 7 * i * DAY_MS for i in range(n)]


def last_friday(year: int, month: int) -> int:
    """08:00 UTC on the last Friday of a month, in epoch ms."""
    last_day = calendar.monthrange(year, month)[1]
    end = int(datetime(year, month, last_day, 8, tzinfo=UTC).timestamp()) * 1000
    return end - ((weekday(end) - FRIDAY) % 7) * DAY_MS


def next_month_ends(now_ms: int, n: int) -> list[int]:
    """The next ``n`` last-Friday expiries strictly after ``now_ms`` (this month's counts if
    it is still ahead)."""
    d = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    year, month = d.year, d.month
    out: list[int] = []
    while len(out) < n:
        ts = last_friday(year, month)
        if ts > now_ms:
            out.append(ts)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def classify(ms: int) -> str:
    if weekday(ms) != FRIDAY:
        return "day"
    return "month" if ms + 7 * DAY_MS > _month_end_ms(ms) else "week"


def _month_end_ms(ms: int) -> int:
    d = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return last_friday(d.year, d.month)


def option_expiries(now_ms: int, n_daily: int, n_weekly: int, n_monthly: int) -> list[Expiry]:
    stamps = {
        *next_dailies(now_ms, n_daily),
        *next_fridays(now_ms, n_weekly),
        *next_month_ends(now_ms, n_monthly),
    }
    return [Expiry(ts, classify(ts)) for ts in sorted(stamps)]


def future_expiries(now_ms: int, n_monthly: int) -> list[Expiry]:
    return [Expiry(ts, "month") for ts in next_month_ends(now_ms, n_monthly)]


def expiry_code(ms: int) -> str:
    """Deribit's date code: day without a leading zero, month, two-digit year ("5DEC25")."""
    d = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return f"{d.day}{_MONTHS[d.month - 1]}{d.year % 100:02d}"
