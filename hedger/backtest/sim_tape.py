"""A tape from the market simulator: ``hedger.sim`` stepped on a simulated clock, one row per
bar, as fast as the CPU allows. Pure: the seed and the bar length determine every number."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
from numpy.typing import NDArray

from hedger.backtest.layout import LayoutError, book_layout
from hedger.backtest.tape import BookLayout, FloatArray, Tape
from hedger.config import Config
from hedger.core.factors import CASH_ASSETS
from hedger.core.instruments import Kind
from hedger.core.policy import HedgeMarket
from hedger.sim import Market, Scenario, scenario
from hedger.sim.chains import OPTION

IntpArray = NDArray[np.intp]
NO_SOURCE = -1


def scenario_for(name: str, factors: tuple[str, ...]) -> Scenario:
    """The named scenario with the config's factors: a BTC-only config against a two-factor
    scenario runs its one-factor variant, so the true betas are betas on BTC alone."""
    s = scenario(name)
    names = tuple(a.name for a in s.factors)
    if factors == names:
        return s
    if factors == names[:1] and not name.endswith("-1f"):
        return scenario(f"{name}-1f")
    raise LayoutError(f"config factors {list(factors)} do not match scenario {name!r} {names}")


def sim_layout(cfg: Config, market: Market) -> BookLayout:
    def lookup(factor: str, symbol: str) -> tuple[HedgeMarket, float]:
        try:
            i = market.index_of(symbol)
        except KeyError:
            raise LayoutError(
                f"factor {factor}: hedge instrument {symbol!r} is not listed in scenario "
                f"{market.scenario.name!r}"
            ) from None
        inst = market.universe.instruments[i]
        lot = float(market.universe.lot[i])
        return HedgeMarket(symbol, inst.inverse, lot, lot), inst.taker_commission

    return book_layout(cfg, lookup)


@dataclass(slots=True, frozen=True)
class _Sources:
    """Where each tape column comes from in the simulator's columns (NO_SOURCE: fallback)."""

    asset: IntpArray
    row_mark: IntpArray
    option_rows: IntpArray
    option_src: IntpArray
    option_fallback_iv: FloatArray
    alt_row: IntpArray
    """per asset: row of ``Market.loadings`` (NO_SOURCE for factors and cash)."""


def _listed_option(market: Market, asset: str, strike: float, expiry_ms: int, call: bool) -> int:
    u = market.universe
    asset_ix = u.assets.index(asset)
    hits = np.flatnonzero(
        (u.kind == OPTION)
        & (u.asset == asset_ix)
        & (u.strike == strike)
        & (u.expiry_ms == expiry_ms)
        & (u.is_call == call)
    )
    return int(hits[0]) if len(hits) else NO_SOURCE


def _sources(cfg: Config, layout: BookLayout, market: Market) -> _Sources:
    sim_assets = market.universe.assets
    for asset in layout.assets:
        if asset not in CASH_ASSETS and asset not in sim_assets:
            raise LayoutError(
                f"asset {asset} is not simulated in scenario {market.scenario.name!r} "
                f"(assets: {', '.join(sim_assets)})"
            )
    asset_src = np.array(
        [sim_assets.index(a) if a in sim_assets else NO_SOURCE for a in layout.assets], np.intp
    )
    row_mark = np.full(len(layout.positions), NO_SOURCE, np.intp)
    for row in layout.hedge_rows:
        row_mark[row] = market.index_of(layout.positions[row].instrument.symbol)
    option_rows, option_src, fallback = [], [], []
    for row, position in enumerate(layout.positions):
        inst = position.instrument
        if inst.kind is not Kind.OPTION:
            continue
        assert inst.strike is not None and inst.expiry_ms is not None
        src = _listed_option(
            market, inst.underlying, inst.strike, inst.expiry_ms, bool(inst.is_call)
        )
        iv = cfg.portfolio.reference.implied_vols.get(inst.underlying, np.nan)
        if src == NO_SOURCE and not iv > 0:
            raise LayoutError(
                f"option {inst.symbol}: not listed in scenario {market.scenario.name!r} and "
                f"portfolio.reference.implied_vols has no vol for {inst.underlying}"
            )
        option_rows.append(row)
        option_src.append(src)
        fallback.append(iv)
    alts = market.alt_names
    alt_row = np.array([alts.index(a) if a in alts else NO_SOURCE for a in layout.assets], np.intp)
    return _Sources(
        asset=asset_src,
        row_mark=row_mark,
        option_rows=np.array(option_rows, np.intp),
        option_src=np.array(option_src, np.intp),
        option_fallback_iv=np.array(fallback, np.float64),
        alt_row=alt_row,
    )


