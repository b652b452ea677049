"""Positions x market x factor loadings -> the portfolio's exposure to K market factors.

Conventions (every figure in USD unless its name says otherwise):

- ``delta_usd`` of a position is dV/du, the USD change per unit *relative* move u of its
  underlying (linearised): spot and linear contracts ``qty * size * price``; inverse
  perps/futures ``qty * face`` (their USD P&L ``face * (P/P0 - 1)`` is linear in P); options
  ``qty * size * delta * F`` with F the option's underlying (forward) price, which moves in
  proportion to the index. Coin delta is ``delta_usd / asset price``.
- ``cash_gamma_usd`` is d2V/du2 = ``qty * size * gamma * F**2`` (zero for delta-one).
- Loadings B (assets x K): asset log-return = B . factor log-returns (+ idiosyncratic).

Factor deltas and the factor-gamma matrix follow from the chain rule. Let x_k be factor k's
log-return and u_k = exp(x_k) - 1 its relative move. For one asset with delta D1 = dV/du_a
and cash gamma D2 = d2V/du_a2 (both at u_a = 0) and u_a = exp(B . x) - 1:

    dV/dx_k          = B_k D1
    d2V/dx_k dx_l    = B_k B_l (D2 + D1)
    dV/du_k          = B_k D1                                     (dx/du = 1 at 0)
    d2V/du_k du_l    = B_k B_l (D2 + D1) - [k == l] B_k D1        (d2x/du2 = -1 at 0)

With one factor this is the log-return model's beta-gamma ``beta^2 Gamma S^2 +
beta (beta - 1) Delta S`` per unit squared relative move of the factor; for a factor asset
(B = e_k) it reduces to its own cash gamma. Summing over assets gives the K x K factor-gamma
matrix ``B^T diag(D1 + D2) B - diag(B^T D1)``, whose diagonal is reported per factor.

The hot path is struct-of-arrays: the Greeks of every option in one fused Black-76 kernel
that returns only what is summed, then one segmented sum and a few dot products aggregate
every row into assets and factors. Everything constant between position changes (strike,
call/put sign, the rows' order by asset) is precomputed in the Book.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hedger.core.instruments import Instrument, Kind
from hedger.core.pricing import DAYS_PER_YEAR, MS_PER_YEAR, VOL_POINT, black76_kernel

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]

_MS_PER_YEAR = np.array(float(MS_PER_YEAR))  # 0-d: no conversion per call


@dataclass(slots=True, frozen=True)
class Position:
    instrument: Instrument
    qty: float
    entry_price: float | None = None


@dataclass(slots=True, frozen=True)
class Book:
    """Positions as columns, built once per position change, read on every tick.

    Delta-one rows are linear in their mark, so their USD delta and value are precomputed
    as ``a * mark + b``; option rows carry their terms in option-only columns.
    """

    symbols: tuple[str, ...]
    assets: tuple[str, ...]
    asset_of: IntArray
    size: FloatArray
    """qty * contract_size: coin units (linear, options) or USD face (inverse delta-one)."""
    delta_per_mark: FloatArray
    delta_fixed: FloatArray
    value_per_mark: FloatArray
    value_fixed: FloatArray
    value_fixed_total: float
    option_rows: IntArray
    option_strike: FloatArray
    option_expiry_ms: FloatArray
    option_is_call: BoolArray
    option_size: FloatArray
    option_inverse: BoolArray
    option_asset_of: IntArray
    option_omega: FloatArray
    """+1 for calls, -1 for puts."""
    option_min_expiry_ms: float
    aggregation_order: IntArray
    aggregation_starts: IntArray
    aggregation_bins: IntArray
    """The rows' USD deltas followed by the options' cash gammas, taken in
    ``aggregation_order``, are runs per bin (asset, then ``n_assets`` + asset): one
    ``add.reduceat`` at ``aggregation_starts`` sums both per asset, in row order like a
    bincount, at half its cost (a bincount rescans its index on every call)."""

    @property
    def n_rows(self) -> int:
        return len(self.symbols)


def build_book(positions: Sequence[Position], assets: Sequence[str] = ()) -> Book:
    """Columns for ``positions``; ``assets`` fixes the asset order (more are appended)."""
    asset_list = list(dict.fromkeys([*assets, *(p.instrument.underlying for p in positions)]))
    index = {asset: i for i, asset in enumerate(asset_list)}
    n = len(positions)
    instruments = [p.instrument for p in positions]
    asset_of = np.fromiter((index[i.underlying] for i in instruments), np.intp, n)
    size = np.fromiter((p.qty * p.instrument.contract_size for p in positions), np.float64, n)
    is_option = np.fromiter((i.kind is Kind.OPTION for i in instruments), np.bool_, n)
    inverse = np.fromiter((i.inverse for i in instruments), np.bool_, n)
    margined = np.fromiter((i.kind in (Kind.PERP, Kind.FUTURE) for i in instruments), np.bool_, n)
    entry = np.fromiter(
        (np.nan if p.entry_price is None else p.entry_price for p in positions), np.float64, n
    )
    delta_one = ~is_option
    linear = delta_one & ~inverse
    known_entry = margined & ~np.isnan(entry)
    safe_entry = np.where(known_entry, entry, 1.0)
    # Linear P&L is P - entry per coin; inverse P&L is P/entry - 1 per USD of face (the coin
    # P&L face * (1/entry - 1/P) valued at P). Unknown entry: no P&L in NAV.
    value_per_mark = np.where(margined & inverse, size / safe_entry, np.where(delta_one, size, 0.0))
    value_per_mark = np.where(margined & ~known_entry, 0.0, value_per_mark)
    value_fixed = np.where(known_entry, np.where(inverse, -size, -size * safe_entry), 0.0)
    opt = np.flatnonzero(is_option)
    is_call = np.fromiter((bool(instruments[i].is_call) for i in opt), np.bool_, len(opt))
    expiry_ms = _column([instruments[i] for i in opt], "expiry_ms")
    bin_of = np.concatenate([asset_of, asset_of[opt] + len(asset_list)])
    order = np.argsort(bin_of, kind="stable")
    bins, starts = np.unique(bin_of[order], return_index=True)
    return Book(
        symbols=tuple(i.symbol for i in instruments),
        assets=tuple(asset_list),
        asset_of=asset_of,
        size=size,
        delta_per_mark=np.where(linear, size, 0.0),
        delta_fixed=np.where(delta_one & inverse, size, 0.0),
        value_per_mark=value_per_mark,
        value_fixed=value_fixed,
        value_fixed_total=float(value_fixed.sum()),
        option_rows=opt,
        option_strike=_column([instruments[i] for i in opt], "strike"),
        option_expiry_ms=expiry_ms,
        option_is_call=is_call,
        option_size=size[opt],
        option_inverse=inverse[opt],
        option_asset_of=asset_of[opt],
        option_omega=np.where(is_call, 1.0, -1.0),
        # NaN (an option without an expiry) compares false: the clamp stays on.
        option_min_expiry_ms=float(expiry_ms.min()) if len(opt) else np.inf,
        aggregation_order=order,
        aggregation_starts=starts,
        aggregation_bins=bins,
    )


def _column(instruments: Sequence[Instrument], name: str) -> FloatArray:
    values = (getattr(i, name) for i in instruments)
    return np.fromiter(
        (np.nan if v is None else float(v) for v in values), np.float64, len(instruments)
    )


@dataclass(slots=True, frozen=True)
class Quotes:
    """Market inputs aligned with a Book: per row and per asset."""

    mark: FloatArray
    """per row: the instrument's own price in USD (ignored for options)."""
    underlying_price: FloatArray
    """per row: options' underlying (forward) price, Deribit's ``underlying_price``."""
    implied_vol: FloatArray
    """per row: options' mark IV as a fraction; NaN for delta-one rows."""
    asset_price: FloatArray
    """per asset: index/spot price in USD."""


