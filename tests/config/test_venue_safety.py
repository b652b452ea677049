"""Venue-side safety settings: dead-man's switches (off by default, only where the venue has
one, with a timeout it accepts) and the hedge-leg margin guard under ``limits``."""

from __future__ import annotations

import pytest

from hedger.config import ConfigError, parse_config
from hedger.core.margin import MarginAction, MarginPolicy


def _config(venue: str, limits: str = "{}") -> str:
    return f"""
venues:
  v: {venue}
factors:
  - asset: BTC
    hedge: {{venue: v, symbol: "BTC/USDT:USDT"}}
limits: {limits}
"""


def _issues(venue: str, limits: str = "{}") -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse_config(_config(venue, limits), "safety.yaml", {})
    return {issue.path: str(issue) for issue in info.value.issues}


def test_switches_are_off_by_default_and_take_durations() -> None:
    cfg = parse_config(
        _config(
            "{exchange: okx, dead_man: {enabled: true, timeout: 90s, refresh_every: 20s}}",
        ),
        "safety.yaml",
        {},
    )
    switch = cfg.venues["v"].dead_man
    assert (switch.enabled, switch.timeout, switch.refresh_every) == (True, 90.0, 20.0)
    plain = parse_config(_config("{exchange: binanceusdm}"), "safety.yaml", {})
    assert plain.venues["v"].dead_man.enabled is False
    assert plain.limits.margin_policy() == MarginPolicy(None, MarginAction.ALERT)


@pytest.mark.parametrize(
    ("venue", "path", "reason"),
    [
        ("{exchange: deribit, dead_man: {enabled: true}}", "venues.v.dead_man",
         "deribit has cancel-on-disconnect instead"),
        ("{exchange: kraken, dead_man: {enabled: true}}", "venues.v.dead_man",
         "no dead-man's switch for kraken"),
        ("{exchange: okx, dead_man: {enabled: true, timeout: 5m}}", "venues.v.dead_man.timeout",
         "okx accepts 10 to 120 s"),
        ("{exchange: bybit, dead_man: {enabled: true, timeout: 2s, refresh_every: 1s}}",
         "venues.v.dead_man.timeout", "bybit accepts 3 to 300 s"),
        ("{exchange: okx, dead_man: {enabled: true, timeout: 30.5s}}",
         "venues.v.dead_man.timeout", "okx counts whole seconds"),
        ("{exchange: bybit, dead_man: {enabled: true, refresh_every: 30s}}",
         "venues.v.dead_man.refresh_every", "at most 20 s"),
        ("{exchange: binanceusdm, dead_man: {timeout: 10s, refresh_every: 10s}}",
         "venues.v.dead_man.refresh_every", "must be shorter than timeout"),
    ],
)  # fmt: skip
def test_a_switch_mistake_is_one_issue_at_its_path(venue: str, path: str, reason: str) -> None:
    issues = _issues(venue)
    assert list(issues) == [path], issues
    assert reason in issues[path]


def test_the_margin_guard_reads_as_the_cores_policy() -> None:
    cfg = parse_config(
        _config("{exchange: okx}", "{min_liquidation_distance: 0.15, on_margin_breach: reduce}"),
        "safety.yaml",
        {},
    )
    assert cfg.limits.margin_policy() == MarginPolicy(0.15, MarginAction.REDUCE)
    assert "min_liquidation_distance" not in type(cfg.limits.to_core()).__dataclass_fields__


@pytest.mark.parametrize(
    ("limits", "path"),
    [
        ("{min_liquidation_distance: 1.5}", "limits.min_liquidation_distance"),
        ("{min_liquidation_distance: 0}", "limits.min_liquidation_distance"),
        ("{on_margin_breach: top_up}", "limits.on_margin_breach"),
    ],
)
def test_a_margin_guard_mistake_is_one_issue_at_its_path(limits: str, path: str) -> None:
    assert list(_issues("{exchange: okx}", limits)) == [path]