def _pick(column: FloatArray, src: IntpArray, fallback: FloatArray) -> FloatArray:
    listed = src >= 0
    return cast(FloatArray, np.where(listed, column[np.where(listed, src, 0)], fallback))


def simulate_tape(
    cfg: Config,
    scenario_name: str,
    seed: int,
    bars: int,
    bar_ms: int,
) -> Tape:
    """``bars`` bars of ``bar_ms`` from the scenario's start, plus the opening quote."""
    market = Market(scenario_for(scenario_name, cfg.factor_assets), seed=seed)
    layout = sim_layout(cfg, market)
    src = _sources(cfg, layout, market)
    book_asset = np.array(
        [layout.assets.index(p.instrument.underlying) for p in layout.positions], np.intp
    )
    n_rows, n_assets, k = len(layout.positions), len(layout.assets), len(layout.factors)
    hedge_ix = src.row_mark[list(layout.hedge_rows)]
    factor_ix = np.array([layout.assets.index(f) for f in layout.factors], np.intp)
    option_row_of = market.option_row
    t = bars + 1
    time_ms = np.zeros(t, np.int64)
    asset_price = np.empty((t, n_assets))
    mark = np.empty((t, n_rows))
    underlying = np.full((t, n_rows), np.nan)
    iv = np.full((t, n_rows), np.nan)
    bid, ask, hedge_mark = np.empty((t, k)), np.empty((t, k)), np.empty((t, k))
    loadings = np.zeros((t, n_assets, k))
    loadings[:, factor_ix, np.arange(k)] = 1.0
    alts = src.alt_row >= 0
    start = market.now_ms
    for bar in range(t):
        if bar:
            market.step(start + bar * bar_ms)
        time_ms[bar] = market.now_ms
        px = np.exp(market.process.log_price)
        prices = _pick(px, src.asset, np.ones(n_assets))
        asset_price[bar] = prices
        row_price = prices[book_asset]
        mark[bar] = _pick(market.mark_price, src.row_mark, row_price)
        if len(src.option_rows):
            opt_price = row_price[src.option_rows]
            underlying[bar, src.option_rows] = _pick(
                market.underlying_price, src.option_src, opt_price
            )
            iv_rows = option_row_of[np.where(src.option_src >= 0, src.option_src, 0)]
            iv[bar, src.option_rows] = np.where(
                src.option_src >= 0, market.mark_iv[iv_rows], src.option_fallback_iv
            )
        q = market.quotes
        bid[bar] = q.bid_price[hedge_ix, 0]
        ask[bar] = q.ask_price[hedge_ix, 0]
        hedge_mark[bar] = market.mark_price[hedge_ix]
        if alts.any():
            loadings[bar, alts] = market.loadings[src.alt_row[alts]]
    return Tape(
        layout=layout,
        time_ms=time_ms,
        asset_price=asset_price,
        mark=mark,
        underlying_price=underlying,
        implied_vol=iv,
        hedge_bid=bid,
        hedge_ask=ask,
        hedge_mark=hedge_mark,
        true_loadings=loadings,
        input_names=(),
        input_age_s=np.zeros((t, 0)),
        source=f"sim:{market.scenario.name}:seed={seed}",
        updates=t,
    )
