"""The listed universe: spot, perpetuals, dated futures and option chains, as instruments plus
struct-of-arrays columns (one entry per instrument) for the vectorized market step.

Strikes are fixed at listing, as on a venue: a grid in standard deviations of log-moneyness
around the forward at the start, rounded to a 1/2/2.5/5·10^k strike step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hedger.core.units import YEAR_MS
from hedger.sim import instruments as names
from hedger.sim.expiries import Expiry, future_expiries, option_expiries
from hedger.sim.instruments import PERPETUAL_EXPIRY_MS, USD, USDC, SimInstrument
from hedger.sim.scenario import AssetSpec, FundingSpec, Scenario, SurfaceSpec
from hedger.sim.surface import atm_vol

F64 = NDArray[np.float64]
SPOT, PERP, FUTURE, OPTION = 0, 1, 2, 3


@dataclass(slots=True, frozen=True, eq=False)
class Universe:
    instruments: tuple[SimInstrument, ...]
    assets: tuple[str, ...]
    by_name: Mapping[str, int]
    kind: NDArray[np.int8]
    asset: NDArray[np.intp]
    expiry_ms: NDArray[np.int64]
    strike: F64  # NaN unless an option
    is_call: NDArray[np.bool_]
    inverse: NDArray[np.bool_]
    tick: F64
    lot: F64  # min_trade_amount: the amount step
    basis: F64  # annual, forward = index * exp(basis * t)
    underlying_index: tuple[str, ...]  # options: the future or SYN. name; else ""
    options: NDArray[np.intp]
    perps: NDArray[np.intp]
    surface_specs: tuple[SurfaceSpec, ...]
    option_surface: NDArray[np.intp]  # per option: its slot in surface_specs
    surface_asset: NDArray[np.intp]  # per surface slot: asset index
    perp_funding: tuple[FundingSpec, ...]  # per perp, in ``perps`` order

    def __len__(self) -> int:
        return len(self.instruments)


def nice_step(spacing: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``spacing``."""
    e = math.floor(math.log10(spacing))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * 10.0**e >= spacing * (1 - 1e-12):
            return m * 10.0**e
    raise AssertionError("unreachable: 10 * 10**e >= spacing")


def strike_grid(
    forward: float, atm: float, t_years: float, range_std: float, spacing_std: float
) -> list[float]:
    """Every multiple of the strike step within ``±range_std`` standard deviations of
    log-moneyness, the step being the first venue-like one at least ``spacing_std`` wide."""
    sd = atm * math.sqrt(t_years)
    step = nice_step(forward * sd * spacing_std)
    lo = math.ceil(forward * math.exp(-range_std * sd) / step)
    hi = math.floor(forward * math.exp(range_std * sd) / step)
    return [round(n * step, 10) for n in range(max(lo, 1), hi + 1)]


