"""Option candidates for a factor's hedge: the live chain, filtered, with per-contract Greeks
projected onto the factors and a cost.

Greeks are the core's own (:func:`hedger.core.pricing.black76_kernel`, the kernel
:func:`hedger.core.exposure.exposure` prices the book with), in Deribit's units on each
option's ``underlying_price`` F and ``mark_iv``. Per contract (one unit of the venue's order
amount, ``contract_size`` coins of the underlying):

- USD delta ``D1 = size * delta * F`` for a linear option. Buying an inverse option pays its
  premium in coin, which leaves the coin balance the book counts as spot, so its effect on the
  book is the *premium-adjusted* delta (:func:`hedger.core.pricing.premium_adjusted_delta`):
  ``D1 = size * (delta - price_usd / F) * F``;
- cash gamma ``D2 = size * gamma * F**2`` (USD per unit squared relative move);
- vega ``size * vega`` (USD per vol point).

They are projected onto factor k through the book's loadings B (the option's underlying's
row), with the chain rule :mod:`hedger.core.exposure` documents for the book: beta-delta
``B_k D1`` and factor gamma ``B_k**2 (D1 + D2) - B_k D1``, so a candidate moves the book's
factor Greeks by exactly what it would add as a position (``test_option_candidates``
checks this against ``exposure()``). Vega counts toward a factor only for options on the
factor's own asset: a vol point of SOL is not a vol point of BTC.

Cost per contract is what crossing to the limit costs against mark: half the quoted spread
plus the taker fee, which on Deribit is a fraction of the underlying's notional capped at a
fraction of the premium (0.03% and 12.5% for options).

Prices come as the venue quotes them: in coin for inverse options (Deribit BTC and ETH), in
USD(C) for linear ones; ``price_usd = price * F`` for inverse ones (:func:`coin_price`'s
inverse).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hedger.core.exposure import Book, Quotes
from hedger.core.params import CandidateFilter
from hedger.core.pricing import MS_PER_DAY, MS_PER_YEAR, VOL_POINT, black76_kernel

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]

DERIBIT_OPTION_FEE_CAP = 0.125
"""Deribit caps an option's fee at 12.5% of its premium."""


@dataclass(slots=True, frozen=True)
class OptionChain:
    """The listed options as columns, one row per option: venue metadata, the latest quote,
    and what the hedge holds. Built by the driver (live: venue markets and ``MarketState``;
    backtest: the simulator).

    Prices (``mark``, ``bid``, ``ask``, ``price_tick``) are in the venue's price unit: coin for
    inverse options, USD(C) for linear ones; a missing side is NaN (or 0).
    """

    symbols: tuple[str, ...]
    underlying: tuple[str, ...]
    """each option's underlying asset (``BTC``)."""
    strike: FloatArray
    expiry_ms: FloatArray
    is_call: BoolArray
    inverse: BoolArray
    contract_size: FloatArray
    """coins of the underlying per unit of the venue's order amount."""
    amount_step: FloatArray
    min_amount: FloatArray
    taker_fee: FloatArray
    """a fraction of the underlying's notional (Deribit options: 0.0003)."""
    mark: FloatArray
    bid: FloatArray
    ask: FloatArray
    underlying_price: FloatArray
    """the forward F of each option's expiry, USD (Deribit's ``underlying_price``)."""
    mark_iv: FloatArray
    """a fraction (0.55), not Deribit's percent."""
    open_interest: FloatArray | None = None
    """in amount units; None or NaN: unknown."""
    hedge_amount: FloatArray | None = None
    """signed amount the hedge itself holds (what it bought or sold, not the operator's own
    options); None: nothing."""
    age_s: FloatArray | None = None
    """seconds since each quote was received; None: fresh."""
    price_tick: FloatArray | None = None
    fee_cap: FloatArray | None = None
    """the fee is at most this fraction of the premium; None: Deribit's 12.5%."""

    def __post_init__(self) -> None:
        n = len(self.symbols)
        for name in (
            "underlying",
            "strike",
            "expiry_ms",
            "is_call",
            "inverse",
            "contract_size",
            "amount_step",
            "min_amount",
            "taker_fee",
            "mark",
            "bid",
            "ask",
            "underlying_price",
            "mark_iv",
            "open_interest",
            "hedge_amount",
            "age_s",
            "price_tick",
            "fee_cap",
        ):
            column = getattr(self, name)
            if column is not None and len(column) != n:
                raise ValueError(f"option chain: {name} has {len(column)} rows, symbols {n}")

    def __len__(self) -> int:
        return len(self.symbols)

    def held(self) -> FloatArray:
        """The hedge's signed amount per row (zeros when not given)."""
        if self.hedge_amount is None:
            return np.zeros(len(self.symbols))
        return np.nan_to_num(self.hedge_amount.astype(np.float64), nan=0.0)

    def row_of(self, symbol: str) -> int:
        return self.symbols.index(symbol)


