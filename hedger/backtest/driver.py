"""The core over a tape, bar by bar, with simulated market-order fills.

Each bar is one call of ``core.cycle.step`` (the live engine's cycle: staleness, betas,
exposure, costs, cooldown, policy, guards), then a fill. Fills are market orders at the
bar's best bid/ask of the hedge instrument plus the venue's taker fee (no depth, no latency:
the hedge sizes here are far below the top of book of a BTC perpetual). Nothing here reads
a clock or a file.

Accounting per bar (USD): the holdings' P&L is the change of their value; the hedge's P&L is
the position held *over* the bar times the hedge's relative price move (an inverse
perpetual's coin P&L ``face * (1/P0 - 1/P1)`` valued at P1 is ``face * (P1/P0 - 1)``; a
linear one's is ``qty * (P1 - P0)``); costs are the fee and the distance of the fill from
mark (the half-spread paid).

With an option chain (``chain``, a :class:`~hedger.backtest.option_tape.ChainTape`), the
step's option legs fill too, at the bar's ask (buy) or bid (sell) like a crossing limit,
and the options bought stay in the book (rows appended after the hedge rows), priced each
bar by the core's own exposure. Their P&L over a bar is the change of their model value and
counts as hedge P&L; a fill's distance from the model value is spread cost, its fee
(Deribit's: a fraction of the underlying, capped at a fraction of the premium) is a fee, and
the premium paid (received when selling) is reported apart: it is a cash flow, not a loss,
since the options' value is counted. Premium is paid in USD here, not out of a coin
balance; an expired option keeps its intrinsic value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np

from hedger.backtest.option_tape import ChainTape
from hedger.backtest.tape import FloatArray, Tape
from hedger.config import Config
from hedger.config.beta_setup import make_beta_book
from hedger.core import guards
from hedger.core.cycle import CycleInputs, CycleOutputs, CycleState, MarketInputs, step
from hedger.core.exposure import Exposure, Position, Quotes, build_book
from hedger.core.option_candidates import DERIBIT_OPTION_FEE_CAP
from hedger.core.option_legs import OptionLeg
from hedger.core.policy import Action, HedgeIntent

BoolArray = np.ndarray[tuple[int, ...], np.dtype[np.bool_]]


@dataclass(slots=True, frozen=True)
class IntentRecord:
    """One approved hedge intent of a run, as the trade log and the parity test read it."""

    at_ms: int
    factor: str
    symbol: str
    side: str
    qty: float
    """in the hedge market's amount units."""
    leg: int


class BetaSource(StrEnum):
    ESTIMATED = "estimated"
    """the configured estimator, as live"""
    ORACLE = "oracle"
    """the simulator's true loadings (same policy): the best any estimator could do"""


@dataclass(slots=True, frozen=True)
class RunSeries:
    """Per bar (T,) or per bar and factor (T, K); bar 0 opens the run (no P&L)."""

    time_ms: np.ndarray[tuple[int], np.dtype[np.int64]]
    holdings_pnl_usd: FloatArray
    hedge_pnl_usd: FloatArray
    fees_usd: FloatArray
    spread_cost_usd: FloatArray
    traded_usd: FloatArray
    trades: np.ndarray[tuple[int], np.dtype[np.int64]]
    beta_delta: FloatArray
    """(T, K) after this bar's hedge, in factor units, on the loadings the run used."""
    true_beta_delta: FloatArray
    """(T, K) the same on the simulator's true loadings (NaN on a replay)."""
    target: FloatArray
    band_half_width: FloatArray
    outside_band: BoolArray
    """(T, K) the deviation seen before trading was outside the band."""
    hedge_position: FloatArray
    """(T, K) in the hedge's amount units (USD face for inverse perps), after trading."""
    refusals: int
    intents: tuple[IntentRecord, ...] = ()
    """every intent the guards approved (sent unless dry run), in order."""
    premium_usd: FloatArray | None = None
    """(T,) option premium paid at the fill, net of premium received (with a chain)."""
    option_trades: tuple[IntentRecord, ...] = ()
    """every option leg filled, in order (``qty`` in the venue's amount unit)."""

    @property
    def hedged_pnl_usd(self) -> FloatArray:
        out: FloatArray = (
            self.holdings_pnl_usd + self.hedge_pnl_usd - self.fees_usd - self.spread_cost_usd
        )
        return out


