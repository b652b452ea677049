"""Bars: previous-tick sampling on a fixed clock, log-returns from closes, winsorization."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hedger.core.bars import BarSampler, Winsorizer, log_returns


def test_previous_tick_on_a_fixed_clock() -> None:
    sampler = BarSampler(2, bar_ms=1_000, start_ms=0)
    sampler.observe(0, 100.0, 100)
    sampler.observe([0, 1], [101.0, 50.0], 1_000)  # on the boundary: closes bar 1
    sampler.observe(0, 999.0, 1_001)  # belongs to bar 2 ...
    (first,) = sampler.roll(1_000)  # ... so bar 1 closes on 101 and 50
    assert first.end_ms == 1_000
    assert np.isnan(first.log_return).all()  # no price at the start of the first bar
    sampler.observe(1, 55.0, 2_500)  # closes bar 2 first (999 and 50), then opens bar 3
    second, third = sampler.roll(3_000)
    assert (second.end_ms, third.end_ms) == (2_000, 3_000)
    np.testing.assert_allclose(second.log_return, [np.log(999 / 101), 0.0])  # no tick: 0
    np.testing.assert_allclose(third.log_return, [0.0, np.log(55 / 50)])
    assert sampler.roll(3_000) == []  # each bar is handed out once


def test_several_boundaries_at_once_give_zero_returns_for_priced_series() -> None:
    sampler = BarSampler(3, bar_ms=60_000, start_ms=0)
    sampler.observe([0, 1], [10.0, 20.0], 59_000)
    sampler.roll(60_000)
    sampler.observe(0, 11.0, 61_000)
    bars = sampler.roll(5 * 60_000 + 1)
    assert [b.end_ms for b in bars] == [120_000, 180_000, 240_000, 300_000]
    np.testing.assert_allclose(bars[0].log_return[:2], [np.log(1.1), 0.0])
    for bar in bars[1:]:
        np.testing.assert_array_equal(bar.log_return[:2], [0.0, 0.0])
    assert all(np.isnan(b.log_return[2]) for b in bars)  # never priced


def test_a_series_first_return_comes_a_bar_after_its_first_price() -> None:
    sampler = BarSampler(1, bar_ms=10, start_ms=0)
    sampler.roll(10)
    sampler.observe(0, 100.0, 15)
    (bar,) = sampler.roll(20)
    assert np.isnan(bar.log_return[0])  # priced at the close but not at the open
    sampler.observe(0, 110.0, 25)
    (bar,) = sampler.roll(30)
    assert bar.log_return[0] == np.log(110.0 / 100.0)


def test_a_tick_at_the_start_opens_the_first_bar() -> None:
    sampler = BarSampler(2, bar_ms=10, start_ms=100)
    sampler.observe([0, 1], [50.0, 60.0], 100)
    sampler.observe(0, 55.0, 105)
    (bar,) = sampler.roll(110)
    np.testing.assert_allclose(bar.log_return, [np.log(55.0 / 50.0), 0.0])


def test_bad_and_out_of_order_ticks_are_ignored() -> None:
    sampler = BarSampler(2, bar_ms=10, start_ms=0)
    sampler.observe([0, 1], [100.0, 100.0], 5)
    sampler.roll(10)
    sampler.observe(0, np.nan, 11)
    sampler.observe([0, 1], [-5.0, 0.0], 12)
    sampler.observe(0, 120.0, 14)
    sampler.observe(0, 90.0, 13)  # older than the series' last tick: a reordered feed
    (bar,) = sampler.roll(20)
    np.testing.assert_allclose(bar.log_return, [np.log(1.2), 0.0])


def test_vectorised_and_scalar_observe_agree() -> None:
    rng = np.random.default_rng(0)
    mids = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, (50, 4)), axis=0))
    one, many = BarSampler(4, 100, 0), BarSampler(4, 100, 0)
    for t, row in enumerate(mids):
        for i, mid in enumerate(row):
            one.observe(i, float(mid), 30 * t)
        many.observe(np.arange(4), row, 30 * t)
    a, b = one.roll(30 * len(mids)), many.roll(30 * len(mids))
    assert [x.end_ms for x in a] == [x.end_ms for x in b]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.log_return, y.log_return)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 1_000), st.floats(1.0, 1e4)),
        min_size=1,
        max_size=60,
    ),
    st.lists(st.integers(0, 1_200), max_size=8),
    st.integers(1, 200),
)
def test_bar_closes_are_the_last_mid_at_or_before_each_boundary(
    ticks: list[tuple[int, int, float]], rolls: list[int], bar_ms: int
) -> None:
    """Any tick stream, rolled at any times: bar returns are log(close / previous close),
    the close being the last mid at or before the boundary (NaN if none yet)."""
    ticks = sorted(ticks, key=lambda tick: tick[1])
    sampler = BarSampler(3, bar_ms, start_ms=0)
    bars = []
    roll_at = sorted(rolls)
    for series, ts, mid in ticks:
        while roll_at and roll_at[0] < ts:
            bars += sampler.roll(roll_at.pop(0))
        sampler.observe(series, mid, ts)
    bars += sampler.roll(1_200)
    ends = [bar.end_ms for bar in bars]
    assert ends == list(range(bar_ms, 1_200 + 1, bar_ms))

    def close(series: int, end_ms: int) -> float:
        seen = [mid for s, ts, mid in ticks if s == series and ts <= end_ms]
        return seen[-1] if seen else np.nan

    for bar in bars:
        expected = [np.log(close(s, bar.end_ms) / close(s, bar.end_ms - bar_ms)) for s in range(3)]
        np.testing.assert_allclose(bar.log_return, expected, rtol=1e-12)


def test_log_returns_from_closes() -> None:
    closes = np.array([[100.0, 10.0], [110.0, np.nan], [121.0, 12.0], [133.1, 0.0]])
    out = log_returns(closes)
    assert out.shape == (3, 2)
    np.testing.assert_allclose(out[:, 0], np.log([1.1, 1.1, 1.1]))
    assert np.isnan(out[:, 1]).all()  # a missing or zero close voids both of its bars


def test_winsorizer_clips_at_k_ewma_sigmas_and_keeps_nan() -> None:
    rng = np.random.default_rng(7)
    k_sigma, half_life = 4.0, 30.0
    w = Winsorizer(2, k_sigma=k_sigma, half_life_bars=half_life, warmup_bars=20)
    history = rng.normal(0.0, 0.01, (200, 2))
    for row in history:
        w.clip(row)
    lam = 2.0 ** (-1.0 / half_life)
    variance = history[0] ** 2  # the first move sets the scale
    for t, row in enumerate(history[1:], start=1):
        seen = row**2 if t < 20 else np.minimum(row**2, k_sigma**2 * variance)
        variance = lam * variance + (1.0 - lam) * seen
    np.testing.assert_allclose(w.variance, variance, rtol=1e-12)
    clipped = w.clip([0.5, np.nan])
    assert clipped[0] == k_sigma * np.sqrt(variance[0])
    assert np.isnan(clipped[1])
    variance = lam * variance + (1.0 - lam) * clipped**2  # the clipped move, not the spike
    assert w.clip([-0.5, 0.001])[0] == -k_sigma * np.sqrt(variance[0])


def test_winsorizer_leaves_the_warmup_alone_and_a_quiet_series_unfrozen() -> None:
    w = Winsorizer(2, k_sigma=3.0, half_life_bars=10.0, warmup_bars=5)
    spike = np.array([0.01, 0.0])
    for _ in range(4):
        np.testing.assert_array_equal(w.clip(spike), spike)  # still warming up
    for _ in range(50):
        w.clip(spike)  # series 1 has no tick for 54 bars: zero returns
    moved = w.clip([0.01, 0.02])
    assert moved[1] == 0.02  # its first move is not clipped to a zero scale
    assert w.n_obs[1] == 1
