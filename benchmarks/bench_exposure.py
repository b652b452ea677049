"""Speed of one full risk recompute (Black-76 Greeks + exposure), against vollib per option.

Portfolio: 1,000 options on BTC and ETH (inverse, Deribit-like chains) plus 100 delta-one
positions (spot alts, inverse and linear perps), K = 2 factors (BTC, ETH).

    .venv/bin/python benchmarks/bench_exposure.py [--iterations N]

Prints the median and p99 of one recompute with hedger's vectorised core, then the same
work (price, delta, gamma, vega, theta for each option, then the factor aggregation) done
option by option with vollib, and the ratio of medians.
"""

from __future__ import annotations

import argparse
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
    factors = ("BTC", "ETH")
    book = build_book(positions, factors)
    asset_price = np.array([prices[a] for a in book.assets])
    row_price = asset_price[book.asset_of]
    quotes = Quotes(row_price, row_price, vols, asset_price)
    loadings, _ = prior_loadings(book.assets, factors, {a: [0.8, 0.5] for a in ALTS})
    idx = factor_indices(book.assets, factors)
    return lambda: exposure(book, quotes, loadings, idx, NOW_MS)


def vollib_recompute(positions: list[Position], prices: dict[str, float], vols: np.ndarray):  # type: ignore[no-untyped-def]
    factors = ("BTC", "ETH")
    loadings = {a: (0.8, 0.5) for a in ALTS} | {"BTC": (1.0, 0.0), "ETH": (0.0, 1.0)}

    def run() -> tuple[float, float, float, float]:
        beta_delta = [0.0, 0.0]
        vega_total = theta_total = 0.0
        for row, p in enumerate(positions):
            inst = p.instrument
            size = p.qty * inst.contract_size
            s = prices[inst.underlying]
            if inst.kind is Kind.OPTION:
                flag = "c" if inst.is_call else "p"
                t = (inst.expiry_ms - NOW_MS) / (365 * DAY_MS)  # type: ignore[operator]
                sigma = float(vols[row])
                vollib_black(flag, s, inst.strike, t, 0.0, sigma)
                delta = vollib_greeks.delta(flag, s, inst.strike, t, 0.0, sigma)
                vollib_greeks.gamma(flag, s, inst.strike, t, 0.0, sigma)
                vega_total += size * vollib_greeks.vega(flag, s, inst.strike, t, 0.0, sigma)
                theta_total += size * vollib_greeks.theta(flag, s, inst.strike, t, 0.0, sigma)
                delta_usd = size * delta * s
            else:
                delta_usd = size if inst.inverse else size * s
            for k in range(len(factors)):
                beta_delta[k] += loadings[inst.underlying][k] * delta_usd
        return beta_delta[0], beta_delta[1], vega_total, theta_total

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
    np.testing.assert_allclose(ours.beta_delta_usd, theirs[:2], rtol=1e-6)
    np.testing.assert_allclose([ours.vega_usd, ours.theta_usd], theirs[2:], rtol=1e-6)

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
