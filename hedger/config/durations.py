"""Human durations in config ("250ms", "30s", "6h", "7d") as seconds."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")


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
