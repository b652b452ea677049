"""The candle study: loadings known before each bar only, the figures it reports, the JSON
document `hedger backtest --candles --json` prints, and the default estimator against the
hindsight regression on the shipped real candles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hedger.backtest import commands as cli
from hedger.backtest.candle_study import StudySettings, run_estimators, study
from hedger.backtest.candles import Candles, CandleSeries, align
from hedger.config import BetaConfig, Estimator

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "data" / "binance-spot"
HOUR_MS = 3_600_000
START_MS = 1_640_995_200_000


def synthetic(
    bars: int, seed: int = 3, assets: dict[str, tuple[float, float]] | None = None, eth: bool = True
) -> Candles:
    """BTC and ETH (correlated), and alts with true loadings (on BTC, on ETH) plus noise."""
    rng = np.random.default_rng(seed)
    btc = rng.normal(0.0, 0.01, bars)
    eth_r = 0.8 * btc + rng.normal(0.0, 0.006, bars)
    returns = {"BTC": btc, "ETH": eth_r} if eth else {"BTC": btc}
    for name, (b_btc, b_eth) in (assets or {"SOL": (0.5, 0.8), "ADA": (1.2, 0.0)}).items():
        returns[name] = b_btc * btc + (b_eth * eth_r if eth else 0.0) + rng.normal(0, 0.008, bars)
    times = START_MS + HOUR_MS * np.arange(bars + 1, dtype=np.int64)
    series = [
        CandleSeries(
            name, Path(f"{name}.csv"), times, 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
        )
        for name, r in returns.items()
    ]
    return align(series)


def _truncated(candles: Candles, bars: int) -> Candles:
    return Candles(
        candles.assets,
        candles.open_ms[:bars],
        candles.close[:bars],
        candles.bar_ms,
        candles.gaps,
        candles.files,
    )


def test_removing_later_bars_never_changes_earlier_loadings() -> None:
    """Row t of every estimator's loadings rests on bars before t only."""
    full = synthetic(400)
    beta = BetaConfig(half_life="20 bars", window="40 bars")
    _, runs = run_estimators(full, beta, ("BTC",))
    _, cut_runs = run_estimators(_truncated(full, 251), beta, ("BTC",))
    assert len(runs) == len(cut_runs) == 2 * len(Estimator)
    for run, cut in zip(runs, cut_runs, strict=True):
        assert (run.name, run.k) == (cut.name, cut.k)
        assert cut.loadings.shape[0] == 250
        np.testing.assert_array_equal(run.loadings[:250], cut.loadings)


def test_a_bar_moves_the_loadings_only_after_it() -> None:
    """The converse: a shock at bar 200 leaves rows up to 200 alone and moves row 201."""
    calm = synthetic(300)
    shocked_close = calm.close.copy()
    sol = calm.assets.index("SOL")
    shocked_close[201:, sol] *= 1.3  # bar 200's return (close 201 over close 200) jumps
    shocked = Candles(calm.assets, calm.open_ms, shocked_close, calm.bar_ms, calm.gaps, calm.files)
    beta = BetaConfig(half_life="20 bars", window="40 bars", winsorize_sigmas=None)
    _, before = run_estimators(calm, beta, ("BTC",))
    _, after = run_estimators(shocked, beta, ("BTC",))
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a.loadings[:201], b.loadings[:201])
        assert not np.allclose(a.loadings[201, sol], b.loadings[201, sol]), a.name