@dataclass(slots=True, frozen=True)
class ContractGreeks:
    """Per chain row in ``rows``, per contract (one amount unit), for one factor."""

    factor: str
    rows: IntArray
    symbols: tuple[str, ...]
    days_to_expiry: FloatArray
    delta: FloatArray
    """Black-76 delta, dimensionless (Deribit's)."""
    price_usd: FloatArray
    """model price per coin, USD."""
    premium_usd: FloatArray
    """the venue's mark per contract, USD."""
    beta_delta: FloatArray
    """change of the factor's beta-delta, factor units (premium-adjusted when inverse)."""
    beta_delta_usd: FloatArray
    """(n, K): change of every factor's beta-delta, USD."""
    gamma_usd_per_pct: FloatArray
    """change of the factor's gamma: USD of beta-delta per 1% factor move."""
    vega_usd: FloatArray
    """USD per vol point; 0 for an option on another asset than the factor's."""
    total_vega_usd: FloatArray
    """USD per vol point, whatever the underlying (the net-vega guard's measure)."""
    half_spread_usd: FloatArray
    fee_usd: FloatArray
    relative_spread: FloatArray

    @property
    def cost_usd(self) -> FloatArray:
        """Half spread plus fee: the cost of one contract against mark."""
        out: FloatArray = self.half_spread_usd + self.fee_usd
        return out

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, keep: IntArray | BoolArray) -> ContractGreeks:
        """The subset ``keep`` (indices or a mask into these rows)."""
        return ContractGreeks(
            factor=self.factor,
            rows=self.rows[keep],
            symbols=tuple(np.asarray(self.symbols, dtype=object)[keep].tolist()),
            days_to_expiry=self.days_to_expiry[keep],
            delta=self.delta[keep],
            price_usd=self.price_usd[keep],
            premium_usd=self.premium_usd[keep],
            beta_delta=self.beta_delta[keep],
            beta_delta_usd=self.beta_delta_usd[keep],
            gamma_usd_per_pct=self.gamma_usd_per_pct[keep],
            vega_usd=self.vega_usd[keep],
            total_vega_usd=self.total_vega_usd[keep],
            half_spread_usd=self.half_spread_usd[keep],
            fee_usd=self.fee_usd[keep],
            relative_spread=self.relative_spread[keep],
        )


@dataclass(slots=True, frozen=True)
class FactorFrame:
    """What projecting onto one factor needs: the book's assets and loadings, the factor."""

    assets: tuple[str, ...]
    loadings: FloatArray
    """(assets x K), the loadings the book's exposure used."""
    factors: tuple[str, ...]
    factor_prices: FloatArray
    """per factor, USD."""

    def index(self, factor: str) -> int:
        return self.factors.index(factor)