def _hedge_pnl(
    position: FloatArray, inverse: BoolArray, before: FloatArray, after: FloatArray
) -> float:
    with np.errstate(invalid="ignore", divide="ignore"):
        move = np.where(inverse, after / before - 1.0, after - before)
    pnl = np.where(position != 0.0, position * move, 0.0)
    return float(np.nansum(pnl))


def run_hedge(
    tape: Tape,
    cfg: Config,
    betas: BetaSource = BetaSource.ESTIMATED,
    warmup_bars: int = 0,
    chain: ChainTape | None = None,
) -> RunSeries:
    """Hedge ``cfg``'s holdings on ``tape``; the first ``warmup_bars`` only feed the betas
    (the live engine's warm start), trading and measuring start after them. Every other bar
    is one ``core.cycle.step``, the live engine's own. ``chain``: the options an option
    hedge (``factors[].hedge.mode``) may trade, bar by bar; without it every factor
    hedges with its perp."""
    if betas is BetaSource.ORACLE and tape.true_loadings is None:
        raise ValueError("oracle betas need a simulated tape (a replay has no true loadings)")
    layout = tape.layout
    k = len(layout.factors)
    factor_ix = np.array([layout.assets.index(f) for f in layout.factors], np.intp)
    beta_book, _ = make_beta_book(cfg.beta, layout.assets, layout.factors, int(tape.time_ms[0]))
    asset_ix = np.arange(len(layout.assets), dtype=np.intp)
    params = cfg.cycle_params({h.factor: h.market for h in layout.hedges})
    inverse = np.array([h.market.inverse for h in layout.hedges])
    fee = np.array([h.taker_fee for h in layout.hedges])
    size = np.array([h.market.amount_size for h in layout.hedges])
    input_rows = np.arange(len(tape.input_names), dtype=np.intp)
    positions = list(layout.positions)
    options = _OptionBook(chain, len(positions))
    if chain is not None:
        positions += [Position(chain.instrument(j), 0.0) for j in range(len(chain))]
    hedge_qty = np.zeros(k)
    book = build_book(positions, layout.assets)
    state = CycleState(beta_book, guards.initial_state(params.limits, int(tape.time_ms[0])))
    start = min(max(warmup_bars, 0), len(tape) - 1)
    out = _Buffers.empty(len(tape) - start, k)
    nav_before = math.nan
    refusals = 0
    intents: list[IntentRecord] = []
    option_trades: list[IntentRecord] = []
    for bar in range(len(tape)):
        now_ms = int(tape.time_ms[bar])
        quotes = options.quotes(tape.quotes(bar), bar)
        if bar < start:
            prices = quotes.asset_price
            seen = np.isfinite(prices)
            beta_book.observe(asset_ix[seen], prices[seen], now_ms)
            beta_book.sample(now_ms)
            continue
        i = bar - start
        oracle = None
        if betas is BetaSource.ORACLE:
            assert tape.true_loadings is not None
            oracle = tape.true_loadings[bar]
        inputs = CycleInputs(
            now_ms=now_ms,
            book=book,
            quotes=quotes,
            factor_index=factor_ix,
            market=MarketInputs(tape.input_names, input_rows, tape.input_age_s[bar]),
            hedge_amount=hedge_qty.copy(),
            hedge_bid=tape.hedge_bid[bar],
            hedge_ask=tape.hedge_ask[bar],
            taker_fee=fee,
            loadings=oracle,
            option_chain=None if chain is None else chain.chain(bar, options.qty.copy()),
        )
        state, cycle = step(state, inputs, params)
        result = cycle.exposure
        hedge_mark = tape.hedge_mark[bar]
        out.time_ms[i] = now_ms
        option_value = options.value_usd(result)
        if i:
            out.holdings_pnl[i] = result.nav_usd - option_value - nav_before
            out.hedge_pnl[i] = _hedge_pnl(
                hedge_qty * size, inverse, tape.hedge_mark[bar - 1], hedge_mark
            )
            out.hedge_pnl[i] += option_value - options.value_after_usd
        nav_before = result.nav_usd - option_value
        options.value_after_usd = option_value
        for decision in cycle.decisions:
            j = layout.factors.index(decision.factor)
            out.target[i, j] = decision.target
            out.band[i, j] = decision.band_half_width
            out.outside[i, j] = decision.action in (Action.HEDGE, Action.SKIP) and (
                abs(decision.deviation) > decision.band_half_width
            )
        traded = np.zeros(k)
        checked = cycle.checked
        if cycle.option_checked is not None:
            refusals += len(cycle.option_checked.refused)
        if checked is not None:
            refusals += len(checked.refused)
            intents += [
                IntentRecord(now_ms, a.factor, a.symbol, a.side, a.amount, a.leg)
                for a in checked.approved
            ]
            for intent in checked.to_send:
                j = layout.factors.index(intent.factor)
                fill = _fill(intent, tape.hedge_bid[bar, j], tape.hedge_ask[bar, j])
                if not math.isfinite(fill):
                    continue  # an empty side: a market order would not fill
                signed = intent.amount if intent.side == "buy" else -intent.amount
                notional = abs(intent.notional_usd)
                if not inverse[j]:
                    notional = intent.amount * size[j] * fill
                hedge_qty[j] += signed
                traded[j] += signed
                out.traded[i] += notional
                out.fees[i] += fee[j] * notional
                out.spread[i] += notional * abs(fill - hedge_mark[j]) / fill
                out.trades[i] += 1
                state.guard = guards.record_order(state.guard, now_ms, notional)
        option_fills = options.fill(cycle, bar, result, out, i, state)
        if option_fills:
            option_trades += option_fills
            out.trades[i] += len(option_fills)
            for c in np.flatnonzero(options.qty != options.booked).tolist():
                row = options.first_row + c
                positions[row] = replace(positions[row], qty=float(options.qty[c]))
            options.booked = options.qty.copy()
        if traded.any() or option_fills:
            for j, row in enumerate(layout.hedge_rows):
                positions[row] = replace(positions[row], qty=float(hedge_qty[j]))
            book = build_book(positions, layout.assets)
        factor_price = result.factor_price
        moved_usd = np.where(inverse, traded * size, traded * size * hedge_mark)
        # The options filled this bar, as USD delta per asset at this bar's Greeks.
        option_delta = options.moved_asset_delta_usd(result, option_fills)
        out.beta_delta[i] = (result.beta_delta_usd + moved_usd) / factor_price
        if option_fills:
            out.beta_delta[i] += (result.loadings.T @ option_delta) / factor_price
        if tape.true_loadings is not None:
            true_usd = tape.true_loadings[bar].T @ (result.asset_delta_usd + option_delta)
            out.true_beta_delta[i] = (true_usd + moved_usd) / factor_price
        out.hedge_position[i] = hedge_qty
    series = replace(out.series(refusals), intents=tuple(intents))
    if chain is None:
        return series
    return replace(series, premium_usd=out.premium, option_trades=tuple(option_trades))


