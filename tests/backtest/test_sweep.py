from __future__ import annotations

import pytest

from hedger.backtest.sweep import SweepError, combinations, parse_axis, resolve_path
from hedger.config import BandKind
from tests.backtest.conftest import alts_config


def test_alias_addresses_the_first_factor() -> None:
    assert resolve_path("hedge.band.half_width") == ("factors", 0, "band", "half_width")
    assert resolve_path("factors.0.band.half_width") == ("factors", 0, "band", "half_width")
    assert resolve_path("factors[1].target.value") == ("factors", 1, "target", "value")
    assert resolve_path("hedge.cooldown") == ("hedge", "cooldown")


def test_cartesian_product_first_axis_slowest_with_durations_parsed() -> None:
    axes = [parse_axis("hedge.band.half_width=0.5,1,2,4"), parse_axis("beta.half_life=1h,6h,1d")]
    combos = combinations(alts_config(), axes)
    assert len(combos) == 12
    assert [c.config.factors[0].band.half_width for c in combos[:4]] == [0.5, 0.5, 0.5, 1.0]
    assert [c.config.beta.half_life for c in combos[:3]] == [3600.0, 21600.0, 86400.0]
    assert combos[4].label == "hedge.band.half_width=1 beta.half_life=6h"


def test_a_sweep_can_switch_the_band_kind() -> None:
    axes = [
        parse_axis("hedge.band.kind=whalley_wilmott"),
        parse_axis("hedge.band.risk_aversion=1e-3"),
    ]
    (combo,) = combinations(alts_config(), axes)
    assert combo.config.factors[0].band.kind is BandKind.WHALLEY_WILMOTT
    assert combo.config.factors[0].band.risk_aversion == 1e-3


def test_no_sweep_is_the_base_config() -> None:
    base = alts_config()
    (combo,) = combinations(base, [])
    assert combo.config is base and combo.label == "base"


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("hedge.band.half_width=-1", "factors.0.band.half_width"),
        ("beta.half_life=soon", "beta.half_life"),
        ("beta.halflife=1h", "beta.halflife"),
        ("factors.3.band.half_width=1", "factors.3.band.half_width"),
        ("nosuch.key.deep=1", "nosuch.key.deep"),
    ],
)
def test_bad_values_and_paths_are_named(spec: str, named: str) -> None:
    with pytest.raises(SweepError) as info:
        combinations(alts_config(), [parse_axis(spec)])
    assert named in str(info.value)


@pytest.mark.parametrize(
    "spec", ["hedge.band.half_width", "hedge.band.half_width=", "=1,2", "a=1,,2"]
)
def test_malformed_specs(spec: str) -> None:
    with pytest.raises(SweepError):
        parse_axis(spec)


@pytest.mark.parametrize(
    "spec",
    [
        "portfolio.holdings.0.asset=SOL,DOGE,ETH",
        "portfolio.holdings.0.qty=1,2",
        "factors.0.asset=ETH",
        "factors.0.hedge.symbol=ETH-PERPETUAL",
        "venues.sim.exchange=binance",
    ],
)
def test_paths_the_market_is_laid_out_from_are_refused(spec: str) -> None:
    """Before: the tape came from the base config, so these printed identical runs."""
    with pytest.raises(SweepError, match="every run would be the same"):
        parse_axis(spec)


def test_factor_settings_still_sweep() -> None:
    axis = parse_axis("factors.0.target.value=0,0.5")
    assert axis.resolved == ("factors", 0, "target", "value")
