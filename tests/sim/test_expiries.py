"""Expiry calendar: 08:00 UTC, dailies/Fridays/last Fridays, Deribit date codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from hedger.core.units import DAY_MS
from hedger.sim.expiries import (
    EXPIRY_OFFSET_MS,
    FRIDAY,
    classify,
    expiry_code,
    future_expiries,
    next_settlement,
    option_expiries,
    weekday,
)

# 2020-01-01 .. 2040-01-01
NOW = st.integers(min_value=1_577_836_800_000, max_value=2_208_988_800_000)


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@given(NOW)
def test_next_settlement_is_the_first_0800_after_now(now: int) -> None:
    ts = next_settlement(now)
    assert now < ts <= now + DAY_MS
    assert ts % DAY_MS == EXPIRY_OFFSET_MS
    assert weekday(ts) == _utc(ts).weekday()


@given(NOW)
def test_option_expiries_are_0800_utc_and_classified(now: int) -> None:
    expiries = option_expiries(now, n_daily=2, n_weekly=2, n_monthly=2)
    stamps = [e.timestamp_ms for e in expiries]
    assert stamps == sorted(set(stamps)) and stamps[0] > now
    for e in expiries:
        d = _utc(e.timestamp_ms)
        assert (d.hour, d.minute, d.second) == (8, 0, 0)
        if e.settlement_period != "day":
            assert d.weekday() == FRIDAY
        if e.settlement_period == "month":
            assert (d + timedelta(days=7)).month != d.month
    assert stamps[0] == next_settlement(now)
    fridays = [e for e in expiries if _utc(e.timestamp_ms).weekday() == FRIDAY]
    assert len(fridays) >= 2
    months = [e for e in expiries if e.settlement_period == "month"]
    assert len(months) == 2 and len({_utc(e.timestamp_ms).month for e in months}) == 2


@given(NOW)
def test_future_expiries_are_last_fridays(now: int) -> None:
    for e in future_expiries(now, 3):
        d = _utc(e.timestamp_ms)
        assert d.weekday() == FRIDAY and d.hour == 8
        assert (d + timedelta(days=7)).month != d.month
        assert classify(e.timestamp_ms) == "month"


def test_deribit_date_code_has_no_leading_zero() -> None:
    ms = int(datetime(2025, 12, 5, 8, tzinfo=UTC).timestamp() * 1000)
    assert expiry_code(ms) == "5DEC25"
    ms = int(datetime(2026, 12, 25, 8, tzinfo=UTC).timestamp() * 1000)
    assert expiry_code(ms) == "25DEC26"
    assert classify(ms) == "month"
    assert classify(ms - 7 * DAY_MS) == "week"
    assert classify(ms - DAY_MS) == "day"