def test_figures_on_known_loadings() -> None:
    """Constant true loadings: out of sample comes close to the hindsight regression (it
    cannot know more), K = 2 removes what K = 1 leaves of SOL's ETH loading, correlations
    calm and in stress are the model's."""
    candles = synthetic(3000)
    doc = study(candles, BetaConfig(half_life="200 bars"), ("BTC",)).document
    sol, ada = doc["assets"]["SOL"], doc["assets"]["ADA"]
    for row in (sol, ada):
        for k in ("1", "2"):
            ols = row["vr_in_sample_ols"][k]
            for name in ("ewma", "rolling_ols", "kalman"):
                assert ols - 0.03 < row["vr_out_of_sample"][name][k] <= ols + 1e-9
    assert sol["vr_in_sample_ols"]["2"] > sol["vr_in_sample_ols"]["1"] + 0.05
    assert ada["vr_in_sample_ols"]["2"] == pytest.approx(ada["vr_in_sample_ols"]["1"], abs=0.01)
    # ADA = 1.2 BTC + noise: correlation 0.83 over all bars; calm bars (|BTC| under 1.96
    # sigma) keep 0.76 of BTC's variance, stress bars 5.6 times it, so 0.79 and 0.96.
    assert ada["correlation"]["calm"]["BTC"] == pytest.approx(0.794, abs=0.03)
    assert ada["correlation"]["stress"]["BTC"] == pytest.approx(0.962, abs=0.02)
    assert doc["mean"]["vr_in_sample_ols"]["1"] == pytest.approx(
        (sol["vr_in_sample_ols"]["1"] + ada["vr_in_sample_ols"]["1"]) / 2, abs=1e-6
    )
    assert sol["stress_bars"] == pytest.approx(0.05 * sol["bars"], abs=2)
    assert not sol["warnings"]


