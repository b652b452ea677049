"""The market: prices, option surface, funding and synthetic books for a whole universe.

``Market.step(now_ms)`` advances simulated time to ``now_ms`` (any dt, as fast as the CPU
allows) and recomputes every column in one vectorized pass; it returns the instruments whose
top of book or mark changed enough to publish. Dicts for the wire (tickers, books, instrument
rows) are built lazily, per instrument, by ``ticker(i)`` etc. (see ``hedger.sim.tickers``).

Conventions (Deribit's): option Greeks are Black-76 (r = 0) on the option's
``underlying_price`` (the forward to its expiry) and ``mark_iv``, in USD: delta, gamma per 1
USD, vega per vol point, theta per day. Inverse options' mark is in coin: USD price /
underlying price. Expired instruments freeze at their delivery price (the index at the first
step at or after expiry) and their books empty.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hedger.core.pricing import black76, year_fraction
from hedger.sim import tickers
from hedger.sim.book import Quotes, TickGrid, fill_ladder
from hedger.sim.chains import FUTURE, OPTION, PERP, SPOT, Universe, build_universe
from hedger.sim.expiries import settlement_session
from hedger.sim.funding import PerpFunding
from hedger.sim.process import FactorProcess, Regime
from hedger.sim.scenario import Scenario
from hedger.sim.surface import VolLevels, atm_vol, smile_vol

F64 = NDArray[np.float64]
# An option is priced at no less than ~0.3 s to expiry, so Greeks stay finite at the bell.
MIN_T_YEARS = 1e-8


class Market:
    def __init__(
        self,
        scenario: Scenario,
        *,
        seed: int,
        start_ms: int | None = None,
        change_threshold_bps: float = 0.0,
    ) -> None:
        self.scenario = scenario
        self.now_ms = scenario.start_ms if start_ms is None else start_ms
        self.rng = np.random.default_rng(seed)
        self.process = FactorProcess(scenario, self.rng)
        self.universe: Universe = build_universe(scenario, self.now_ms)
        self.vol_levels = VolLevels(self.universe.surface_specs)
        self.funding = PerpFunding(self.universe.perp_funding)
        self.change_threshold = change_threshold_bps * 1e-4
        self.book_version = 0
        u, n = self.universe, len(self.universe)
        self.quotes = Quotes.empty(n, scenario.book.n_levels)
        self._grid = TickGrid(u.tick)
        self.index_price = np.zeros(n)
        self.underlying_price = np.zeros(n)
        self.mark_price = np.zeros(n)
        self.active = np.ones(n, dtype=np.bool_)
        self.delivery_price = np.full(n, np.nan)
        self.last_price = np.full(n, np.nan)
        self.volume = np.zeros(n)  # this session, in base coin (Deribit's stats.volume)
        self.volume_usd = np.zeros(n)
        self.option_row = np.full(n, -1, dtype=np.intp)
        self.option_row[u.options] = np.arange(len(u.options))
        self.perp_row = np.full(n, -1, dtype=np.intp)
        self.perp_row[u.perps] = np.arange(len(u.perps))
        m = len(u.options)
        self.mark_iv = np.zeros(m)  # fraction, not percent
        self.bid_iv = np.zeros(m)
        self.ask_iv = np.zeros(m)
        self.delta, self.gamma, self.vega, self.theta = (np.zeros(m) for _ in range(4))
        self._option_columns()
        self._spread_columns()
        self._reprice()
        self._lots = self._depth_lots()
        self._refresh_book()
        self.settlement_price = self.mark_price.copy()
        self.session_open = self.mark_price.copy()
        self.high = self.mark_price.copy()
        self.low = self.mark_price.copy()
        self._session = settlement_session(self.now_ms)
        self._reported_mark = self.mark_price.copy()
        self._top = self._top_of_book()
        top_amount = u.lot * self._lots[0][:, 0]
        self.open_interest = np.round(top_amount * scenario.book.open_interest_multiple, 10)

    # -- public views ---------------------------------------------------------------------

    @property
    def regime(self) -> Regime:
        """The regime in force during the last step."""
        return self.process.regime

    @property
    def loadings(self) -> F64:
        """True alt loadings (alts x factors) in the current regime, for oracle backtests."""
        out: F64 = self.process.params.loadings.copy()
        return out

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.scenario.factors)

    @property
    def alt_names(self) -> tuple[str, ...]:
        """Rows of ``loadings``, in order."""
        return tuple(a.name for a in self.scenario.alts)

    @property
    def currencies(self) -> tuple[str, ...]:
        """Every currency an instrument names (for ``public/get_currencies``)."""
        names = {
            c for i in self.universe.instruments for c in (i.base_currency, i.settlement_currency)
        }
        return tuple(sorted(c for c in names if c))

    @property
    def asset_prices(self) -> dict[str, float]:
        px = np.exp(self.process.log_price)
        return {a: float(p) for a, p in zip(self.universe.assets, px, strict=True)}

    def index_of(self, instrument_name: str) -> int:
        """Position of an instrument in every column; KeyError if not listed."""
        return self.universe.by_name[instrument_name]

    def ticker(self, i: int) -> dict[str, object]:
        return tickers.ticker(self, i)

    def order_book(self, i: int, depth: int | None = None) -> dict[str, object]:
        """The synthetic book; ``MatchingEngine.order_book`` also subtracts this step's fills."""
        return tickers.order_book(self, i, depth)

    def book_summary(self, i: int) -> dict[str, object]:
        return tickers.book_summary(self, i)

    def instrument_row(self, i: int) -> dict[str, object]:
        return self.universe.instruments[i].to_deribit(is_active=bool(self.active[i]))

    def index_prices(self) -> dict[str, float]:
        """Deribit index names (``btc_usd``, ``sol_usdc``...) to price; USDC is taken as USD."""
        return tickers.index_prices(self)

    def record_trade(self, i: int, price: float, amount: float) -> None:
        """A fill happened (matching engine): last price, volume and session range follow it.
        ``amount`` is in order units (USD for inverse futures, coin otherwise)."""
        inst = self.universe.instruments[i]
        usd_amounts = inst.inverse and not inst.is_option
        self.last_price[i] = price
        self.volume[i] += amount / price if usd_amounts else amount
        self.volume_usd[i] += amount if usd_amounts else amount * float(self.index_price[i])
        self.high[i] = max(self.high[i], price)
        self.low[i] = min(self.low[i], price)

    # -- the step -------------------------------------------------------------------------

    def step(self, now_ms: int) -> NDArray[np.intp]:
        """Advance to ``now_ms``; return the instruments that changed (top of book, expiry, or
        mark by more than ``change_threshold_bps`` since they were last returned)."""
        dt_ms = now_ms - self.now_ms
        if dt_ms < 0:
            raise ValueError(f"time runs forward: now_ms {now_ms} < market time {self.now_ms}")
        if dt_ms == 0:
            return np.zeros(0, dtype=np.intp)
        dt = dt_ms / 1000.0
        self.process.advance(dt)
        stressed = self.process.regime is Regime.STRESS
        z = self.rng.standard_normal(len(self.vol_levels.log_level) + len(self.funding.premium))
        nv = len(self.vol_levels.log_level)
        self.vol_levels.advance(dt, stressed, self.process.market_shock, z[:nv])
        self.funding.advance(dt, stressed, z[nv:])
        self.now_ms = now_ms
        expired = self._reprice()
        self._refresh_book()
        self._roll_session()
        return self._changed(expired)

    # -- internals ------------------------------------------------------------------------

    def _option_columns(self) -> None:
        u = self.universe
        specs = [u.surface_specs[s] for s in u.option_surface]
        self._o_short = np.array([s.atm_short for s in specs])
        self._o_long = np.array([s.atm_long for s in specs])
        self._o_decay = np.array([s.term_decay_days for s in specs])
        self._o_skew = np.array([s.skew for s in specs])
        self._o_skew_stress = np.array([s.skew * s.stress_skew_mult for s in specs])
        self._o_curv = np.array([s.curvature for s in specs])

    def _spread_columns(self) -> None:
        b, kind = self.scenario.book, self.universe.kind
        spread = np.select(
            [kind == SPOT, kind == PERP, kind == FUTURE],
            [b.spot_spread_bps, b.perp_spread_bps, b.future_spread_bps],
            0.0,
        )
        self._half_spread_frac = spread * 0.5e-4
        self._level_step_frac = np.where(kind == OPTION, 0.0, b.level_step_bps * 1e-4)

    def _depth_lots(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Lots per level (calm, stress), fixed from start prices so sizes do not flicker."""
        b, u = self.scenario.book, self.universe
        top_usd = np.select(
            [u.kind == SPOT, u.kind == PERP, u.kind == FUTURE],
            [b.spot_top_usd, b.perp_top_usd, b.future_top_usd],
            b.option_top_usd,
        )
        # Inverse futures trade in USD; everything else in coin.
        usd_per_unit = np.where(u.inverse & (u.kind != OPTION), 1.0, self.index_price)
        top = top_usd / usd_per_unit / u.lot
        sizes = top[:, None] * b.level_growth ** np.arange(b.n_levels)
        calm = np.maximum(np.floor(sizes), 1).astype(np.int64)
        stress = np.maximum(np.floor(sizes * b.stress_depth_mult), 1).astype(np.int64)
        return calm, stress

    def _reprice(self) -> NDArray[np.bool_]:
        u = self.universe
        px = np.exp(self.process.log_price)
        index = px[u.asset]
        t = np.maximum(year_fraction(self.now_ms, u.expiry_ms), 0.0)
        fwd = index * np.exp(u.basis * t)
        mark = fwd.copy()
        mark[u.perps] = index[u.perps] * (1.0 + self.funding.premium)
        o = u.options
        f_o, k_o, t_o = fwd[o], u.strike[o], np.maximum(t[o], MIN_T_YEARS)
        slot = u.option_surface
        atm = atm_vol(
            t_o, self.vol_levels.log_level[slot], self._o_short, self._o_long, self._o_decay
        )
        w = self.vol_levels.stress_weight()[slot]
        skew = self._o_skew + (self._o_skew_stress - self._o_skew) * w
        iv = smile_vol(np.log(k_o / f_o), t_o, atm, skew, self._o_curv)
        g = black76(f_o, k_o, t_o, iv, u.is_call[o])
        inverse_o = u.inverse[o]
        mark[o] = np.where(inverse_o, g.price / f_o, g.price)
        self.mark_iv[:], self.delta[:], self.gamma[:] = iv, g.delta, g.gamma
        self.vega[:], self.theta[:] = g.vega, g.theta
        self._option_vega_quote = np.where(inverse_o, g.vega / f_o, g.vega)
        self.index_price[:], self.underlying_price[:], self.mark_price[:] = index, fwd, mark
        return self._expire(index)

    def _expire(self, index: F64) -> NDArray[np.bool_]:
        u = self.universe
        newly = self.active & (u.expiry_ms <= self.now_ms)
        if newly.any():
            self.delivery_price[newly] = index[newly]
            self.active &= ~newly
        dead = ~self.active
        if dead.any():
            s = self.delivery_price[dead]
            k = u.strike[dead]
            payoff = np.where(u.is_call[dead], np.maximum(s - k, 0.0), np.maximum(k - s, 0.0))
            is_opt = u.kind[dead] == OPTION
            value = np.where(u.inverse[dead], payoff / s, payoff)
            self.mark_price[dead] = np.where(is_opt, value, s)
            self.underlying_price[dead] = s
            rows = self.option_row[dead][is_opt]
            for col in (self.delta, self.gamma, self.vega, self.theta, self._option_vega_quote):
                col[rows] = 0.0
        return newly

    def _refresh_book(self) -> None:
        u, b = self.universe, self.scenario.book
        stressed = self.process.regime is Regime.STRESS
        widen = b.stress_spread_mult if stressed else 1.0
        half = self._half_spread_frac * self.mark_price * widen
        step = self._level_step_frac * self.mark_price * widen
        o = u.options
        vq = self._option_vega_quote
        half[o] = vq * b.option_spread_vol_points * 0.5 * widen
        step[o] = vq * b.option_level_step_vol_points * widen
        lots = self._lots[1] if stressed else self._lots[0]
        fill_ladder(self.quotes, self._grid, self.mark_price, half, step, lots, self.active)
        self._book_ivs()
        self.book_version += 1

    def _book_ivs(self) -> None:
        """Bid/ask IVs of the rounded quotes, to first order in vega (Deribit shows 0 for a
        missing bid)."""
        o = self.universe.options
        vq = np.maximum(self._option_vega_quote, 1e-12)
        bid, ask, mark = (
            self.quotes.bid_price[o, 0],
            self.quotes.ask_price[o, 0],
            self.mark_price[o],
        )
        has_bid = self.quotes.bid_lots[o, 0] > 0
        self.bid_iv[:] = np.where(has_bid, np.maximum(self.mark_iv - (mark - bid) / vq / 100, 0), 0)
        self.ask_iv[:] = self.mark_iv + (ask - mark) / vq / 100

    def _roll_session(self) -> None:
        mark = self.mark_price
        session = settlement_session(self.now_ms)
        if session != self._session:
            self._session = session
            live = self.active
            self.settlement_price[live] = mark[live]
            self.session_open[:] = mark
            self.high[:] = mark
            self.low[:] = mark
            self.volume[:] = 0.0
            self.volume_usd[:] = 0.0
        np.maximum(self.high, mark, out=self.high)
        np.minimum(self.low, mark, out=self.low)

    def _top_of_book(self) -> NDArray[np.int64]:
        q = self.quotes
        return np.stack([q.bid_ticks[:, 0], q.ask_ticks[:, 0], q.bid_lots[:, 0], q.ask_lots[:, 0]])

    def _changed(self, expired: NDArray[np.bool_]) -> NDArray[np.intp]:
        top = self._top_of_book()
        moved = np.abs(self.mark_price - self._reported_mark) > self.change_threshold * np.abs(
            self._reported_mark
        )
        changed = np.flatnonzero((top != self._top).any(axis=0) | moved | expired)
        self._top = top
        self._reported_mark[changed] = self.mark_price[changed]
        return changed
