"""Times as operators read them: local and UTC side by side; "since" as a span or a date."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from hedger.config.durations import parse_duration


def _local(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).astimezone()


def local_and_utc(ts_ms: int) -> str:
    """``2026-03-05 03:12:07 CET (02:12:07 UTC)``; the UTC date too when it differs."""
    local = _local(ts_ms)
    utc = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    utc_text = utc.strftime("%H:%M:%S") if utc.date() == local.date() else utc.strftime("%F %T")
    if local.utcoffset() == timedelta(0):
        return f"{utc.strftime('%F %T')} UTC"
    return f"{local.strftime('%F %T %Z')} ({utc_text} UTC)"


def iso_utc(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def iso_local(ts_ms: int) -> str:
    return _local(ts_ms).isoformat(timespec="milliseconds")


def clock_time(ts_ms: int) -> str:
    """Local wall-clock time of day, for narrow views (``03:12:07``)."""
    return _local(ts_ms).strftime("%H:%M:%S")


def parse_since(text: str, now_ms: int | None = None) -> int:
    """Epoch ms from a span back from now (``90m``, ``1h``, ``1d``, ``2w``), a date
    (``2026-03-05``: local midnight) or a date and time (``2026-03-05T03:00``, local unless
    it names its offset). Raises ``ValueError`` saying which forms are accepted."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    try:
        return now_ms - int(parse_duration(text) * 1000)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a span (30m, 1h, 1d, 2w) nor a date (2026-03-05, "
            "2026-03-05T03:00, 2026-03-05T03:00+00:00)"
        ) from None
    if when.tzinfo is None:
        when = when.astimezone()  # a naive time is the operator's local time
    return int(when.timestamp() * 1000)
