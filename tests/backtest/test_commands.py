from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

from hedger.backtest import commands as cli


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_register_adds_both_subcommands() -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["backtest", "--scenario", "calm", "--sweep", "hedge.band.half_width=1"]
    )
    assert args.handler is cli.cmd_backtest and args.sweep == ["hedge.band.half_width=1"]
    args = parser.parse_args(["record", "--url", "ws://x", "--out", "f.gz"])
    assert args.handler is cli.cmd_record


def test_derman_kamal_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        ["backtest", "--scenario", "derman-kamal", "--json", "--paths", "2000"], capsys
    )
    assert code == 0
    document = json.loads(out)
    rows = document["rows"]
    assert [r["n_rebalances"] for r in rows] == [10, 50, 250]
    for r in rows:
        assert r["ratio"] == pytest.approx(r["std_pnl"] / r["std_formula"])
        assert 0.8 < r["ratio"] < 1.1 and r["ratio_stderr"] > 0


def test_sim_backtest_with_sweep_writes_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "backtest",
        "--config",
        "config/paper.yaml",
        "--days",
        "0.5",
        "--warmup",
        "2h",
        "--bar",
        "5m",
        "--sweep",
        "hedge.band.half_width=0.25,1",
        "--sweep",
        "beta.bar=5m",
        "--out",
        str(tmp_path),
        "--json",
    ]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    document = json.loads(out)
    assert [r["label"] for r in document["runs"]] == [
        "hedge.band.half_width=0.25 beta.bar=5m",
        "hedge.band.half_width=1 beta.bar=5m",
    ]
    first = document["runs"][0]
    assert first["oracle"]["variance_reduction"] > 0
    assert first["metrics"]["bars"] == 144
    for name in (
        "results.csv",
        "results.json",
        "frontier.png",
        "frontier.html",
        "run.png",
        "run.html",
    ):
        assert (tmp_path / name).stat().st_size > 0
    # Self-contained: plotly.js is embedded, nothing is fetched when the page opens.
    html = (tmp_path / "frontier.html").read_text()
    assert 'src="https://cdn.plot.ly' not in html and len(html) > 1_000_000
    again = json.loads(run(argv, capsys)[1])
    assert again["runs"] == document["runs"]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--sweep", "hedge.band.half_width=0,1"], "hedge.band.half_width=0"),
        (["--sweep", "beta.half_lfe=1h"], "beta.half_lfe"),
        (["--sweep", "hedge.band.half_width"], "PATH=v1,v2"),
        (["--scenario", "nosuch"], "unknown scenario"),
        (["--bar", "soon"], "--bar"),
        (["--bar", "5m", "--sweep", "beta.bar=1m"], "beta.bar"),
        (["--replay", "/nonexistent/ticks.gz"], "--replay"),
        (["--days", "0.001", "--warmup", "0s", "--bar", "1m"], "only 2 bar(s)"),
    ],
)
def test_bad_arguments_exit_2_naming_the_culprit(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        ["backtest", "--config", "config/paper.yaml", "--days", "0.01", *argv], capsys
    )
    assert code == 2
    assert says in err


def test_missing_config_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["backtest", "--scenario", "calm"], capsys)
    assert code == 2 and "--config" in err
    code, _, err = run(["backtest", "--config", "/nonexistent.yaml"], capsys)
    assert code == 2 and "cannot read" in err


def test_an_asset_the_simulator_lacks_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = Path("config/paper.yaml").read_text().replace("{asset: AVAX", "{asset: PEPE")
    config = tmp_path / "pepe.yaml"
    config.write_text(text)
    code, _, err = run(["backtest", "--config", str(config), "--days", "0.01"], capsys)
    assert code == 2 and "PEPE" in err


def test_options_book_preset_needs_no_config(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["backtest", "--scenario", "options-book", "--days", "0.25", "--bar", "1m", "--json"]
    argv += ["--warmup", "0s", "--sweep", "hedge.band.half_width=0.5,2"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    runs = json.loads(out)["runs"]
    tight, wide = (r["metrics"] for r in runs)
    # A short-gamma book: the tighter band trades more and pays more.
    assert tight["n_trades"] > wide["n_trades"] > 0
    assert tight["cost_usd"] > wide["cost_usd"]


def test_without_the_plots_extra_out_needs_no_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The container image leaves matplotlib and plotly out: asking it for plots fails
    before any work, naming the extra; --no-plots writes the tables."""
    monkeypatch.setitem(sys.modules, "plotly", None)  # import plotly -> ImportError
    monkeypatch.delitem(sys.modules, "hedger.backtest.plots", raising=False)
    base = ["backtest", "--config", "config/paper.yaml", "--days", "0.1", "--bar", "1m"]
    base += ["--warmup", "1h", "--no-oracle", "--out", str(tmp_path)]
    code, _, err = run(base, capsys)
    assert code == 2 and "hedger[plots]" in err and "plotly" in err
    assert not list(tmp_path.iterdir())
    code, out, err = run([*base, "--no-plots", "--json"], capsys)
    assert code == 0, err
    assert set(json.loads(out)["files"]) == {"csv", "json"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "results.json"]