def contract_greeks(
    chain: OptionChain, rows: IntArray, frame: FactorFrame, factor: str, now_ms: int
) -> ContractGreeks:
    """Per-contract Greeks and cost of ``chain`` rows for ``factor`` (module docstring).

    Rows whose underlying has no loading (not an asset of the book) get NaN Greeks;
    :func:`option_candidates` drops them.
    """
    k = frame.index(factor)
    rows = np.asarray(rows, dtype=np.intp)
    forward = chain.underlying_price[rows].astype(np.float64)
    strike = chain.strike[rows].astype(np.float64)
    expiry = chain.expiry_ms[rows].astype(np.float64)
    t_years = (expiry - float(now_ms)) / float(MS_PER_YEAR)
    omega = np.where(chain.is_call[rows], 1.0, -1.0)
    vol = chain.mark_iv[rows].astype(np.float64)
    price, delta, f_pdf, std, rates = black76_kernel(forward, strike, t_years, vol, omega)
    size = chain.contract_size[rows].astype(np.float64)
    inverse = chain.inverse[rows]
    # The chain rule of exposure.py, per contract instead of summed per asset.
    d1 = size * np.where(inverse, delta * forward - price, delta * forward)
    d2 = size * f_pdf / std
    vega = VOL_POINT * size * f_pdf * rates[0]
    asset_ix = {a: i for i, a in enumerate(frame.assets)}
    underlying = [chain.underlying[int(r)] for r in rows]
    b_rows = np.full((len(rows), len(frame.factors)), np.nan)
    for i, name in enumerate(underlying):
        j = asset_ix.get(name)
        if j is not None:
            b_rows[i] = frame.loadings[j]
    b = b_rows[:, k]
    beta_delta_usd = b_rows * d1[:, None]
    gamma_usd = b * b * (d1 + d2) - b * d1
    own = np.array([name == factor for name in underlying], dtype=np.bool_)
    to_usd = np.where(inverse, forward, 1.0)
    bid, ask = chain.bid[rows], chain.ask[rows]
    two_sided = (bid > 0) & (ask > 0) & (ask >= bid)
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.where(two_sided, ask - bid, np.nan)
        relative = spread / (0.5 * (ask + bid))
    premium = chain.mark[rows] * to_usd * size
    cap = (
        np.full(len(rows), DERIBIT_OPTION_FEE_CAP)
        if chain.fee_cap is None
        else chain.fee_cap[rows].astype(np.float64)
    )
    fee = np.minimum(chain.taker_fee[rows] * forward * size, cap * premium)
    return ContractGreeks(
        factor=factor,
        rows=rows,
        symbols=tuple(chain.symbols[int(r)] for r in rows),
        days_to_expiry=(expiry - float(now_ms)) / float(MS_PER_DAY),
        delta=delta,
        price_usd=price,
        premium_usd=premium,
        beta_delta=beta_delta_usd[:, k] / frame.factor_prices[k],
        beta_delta_usd=beta_delta_usd,
        gamma_usd_per_pct=0.01 * gamma_usd,
        vega_usd=np.where(own, vega, 0.0),
        total_vega_usd=vega,
        half_spread_usd=0.5 * spread * to_usd * size,
        fee_usd=fee,
        relative_spread=relative,
    )


@dataclass(slots=True, frozen=True)
class Candidates:
    """The options a factor's hedge may trade this cycle, and why the others may not."""

    greeks: ContractGreeks
    excluded: tuple[tuple[str, int], ...]
    """(reason, how many rows) for every filter that removed rows, in filter order."""


