"""Speed of one full risk recompute (Black-76 Greeks + exposure), against vollib per option.

Portfolio: 1,000 options on BTC and ETH (inverse, Deribit-like chains) plus 100 delta-one
positions (spot alts, inverse and linear perps), K = 2 factors (BTC, ETH).

    .venv/bin/python benchmarks/bench_exposure.py [--iterations N]

Prints the median and p99 of one recompute with hedger's vectorised core, each on freshly
moved quotes, then the same work (price, delta, gamma, vega, theta for each option, then
the per-asset and factor aggregation of delta, cash gamma, vega, theta and NAV) done
position by position with vollib, and the ratio of medians.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import numpy as np
from vollib.black import black as vollib_black
from vollib.black.greeks import analytical as vollib_greeks

from hedger.core.exposure import Position, Quotes, build_book, exposure
from hedger.core.factors import factor_indices, prior_loadings
from hedger.core.instruments import Instrument, Kind

NOW_MS = 1_795_000_000_000
DAY_MS = 86_400_000
PRICES = {"BTC": 90_000.0, "ETH": 3_000.0}
QUOTE_POOL = 64
ALTS = ["SOL", "AVAX", "LINK", "DOGE", "ADA", "DOT", "ARB", "OP", "SUI", "APT"]


def build_portfolio(rng: np.random.Generator) -> tuple[list[Position], dict[str, float]]:
    prices = dict(PRICES)
    positions: list[Position] = []
    for i in range(1_000):
        underlying = "BTC" if i % 2 == 0 else "ETH"
        spot = prices[underlying]
        days = float(rng.choice([1, 2, 7, 14, 30, 60, 90, 180, 365]))
        strike = round(
            spot * float(np.exp(rng.normal(0.0, 0.25))), -2 if underlying == "BTC" else 0
        )
        inst = Instrument(
            f"{underlying}-{days:g}D-{strike:g}-{i}",
            Kind.OPTION,
            underlying,
            contract_size=1.0,
            inverse=True,
            strike=strike,
            expiry_ms=NOW_MS + int(days * DAY_MS),
            is_call=bool(i % 4 < 2),
        )
        positions.append(Position(inst, float(rng.normal(0.0, 5.0))))
    for i in range(100):
        alt = ALTS[i % len(ALTS)]
        prices.setdefault(alt, float(rng.uniform(0.1, 200.0)))
        if i % 3 == 0:
            inst = Instrument(f"{alt}-SPOT-{i}", Kind.SPOT, alt)
        elif i % 3 == 1:
            inst = Instrument(f"{alt}_USDC-PERPETUAL-{i}", Kind.PERP, alt, contract_size=0.1)
        else:
            inst = Instrument(
                f"{alt}-PERPETUAL-{i}", Kind.PERP, alt, contract_size=10.0, inverse=True
            )
        positions.append(Position(inst, float(rng.normal(0.0, 1_000.0)), entry_price=prices[alt]))
    return positions, prices


def hedger_recompute(positions: list[Position], prices: dict[str, float], vols: np.ndarray):  # type: ignore[no-untyped-def]
    """One recompute per call, each on the next of a pool of perturbed quotes (forwards and
    vols move every tick), so that nothing can be reused from the previous call."""
    factors = ("BTC", "ETH")
    book = build_book(positions, factors)
    asset_price = np.array([prices[a] for a in book.assets])
    row_price = asset_price[book.asset_of]
    rng = np.random.default_rng(7)
    pool = [Quotes(row_price, row_price, vols, asset_price)]
    for _ in range(QUOTE_POOL - 1):
        moved = asset_price * np.exp(rng.normal(0.0, 1e-3, len(asset_price)))
        rows = moved[book.asset_of]
        forward = rows * np.exp(rng.normal(0.0, 1e-4, len(rows)))
        pool.append(Quotes(rows, forward, vols * rng.uniform(0.99, 1.01, len(vols)), moved))
    loadings, _ = prior_loadings(book.assets, factors, {a: [0.8, 0.5] for a in ALTS})
    idx = factor_indices(book.assets, factors)
    quotes = itertools.cycle(pool)
    return lambda: exposure(book, next(quotes), loadings, idx, NOW_MS)


def vollib_recompute(positions: list[Position], prices: dict[str, float], vols: np.ndarray):  # type: ignore[no-untyped-def]
    factors = ("BTC", "ETH")
    loadings = {a: (0.8, 0.5) for a in ALTS} | {"BTC": (1.0, 0.0), "ETH": (0.0, 1.0)}

    def run() -> tuple[list[float], list[list[float]], float, float, float]:
        asset_d1: dict[str, float] = {}
        asset_d2: dict[str, float] = {}
        vega_total = theta_total = nav = 0.0
        for row, p in enumerate(positions):
            inst = p.instrument
            size = p.qty * inst.contract_size
            s = prices[inst.underlying]
            cash_gamma = 0.0
            if inst.kind is Kind.OPTION:
                flag = "c" if inst.is_call else "p"
                t = (inst.expiry_ms - NOW_MS) / (365 * DAY_MS)  # type: ignore[operator]
                sigma = float(vols[row])
                nav += size * vollib_black(flag, s, inst.strike, t, 0.0, sigma)
                delta = vollib_greeks.delta(flag, s, inst.strike, t, 0.0, sigma)
                gamma = vollib_greeks.gamma(flag, s, inst.strike, t, 0.0, sigma)
                vega_total += size * vollib_greeks.vega(flag, s, inst.strike, t, 0.0, sigma)
                theta_total += size * vollib_greeks.theta(flag, s, inst.strike, t, 0.0, sigma)
                delta_usd = size * delta * s
                cash_gamma = size * gamma * s * s
            elif inst.kind is Kind.SPOT:
                delta_usd = size * s
                nav += delta_usd
            elif inst.inverse:
                delta_usd = size
                nav += size * (s / p.entry_price - 1.0)  # type: ignore[operator]
            else:
                delta_usd = size * s
                nav += size * (s - p.entry_price)  # type: ignore[operator]
            asset_d1[inst.underlying] = asset_d1.get(inst.underlying, 0.0) + delta_usd
            asset_d2[inst.underlying] = asset_d2.get(inst.underlying, 0.0) + cash_gamma
        k_range = range(len(factors))
        beta_delta = [0.0 for _ in k_range]
        factor_gamma = [[0.0 for _ in k_range] for _ in k_range]
        for asset, d1 in asset_d1.items():
            b = loadings[asset]
            for k in k_range:
                beta_delta[k] += b[k] * d1
                for j in k_range:
                    factor_gamma[k][j] += b[k] * b[j] * (d1 + asset_d2[asset])
        for k in k_range:
            factor_gamma[k][k] -= beta_delta[k]
        return beta_delta, factor_gamma, vega_total, theta_total, nav

    return run


def time_calls(fn, iterations: int) -> list[float]:  # type: ignore[no-untyped-def]
    samples = []
    clock = time.perf_counter_ns
    for _ in range(iterations):
        start = clock()
        fn()
        samples.append((clock() - start) / 1_000.0)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20_000)
    parser.add_argument("--vollib-iterations", type=int, default=20)
    args = parser.parse_args()

    rng = np.random.default_rng(42)
    positions, prices = build_portfolio(rng)
    vols = np.where(
        [p.instrument.kind is Kind.OPTION for p in positions],
        rng.uniform(0.35, 1.2, len(positions)),
        np.nan,
    )
    fast = hedger_recompute(positions, prices, vols)
    slow = vollib_recompute(positions, prices, vols)

    ours, theirs = fast(), slow()
    np.testing.assert_allclose(ours.beta_delta_usd, theirs[0], rtol=1e-6)
    np.testing.assert_allclose(ours.factor_gamma_usd, theirs[1], rtol=1e-6)
    np.testing.assert_allclose([ours.vega_usd, ours.theta_usd, ours.nav_usd], theirs[2:], rtol=1e-6)

    time_calls(fast, 1_000)  # warm caches and allocator
    fast_us = time_calls(fast, args.iterations)
    slow_us = time_calls(slow, args.vollib_iterations)
    q = statistics.quantiles(fast_us, n=100)
    med_fast, med_slow = statistics.median(fast_us), statistics.median(slow_us)
    print(f"portfolio: 1000 options (BTC, ETH) + 100 delta-one, K=2; {args.iterations} runs")
    print(f"hedger  recompute: median {med_fast:8.1f} us   p99 {q[98]:8.1f} us")
    print(f"vollib  per-option loop: median {med_slow:8.1f} us   ({args.vollib_iterations} runs)")
    print(f"speed-up (median / median): {med_slow / med_fast:,.0f}x")


if __name__ == "__main__":
    main()