def test_an_adaptive_estimator_beats_hindsight_when_loadings_move() -> None:
    """A loading that steps from 0.5 to 1.5 halfway: no constant hedge fits both halves."""
    rng = np.random.default_rng(5)
    bars = 2000
    btc = rng.normal(0.0, 0.01, bars)
    beta = np.where(np.arange(bars) < bars // 2, 0.5, 1.5)
    alt = beta * btc + rng.normal(0.0, 0.004, bars)
    times = START_MS + HOUR_MS * np.arange(bars + 1, dtype=np.int64)
    closes = {
        n: 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
        for n, r in (("BTC", btc), ("ALT", alt))
    }
    candles = align([CandleSeries(n, Path(n), times, c) for n, c in closes.items()])
    doc = study(candles, BetaConfig(half_life="30 bars"), ("BTC",)).document
    row = doc["assets"]["ALT"]
    assert "2" not in row["vr_in_sample_ols"] and doc["factors"] == {"1": ["BTC"]}
    assert row["vr_out_of_sample"]["ewma"]["1"] > row["vr_in_sample_ols"]["1"] + 0.1


def test_too_few_bars_carry_a_warning() -> None:
    doc = study(synthetic(90), BetaConfig(), ("BTC",)).document
    warnings = doc["assets"]["SOL"]["warnings"]
    assert any("only 60 bars" in w for w in warnings)
    assert any("stress figures of SOL rest on 3 bars" in w for w in warnings)


def test_costs_scale_with_the_fee() -> None:
    candles = synthetic(500)
    cheap = study(candles, BetaConfig(), ("BTC",), StudySettings(fee_bps=1.0, half_spread_bps=0.0))
    dear = study(candles, BetaConfig(), ("BTC",), StudySettings(fee_bps=4.0, half_spread_bps=1.0))
    a = cheap.document["assets"]["SOL"]
    b = dear.document["assets"]["SOL"]
    assert a["turnover_per_year"] == b["turnover_per_year"]
    turnover = a["turnover_per_year"]["ewma"]["1"]
    assert turnover > 0
    assert a["cost_bps_per_year"]["ewma"]["1"] == pytest.approx(turnover * 1.0, rel=1e-5)
    assert b["cost_bps_per_year"]["ewma"]["1"] == pytest.approx(turnover * 5.0, rel=1e-5)


def _write(candles: Candles, directory: Path) -> Path:
    directory.mkdir()
    for col, asset in enumerate(candles.assets):
        rows = "".join(
            f"{t},{c},{c},{c},{c},1\n"
            for t, c in zip(candles.open_ms, candles.close[:, col], strict=True)
        )
        (directory / f"{asset}-USD_1h.csv").write_text(rows)
    return directory


def test_json_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = _write(synthetic(300), tmp_path / "candles")
    argv = ["backtest", "--config", "config/paper.yaml", "--candles", str(directory), "--json"]
    code = cli.main([*argv, "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert json.loads((tmp_path / "out" / "candles.json").read_text()) == doc
    assert doc["default_estimator"] == "ewma"
    assert sorted(doc["assets"]) == ["ADA", "SOL"]
    names = {e.value for e in Estimator}
    for row in doc["assets"].values():
        assert set(row["vr_in_sample_ols"]) == {"1", "2"}
        for key in ("vr_out_of_sample", "vr_stress"):
            assert set(row[key]) == names
            assert all(set(v) == {"1", "2"} for v in row[key].values())
    # beta.priors in paper.yaml give one loading per asset: K = 2 says it used the default.
    assert any("K = 2 uses the default prior" in w for w in doc["warnings"])


def test_json_without_eth_has_no_k2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = _write(synthetic(300, eth=False), tmp_path / "candles")
    assert cli.main(["backtest", "--candles", str(directory), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["default_estimator"] == "ewma"
    for row in doc["assets"].values():
        assert set(row["vr_in_sample_ols"]) == {"1"}
        assert all(set(v) == {"1"} for v in row["vr_out_of_sample"].values())


def test_table_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = _write(synthetic(300), tmp_path / "candles")
    assert cli.main(["backtest", "--candles", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "| K1 OLS | K1 ewma | K1 rolling | K1 kalman |" in out
    assert "|mean " in out and "|SOL " in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--candles", "no/such/dir"], "no/such/dir: not a directory"),
        (["--candles", "data", "--replay", "x.gz"], "--replay does not apply with --candles"),
        (["--candles", "data", "--sweep", "beta.half_life=1h"], "--sweep does not apply"),
    ],
)
def test_bad_arguments_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["backtest", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_missing_first_factor_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    candles = synthetic(50)
    keep = [i for i, a in enumerate(candles.assets) if a != "BTC"]
    no_btc = Candles(
        tuple(candles.assets[i] for i in keep),
        candles.open_ms,
        candles.close[:, keep],
        candles.bar_ms,
        {},
        {},
    )
    assert cli.main(["backtest", "--candles", str(_write(no_btc, tmp_path / "c"))]) == 2
    assert "the candles have no BTC, the first factor" in capsys.readouterr().err


@pytest.mark.parametrize("bar", ["1h", "1d"])
def test_default_estimator_beats_hindsight_on_the_shipped_candles(bar: str) -> None:
    """The issue's bar: with the configuration's defaults, out of sample beats the in-sample
    constant-loading regression on real hourly and daily candles, K = 1 and K = 2."""
    from hedger.backtest.candles import load_candles

    doc = study(load_candles(SHIPPED / bar), BetaConfig(), ("BTC",)).document
    mean = doc["mean"]
    for k in ("1", "2"):
        assert mean["vr_out_of_sample"]["ewma"][k] > mean["vr_in_sample_ols"][k], k


@pytest.mark.parametrize("bar", ["1h", "1d"])
def test_the_readme_tables_are_the_commands_output(
    bar: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README shows what `hedger backtest --candles` prints on the shipped candles."""
    argv = ["backtest", "--config", "config/paper.yaml", "--candles", f"data/binance-spot/{bar}"]
    assert cli.main(argv) == 0
    tables = [
        line.rstrip() for line in capsys.readouterr().out.splitlines() if line.startswith("|")
    ]
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Backtesting on real candles") : readme.index("## Layout")]
    # Header, rule, 8 alts, mean and book; then header, rule and the 8 alts.
    assert len(tables) == 12 + 10
    assert "\n".join(tables[:12]) in section
    assert "\n".join(tables[12:]) in section
