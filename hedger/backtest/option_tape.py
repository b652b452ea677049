"""The option chain bar by bar: what the option hedges read, from the same simulated market.

A ``Tape`` carries the book's rows only; an option hedge also needs the quotes of every
option it may buy. :func:`simulate_chain` runs the simulator again with the tape's scenario
and seed to the tape's instants (the market is pure: the same seed and the same clock give
the same path) and keeps, per bar, the listed options of the given assets: mark, top of
book, forward, IV and open interest, as the venue would stream them (inverse options quoted
in coin).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hedger.backtest.sim_tape import scenario_for
from hedger.core.instruments import Instrument, Kind
from hedger.core.option_candidates import OptionChain
from hedger.sim import Market
from hedger.sim.chains import OPTION
from hedger.sim.process import Regime

FloatArray = NDArray[np.float64]


@dataclass(slots=True, frozen=True)
class ChainTape:
    """Static columns per option (n,), quotes per bar and option (T, n)."""

    symbols: tuple[str, ...]
    underlying: tuple[str, ...]
    strike: FloatArray
    expiry_ms: FloatArray
    is_call: NDArray[np.bool_]
    inverse: NDArray[np.bool_]
    contract_size: FloatArray
    lot: FloatArray
    tick: FloatArray
    taker_fee: FloatArray
    mark: FloatArray
    bid: FloatArray
    ask: FloatArray
    underlying_price: FloatArray
    mark_iv: FloatArray
    open_interest: FloatArray
    stressed: NDArray[np.bool_]
    """(T,) the simulator's regime during the bar was stress."""

    def __len__(self) -> int:
        return len(self.symbols)

    def chain(self, bar: int, hedge_amount: FloatArray) -> OptionChain:
        """The chain as the core reads it at ``bar``, with the hedge's own amounts."""
        return OptionChain(
            symbols=self.symbols,
            underlying=self.underlying,
            strike=self.strike,
            expiry_ms=self.expiry_ms,
            is_call=self.is_call,
            inverse=self.inverse,
            contract_size=self.contract_size,
            amount_step=self.lot,
            min_amount=self.lot,
            taker_fee=self.taker_fee,
            mark=self.mark[bar],
            bid=self.bid[bar],
            ask=self.ask[bar],
            underlying_price=self.underlying_price[bar],
            mark_iv=self.mark_iv[bar],
            open_interest=self.open_interest[bar],
            hedge_amount=hedge_amount,
            price_tick=self.tick,
        )

    def instrument(self, j: int) -> Instrument:
        """Option ``j`` as a book position's instrument (one contract = one amount unit)."""
        return Instrument(
            symbol=self.symbols[j],
            kind=Kind.OPTION,
            underlying=self.underlying[j],
            contract_size=float(self.contract_size[j]),
            inverse=bool(self.inverse[j]),
            strike=float(self.strike[j]),
            expiry_ms=int(self.expiry_ms[j]),
            is_call=bool(self.is_call[j]),
            venue="backtest",
        )


def simulate_chain(
    scenario_name: str,
    factors: tuple[str, ...],
    seed: int,
    time_ms: NDArray[np.int64],
    assets: tuple[str, ...],
) -> ChainTape:
    """The options on ``assets`` at each of ``time_ms`` (the tape's bars), on the market
    ``simulate_tape`` drew the tape from (same scenario, factors and seed)."""
    market = Market(scenario_for(scenario_name, factors), seed=seed)
    u = market.universe
    wanted = [u.assets.index(a) for a in assets if a in u.assets]
    rows = np.flatnonzero((u.kind == OPTION) & np.isin(u.asset, wanted))
    inst = [u.instruments[int(i)] for i in rows]
    t, n = len(time_ms), len(rows)
    mark, bid, ask, forward, iv, oi = (np.empty((t, n)) for _ in range(6))
    iv_rows = market.option_row[rows]
    stressed = np.zeros(t, dtype=np.bool_)
    for bar, now_ms in enumerate(time_ms.tolist()):
        if now_ms > market.now_ms:
            market.step(int(now_ms))
        stressed[bar] = market.regime == Regime.STRESS
        mark[bar] = market.mark_price[rows]
        bid[bar] = market.quotes.bid_price[rows, 0]
        ask[bar] = market.quotes.ask_price[rows, 0]
        forward[bar] = market.underlying_price[rows]
        iv[bar] = market.mark_iv[iv_rows]
        oi[bar] = market.open_interest[rows]
    return ChainTape(
        symbols=tuple(i.instrument_name for i in inst),
        underlying=tuple(u.assets[int(a)] for a in u.asset[rows]),
        strike=u.strike[rows].astype(np.float64),
        expiry_ms=u.expiry_ms[rows].astype(np.float64),
        is_call=u.is_call[rows].copy(),
        inverse=u.inverse[rows].copy(),
        contract_size=np.array([i.contract_size for i in inst]),
        lot=u.lot[rows].astype(np.float64),
        tick=u.tick[rows].astype(np.float64),
        taker_fee=np.array([i.taker_commission for i in inst]),
        mark=mark,
        bid=bid,
        ask=ask,
        underlying_price=forward,
        mark_iv=iv,
        open_interest=oi,
        stressed=stressed,
    )
