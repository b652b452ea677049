"""Every example in ``config/`` is a valid configuration for ``hedger check-config`` (offline,
the command's own entry point), and every venue in it makes a ccxt client and a broker of
its venue's family."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from hedger.cli import main
from hedger.config import load_config
from hedger.config.models import VenueUrls
from hedger.execution.brokers import make_broker, venue_family
from hedger.live.venue_client import make_client
from hedger.market.symbols import instrument, resolve
from tests.ccxt_loopback import binanceusdm, bybit, deribit, hyperliquid, okx
from tests.ccxt_loopback.server import LoopbackVenue

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "config").glob("*.yaml"))
REQUIRED_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""``${NAME}`` without a default: the operator must set it."""
FIXTURES: dict[str, Any] = {
    "deribit": deribit.Deribit,
    "binanceusdm": binanceusdm.BinanceUsdm,
    "bybit": bybit.Bybit,
    "okx": okx.Okx,
    "hyperliquid": hyperliquid.Hyperliquid,
}
STAND_INS = {
    "HL_WALLET_ADDRESS": "0x5e9ee1089755c3435139848e47e6635505d5a13a",
    "HL_API_WALLET_KEY": "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318",
}


def _env(path: Path) -> dict[str, str]:
    """A stand-in value for every variable the example requires."""
    names = set(REQUIRED_ENV.findall(path.read_text()))
    return {name: STAND_INS.get(name, f"stand-in-{name.lower()}") for name in names}


def test_the_examples_cover_the_venues() -> None:
    names = {path.name for path in EXAMPLES}
    assert {
        "binance-spot-deribit-hedge.yaml",
        "hyperliquid-perp-hedge.yaml",
        "multi-venue-alts.yaml",
        "deribit-options.yaml",
    } <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_check_config_accepts_the_example_offline(
    path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in _env(path).items():
        monkeypatch.setenv(name, value)
    assert main(["check-config", str(path)]) == 0, capsys.readouterr().err
    assert "valid configuration" in capsys.readouterr().out


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
async def test_every_venue_of_the_example_makes_its_client_and_broker(path: Path) -> None:
    cfg = load_config(path, env=_env(path))
    for name, venue in cfg.venues.items():
        client = make_client(venue)
        try:
            broker = make_broker(client, name, venue.exchange, venue.label_max_len)
            assert broker.venue == name
            assert venue_family(client, venue.exchange) in venue.exchange  # binance ⊂ binance
        finally:
            await client.close()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
async def test_every_hedge_instrument_is_a_perpetual_of_its_factor(path: Path) -> None:
    """On the venue's markets as ccxt loads them (answered on loopback in its documented
    formats), each factor's configured hedge is a perpetual on the factor's asset."""
    cfg = load_config(path, env=_env(path))
    for factor in cfg.factors:
        venue = cfg.venues[factor.hedge.venue]
        if venue.paper is not None:
            continue  # the paper venue's markets are the simulator's
        server = LoopbackVenue(FIXTURES[venue.exchange]().routes())
        base = await server.start()
        client = make_client(venue.model_copy(update={"urls": VenueUrls(rest=base)}))
        try:
            markets = await client.load_markets()
            hedge = instrument(
                factor.hedge.venue,
                client.id,
                resolve(markets, factor.hedge.symbol, factor.hedge.venue),
                client.precisionMode,
            )
            assert (hedge.kind, hedge.asset) == ("swap", factor.asset), factor
        finally:
            await client.close()
            await server.stop()
