"""Black-76 prices, Greeks and implied vols, vectorised, in Deribit's units and conventions.

Crypto options are priced on the forward with r = 0: Deribit quotes Greeks on each ticker's
``underlying_price`` (the future of the option's expiry, or a synthetic one), with

- ``delta``: dV/dF (dimensionless);
- ``gamma``: d2V/dF2, per 1 unit of the underlying's price;
- ``vega``: dV/dsigma for one vol point (0.01);
- ``theta``: dV/dt per calendar day (ACT/365), negative for a long option.

Prices are in the forward's currency (USD). An inverse (coin-settled) option's mark in coin
is ``usd_price / underlying_price``; its delta measured in coin is the premium-adjusted
``delta - usd_price / underlying_price``. Linear (USDC) options are priced per unit of the
underlying; the position multiplies by its contract size.

Numerics: the out-of-the-money price is computed directly, ``F N(d1) - K N(d2)`` for the
call when K >= F and ``K N(-d2) - F N(-d1)`` for the put when K < F; the in-the-money one
adds the intrinsic value (put-call parity), so deep wings keep their relative precision.
``scipy.special.ndtr`` gives the normal CDF to full relative precision in the tails.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

from hedger.core.units import DAY_MS, YEAR_MS

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

DERIBIT_EXPIRY_HOUR_UTC = 8
MS_PER_DAY = DAY_MS
MS_PER_YEAR = YEAR_MS
DAYS_PER_YEAR = 365.0
VOL_POINT = 0.01
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)
# 0-d array operands: a Python float costs a conversion on every ufunc call, a fifth of a
# ufunc's cost on a thousand options.
_ZERO, _HALF, _ONE = np.array(0.0), np.array(0.5), np.array(1.0)
_MINUS_HALF, _INV_SQRT_2PI_ARRAY = np.array(-0.5), np.array(_INV_SQRT_2PI)


@dataclass(slots=True, frozen=True)
class Black76:
    price: FloatArray
    delta: FloatArray
    gamma: FloatArray
    vega: FloatArray
    theta: FloatArray


def black76(
    forward: ArrayLike, strike: ArrayLike, t_years: ArrayLike, vol: ArrayLike, is_call: ArrayLike
) -> Black76:
    """Price and Greeks of European options on a forward (r = 0), elementwise.

    Expired options (t <= 0) and zero vol are worth their intrinsic value with no gamma,
    vega or theta; their delta is 1/0 (calls) or -1/0 (puts), and 1/2 at the money.
    """
    f, k, t, v, call = _as_arrays(forward, strike, t_years, vol, is_call)
    sqrt_t = np.sqrt(t)
    std = v * sqrt_t
    live = std > 0.0
    all_live = bool(live.all())
    if not all_live:  # keep the arithmetic finite; dead rows are overwritten below
        std = np.where(live, std, 1.0)
        sqrt_t = np.where(live, sqrt_t, 1.0)
    d1 = np.log(f / k)
    d1 /= std
    d1 += 0.5 * std
    d2 = d1 - std
    # s = +1 prices the OTM call (K >= F), -1 the OTM put (K < F): no cancellation in wings.
    s = (k >= f) * 2.0 - 1.0
    n_s_d1 = ndtr(s * d1)
    otm = f * n_s_d1
    otm -= k * ndtr(s * d2)
    otm *= s
    omega = call * 2.0 - 1.0
    intrinsic = np.maximum(omega * (f - k), 0.0)
    price = np.maximum(otm, 0.0)
    price += intrinsic
    f_pdf = np.exp(-0.5 * d1 * d1)
    f_pdf *= f * _INV_SQRT_2PI
    # N(omega d1) from N(s d1): the same when omega == s, its complement otherwise.
    delta = np.where(omega == s, n_s_d1, 1.0 - n_s_d1)
    delta *= omega
    gamma = f_pdf / (f * f * std)
    vega = f_pdf * sqrt_t
    theta = vega * v
    vega *= VOL_POINT
    theta *= (
        -0.5 / (t * DAYS_PER_YEAR) if all_live else -0.5 / (np.where(live, t, 1.0) * DAYS_PER_YEAR)
    )
    if not all_live:
        dead = ~live
        price[dead] = intrinsic[dead]
        delta[dead] = _expired_delta(f[dead], k[dead], call[dead])
        gamma[dead] = vega[dead] = theta[dead] = 0.0
    return Black76(price=price, delta=delta, gamma=gamma, vega=vega, theta=theta)


def black76_kernel(
    forward: FloatArray,
    strike: FloatArray,
    t_years: FloatArray,
    vol: FloatArray,
    omega: FloatArray,
    min_t_positive: bool = False,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """What a portfolio aggregation needs of :func:`black76`, for 1-d float64 arrays of one
    length, with ``omega`` = +1 for calls and -1 for puts.

    Returns ``(price, delta, f_pdf, std, rates)``: the price and delta as :func:`black76`
    gives them (to rounding), ``f_pdf`` = F phi(d1) (0 for expired or zero-vol options),
    ``std`` = sigma sqrt(t) and ``rates`` = ``[sqrt(t), std / t]`` (both 1 where dead). From
    them gamma = f_pdf / (F^2 std), vega = 0.01 f_pdf sqrt(t) and theta =
    -f_pdf (std / t) / 730: a caller that only sums them needs no per-option arrays.
    ``min_t_positive`` promises every ``t_years`` > 0, sparing a clamp.

    The per-tick cost of a few thousand options is mostly per-call numpy overhead, so the
    arithmetic is arranged for few calls, each writing into one preallocated block rather
    than a fresh temporary.
    """
    n = forward.shape[0]
    block = np.empty((8, n))
    rates, std, sd, tmp, s = block[0:2], block[2], block[3:5], block[5], block[6]
    sqrt_t, std_per_t = rates[0], rates[1]
    t = t_years if min_t_positive else np.maximum(t_years, 0.0)
    mul, div = np.multiply, np.divide
    np.sqrt(t, sqrt_t)
    mul(vol, sqrt_t, std)
    dead: BoolArray | None = None
    if n and not std.min() > 0.0:  # NaN vols land here too, and are priced as expired
        dead = ~(std > 0.0)
        std[dead] = sqrt_t[dead] = 1.0
        t = np.where(dead, 1.0, t)
    d1, d2 = sd[0], sd[1]
    div(forward, strike, d1)
    np.log(d1, d1)
    div(d1, std, d1)
    mul(std, _HALF, tmp)
    d1 += tmp
    np.subtract(d1, std, d2)
    # s = +1 prices the OTM call (K >= F), -1 the OTM put (K < F): no cancellation in wings.
    diff = np.subtract(strike, forward)
    np.copysign(_ONE, diff, s)
    mul(d1, s, d1)
    mul(d2, s, d2)
    # phi(d1) from s d1: the square forgets the sign.
    f_pdf = mul(d1, _MINUS_HALF)
    f_pdf *= d1
    np.exp(f_pdf, f_pdf)
    mul(forward, _INV_SQRT_2PI_ARRAY, tmp)
    f_pdf *= tmp
    ndtr(sd, sd)
    price = mul(forward, d1)
    mul(strike, d2, tmp)
    price -= tmp
    price *= s
    np.maximum(price, _ZERO, out=price)
    # intrinsic = max(omega (F - K), 0) = -min(omega (K - F), 0)
    mul(diff, omega, diff)
    np.minimum(diff, _ZERO, out=diff)
    price -= diff
    # delta = omega N(omega d1) = s N(s d1) + (omega - s) / 2, exactly in floating point.
    delta = mul(d1, s)
    np.subtract(omega, s, tmp)
    tmp *= _HALF
    delta += tmp
    div(std, t, std_per_t)
    if dead is not None:
        call = omega[dead] > 0.0
        f, k = forward[dead], strike[dead]
        price[dead] = intrinsic_value(f, k, call)
        delta[dead] = _expired_delta(f, k, call)
        f_pdf[dead] = 0.0
    return price, delta, f_pdf, std, rates


def _as_arrays(
    forward: ArrayLike, strike: ArrayLike, t_years: ArrayLike, vol: ArrayLike, is_call: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, BoolArray]:
    f = np.asarray(forward, np.float64)
    k = np.asarray(strike, np.float64)
    t = np.maximum(np.asarray(t_years, np.float64), 0.0)
    v = np.asarray(vol, np.float64)
    call = np.asarray(is_call, np.bool_)
    if f.shape == k.shape == t.shape == v.shape == call.shape:
        return f, k, t, v, call
    f, k, t, v, call = np.broadcast_arrays(f, k, t, v, call)
    return f, k, t, v, call


def _expired_delta(f: FloatArray, k: FloatArray, call: BoolArray) -> FloatArray:
    itm = np.where(call, f > k, f < k).astype(np.float64)
    at_the_money = np.where(f == k, 0.5, itm)
    return np.where(call, at_the_money, -at_the_money)


def intrinsic_value(forward: ArrayLike, strike: ArrayLike, is_call: ArrayLike) -> FloatArray:
    f, k = np.asarray(forward, np.float64), np.asarray(strike, np.float64)
    return np.maximum(np.where(np.asarray(is_call, np.bool_), f - k, k - f), 0.0)


def deribit_theta(
    greeks: Black76, forward: ArrayLike, strike: ArrayLike, is_call: ArrayLike
) -> FloatArray:
    """Theta as Deribit reports it: the 1-day theta, unless the option has less time value
    left than that, in which case all of it (the remaining-life theta). The two differ
    inside the last day, where the analytic rate grows like 1/sqrt(t) but an option can
    lose no more than its time value before it expires."""
    time_value = greeks.price - intrinsic_value(forward, strike, is_call)
    return np.maximum(greeks.theta, -np.maximum(time_value, 0.0))


def premium_adjusted_delta(
    delta: ArrayLike, price_usd: ArrayLike, underlying_price: ArrayLike
) -> FloatArray:
    """Delta of an inverse option measured in coin (Deribit's account ``delta_total``): the
    coin premium itself moves against the holder as the coin's price rises."""
    return np.asarray(delta, np.float64) - np.asarray(price_usd, np.float64) / np.asarray(
        underlying_price, np.float64
    )


def coin_price(price_usd: ArrayLike, underlying_price: ArrayLike) -> FloatArray:
    """An inverse option's mark in coin, as Deribit quotes it."""
    return np.asarray(price_usd, np.float64) / np.asarray(underlying_price, np.float64)


# --- time ------------------------------------------------------------------------------------


def year_fraction(now_ms: ArrayLike, expiry_ms: ArrayLike) -> FloatArray:
    """ACT/365 years from ``now_ms`` to ``expiry_ms`` (epoch ms), never negative."""
    span = np.asarray(expiry_ms, np.float64) - np.asarray(now_ms, np.float64)
    return np.maximum(span, 0.0) / MS_PER_YEAR


def deribit_expiry_ms(year: int, month: int, day: int) -> int:
    """Deribit options and futures expire at 08:00 UTC on their expiry date."""
    return int(datetime(year, month, day, DERIBIT_EXPIRY_HOUR_UTC, tzinfo=UTC).timestamp() * 1000)


# --- implied volatility ----------------------------------------------------------------------


class IVReason(IntEnum):
    OK = 0
    BELOW_INTRINSIC = 1
    ABOVE_MAX = 2
    EXPIRED = 3
    BAD_INPUT = 4
    NO_CONVERGENCE = 5
    NOT_IDENTIFIABLE = 6
    """the price's own rounding moves the vol by more than ``VOL_RESOLUTION``."""


@dataclass(slots=True, frozen=True)
class ImpliedVol:
    vol: FloatArray
    """NaN where no vol reproduces the price; ``reason`` says why."""
    reason: NDArray[np.int8]


VOL_RESOLUTION = 1e-6
_EPS = float(np.finfo(np.float64).eps)
_MAX_STD = 40.0  # total std sigma*sqrt(t); past it a price is indistinguishable from its bound
_ITERATIONS = 100
_REL_TOL = 1e-13


def _otm_price_and_vega(
    x: FloatArray, f: FloatArray, k: FloatArray, s: FloatArray, std: FloatArray
) -> tuple[FloatArray, FloatArray]:
    d1 = x / std + 0.5 * std
    d2 = d1 - std
    price = s * (f * ndtr(s * d1) - k * ndtr(s * d2))
    dprice_dstd = f * _INV_SQRT_2PI * np.exp(-0.5 * d1 * d1)
    return price, dprice_dstd


def implied_vol(
    price: ArrayLike, forward: ArrayLike, strike: ArrayLike, t_years: ArrayLike, is_call: ArrayLike
) -> ImpliedVol:
    """Black-76 implied vol, elementwise, or NaN with a reason.

    Solves on the out-of-the-money price (ITM prices lose their intrinsic value first) for
    the total standard deviation, by Newton steps on log-price (which stay well scaled in
    the wings, where vega vanishes) kept inside a shrinking bracket, bisecting whenever a
    step would leave it.
    """
    p, f, k, t = np.broadcast_arrays(
        np.asarray(price, np.float64),
        np.asarray(forward, np.float64),
        np.asarray(strike, np.float64),
        np.asarray(t_years, np.float64),
    )
    shape = p.shape
    call: BoolArray = np.broadcast_to(np.asarray(is_call, np.bool_), shape).ravel()
    p, f, k, t = p.ravel(), f.ravel(), k.ravel(), t.ravel()
    reason = np.zeros(p.shape, np.int8)
    vol = np.full(p.shape, np.nan)

    bad = (
        ~(np.isfinite(p) & np.isfinite(f) & np.isfinite(k) & np.isfinite(t))
        | (f <= 0)
        | (k <= 0)
        | (p < 0)
    )
    reason[bad] = IVReason.BAD_INPUT
    expired = ~bad & (t <= 0)
    reason[expired] = IVReason.EXPIRED
    intrinsic = np.maximum(np.where(call, f - k, k - f), 0.0)
    upper = np.where(call, f, k)
    ok = ~bad & ~expired
    below = ok & (p < intrinsic * (1 - 1e-15))
    reason[below] = IVReason.BELOW_INTRINSIC
    above = ok & ~below & (p >= upper)
    reason[above] = IVReason.ABOVE_MAX
    todo = ok & ~below & ~above
    # At its intrinsic value to rounding, any small enough vol reproduces a price.
    at_intrinsic = todo & (p <= intrinsic)
    reason[at_intrinsic] = IVReason.NOT_IDENTIFIABLE
    todo &= ~at_intrinsic

    idx = np.flatnonzero(todo)
    if idx.size:
        solved, converged, vega = _solve_std(p[idx] - intrinsic[idx], f[idx], k[idx])
        sqrt_t = np.sqrt(t[idx])
        # A price known to half an ulp pins the vol only to eps * price / vega.
        with np.errstate(divide="ignore"):
            vol_noise = 2.0 * _EPS * p[idx] / (vega * sqrt_t)
        identifiable = vol_noise <= VOL_RESOLUTION
        good = converged & identifiable
        vol[idx] = np.where(good, solved / sqrt_t, np.nan)
        reason[idx] = np.where(
            ~identifiable,
            IVReason.NOT_IDENTIFIABLE,
            np.where(converged, IVReason.OK, IVReason.NO_CONVERGENCE),
        )
    return ImpliedVol(vol=vol.reshape(shape), reason=reason.reshape(shape))


def _solve_std(
    target: FloatArray, f: FloatArray, k: FloatArray
) -> tuple[FloatArray, BoolArray, FloatArray]:
    x = np.log(f / k)
    s = np.where(k >= f, 1.0, -1.0)
    lo = np.zeros_like(target)
    hi = np.full_like(target, _MAX_STD)
    # Start at the inflection point of price in std, sqrt(2|x|), where Newton is safest.
    std = np.clip(np.sqrt(2.0 * np.abs(x)), 0.05, _MAX_STD / 2)
    log_target = np.log(target)
    converged = np.zeros(target.shape, np.bool_)
    hi_price, _ = _otm_price_and_vega(x, f, k, s, hi)
    unreachable = target >= hi_price
    for _ in range(_ITERATIONS):
        value, vega = _otm_price_and_vega(x, f, k, s, std)
        too_high = value > target
        hi = np.where(too_high, std, hi)
        lo = np.where(too_high, lo, std)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = (np.log(value) - log_target) * value / vega
        candidate = std - step
        inside = np.isfinite(candidate) & (candidate > lo) & (candidate < hi)
        new_std = np.where(inside, candidate, 0.5 * (lo + hi))
        done = np.abs(new_std - std) <= _REL_TOL * new_std
        std = np.where(converged, std, new_std)
        converged |= done
        if converged.all():
            break
    value, vega = _otm_price_and_vega(x, f, k, s, std)
    residual_ok = np.abs(value - target) <= 1e-9 * target
    return std, converged & residual_ok & ~unreachable, vega
