"""A venue's config as its ccxt client: credentials, sandbox, pacing, accounts, REST base,
and the ccxt defaults a hedger must not inherit (Hyperliquid's builder fee and referrer)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import ccxt.pro as ccxt_pro
import pytest

from hedger.config import Venue
from hedger.live.venue_client import balance_params, make_client, reads_positions

WALLET = "0x5e9ee1089755c3435139848e47e6635505d5a13a"
KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


@pytest.fixture
async def client_of() -> AsyncIterator[Callable[..., Any]]:
    made: list[Any] = []

    def build(cfg: Venue, module: Any = None) -> Any:
        client = make_client(cfg) if module is None else make_client(cfg, module)
        made.append(client)
        return client

    yield build
    for client in made:
        await client.close()


def _urls(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [url for item in value.values() for url in _urls(item)]
    return []


async def test_hyperliquid_defaults_are_off_and_slippage_is_configured(
    client_of: Callable[..., Any],
) -> None:
    client = client_of(Venue(exchange="hyperliquid", wallet_address=WALLET, private_key=KEY))
    assert (client.walletAddress, client.privateKey) == (WALLET, KEY)
    assert client.options["builderFee"] is False  # ccxt's default: True (1 bp)
    assert client.options["refSet"] is True  # ccxt skips setReferrer
    assert client.options["defaultSlippage"] == 0.01  # ccxt's default: 0.05
    opted_in = client_of(
        Venue(
            exchange="hyperliquid",
            wallet_address=WALLET,
            private_key=KEY,
            hyperliquid={"builder_fee": True, "set_referrer": True, "market_slippage": 0.002},
        )
    )
    assert opted_in.options["builderFee"] is True
    assert opted_in.options["refSet"] is False
    assert opted_in.options["defaultSlippage"] == 0.002


async def test_credentials_pacing_and_options_reach_the_client(
    client_of: Callable[..., Any],
) -> None:
    client = client_of(
        Venue(
            exchange="okx",
            api_key="k",
            secret="s",
            password="p",
            timeout_seconds=4,
            rate_limit={"interval": "200ms"},
            options={"fetchMarkets": {"types": ["swap"]}, "defaultMarginMode": "isolated"},
        )
    )
    assert (client.apiKey, client.secret, client.password) == ("k", "s", "p")
    assert (client.timeout, client.rateLimit, client.enableRateLimit) == (4000, 200.0, True)
    assert client.options["fetchMarkets"]["types"] == ["swap"]
    assert client.options["defaultMarginMode"] == "isolated"
    assert "brokerId" in client.options  # ccxt's own options are kept, ours merged over them
    unpaced = client_of(Venue(exchange="okx", rate_limit={"enabled": False}))
    assert unpaced.enableRateLimit is False


async def test_a_unified_bybit_account_is_told_to_ccxt(client_of: Callable[..., Any]) -> None:
    client = client_of(Venue(exchange="bybit", api_key="k", secret="s", accounts=["unified"]))
    assert client.options["enableUnifiedAccount"] is True
    assert client.options["enableUnifiedMargin"] is False
    plain = client_of(Venue(exchange="bybit", api_key="k", secret="s"))
    assert plain.options.get("enableUnifiedAccount") is None  # ccxt asks the venue


async def test_the_rest_base_replaces_every_host_and_keeps_every_path(
    client_of: Callable[..., Any],
) -> None:
    default = client_of(Venue(exchange="binanceusdm"))
    moved = client_of(Venue(exchange="binanceusdm", urls={"rest": "http://127.0.0.1:9/"}))
    before, after = _urls(default.urls["api"]), _urls(moved.urls["api"])
    assert len(before) == len(after) > 10
    for old, new in zip(before, after, strict=True):
        path = old.split("://", 1)[1].partition("/")[2]
        assert new == f"http://127.0.0.1:9/{path}".rstrip("/")
    assert moved.urls["api"]["fapiPrivate"] == "http://127.0.0.1:9/fapi/v1"
    # ccxt.pro: REST moves, the websocket URLs stay.
    pro = client_of(Venue(exchange="binanceusdm", urls={"rest": "http://127.0.0.1:9"}), ccxt_pro)
    sockets = _urls(pro.urls["api"]["ws"])
    assert sockets and all(url.startswith("wss://") for url in sockets)


async def test_sandboxes(client_of: Callable[..., Any]) -> None:
    testnet = client_of(Venue(exchange="deribit", testnet=True))
    assert testnet.urls["api"]["rest"] == "https://test.deribit.com"
    local = client_of(Venue(exchange="deribit", testnet=True, urls={"rest": "http://127.0.0.1:9"}))
    assert local.urls["api"]["rest"] == "http://127.0.0.1:9"  # an explicit base wins
    demo = client_of(Venue(exchange="bybit", demo_trading=True))
    assert demo.options["enableDemoTrading"] is True
    assert all("api-demo" in url for url in _urls(demo.urls["api"]))


def test_accounts_decide_what_is_read() -> None:
    assert balance_params(Venue(exchange="binance")) == [{}]
    assert balance_params(Venue(exchange="binance", accounts=["spot", "future"])) == [
        {"type": "spot"},
        {"type": "future"},
    ]
    assert reads_positions(Venue(exchange="binance"))
    assert not reads_positions(Venue(exchange="binance", accounts=["spot", "funding"]))
    assert reads_positions(Venue(exchange="bybit", accounts=["unified"]))
