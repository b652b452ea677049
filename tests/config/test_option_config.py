"""The band-control and option-hedge keys: defaults, conversion into the core's params,
and one clear error per bad value."""

from __future__ import annotations

import math

import pytest

from hedger.config import ConfigError, parse_config
from hedger.config.reload import diff, restart_reasons
from hedger.core import params as core

BASE = """
venues: {deribit: {exchange: deribit}}
factors:
  - asset: BTC
    hedge: {venue: deribit, symbol: BTC-PERPETUAL}
"""

FULL = """
venues: {deribit: {exchange: deribit}}
factors:
  - asset: BTC
    hedge: {venue: deribit, symbol: BTC-PERPETUAL, mode: multi_greek}
    band:
      kind: relative
      half_width: 0.03
      lower_half_width: 0.05
      inner_half_width: 0.0
      inner_lower_half_width: 0.02
    hedge_ratio: 0.8
    options:
      candidates:
        underlyings: [btc, eth]
        min_days_to_expiry: 3
        max_days_to_expiry: 45
        min_abs_delta: 0.1
        max_abs_delta: 0.6
        min_open_interest: 10
        max_relative_spread: 0.1
        max_candidates: 20
      multi_greek:
        gamma: {target: -500, half_width: 2000, lower_half_width: 1000, inner_half_width: 500}
        vega: {half_width: 1500}
        max_options: 3
        max_contracts_per_option: 25
        integer_lots: false
        time_limit: 250ms
        premium_weight: 0.02
        allow_short: true
        retry_after: 2m
  - asset: ETH
    hedge: {venue: deribit, symbol: ETH-PERPETUAL, mode: protective_put}
    options:
      candidates: {min_days_to_expiry: 3}
      protective_put: {coverage: 0.6, moneyness: 0.85, tenor_days: 45, roll_days: 10,
                       delta_drift: 0.3}
hedge:
  option_order: {spread_fraction: 0.4, reprice_interval: 3s, timeout: 45s}
option_limits:
  max_premium_per_day_usd: 20000
  max_net_vega_usd: 8000
  max_contracts_per_order: 10
  min_days_to_expiry: 3
"""


def test_defaults_hedge_with_the_perp_and_keep_symmetric_bands() -> None:
    params = parse_config(BASE).cycle_params({})
    assert params.options.mode("BTC") is core.HedgeMode.PERP
    assert not params.options.active
    (factor,) = params.factors
    assert factor.hedge_ratio == 1.0
    assert factor.band.lower_half_width is None and factor.band.inner_half_width is None
    assert params.options.order == core.OptionOrder()
    assert params.options.limits == core.OptionLimits()
    assert params.options.order.allow_market is False


def test_every_option_key_reaches_the_core() -> None:
    params = parse_config(FULL).cycle_params({})
    btc, _ = params.factors
    assert btc.band == core.Band(core.BandKind.RELATIVE, 0.03, "factor", None, 0.0, 0.05, 0.0, 0.02)
    assert btc.hedge_ratio == 0.8
    assert params.options.active
    hedge = params.options.hedges["BTC"]
    assert hedge.mode is core.HedgeMode.MULTI_GREEK
    assert hedge.candidates == core.CandidateFilter(
        ("BTC", "ETH"), 3.0, 45.0, 0.1, 0.6, 10.0, 0.1, 20
    )
    greek = hedge.multi_greek
    assert greek.gamma == core.GreekBand(-500.0, 2000.0, 1000.0, 500.0, None)
    assert (greek.gamma.lower, greek.gamma.upper) == (-1500.0, 1500.0)
    assert (greek.gamma.inner_lower, greek.gamma.inner_upper) == (-1000.0, 0.0)
    assert greek.vega == core.GreekBand(0.0, 1500.0)
    assert (greek.max_options, greek.max_contracts_per_option) == (3, 25.0)
    assert (greek.integer_lots, greek.time_limit_s, greek.premium_weight) == (False, 0.25, 0.02)
    assert greek.allow_short is True
    assert greek.retry_after_s == 120.0
    assert params.options.hedges["ETH"].mode is core.HedgeMode.PROTECTIVE_PUT
    assert params.options.hedges["ETH"].protective_put == core.ProtectivePut(
        0.6, 0.85, 45.0, 10.0, 0.3
    )
    assert params.options.order == core.OptionOrder(0.4, 3.0, 45.0, False)
    assert params.options.limits == core.OptionLimits(20_000.0, 8_000.0, 10.0, 3.0)


