"""Scenario configuration: the market's dynamics, its listings and its quoting, as plain values.

A backtester picks a scenario by name and a seed: ``Market(scenario("stress-switching"), seed=7)``.
Every field has a default that gives a plausible crypto market; vary one with
``dataclasses.replace``. Vols, drifts and rates are annual unless the name says otherwise;
log-price drifts are per year of log return.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

# 2026-11-25T00:00:00Z, a Wednesday: the default start of simulated time.
DEFAULT_START_MS = 1_795_564_800_000


@dataclass(slots=True, frozen=True)
class JumpSpec:
    """Merton compound-Poisson jumps in log price: N ~ Poisson(rate·dt), each ~ N(mean, std²)."""

    per_year: float = 0.0
    mean: float = 0.0
    std: float = 0.0


@dataclass(slots=True, frozen=True)
class SurfaceSpec:
    """Implied vol: ATM term structure, smile in standardized log-moneyness, regime response.

    ATM vol blends ``atm_short`` (t -> 0) into ``atm_long`` with an e-folding of
    ``term_decay_days``. The smile is ``atm * (1 + skew*x + curvature*x²)`` with
    ``x = ln(K/F) / (atm*sqrt(t))``. A vol level (log-OU, mean 0 in calm and
    ``ln(stress_level)`` in stress) scales the short end fully and the long end by half in log,
    so stress lifts and inverts the term structure and steepens the skew.
    """

    atm_short: float
    atm_long: float
    term_decay_days: float = 30.0
    skew: float = -0.08
    curvature: float = 0.04
    stress_level: float = 1.6
    stress_skew_mult: float = 1.5
    level_halflife_hours: float = 12.0
    level_std: float = 0.06
    spot_vol_corr: float = -0.5


@dataclass(slots=True, frozen=True)
class FundingSpec:
    """Perp premium over index as an OU process, and Deribit's damped, capped funding formula."""

    premium_mean: float = 0.0001
    premium_std: float = 0.0003
    premium_halflife_hours: float = 1.0
    stress_std_mult: float = 3.0
    damper: float = 0.00025
    cap_8h: float = 0.005


@dataclass(slots=True, frozen=True)
class ListingSpec:
    """What the venue lists on an asset, and its contract conventions.

    ``inverse``: coin-settled with USD face (Deribit BTC/ETH: ``contract_size`` 10/1 USD, amount
    in USD); otherwise USDC-linear with amounts in coin. Options are in coin either way
    (``option_min_trade_amount``), priced in coin when inverse and in USDC when linear.
    """

    inverse: bool
    contract_size: float
    min_trade_amount: float
    tick_size: float
    future_tick_size: float | None = None
    option_min_trade_amount: float = 0.1
    option_tick_size: float = 0.0001
    spot_min_trade_amount: float = 0.0001
    spot_tick_size: float = 0.01
    perpetual: bool = True
    spot: bool = True
    basis_per_year: float = 0.05


@dataclass(slots=True, frozen=True)
class AssetSpec:
    """One asset. Factors: ``vol`` is the total diffusion vol. Alts: ``vol`` is the
    idiosyncratic vol and ``loadings`` holds one beta per factor, in factor order."""

    name: str
    spot_usd: float
    vol: float
    listing: ListingSpec
    loadings: tuple[float, ...] = ()
    drift_per_year: float = 0.0
    jumps: JumpSpec = JumpSpec()
    surface: SurfaceSpec | None = None
    funding: FundingSpec = FundingSpec()


@dataclass(slots=True, frozen=True)
class RegimeSpec:
    """Two-state Markov chain, calm <-> stress, with exponential holding times.

    In stress factor vols rise, idiosyncratic vols fall, loadings rise and factors correlate
    more: alt/BTC correlations go toward 1, which is when a beta hedge is tested.
    """

    calm_to_stress_per_day: float = 0.0
    stress_to_calm_per_day: float = 0.0
    start_in_stress: bool = False
    factor_vol_mult: float = 2.0
    idio_vol_mult: float = 0.6
    loading_mult: float = 1.15
    factor_corr_stress: float = 0.92
    jump_rate_mult: float = 3.0


@dataclass(slots=True, frozen=True)
class ChainSpec:
    """Listed expiries (all at 08:00 UTC; a date in several sets is listed once) and strikes:
    every multiple of a venue-like step within ``±strike_range_std`` standard deviations of
    log-moneyness (ATM vol·sqrt(t)) around the forward at listing, the step being at least
    ``strike_spacing_std`` of them."""

    n_daily: int = 2
    n_weekly: int = 2
    n_monthly: int = 3
    n_future_monthly: int = 3
    strike_range_std: float = 2.5
    strike_spacing_std: float = 0.5


