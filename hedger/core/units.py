"""Time in epoch milliseconds, the one unit every record and every clock argument uses.

A year is ACT/365 (Deribit's convention for option time to expiry)."""

from __future__ import annotations

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
YEAR_MS = 365 * DAY_MS