def test_an_unset_greek_band_is_unconstrained() -> None:
    text = FULL.replace("vega: {half_width: 1500}", "vega: {}")
    vega = parse_config(text).cycle_params({}).options.hedges["BTC"].multi_greek.vega
    assert vega.upper == math.inf and vega.lower == -math.inf


@pytest.mark.parametrize(
    ("old", "new", "path", "says"),
    [
        (
            "inner_half_width: 0.0\n",
            "inner_half_width: 0.04\n",
            "factors.0.band.inner_half_width",
            "must lie inside the band",
        ),
        (
            "inner_lower_half_width: 0.02",
            "inner_lower_half_width: 0.06",
            "factors.0.band.inner_lower_half_width",
            "must lie inside the band",
        ),
        (
            "kind: relative\n      half_width: 0.03",
            "kind: whalley_wilmott\n      risk_aversion: 1",
            "factors.0.band.lower_half_width",
            "whalley_wilmott band is symmetric",
        ),
        ("hedge_ratio: 0.8", "hedge_ratio: 1.6", "factors.0.hedge_ratio", "less than or equal"),
        ("mode: multi_greek", "mode: straddle", "factors.0.hedge.mode", "perp"),
        (
            "min_days_to_expiry: 3\n        max",
            "min_days_to_expiry: 1\n        max",
            "factors.0.options.candidates.min_days_to_expiry",
            "would be refused by option_limits",
        ),
        (
            "max_abs_delta: 0.6",
            "max_abs_delta: 0.05",
            "factors.0.options.candidates.max_abs_delta",
            "must exceed min_abs_delta",
        ),
        (
            "vega: {half_width: 1500}",
            "vega: {inner_half_width: 100}",
            "factors.0.options.multi_greek.vega.inner_half_width",
            "needs half_width",
        ),
        (
            "roll_days: 10",
            "roll_days: 45",
            "factors.1.options.protective_put.roll_days",
            "must be below tenor_days",
        ),
        (
            "spread_fraction: 0.4",
            "spread_fraction: 1.5",
            "hedge.option_order.spread_fraction",
            "less than or equal",
        ),
        (
            "max_options: 3",
            "max_options: 0",
            "factors.0.options.multi_greek.max_options",
            "greater than or equal",
        ),
    ],
)
def test_bad_values_are_one_error_at_their_path(old: str, new: str, path: str, says: str) -> None:
    assert old in FULL
    with pytest.raises(ConfigError) as caught:
        parse_config(FULL.replace(old, new, 1))
    (issue,) = caught.value.issues
    assert issue.path == path
    assert says in issue.reason


def test_multi_greek_needs_a_gamma_or_vega_band() -> None:
    text = FULL.replace(
        "gamma: {target: -500, half_width: 2000, lower_half_width: 1000, inner_half_width: 500}",
        "gamma: {}",
    ).replace("vega: {half_width: 1500}", "vega: {}")
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    (issue,) = caught.value.issues
    assert issue.path == "factors.0.options.multi_greek"
    assert "needs a gamma or a vega band" in issue.reason


def test_a_mode_change_needs_a_restart_but_bands_and_limits_reload_live() -> None:
    old = parse_config(FULL)
    mode = parse_config(FULL.replace("mode: protective_put", "mode: perp"))
    assert restart_reasons(diff(old, mode)) == ["factors.1.hedge.mode"]
    tuned = parse_config(
        FULL.replace("max_options: 3", "max_options: 2").replace(
            "hedge_ratio: 0.8", "hedge_ratio: 1"
        )
    )
    assert diff(old, tuned) and restart_reasons(diff(old, tuned)) == []