class _Builder:
    def __init__(self, scenario: Scenario, start_ms: int) -> None:
        self.s = scenario
        self.start_ms = start_ms
        self.rows: list[SimInstrument] = []
        self.cols: dict[str, list[float]] = {k: [] for k in ("kind", "asset", "expiry", "strike")}
        self.call: list[bool] = []
        self.basis: list[float] = []
        self.underlying: list[str] = []
        self.option_surface: list[int] = []
        self.surfaces: list[SurfaceSpec] = []
        self.surface_asset: list[int] = []
        self.funding: list[FundingSpec] = []

    def add(
        self,
        a: AssetSpec,
        asset_ix: int,
        kind: int,
        name: str,
        period: str | None,
        expiry_ms: int,
        *,
        strike: float = math.nan,
        is_call: bool = False,
        underlying: str = "",
    ) -> None:
        li, fees = a.listing, self.s.fees
        inverse = li.inverse and kind != SPOT
        counter = USD if inverse else USDC
        if kind == OPTION:
            size, lot, tick = 1.0, li.option_min_trade_amount, li.option_tick_size
            taker, maker = fees.option_taker, fees.option_maker
            quote = a.name if inverse else USDC
        elif kind == SPOT:
            size, lot, tick = 1.0, li.spot_min_trade_amount, li.spot_tick_size
            taker, maker, quote = fees.spot_taker, fees.spot_maker, USDC
        else:
            size, lot = li.contract_size, li.min_trade_amount
            tick = li.tick_size if kind == PERP else (li.future_tick_size or li.tick_size)
            taker, maker, quote = fees.future_taker, fees.future_maker, counter
        self.rows.append(
            SimInstrument(
                instrument_id=len(self.rows) + 1,
                instrument_name=name,
                kind={SPOT: "spot", OPTION: "option"}.get(kind, "future"),
                base_currency=a.name,
                counter_currency=counter,
                quote_currency=quote,
                settlement_currency=None if kind == SPOT else (a.name if inverse else USDC),
                settlement_period=period,
                contract_size=size,
                min_trade_amount=lot,
                tick_size=tick,
                taker_commission=taker,
                maker_commission=maker,
                expiration_timestamp=expiry_ms,
                creation_timestamp=self.start_ms,
                price_index=names.price_index(a.name, inverse),
                inverse=inverse,
                strike=None if kind != OPTION else strike,
                option_type=None if kind != OPTION else ("call" if is_call else "put"),
            )
        )
        for key, value in zip(self.cols, (kind, asset_ix, expiry_ms, strike), strict=True):
            self.cols[key].append(value)
        self.call.append(is_call)
        self.basis.append(li.basis_per_year if kind in (FUTURE, OPTION) else 0.0)
        self.underlying.append(underlying)

    def add_asset(self, a: AssetSpec, ix: int) -> None:
        li, chain = a.listing, self.s.chain
        if li.spot:
            self.add(a, ix, SPOT, names.spot_name(a.name), None, PERPETUAL_EXPIRY_MS)
        if li.perpetual:
            name = names.perpetual_name(a.name, li.inverse)
            self.add(a, ix, PERP, name, "perpetual", PERPETUAL_EXPIRY_MS)
            self.funding.append(a.funding)
        futures: dict[int, str] = {}
        if li.future_tick_size is not None:
            for e in future_expiries(self.start_ms, chain.n_future_monthly):
                futures[e.timestamp_ms] = names.future_name(a.name, li.inverse, e.code)
                self.add(a, ix, FUTURE, futures[e.timestamp_ms], "month", e.timestamp_ms)
        if a.surface is None:
            return
        slot = len(self.surfaces)
        self.surfaces.append(a.surface)
        self.surface_asset.append(ix)
        expiries = option_expiries(self.start_ms, chain.n_daily, chain.n_weekly, chain.n_monthly)
        for e in expiries:
            self.add_chain(a, ix, slot, e, futures)

    def add_chain(
        self, a: AssetSpec, ix: int, slot: int, e: Expiry, futures: Mapping[int, str]
    ) -> None:
        assert a.surface is not None
        chain = self.s.chain
        t = (e.timestamp_ms - self.start_ms) / YEAR_MS
        fwd = a.spot_usd * math.exp(a.listing.basis_per_year * t)
        sf = a.surface
        args = (t, 0.0, sf.atm_short, sf.atm_long, sf.term_decay_days)
        atm = float(atm_vol(*(np.array([x]) for x in args))[0])
        fut = futures.get(e.timestamp_ms)
        underlying = fut or "SYN." + names.future_name(a.name, a.listing.inverse, e.code)
        for k in strike_grid(fwd, atm, t, chain.strike_range_std, chain.strike_spacing_std):
            for is_call in (True, False):
                name = names.option_name(a.name, a.listing.inverse, e.code, k, is_call)
                self.add(
                    a,
                    ix,
                    OPTION,
                    name,
                    e.settlement_period,
                    e.timestamp_ms,
                    strike=k,
                    is_call=is_call,
                    underlying=underlying,
                )
                self.option_surface.append(slot)


def build_universe(scenario: Scenario, start_ms: int) -> Universe:
    b = _Builder(scenario, start_ms)
    for ix, a in enumerate(scenario.assets):
        b.add_asset(a, ix)
    kind = np.array(b.cols["kind"], dtype=np.int8)
    return Universe(
        instruments=tuple(b.rows),
        assets=tuple(a.name for a in scenario.assets),
        by_name={r.instrument_name: i for i, r in enumerate(b.rows)},
        kind=kind,
        asset=np.array(b.cols["asset"], dtype=np.intp),
        expiry_ms=np.array(b.cols["expiry"], dtype=np.int64),
        strike=np.array(b.cols["strike"], dtype=np.float64),
        is_call=np.array(b.call, dtype=np.bool_),
        inverse=np.array([r.inverse for r in b.rows], dtype=np.bool_),
        tick=np.array([r.tick_size for r in b.rows]),
        lot=np.array([r.min_trade_amount for r in b.rows]),
        basis=np.array(b.basis),
        underlying_index=tuple(b.underlying),
        options=np.flatnonzero(kind == OPTION),
        perps=np.flatnonzero(kind == PERP),
        surface_specs=tuple(b.surfaces),
        option_surface=np.array(b.option_surface, dtype=np.intp),
        surface_asset=np.array(b.surface_asset, dtype=np.intp),
        perp_funding=tuple(b.funding),
    )