@dataclass(slots=True, frozen=True)
class Exposure:
    """What the engine decides on (fields) and what operators read (derived properties,
    computed only when read, so that a tick pays for none of them)."""

    factors: tuple[str, ...]
    assets: tuple[str, ...]
    # per position row
    delta_usd: FloatArray
    value_usd: FloatArray
    # per option (aligned with ``Book.option_rows``)
    option_price_usd: FloatArray
    option_delta: FloatArray
    option_forward: FloatArray
    option_size: FloatArray
    option_inverse: BoolArray
    # per asset
    asset_price: FloatArray
    asset_delta_usd: FloatArray
    asset_cash_gamma_usd: FloatArray
    loadings: FloatArray
    # portfolio
    factor_price: FloatArray
    beta_delta_usd: FloatArray
    factor_gamma_usd: FloatArray
    """K x K: d2V/du_k du_l in USD per unit squared relative factor move."""
    vega_usd: float
    """USD per 1 vol point on every option at once."""
    theta_usd: float
    """USD per calendar day."""
    nav_usd: float

    @property
    def beta_delta(self) -> FloatArray:
        """Per factor, in that factor's units (e.g. BTC)."""
        return self.beta_delta_usd / self.factor_price

    @property
    def gamma_usd_per_pct(self) -> FloatArray:
        """Per factor: change of the USD beta-delta for a 1% factor move."""
        return 0.01 * self.factor_gamma_usd.diagonal()

    @property
    def gamma_per_usd(self) -> FloatArray:
        """Per factor: change of the beta-delta, in factor units, for a 1 USD factor move."""
        return self.factor_gamma_usd.diagonal() / (self.factor_price * self.factor_price)

    @property
    def portfolio_beta(self) -> FloatArray:
        """Per factor: beta_delta_usd / net liquidation value (NaN without positive NAV)."""
        if self.nav_usd > 0:
            return self.beta_delta_usd / self.nav_usd
        return np.full(len(self.factors), np.nan)

    @property
    def asset_delta_coin(self) -> FloatArray:
        return self.asset_delta_usd / self.asset_price

    @property
    def asset_factor_delta_usd(self) -> FloatArray:
        """(assets x K): each asset's contribution to each factor's beta-delta."""
        return self.loadings * self.asset_delta_usd[:, None]

    @property
    def premium_adjusted_delta_coin(self) -> FloatArray:
        """Inverse options' delta measured in coin (Deribit's account convention); NaN if
        linear."""
        adjusted = self.option_size * (
            self.option_delta - self.option_price_usd / self.option_forward
        )
        return np.where(self.option_inverse, adjusted, np.nan)


