"""Human durations in config ("250ms", "30s", "6h", "7d") as seconds; estimator spans that may
also be counted in bars ("24 bars"); rates per unit time ("1e-4/d").

A half-life or a window given as a duration keeps its clock meaning whatever the bar; one
given in bars keeps its statistical meaning (how many returns the estimate rests on). A
backtest on daily candles needs the second: a 1-day half-life is one daily bar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, PlainValidator

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_NUMBER = r"(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_BARS = re.compile(rf"^\s*{_NUMBER}\s*bars?\s*$")
_RATE = re.compile(rf"^\s*{_NUMBER}\s*(?:/|per\s+)\s*(\d+(?:\.\d+)?)?\s*(ms|s|m|h|d|w)\s*$")
DAY_SECONDS = 86400.0


def parse_duration(value: object) -> float:
    """Seconds from a number (already seconds) or a string with a unit suffix."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s', '6h', '7d'")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    raise ValueError(
        f"{value!r} is not a duration: use seconds or a string like '250ms', '30s', '6h', '7d'"
    )


Seconds = Annotated[float, BeforeValidator(parse_duration)]


@dataclass(slots=True, frozen=True)
class Bars:
    """A span counted in bars of whatever length the estimator runs on."""

    count: float

    def __str__(self) -> str:
        return f"{self.count:g} bars"


def parse_span(value: object) -> float | Bars:
    """A positive span: ``Bars`` from '24 bars', else seconds from a duration."""
    if isinstance(value, Bars):
        span: float | Bars = value
    elif isinstance(value, str) and (match := _BARS.match(value)):
        span = Bars(float(match.group(1)))
    else:
        try:
            span = parse_duration(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a duration or a bar count: use seconds, a string like "
                "'30s', '6h', '7d', or a number of bars like '24 bars'"
            ) from None
    if not (span.count if isinstance(span, Bars) else span) > 0:
        raise ValueError(f"{value!r}: a span must be greater than 0")
    return span


def span_bars(span: float | Bars, bar_seconds: float) -> float:
    """A span in bars of ``bar_seconds``."""
    if isinstance(span, Bars):
        return span.count
    if not bar_seconds > 0:
        raise ValueError(f"bar length must be > 0 seconds, got {bar_seconds}")
    return span / bar_seconds


def format_seconds(seconds: float) -> str:
    """The largest unit that divides ``seconds`` exactly: 86400 -> '1d', 5400 -> '90m'."""
    for unit in ("w", "d", "h", "m", "s"):
        count = seconds / _UNIT_SECONDS[unit]
        if count >= 1 and abs(count - round(count)) < 1e-9:
            return f"{round(count)}{unit}"
    return f"{seconds:g}s"


def format_span(span: float | Bars) -> str:
    return str(span) if isinstance(span, Bars) else format_seconds(span)


def _dump_span(span: float | Bars) -> float | str:
    # Bar counts round-trip as their own text, so a dumped config validates again (sweeps).
    return str(span) if isinstance(span, Bars) else span


Span = Annotated[float | Bars, PlainValidator(parse_span), PlainSerializer(_dump_span)]
"""Seconds (a number or '6h') or ``Bars`` ('24 bars'), > 0."""


def parse_rate_per_day(value: object) -> float:
    """A quantity per unit time, as per day: a number is already per day; '1e-5/1m',
    '0.01/d', '2e-4 per h' are converted."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a rate")
    if isinstance(value, int | float):
        rate = float(value)
    elif isinstance(value, str):
        match = _RATE.match(value)
        if match:
            per_seconds = float(match.group(2) or 1.0) * _UNIT_SECONDS[match.group(3)]
            rate = float(match.group(1)) * DAY_SECONDS / per_seconds
        else:
            try:
                rate = float(value)
            except ValueError:
                raise ValueError(
                    f"{value!r} is not a rate per unit time: use a number (per day) or a "
                    "string like '1e-4/d', '4e-6/h', '1e-5/1m'"
                ) from None
    else:
        raise ValueError(f"{value!r} is not a rate per unit time")
    if not rate > 0:
        raise ValueError(f"{value!r}: a rate must be greater than 0")
    return rate


PerDay = Annotated[float, BeforeValidator(parse_rate_per_day)]
"""A rate per day (a number) or per any unit ('4e-6/h')."""
