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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np

from hedger.backtest.tape import FloatArray, Tape
from hedger.config import Config
from hedger.config.beta_setup import make_beta_book
from hedger.core import guards
from hedger.core.cycle import CycleInputs, CycleState, MarketInputs, step
from hedger.core.exposure import build_book
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
    tape: Tape, cfg: Config, betas: BetaSource = BetaSource.ESTIMATED, warmup_bars: int = 0
) -> RunSeries:
    """Hedge ``cfg``'s holdings on ``tape``; the first ``warmup_bars`` only feed the betas
    (the live engine's warm start), trading and measuring start after them. Every other bar
    is one ``core.cycle.step``, the live engine's own."""
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
    hedge_qty = np.zeros(k)
    book = build_book(positions, layout.assets)
    state = CycleState(beta_book, guards.initial_state(params.limits, int(tape.time_ms[0])))
    start = min(max(warmup_bars, 0), len(tape) - 1)
    out = _Buffers.empty(len(tape) - start, k)
    nav_before = math.nan
    refusals = 0
    intents: list[IntentRecord] = []
    for bar in range(len(tape)):
        now_ms = int(tape.time_ms[bar])
        quotes = tape.quotes(bar)
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
        )
        state, cycle = step(state, inputs, params)
        result = cycle.exposure
        hedge_mark = tape.hedge_mark[bar]
        out.time_ms[i] = now_ms
        if i:
            out.holdings_pnl[i] = result.nav_usd - nav_before
            out.hedge_pnl[i] = _hedge_pnl(
                hedge_qty * size, inverse, tape.hedge_mark[bar - 1], hedge_mark
            )
        nav_before = result.nav_usd
        for decision in cycle.decisions:
            j = layout.factors.index(decision.factor)
            out.target[i, j] = decision.target
            out.band[i, j] = decision.band_half_width
            out.outside[i, j] = decision.action in (Action.HEDGE, Action.SKIP) and (
                abs(decision.deviation) > decision.band_half_width
            )
        traded = np.zeros(k)
        checked = cycle.checked
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
        if traded.any():
            for j, row in enumerate(layout.hedge_rows):
                positions[row] = replace(positions[row], qty=float(hedge_qty[j]))
            book = build_book(positions, layout.assets)
        factor_price = result.factor_price
        moved_usd = np.where(inverse, traded * size, traded * size * hedge_mark)
        out.beta_delta[i] = (result.beta_delta_usd + moved_usd) / factor_price
        if tape.true_loadings is not None:
            true_usd = tape.true_loadings[bar].T @ result.asset_delta_usd
            out.true_beta_delta[i] = (true_usd + moved_usd) / factor_price
        out.hedge_position[i] = hedge_qty
    return replace(out.series(refusals), intents=tuple(intents))


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