def exposure(
    book: Book,
    quotes: Quotes,
    loadings: FloatArray,
    factor_assets: IntArray,
    now_ms: int,
) -> Exposure:
    """Exposure of ``book`` to the factors, given ``loadings`` (assets x K).

    ``factor_assets[k]`` is the index in ``book.assets`` of factor k's own asset, whose price
    converts factor USD to factor units.
    """
    mark = quotes.mark
    n_assets, n_rows = len(book.assets), book.n_rows
    opt = book.option_rows
    forward = quotes.underlying_price.take(opt)
    t_years = book.option_expiry_ms - float(now_ms)
    t_years /= _MS_PER_YEAR
    price, delta, f_pdf, std, rates = black76_kernel(
        forward,
        book.option_strike,
        t_years,
        quotes.implied_vol.take(opt),
        book.option_omega,
        min_t_positive=now_ms < book.option_min_expiry_ms,
    )
    # Row USD deltas, then option cash gammas size F^2 gamma = size f_pdf / std, in one
    # buffer for one reduction.
    summed = np.empty(n_rows + len(opt))
    delta_usd, cash_gamma = summed[:n_rows], summed[n_rows:]
    np.multiply(book.delta_per_mark, mark, delta_usd)
    delta_usd += book.delta_fixed
    size_f = book.option_size * forward
    delta_usd[opt] = size_f * delta
    size_pdf = np.multiply(book.option_size, f_pdf, cash_gamma)
    vega_theta = rates @ size_pdf
    cash_gamma /= std
    per_asset = np.zeros(2 * n_assets)
    per_asset[book.aggregation_bins] = np.add.reduceat(
        summed.take(book.aggregation_order), book.aggregation_starts
    )
    d1, d2 = per_asset[:n_assets], per_asset[n_assets:]
    value_usd = book.value_per_mark * mark
    value_usd += book.value_fixed
    value_usd[opt] = book.option_size * price
    nav = float(value_usd.sum())

    beta_delta_usd = loadings.T @ d1
    factor_gamma = (loadings.T * (d1 + d2)) @ loadings
    factor_gamma.flat[:: len(beta_delta_usd) + 1] -= beta_delta_usd
    return Exposure(
        factors=tuple([book.assets[i] for i in factor_assets.tolist()]),
        assets=book.assets,
        delta_usd=delta_usd,
        value_usd=value_usd,
        option_price_usd=price,
        option_delta=delta,
        option_forward=forward,
        option_size=book.option_size,
        option_inverse=book.option_inverse,
        asset_price=quotes.asset_price,
        asset_delta_usd=d1,
        asset_cash_gamma_usd=d2,
        loadings=loadings,
        factor_price=quotes.asset_price.take(factor_assets),
        beta_delta_usd=beta_delta_usd,
        factor_gamma_usd=factor_gamma,
        vega_usd=VOL_POINT * float(vega_theta[0]),
        theta_usd=-0.5 / DAYS_PER_YEAR * float(vega_theta[1]),
        nav_usd=nav,
    )
