"""The venue section: credentials as ccxt's client for the exchange takes them, sandboxes,
pacing, accounts and Hyperliquid's settings; every mistake is one issue at its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from hedger.config import ConfigError, parse_config

WALLET = "0x5e9ee1089755c3435139848e47e6635505d5a13a"
KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


def _config(venue: str) -> str:
    return f"""
venues:
  v: {venue}
factors:
  - asset: BTC
    hedge: {{venue: v, symbol: "BTC/USDC:USDC"}}
"""


def _issues(venue: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse_config(_config(venue), "venues.yaml", {})
    return {issue.path: str(issue) for issue in info.value.issues}


def test_several_venues_each_with_its_own_credentials() -> None:
    cfg = parse_config(
        f"""
venues:
  hl: {{exchange: hyperliquid, wallet_address: "{WALLET}", private_key: "{KEY}"}}
  okx: {{exchange: okx, api_key: k, secret: s, password: p, testnet: true}}
  bybit: {{exchange: bybit, api_key: k, secret: s, demo_trading: true, accounts: [unified]}}
  binance: {{exchange: binance, api_key: k, secret: s, accounts: [spot, future],
             rate_limit: {{interval: 250ms}}}}
factors:
  - asset: BTC
    hedge: {{venue: hl, symbol: "BTC/USDC:USDC"}}
""",
        "venues.yaml",
        {},
    )
    hl = cfg.venues["hl"]
    assert hl.wallet_address == WALLET
    assert hl.private_key is not None and hl.private_key.get_secret_value() == KEY
    assert hl.hyperliquid.builder_fee is False and hl.hyperliquid.market_slippage == 0.01
    assert cfg.venues["binance"].rate_limit.interval == 0.25
    assert cfg.venues["bybit"].accounts == ["unified"]


@pytest.mark.parametrize(
    ("venue", "path", "reason"),
    [
        ("{exchange: hyperliquid, api_key: k, secret: s}", "venues.v.api_key",
         "hyperliquid does not use api_key (it signs with wallet_address + private_key)"),
        (f'{{exchange: binance, api_key: k, secret: s, wallet_address: "{WALLET}"}}',
         "venues.v.wallet_address", "binance does not use wallet_address"),
        ("{exchange: deribit, api_key: k, secret: s, password: p}", "venues.v.password",
         "deribit does not use password"),
        ('{exchange: hyperliquid, wallet_address: "0x12"}', "venues.v.wallet_address",
         "should match pattern"),
        ("{exchange: kraken, testnet: true}", "venues.v.testnet",
         "ccxt has no testnet URLs for kraken"),
        ("{exchange: deribit, demo_trading: true}", "venues.v.demo_trading",
         "ccxt has no demo trading for deribit"),
        ("{exchange: bybit, demo_trading: true, testnet: true}", "venues.v.demo_trading",
         "choose one sandbox"),
        ("{exchange: okx, hyperliquid: {builder_fee: true}}", "venues.v.hyperliquid",
         "hyperliquid settings on a okx venue"),
        ("{exchange: hyperliquid, hyperliquid: {market_slippage: 0.7}}",
         "venues.v.hyperliquid.market_slippage", "less than 0.5"),
        ("{exchange: bybit, accounts: [futures]}", "venues.v.accounts.0", "Input should be"),
        ("{exchange: bybit, rate_limit: {interval: 0}}", "venues.v.rate_limit.interval",
         "greater than 0"),
    ],
)  # fmt: skip
def test_a_venue_mistake_is_one_issue_at_its_path(venue: str, path: str, reason: str) -> None:
    issues = _issues(venue)
    assert list(issues) == [path], issues
    assert reason in issues[path]


def test_the_private_key_may_come_from_a_file_and_never_shows(tmp_path: Path) -> None:
    secret = tmp_path / "hl.key"
    secret.write_text(KEY + "\n")
    cfg = parse_config(
        _config(
            f'{{exchange: hyperliquid, wallet_address: "{WALLET}", private_key_file: {secret}}}'
        ),
        "venues.yaml",
        {},
    )
    key = cfg.venues["v"].private_key
    assert key is not None and key.get_secret_value() == KEY
    issues = _issues(f'{{exchange: hyperliquid, wallet_address: "0x1", private_key: "{KEY}"}}')
    assert KEY not in " ".join(issues.values())
