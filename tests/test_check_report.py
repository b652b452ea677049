"""``check-config``'s views: which money each venue moves, the declared holdings, and online
the venue account's own holdings and the exposure of everything together."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hedger import cli
from hedger.check_report import holdings_lines, render_config_summary
from hedger.config import load_config
from tests.net import free_port
from tests.obs.test_http import write_config

ROOT = Path(__file__).resolve().parents[1]


def test_each_venue_says_paper_testnet_or_mainnet() -> None:
    """Before: a testnet and a mainnet venue printed the same line."""
    cfg = load_config(ROOT / "config" / "paper.yaml")
    venues = {
        "paper": cfg.venues["paper"],
        "test": cfg.venues["paper"].model_copy(update={"paper": None, "testnet": True}),
        "live": cfg.venues["paper"].model_copy(update={"paper": None, "testnet": False}),
    }
    text = render_config_summary(cfg.model_copy(update={"venues": venues}), "x")
    assert "  paper: deribit (embedded paper venue), paper (simulated money)" in text
    assert "  test: deribit (ccxt default urls), TESTNET (test money)" in text
    assert "  live: deribit (ccxt default urls), MAINNET (real money)" in text


def test_declared_holdings_are_listed_with_their_units() -> None:
    cfg = load_config(ROOT / "config" / "paper.yaml")
    lines = holdings_lines(cfg)
    assert lines[0] == (
        "declared holdings (4); venue account positions and balances are added at run time:"
    )
    assert "  SOL spot +2,000 SOL" in lines
    assert "  BTC option call 100000 2026-12-25 (coin-settled): -5 contracts of 1 BTC" in lines


def _beta_delta(text: str) -> float:
    found = re.search(r"beta_delta\[BTC\] = ([-\d,.]+) BTC", text)
    assert found is not None, text
    return float(found[1].replace(",", ""))


def test_online_shows_the_venue_account_and_the_exposure_of_both_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: check-config showed 6.36 BTC of beta-delta and the daemon then sold 22.47 BTC
    worth: the venue account's own coins were nowhere."""
    path = write_config(tmp_path, free_port())
    assert cli.main(["check-config", "--online", str(path)]) == 0
    out = capsys.readouterr().out
    declared, online = out.split("online checks passed:\n", 1)
    assert "venue paper: connected (" in online and "paper venue), authenticated" in online
    account = online.split("venue paper account, paper (simulated money):\n", 1)[1]
    assert account.startswith("  positions: none\n  balances (equity): BTC 10, ETH 200, USDC")
    together = online.split("declared holdings and venue accounts together", 1)[1]
    # The paper account's 10 BTC and 200 ETH (prior loading 1.1), on reference prices.
    cfg = load_config(path)
    prices, eth_beta = cfg.portfolio.reference.prices, cfg.beta.priors["ETH"][0]
    added = 10 + 200 * prices["ETH"] * eth_beta / prices["BTC"]
    assert _beta_delta(together) == pytest.approx(_beta_delta(declared) + added, abs=1e-3)