def option_candidates(
    chain: OptionChain,
    flt: CandidateFilter,
    frame: FactorFrame,
    factor: str,
    now_ms: int,
    stale_after_s: float = math.inf,
    option_type: str | None = None,
) -> Candidates:
    """The chain's rows that pass ``flt`` for ``factor`` (``option_type``: "call", "put" or
    None for both), at most ``flt.max_candidates`` of them, taken in turn from each expiry
    (cheapest relative spread first) so that the solver sees several expiries: options of
    one expiry are nearly collinear in gamma and vega."""
    underlyings = set(flt.underlyings or (factor,))
    excluded: list[tuple[str, int]] = []
    keep = np.ones(len(chain), dtype=np.bool_)

    def drop(reason: str, bad: BoolArray) -> None:
        nonlocal keep
        removed = int((keep & bad).sum())
        if removed:
            excluded.append((reason, removed))
        keep &= ~bad

    drop("underlying", np.array([u not in underlyings for u in chain.underlying], np.bool_))
    if option_type is not None:
        drop(option_type, chain.is_call != (option_type == "call"))
    days = (chain.expiry_ms - float(now_ms)) / float(MS_PER_DAY)
    drop("expiry window", ~((days >= flt.min_days_to_expiry) & (days <= flt.max_days_to_expiry)))
    good_quote = (
        np.isfinite(chain.mark)
        & (chain.mark > 0)
        & (chain.underlying_price > 0)
        & (chain.mark_iv > 0)
        & np.isfinite(chain.mark_iv)
    )
    drop("no mark", ~good_quote)
    if chain.age_s is not None:
        drop("stale quote", ~(chain.age_s <= stale_after_s))
    oi = chain.open_interest
    if flt.min_open_interest > 0:
        drop(
            "open interest",
            np.ones(len(chain), np.bool_) if oi is None else ~(oi >= flt.min_open_interest),
        )
    rows = np.flatnonzero(keep)
    greeks = contract_greeks(chain, rows, frame, factor, now_ms)
    ok = np.ones(len(rows), dtype=np.bool_)
    for reason, bad in (
        ("no loading", ~np.isfinite(greeks.beta_delta)),
        ("spread", ~(greeks.relative_spread <= flt.max_relative_spread)),
        (
            "delta range",
            ~(
                (np.abs(greeks.delta) >= flt.min_abs_delta)
                & (np.abs(greeks.delta) <= flt.max_abs_delta)
            ),
        ),
    ):
        removed = int((ok & bad).sum())
        if removed:
            excluded.append((reason, removed))
        ok &= ~bad
    greeks = greeks.take(np.flatnonzero(ok))
    if len(greeks) > flt.max_candidates:
        excluded.append(("max_candidates", len(greeks) - flt.max_candidates))
        greeks = greeks.take(_across_expiries(greeks, chain, flt.max_candidates))
    return Candidates(greeks, tuple(excluded))


def _across_expiries(greeks: ContractGreeks, chain: OptionChain, limit: int) -> IntArray:
    """``limit`` rows, one expiry after the other in turn, each expiry's tightest first."""
    expiry = chain.expiry_ms[greeks.rows]
    queues = []
    for value in np.unique(expiry):
        members = np.flatnonzero(expiry == value)
        order = np.lexsort((greeks.rows[members], greeks.relative_spread[members]))
        queues.append(list(members[order]))
    picked: list[int] = []
    while len(picked) < limit and any(queues):
        for queue in queues:
            if queue and len(picked) < limit:
                picked.append(int(queue.pop(0)))
    return np.sort(np.array(picked, dtype=np.intp))


def book_vega_by_asset(book: Book, quotes: Quotes, now_ms: int) -> FloatArray:
    """Per asset of ``book``: its options' vega, USD per vol point (what ``exposure()`` sums
    into ``vega_usd``, kept apart by underlying)."""
    opt = book.option_rows
    out = np.zeros(len(book.assets))
    if not len(opt):
        return out
    t_years = (book.option_expiry_ms - float(now_ms)) / float(MS_PER_YEAR)
    _, _, f_pdf, _, rates = black76_kernel(
        quotes.underlying_price.take(opt),
        book.option_strike,
        t_years,
        quotes.implied_vol.take(opt),
        book.option_omega,
    )
    vega = VOL_POINT * book.option_size * f_pdf * rates[0]
    np.add.at(out, book.option_asset_of, vega)
    return out
