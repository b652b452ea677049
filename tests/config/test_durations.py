"""Durations, spans in bars or clock time, and rates per unit time, as config reads them."""

from __future__ import annotations

import pytest

from hedger.config.durations import (
    Bars,
    format_seconds,
    format_span,
    parse_duration,
    parse_rate_per_day,
    parse_span,
    span_bars,
)


def test_durations_are_seconds() -> None:
    assert parse_duration("250ms") == 0.25
    assert parse_duration("6h") == 21_600.0
    assert parse_duration(90) == 90.0
    with pytest.raises(ValueError, match="'soon' is not a duration"):
        parse_duration("soon")


@pytest.mark.parametrize(
    ("text", "span"),
    [("24 bars", Bars(24.0)), ("1 bar", Bars(1.0)), (" 10.5bars ", Bars(10.5)), ("1d", 86_400.0)],
)
def test_spans_are_bars_or_seconds(text: str, span: float | Bars) -> None:
    assert parse_span(text) == span


def test_a_span_in_bars_keeps_its_count_and_a_duration_its_clock_time() -> None:
    assert span_bars(Bars(24.0), 60.0) == span_bars(Bars(24.0), 86_400.0) == 24.0
    assert span_bars(86_400.0, 3_600.0) == 24.0
    assert span_bars(86_400.0, 86_400.0) == 1.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("soon", "'soon' is not a duration or a bar count"),
        ("0 bars", "a span must be greater than 0"),
        (-5, "a span must be greater than 0"),
        ("bars", "not a duration or a bar count"),
    ],
)
def test_bad_spans(text: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_span(text)


def test_spans_print_as_written() -> None:
    assert format_span(Bars(24.0)) == "24 bars"
    assert format_span(86_400.0) == "1d"
    assert format_seconds(5_400.0) == "90m"
    assert format_seconds(0.25) == "0.25s"


@pytest.mark.parametrize(
    ("value", "per_day"),
    [
        (3e-3, 3e-3),
        ("3e-3", 3e-3),
        ("1e-5/1m", 1e-5 * 1440),
        ("1.25e-4/h", 3e-3),
        ("0.01 per d", 0.01),
        ("0.07/1w", 0.01),
    ],
)
def test_rates_are_per_day(value: object, per_day: float) -> None:
    assert parse_rate_per_day(value) == pytest.approx(per_day, rel=1e-12)


@pytest.mark.parametrize("value", ["fast", "1e-5/bar", 0, "-1e-4/h", True])
def test_bad_rates(value: object) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate_per_day(value)