@dataclass(slots=True, frozen=True)
class BookSpec:
    """Synthetic depth around mark: spreads, level spacing and sizes per level (in USD notional
    at the start price, then fixed in amount units), and their widening in stress."""

    n_levels: int = 5
    level_growth: float = 1.5
    perp_spread_bps: float = 1.0
    future_spread_bps: float = 3.0
    spot_spread_bps: float = 4.0
    level_step_bps: float = 1.0
    option_spread_vol_points: float = 2.0
    option_level_step_vol_points: float = 0.5
    perp_top_usd: float = 250_000.0
    future_top_usd: float = 100_000.0
    spot_top_usd: float = 50_000.0
    option_top_usd: float = 100_000.0
    stress_spread_mult: float = 3.0
    stress_depth_mult: float = 0.4
    open_interest_multiple: float = 100.0


@dataclass(slots=True, frozen=True)
class FeeSpec:
    """Commissions as fractions: futures/spot of notional, options of the underlying per
    contract (Deribit), with the option fee capped at ``option_fee_cap`` of the premium."""

    future_taker: float = 0.0005
    future_maker: float = 0.0
    option_taker: float = 0.0003
    option_maker: float = 0.0003
    spot_taker: float = 0.0005
    spot_maker: float = 0.0
    option_fee_cap: float = 0.125


@dataclass(slots=True, frozen=True)
class MarginSpec:
    """Simplified standard margin: futures as a fraction of notional; short options per
    contract ``max(base - OTM/underlying, floor) * underlying + mark`` (Deribit's rule)."""

    future_initial: float = 0.02
    future_maintenance: float = 0.01
    option_short_base: float = 0.15
    option_short_floor: float = 0.10
    option_short_maintenance: float = 0.075


@dataclass(slots=True, frozen=True)
class Scenario:
    """A whole market: factors (BTC, optionally ETH; log-returns correlated ``factor_corr``
    in calm), alts loading on them, the regime chain, listings, books, fees and margin."""

    name: str
    factors: tuple[AssetSpec, ...]
    alts: tuple[AssetSpec, ...]
    factor_corr: float = 0.8
    regime: RegimeSpec = RegimeSpec()
    chain: ChainSpec = ChainSpec()
    book: BookSpec = BookSpec()
    fees: FeeSpec = FeeSpec()
    margin: MarginSpec = MarginSpec()
    start_ms: int = DEFAULT_START_MS

    def __post_init__(self) -> None:
        if not self.factors:
            raise ValueError(f"scenario {self.name!r}: needs at least one factor (BTC)")
        if len(self.factors) > 2:
            raise ValueError(
                f"scenario {self.name!r}: at most two factors, got {len(self.factors)}"
            )
        names = [a.name for a in self.assets]
        if len(set(names)) != len(names):
            raise ValueError(f"scenario {self.name!r}: duplicate asset names {names}")
        for alt in self.alts:
            if len(alt.loadings) != len(self.factors):
                raise ValueError(
                    f"scenario {self.name!r}: {alt.name} has {len(alt.loadings)} loadings, "
                    f"expected one per factor ({len(self.factors)})"
                )
        if not -1.0 < self.factor_corr < 1.0 or not -1.0 < self.regime.factor_corr_stress < 1.0:
            raise ValueError(f"scenario {self.name!r}: factor correlations must be in (-1, 1)")

    @property
    def assets(self) -> tuple[AssetSpec, ...]:
        return self.factors + self.alts


def _inverse(contract_size: float, tick: float, future_tick: float) -> ListingSpec:
    # Deribit BTC/ETH: amount in USD, a multiple of the face; options 0.1 BTC / 1 ETH lots.
    return ListingSpec(
        inverse=True,
        contract_size=contract_size,
        min_trade_amount=contract_size,
        tick_size=tick,
        future_tick_size=future_tick,
        option_min_trade_amount=0.1 if contract_size >= 10 else 1.0,
        option_tick_size=0.0001,
    )


def _linear(min_amount: float, tick: float, spot_tick: float, option_tick: float) -> ListingSpec:
    return ListingSpec(
        inverse=False,
        contract_size=1.0,
        min_trade_amount=min_amount,
        tick_size=tick,
        option_min_trade_amount=1.0,
        option_tick_size=option_tick,
        spot_min_trade_amount=min_amount,
        spot_tick_size=spot_tick,
        basis_per_year=0.08,
    )