class _OptionBook:
    """The hedge's options in a run: amounts per chain row (appended to the book after the
    hedge rows), and their fills against the chain tape."""

    def __init__(self, chain: ChainTape | None, first_row: int) -> None:
        n = 0 if chain is None else len(chain)
        self.chain = chain
        self.first_row = first_row
        self.qty = np.zeros(n)
        self.booked = np.zeros(n)
        self.value_after_usd = 0.0
        """the options' value at the last bar's prices, after its trades."""

    def quotes(self, quotes: Quotes, bar: int) -> Quotes:
        """The tape's quotes with the chain's rows appended."""
        chain = self.chain
        if chain is None:
            return quotes
        return Quotes(
            mark=np.concatenate([quotes.mark, np.full(len(chain), np.nan)]),
            underlying_price=np.concatenate([quotes.underlying_price, chain.underlying_price[bar]]),
            implied_vol=np.concatenate([quotes.implied_vol, chain.mark_iv[bar]]),
            asset_price=quotes.asset_price,
        )

    def value_usd(self, result: Exposure) -> float:
        if self.chain is None:
            return 0.0
        return float(result.value_usd[self.first_row :].sum())

    def moved_asset_delta_usd(self, result: Exposure, fills: list[IntentRecord]) -> FloatArray:
        """Per asset: the USD delta ``fills`` added, at this bar's Greeks (the book's own
        convention, ``size * delta * F``: premium is paid in USD here)."""
        moved = np.zeros(len(result.assets))
        chain = self.chain
        if chain is None or not fills:
            return moved
        first = len(result.option_delta) - len(chain)
        for fill in fills:
            j = chain.symbols.index(fill.symbol)
            signed = fill.qty if fill.side == "buy" else -fill.qty
            per_contract = (
                result.option_delta[first + j]
                * result.option_forward[first + j]
                * chain.contract_size[j]
            )
            moved[result.assets.index(chain.underlying[j])] += signed * per_contract
        return moved

    def _model_usd(self, result: Exposure, j: int) -> float:
        """One contract of chain row ``j`` at the exposure's model price."""
        assert self.chain is not None
        price = result.option_price_usd[len(result.option_price_usd) - len(self.chain) + j]
        return float(price) * float(self.chain.contract_size[j])

    def fill(
        self,
        cycle: CycleOutputs,
        bar: int,
        result: Exposure,
        out: _Buffers,
        i: int,
        state: CycleState,
    ) -> list[IntentRecord]:
        """Fill the step's approved option legs at the bar's touch; the fills."""
        checked, chain = cycle.option_checked, self.chain
        if checked is None or chain is None:
            return []
        fills = []
        for leg in checked.to_send:
            j = chain.symbols.index(leg.symbol)
            price = _option_fill(leg, float(chain.bid[bar, j]), float(chain.ask[bar, j]))
            if not math.isfinite(price):
                continue  # an empty side: nothing to cross
            forward = float(chain.underlying_price[bar, j])
            to_usd = forward if chain.inverse[j] else 1.0
            size = float(chain.contract_size[j])
            fill_usd = price * to_usd * size
            model_usd = self._model_usd(result, j)
            signed = leg.signed_amount
            sign = 1.0 if signed > 0 else -1.0
            fee = min(float(chain.taker_fee[j]) * forward * size, DERIBIT_OPTION_FEE_CAP * fill_usd)
            self.qty[j] += signed
            # The options' value after this bar's trades: bought at model, paid at the fill.
            self.value_after_usd += signed * model_usd
            out.spread[i] += sign * (fill_usd - model_usd) * abs(signed)
            out.fees[i] += fee * abs(signed)
            out.premium[i] += signed * fill_usd
            if signed > 0:
                now_ms = int(out.time_ms[i])
                state.guard = guards.record_option_premium(state.guard, now_ms, fill_usd * signed)
            fills.append(
                IntentRecord(
                    int(out.time_ms[i]), leg.factor, leg.symbol, leg.side, leg.amount, leg.leg
                )
            )
        return fills


