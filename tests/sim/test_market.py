"""The market step: determinism, option marks and Greeks on Deribit's conventions, smile and
regime response, perps and futures, books, expiry."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
import pytest

from hedger.core.pricing import black76, year_fraction
from hedger.core.units import DAY_MS, HOUR_MS
from hedger.sim import Market, Regime, scenario
from hedger.sim.book import price_to_ticks
from hedger.sim.chains import OPTION

SEED = 7


def _run(m: Market, steps_ms: list[int]) -> list[Any]:
    t, out = m.now_ms, []
    for dt in steps_ms:
        t += dt
        out.append(m.step(t).tolist())
    return out


def _all_tickers(m: Market) -> list[dict[str, object]]:
    return [m.ticker(i) for i in range(len(m.universe))]


def test_same_seed_same_market() -> None:
    steps = [100, 250, 60_000, 3_600_000, 7, 100] * 5
    a, b, c = (Market(scenario("stress-switching"), seed=s) for s in (SEED, SEED, SEED + 1))
    assert _run(a, steps) == _run(b, steps)
    _run(c, steps)
    assert _all_tickers(a) == _all_tickers(b)
    assert _all_tickers(a) != _all_tickers(c)


def test_time_only_moves_forward() -> None:
    m = Market(scenario("calm"), seed=SEED)
    before = m.ticker(0)
    assert len(m.step(m.now_ms)) == 0 and m.ticker(0) == before
    with pytest.raises(ValueError, match="time runs forward"):
        m.step(m.now_ms - 1)


def _option_rows(m: Market) -> list[tuple[int, dict[str, Any]]]:
    return [(int(i), m.ticker(int(i))) for i in m.universe.options if m.active[i]]


def test_option_greeks_are_black76_on_the_tickers_own_inputs() -> None:
    m = Market(scenario("stress-switching"), seed=SEED)
    _run(m, [HOUR_MS] * 5)
    for i, tk in _option_rows(m):
        inst = m.universe.instruments[i]
        assert inst.strike is not None
        t = year_fraction(tk["timestamp"], inst.expiration_timestamp)
        g = black76(
            np.array([tk["underlying_price"]]),
            np.array([inst.strike]),
            np.array([t]),
            np.array([tk["mark_iv"] / 100.0]),
            np.array([inst.is_call]),
        )
        for name in ("delta", "gamma", "vega", "theta"):
            assert tk["greeks"][name] == pytest.approx(
                float(getattr(g, name)[0]), rel=1e-9, abs=1e-15
            )
        usd = float(g.price[0])
        expected_mark = usd / tk["underlying_price"] if inst.inverse else usd
        assert tk["mark_price"] == pytest.approx(expected_mark, rel=1e-9, abs=1e-15)
        assert tk["greeks"]["rho"] == 0.0
        assert tk["bid_iv"] <= tk["mark_iv"] <= tk["ask_iv"]


def test_futures_are_forwards_and_options_sit_on_them() -> None:
    m = Market(scenario("calm"), seed=SEED)
    _run(m, [HOUR_MS])
    basis = {a.name: a.listing.basis_per_year for a in m.scenario.assets}
    for i, inst in enumerate(m.universe.instruments):
        if not (inst.is_future or inst.is_option):
            continue
        tk = m.ticker(i)
        t = year_fraction(m.now_ms, inst.expiration_timestamp)
        forward = tk["index_price"] * math.exp(basis[inst.base_currency] * t)
        value = tk["mark_price"] if inst.is_future else tk["underlying_price"]
        assert value == pytest.approx(forward, rel=1e-12)


def _chains(m: Market) -> dict[tuple[str, int], list[tuple[float, float, float]]]:
    """(asset, expiry) -> sorted (strike, iv %, underlying) of the calls."""
    out: dict[tuple[str, int], list[tuple[float, float, float]]] = defaultdict(list)
    for i, tk in _option_rows(m):
        inst = m.universe.instruments[i]
        if inst.is_call:
            assert inst.strike is not None
            key = (inst.base_currency, inst.expiration_timestamp)
            out[key].append((inst.strike, tk["mark_iv"], tk["underlying_price"]))
    return {k: sorted(v) for k, v in out.items()}


def test_smile_has_negative_skew_and_strikes_surround_the_forward() -> None:
    m = Market(scenario("calm"), seed=SEED)
    for (asset, expiry), chain in _chains(m).items():
        assert expiry % DAY_MS == 8 * HOUR_MS
        strikes, ivs, forward = (np.array(c) for c in zip(*chain, strict=True))
        assert strikes[0] < forward[0] < strikes[-1], (asset, expiry)
        atm = int(np.argmin(np.abs(np.log(strikes / forward))))
        assert ivs[0] > ivs[atm], (asset, expiry, ivs)  # the OTM put wing is bid
        assert ivs[0] > ivs[-1], (asset, expiry, ivs)  # more than the call wing


def _front_atm_iv(m: Market, asset: str) -> float:
    chains = _chains(m)
    expiry = min(e for a, e in chains if a == asset)
    strikes, ivs, forward = (np.array(c) for c in zip(*chains[(asset, expiry)], strict=True))
    return float(ivs[np.argmin(np.abs(np.log(strikes / forward)))])


def test_stress_lifts_implied_vol_and_widens_books() -> None:
    calm, stress = Market(scenario("calm"), seed=SEED), Market(scenario("stress"), seed=SEED)
    _run(calm, [HOUR_MS] * 36)
    _run(stress, [HOUR_MS] * 36)
    assert stress.regime is Regime.STRESS and calm.regime is Regime.CALM
    assert stress.alt_names == calm.alt_names and stress.factor_names == ("BTC", "ETH")
    assert np.allclose(stress.loadings, calm.loadings * stress.scenario.regime.loading_mult)
    # Configured stress level 1.6, reached to ~7/8 in log after three 12 h half-lives.
    assert _front_atm_iv(stress, "BTC") > 1.25 * _front_atm_iv(calm, "BTC")
    perp = calm.index_of("BTC-PERPETUAL")

    def spread(m: Market) -> float:
        tk = m.ticker(perp)
        return float(tk["best_ask_price"] - tk["best_bid_price"]) / float(tk["mark_price"])

    assert spread(stress) > 2 * spread(calm)


def test_perp_mark_is_index_plus_premium_and_funding_is_damped_and_capped() -> None:
    m = Market(scenario("trend"), seed=SEED)
    funding = []
    for _ in range(48):
        _run(m, [HOUR_MS])
        for row, i in enumerate(m.universe.perps):
            tk = m.ticker(int(i))
            premium = m.funding.premium[row]
            assert tk["mark_price"] == pytest.approx(tk["index_price"] * (1 + premium), rel=1e-12)
            spec = m.universe.perp_funding[row]
            damped = max(spec.damper, premium) + min(-spec.damper, premium)
            assert tk["current_funding"] == pytest.approx(
                np.clip(damped, -spec.cap_8h, spec.cap_8h)
            )
            funding.append(tk["current_funding"])
    # The trend scenario's rich premium (mean 8 bp) pays longs' funding to shorts on average.
    assert np.mean(funding) > 0


def test_books_are_on_ticks_and_straddle_the_mark() -> None:
    m = Market(scenario("stress-switching"), seed=SEED)
    _run(m, [HOUR_MS] * 3)
    q, u = m.quotes, m.universe
    assert (np.diff(q.bid_ticks, axis=1) < 0).all() and (np.diff(q.ask_ticks, axis=1) > 0).all()
    assert (q.bid_ticks[:, 0] < q.ask_ticks[:, 0]).all()
    for i, inst in enumerate(u.instruments):
        for px in (*q.bid_price[i], *q.ask_price[i]):
            assert price_to_ticks(float(px), inst.tick_size) is not None, (inst.instrument_name, px)
        tk = m.ticker(i)
        if tk["best_bid_amount"]:
            assert tk["best_bid_price"] <= tk["mark_price"]
        assert tk["mark_price"] <= tk["best_ask_price"]
        assert tk["best_ask_amount"] > 0
        if u.kind[i] != OPTION:
            assert tk["best_bid_amount"] > 0


def test_expired_instruments_freeze_at_delivery_and_close() -> None:
    m = Market(scenario("calm"), seed=SEED)
    first = int(m.universe.expiry_ms.min())
    changed = m.step(first + 1)
    dead = np.flatnonzero(~m.active)
    assert len(dead) > 0 and set(dead.tolist()) <= set(changed.tolist())
    assert (m.universe.expiry_ms[dead] == first).all()
    frozen = m.mark_price[dead].copy()
    for i in dead:
        inst = m.universe.instruments[int(i)]
        tk = m.ticker(int(i))
        s = tk["delivery_price"]
        assert tk["state"] == "closed" and tk["best_ask_amount"] == 0 == tk["best_bid_amount"]
        assert m.instrument_row(int(i))["is_active"] is False
        assert inst.strike is not None
        payoff = max(s - inst.strike, 0.0) if inst.is_call else max(inst.strike - s, 0.0)
        assert tk["mark_price"] == pytest.approx(payoff / s if inst.inverse else payoff)
    m.step(first + DAY_MS)
    assert np.array_equal(m.mark_price[dead], frozen)


def test_change_threshold_selects_what_to_publish() -> None:
    every, quiet = (Market(scenario("calm"), seed=SEED, change_threshold_bps=b) for b in (0, 20))
    assert len(every.step(every.now_ms + 100)) == len(every.universe)
    changed = quiet.step(quiet.now_ms + 100)
    assert 0 < len(changed) < len(quiet.universe) // 2
    # What was not published keeps accumulating until it crosses the threshold.
    total: set[int] = set(changed.tolist())
    for k in range(2, 600):
        total |= set(quiet.step(quiet.now_ms + 100 * k).tolist())
    assert len(total) > len(changed)


def test_settlement_price_rolls_at_0800_utc() -> None:
    m = Market(scenario("calm"), seed=SEED)
    start_settlement = m.settlement_price.copy()
    next_0800 = (m.now_ms // DAY_MS) * DAY_MS + 8 * HOUR_MS
    m.step(next_0800 - 1)
    assert np.array_equal(m.settlement_price, start_settlement)
    m.step(next_0800 + 1)
    live = m.active
    assert np.array_equal(m.settlement_price[live], m.mark_price[live])
