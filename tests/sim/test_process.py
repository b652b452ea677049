"""The price process: determinism, realized vols and loadings against the configuration, and
a visible regime switch (alt/BTC correlation rises in stress)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from numpy.typing import NDArray

from hedger.sim.process import SECONDS_PER_YEAR, FactorProcess, Regime
from hedger.sim.scenario import JumpSpec, Scenario, scenario

F64 = NDArray[np.float64]
MINUTE = 60.0
# Required gap between the mean rolling alt/BTC correlation in stress and in calm. The
# configured dynamics imply about 0.2 to 0.3 per alt (see the test); measured: see the reply.
REGIME_CORR_MARGIN = 0.15


def simulate(s: Scenario, seed: int, dt: float, n: int) -> tuple[F64, NDArray[np.int8]]:
    p = FactorProcess(s, np.random.default_rng(seed))
    returns = np.empty((n, len(p.assets)))
    regimes = np.empty(n, dtype=np.int8)
    for t in range(n):
        returns[t] = p.advance(dt)
        regimes[t] = p.regime
    return returns, regimes


def test_same_seed_same_path_and_other_seed_differs() -> None:
    s = scenario("stress-switching")
    a, ra = simulate(s, 11, 3600.0, 500)
    b, rb = simulate(s, 11, 3600.0, 500)
    c, _ = simulate(s, 12, 3600.0, 500)
    assert np.array_equal(a, b) and np.array_equal(ra, rb)
    assert not np.array_equal(a, c)


def _variance_and_se(r: F64) -> tuple[float, float]:
    """Sample variance and its standard error, from the fourth moment (jumps make it fat)."""
    c = r - r.mean()
    var = float(np.mean(c**2))
    return var, float(np.sqrt((np.mean(c**4) - var**2) / len(r)))


@pytest.mark.parametrize("name", ["calm", "stress"])
def test_realized_factor_vols_match_configuration(name: str) -> None:
    s = scenario(name)
    dt = 5 * MINUTE
    returns, _ = simulate(s, 3, dt, 40_000)
    tau = dt / SECONDS_PER_YEAR
    stressed = s.regime.start_in_stress
    mult = s.regime.factor_vol_mult if stressed else 1.0
    jump_mult = s.regime.jump_rate_mult if stressed else 1.0
    for k, f in enumerate(s.factors):
        j = f.jumps
        expected = ((f.vol * mult) ** 2 + j.per_year * jump_mult * (j.mean**2 + j.std**2)) * tau
        var, se = _variance_and_se(returns[:, k])
        assert abs(var - expected) < 4 * se, (f.name, var / tau, expected / tau)


@pytest.mark.parametrize("name", ["calm", "stress"])
def test_factor_correlation_matches_configuration(name: str) -> None:
    # Without jumps (rare and large, they dominate the sampling error of a correlation).
    s = scenario(name)
    s = replace(s, factors=tuple(replace(f, jumps=JumpSpec()) for f in s.factors))
    returns, _ = simulate(s, 4, 5 * MINUTE, 40_000)
    rho = s.regime.factor_corr_stress if s.regime.start_in_stress else s.factor_corr
    corr = np.corrcoef(returns[:, 0], returns[:, 1])[0, 1]
    assert abs(corr - rho) < 4 * (1 - rho**2) / np.sqrt(len(returns))


@pytest.mark.parametrize("name", ["calm", "stress"])
def test_alt_loadings_recovered_by_least_squares(name: str) -> None:
    s = scenario(name)
    returns, _ = simulate(s, 5, 5 * MINUTE, 40_000)
    k = len(s.factors)
    x = np.column_stack([np.ones(len(returns)), returns[:, :k]])
    coef, *_ = np.linalg.lstsq(x, returns[:, k:], rcond=None)
    resid = returns[:, k:] - x @ coef
    cov_x = np.linalg.inv(x.T @ x)
    p = FactorProcess(s, np.random.default_rng(0))
    true = p.params.loadings
    for a in range(len(s.alts)):
        se = np.sqrt(resid[:, a].var() * np.diag(cov_x)[1:])
        assert np.all(np.abs(coef[1:, a] - true[a]) < 4 * se), (
            s.alts[a].name,
            coef[1:, a],
            true[a],
        )
    if name == "stress":
        calm_loadings = np.array([a.loadings for a in s.alts])
        assert np.allclose(true, calm_loadings * s.regime.loading_mult)


def _rolling_corr(x: F64, y: F64, window: int) -> F64:
    n = len(x) // window
    xs, ys = x[: n * window].reshape(n, window), y[: n * window].reshape(n, window)
    xs = xs - xs.mean(axis=1, keepdims=True)
    ys = ys - ys.mean(axis=1, keepdims=True)
    out: F64 = (xs * ys).sum(1) / np.sqrt((xs**2).sum(1) * (ys**2).sum(1))
    return out


def _theoretical_corr_to_btc(s: Scenario, stressed: bool) -> F64:
    r = s.regime
    vol = np.array([f.vol for f in s.factors]) * (r.factor_vol_mult if stressed else 1.0)
    rho = r.factor_corr_stress if stressed else s.factor_corr
    cov = np.array([[1.0, rho], [rho, 1.0]]) * np.outer(vol, vol)
    b = np.array([a.loadings for a in s.alts]) * (r.loading_mult if stressed else 1.0)
    idio = np.array([a.vol for a in s.alts]) * (r.idio_vol_mult if stressed else 1.0)
    var = np.einsum("ij,jk,ik->i", b, cov, b) + idio**2
    out: F64 = (b @ cov[:, 0]) / np.sqrt(var * cov[0, 0])
    return out


def test_regime_switch_raises_alt_correlation_to_btc() -> None:
    s = scenario("stress-switching")
    window = 60  # one hour of one-minute returns
    returns, regimes = simulate(s, 2024, MINUTE, 60 * 24 * 40)
    assert 0.05 < regimes.mean() < 0.5  # stationary share of stress is 0.25 / 1.25 = 0.2
    n = len(returns) // window
    spells = regimes[: n * window].reshape(n, window)
    calm = (spells == Regime.CALM).all(axis=1)
    stress = (spells == Regime.STRESS).all(axis=1)
    assert calm.sum() > 100 and stress.sum() > 30
    k = len(s.factors)
    expected_gap = _theoretical_corr_to_btc(s, True) - _theoretical_corr_to_btc(s, False)
    assert np.all(expected_gap > REGIME_CORR_MARGIN)
    gaps = []
    for a in range(len(s.alts)):
        rc = _rolling_corr(returns[:, k + a], returns[:, 0], window)
        gaps.append(rc[stress].mean() - rc[calm].mean())
    print(
        "regime corr gaps (stress - calm):", dict(zip([x.name for x in s.alts], gaps, strict=True))
    )
    assert min(gaps) > REGIME_CORR_MARGIN


def test_one_factor_variant_keeps_total_btc_exposure() -> None:
    two = scenario("calm")
    one = scenario("calm-1f")
    assert [f.name for f in one.factors] == ["BTC"]
    assert one.alts[0].name == "ETH"
    sol2 = next(a for a in two.alts if a.name == "SOL")
    sol1 = next(a for a in one.alts if a.name == "SOL")
    assert sol1.loadings[0] == pytest.approx(
        sol2.loadings[0] + sol2.loadings[1] * one.alts[0].loadings[0]
    )


def test_regime_holding_times_follow_rates() -> None:
    s = replace(
        scenario("stress-switching"),
        regime=replace(
            scenario("stress-switching").regime,
            calm_to_stress_per_day=2.0,
            stress_to_calm_per_day=2.0,
        ),
    )
    _, regimes = simulate(s, 9, 600.0, 20_000)
    switches = int(np.count_nonzero(np.diff(regimes)))
    days = 20_000 * 600.0 / 86_400.0
    expected = 2.0 * days  # rate 2/day out of either state
    assert abs(switches - expected) < 4 * np.sqrt(expected)