BTC = AssetSpec(
    "BTC",
    90_000.0,
    vol=0.50,
    listing=_inverse(10.0, 0.5, 2.5),
    jumps=JumpSpec(per_year=4.0, mean=-0.02, std=0.04),
    surface=SurfaceSpec(atm_short=0.48, atm_long=0.55),
)
ETH = AssetSpec(
    "ETH",
    3_000.0,
    vol=0.65,
    listing=_inverse(1.0, 0.05, 0.25),
    jumps=JumpSpec(per_year=4.0, mean=-0.025, std=0.05),
    surface=SurfaceSpec(atm_short=0.62, atm_long=0.68),
)
_ALT_JUMPS = JumpSpec(per_year=6.0, mean=-0.01, std=0.06)
# Loadings (BTC, ETH) and idiosyncratic vols in the range measured on hourly data for majors.
SOL = AssetSpec(
    "SOL",
    150.0,
    vol=0.55,
    loadings=(0.8, 0.5),
    listing=_linear(0.1, 0.01, 0.01, 0.01),
    jumps=_ALT_JUMPS,
    surface=SurfaceSpec(atm_short=0.80, atm_long=0.85),
)
XRP = AssetSpec(
    "XRP", 2.5, 0.60, _linear(1.0, 0.0001, 0.0001, 0.0001), (0.9, 0.2), jumps=_ALT_JUMPS
)
DOGE = AssetSpec(
    "DOGE", 0.3, 0.70, _linear(10.0, 0.00001, 0.00001, 0.00001), (1.0, 0.3), jumps=_ALT_JUMPS
)
AVAX = AssetSpec(
    "AVAX", 25.0, 0.55, _linear(0.1, 0.001, 0.001, 0.001), (0.7, 0.6), jumps=_ALT_JUMPS
)
LINK = AssetSpec(
    "LINK", 20.0, 0.50, _linear(0.1, 0.001, 0.001, 0.001), (0.6, 0.6), jumps=_ALT_JUMPS
)

DEFAULT_ALTS = (SOL, XRP, DOGE, AVAX, LINK)


def one_factor(s: Scenario, eth_loading: float = 1.1, eth_idio_vol: float = 0.35) -> Scenario:
    """The same universe against BTC alone: ETH becomes an alt (``eth_loading`` on BTC plus
    ``eth_idio_vol``); each alt's ETH loading moves onto BTC through ETH's loading, and ETH's
    idiosyncratic part joins the alt's own."""
    btc, *rest = s.factors
    if not rest:
        return s
    eth = replace(rest[0], vol=eth_idio_vol, loadings=(eth_loading,))

    def refit(a: AssetSpec) -> AssetSpec:
        b_btc, b_eth = a.loadings
        idio = math.hypot(a.vol, b_eth * eth_idio_vol)
        return replace(a, vol=idio, loadings=(b_btc + b_eth * eth_loading,))

    alts = tuple(refit(a) for a in s.alts)
    return replace(s, name=f"{s.name}-1f", factors=(btc,), alts=(eth, *alts))


def calm() -> Scenario:
    return Scenario("calm", factors=(BTC, ETH), alts=DEFAULT_ALTS)


def stress_switching() -> Scenario:
    """Calm spells of ~4 days on average, stress spells of ~1 day."""
    regime = RegimeSpec(calm_to_stress_per_day=0.25, stress_to_calm_per_day=1.0)
    return replace(calm(), name="stress-switching", regime=regime)


def stress() -> Scenario:
    """Permanently stressed: for tests and worst-case backtests."""
    return replace(calm(), name="stress", regime=RegimeSpec(start_in_stress=True))


def trend() -> Scenario:
    """A bull market: +80%/yr log drift on BTC, +100% on ETH, rich perp premium and basis."""
    rich = FundingSpec(premium_mean=0.0008, premium_std=0.0004)

    def bull(a: AssetSpec, drift: float) -> AssetSpec:
        listing = replace(a.listing, basis_per_year=a.listing.basis_per_year + 0.07)
        return replace(a, drift_per_year=drift, funding=rich, listing=listing)

    base = calm()
    return replace(
        base,
        name="trend",
        factors=(bull(BTC, 0.8), bull(ETH, 1.0)),
        alts=tuple(bull(a, 0.0) for a in base.alts),
    )


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "calm": calm,
    "stress-switching": stress_switching,
    "stress": stress,
    "trend": trend,
}


def scenario(name: str) -> Scenario:
    """A named scenario; a ``-1f`` suffix gives its one-factor (BTC only) variant."""
    base, one = (name[:-3], True) if name.endswith("-1f") else (name, False)
    try:
        s = SCENARIOS[base]()
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {sorted(SCENARIOS)}") from None
    return one_factor(s) if one else s