def _option_fill(leg: OptionLeg, bid: float, ask: float) -> float:
    price = ask if leg.side == "buy" else bid
    return price if price > 0 else math.nan


def _fill(intent: HedgeIntent, bid: float, ask: float) -> float:
    price = ask if intent.side == "buy" else bid
    return price if price > 0 else math.nan


@dataclass(slots=True)
class _Buffers:
    time_ms: np.ndarray[tuple[int], np.dtype[np.int64]]
    holdings_pnl: FloatArray
    hedge_pnl: FloatArray
    fees: FloatArray
    spread: FloatArray
    traded: FloatArray
    trades: np.ndarray[tuple[int], np.dtype[np.int64]]
    beta_delta: FloatArray
    true_beta_delta: FloatArray
    target: FloatArray
    band: FloatArray
    outside: BoolArray
    hedge_position: FloatArray
    premium: FloatArray

    @classmethod
    def empty(cls, t: int, k: int) -> _Buffers:
        return cls(
            time_ms=np.zeros(t, np.int64),
            holdings_pnl=np.zeros(t),
            hedge_pnl=np.zeros(t),
            fees=np.zeros(t),
            spread=np.zeros(t),
            traded=np.zeros(t),
            trades=np.zeros(t, np.int64),
            beta_delta=np.full((t, k), np.nan),
            true_beta_delta=np.full((t, k), np.nan),
            target=np.full((t, k), np.nan),
            band=np.full((t, k), np.nan),
            outside=np.zeros((t, k), np.bool_),
            hedge_position=np.zeros((t, k)),
            premium=np.zeros(t),
        )

    def series(self, refusals: int) -> RunSeries:
        return RunSeries(
            time_ms=self.time_ms,
            holdings_pnl_usd=self.holdings_pnl,
            hedge_pnl_usd=self.hedge_pnl,
            fees_usd=self.fees,
            spread_cost_usd=self.spread,
            traded_usd=self.traded,
            trades=self.trades,
            beta_delta=self.beta_delta,
            true_beta_delta=self.true_beta_delta,
            target=self.target,
            band_half_width=self.band,
            outside_band=self.outside,
            hedge_position=self.hedge_position,
            refusals=refusals,
        )
