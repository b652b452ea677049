"""Symbol mapping on the markets ccxt itself builds: each exchange class's ``load_markets``
answered on loopback in the venue's documented formats (``tests/ccxt_loopback``), then
mapped to the portfolio's assets and amount units by ``hedger.market.symbols`` alone."""

from __future__ import annotations

from typing import Any

import pytest

from hedger.config import Venue
from hedger.config.models import VenueUrls
from hedger.live.venue_client import make_client
from hedger.market.symbols import (
    SymbolError,
    VenueInstrument,
    hedge_candidates,
    instrument,
    resolve,
)
from tests.ccxt_loopback import binanceusdm, bybit, deribit, hyperliquid, okx
from tests.ccxt_loopback.server import LoopbackVenue

VENUES = {
    "deribit": deribit.Deribit,
    "binanceusdm": binanceusdm.BinanceUsdm,
    "bybit": bybit.Bybit,
    "okx": okx.Okx,
    "hyperliquid": hyperliquid.Hyperliquid,
}


_LOADED: dict[str, tuple[str, dict[str, Any], int]] = {}
"""Markets are plain data: each exchange's are loaded once for the module."""


async def load(exchange: str) -> tuple[str, dict[str, Any], int]:
    """The exchange's ccxt markets, as its own ``load_markets`` builds them (no keys)."""
    if exchange in _LOADED:
        return _LOADED[exchange]
    server = LoopbackVenue(VENUES[exchange]().routes())
    base = await server.start()
    client = make_client(Venue(exchange=exchange, urls=VenueUrls(rest=base)))
    try:
        markets = await client.load_markets()
        _LOADED[exchange] = (client.id, dict(markets), int(client.precisionMode))
        return _LOADED[exchange]
    finally:
        await client.close()
        await server.stop()


async def mapped(exchange: str, name: str) -> VenueInstrument:
    exchange_id, markets, mode = await load(exchange)
    return instrument(exchange, exchange_id, resolve(markets, name, exchange), mode)


@pytest.mark.parametrize(
    ("exchange", "name", "expected"),
    [
        # Deribit: ccxt passes the native amount (USD on inverse, coin elsewhere).
        ("deribit", "BTC-PERPETUAL", ("BTC/USD:BTC", "swap", "BTC", True, 1.0, 10.0)),
        ("deribit", "BTC_USDC-PERPETUAL", ("BTC/USDC:USDC", "swap", "BTC", False, 1.0, 0.001)),
        ("deribit", "BTC_USDC", ("BTC/USDC", "spot", "BTC", False, 1.0, 0.0001)),
        # Binance USD-M: contracts of 1 coin; 1000PEPE is a thousand PEPE.
        ("binanceusdm", "BTCUSDT", ("BTC/USDT:USDT", "swap", "BTC", False, 1.0, 0.001)),
        ("binanceusdm", "1000PEPEUSDT", ("1000PEPE/USDT:USDT", "swap", "PEPE", False, 1000.0, 1.0)),
        ("binanceusdm", "BTCUSDT_261225",
         ("BTC/USDT:USDT-261225", "future", "BTC", False, 1.0, 0.001)),
        # Bybit: inverse contracts of 1 USD.
        ("bybit", "BTC/USD:BTC", ("BTC/USD:BTC", "swap", "BTC", True, 1.0, 1.0)),
        ("bybit", "SOL/USDT:USDT", ("SOL/USDT:USDT", "swap", "SOL", False, 1.0, 0.1)),
        # OKX: contracts of 0.01 BTC, and inverse ones of 100 USD.
        ("okx", "BTC-USDT-SWAP", ("BTC/USDT:USDT", "swap", "BTC", False, 0.01, 0.01)),
        ("okx", "BTC-USD-SWAP", ("BTC/USD:BTC", "swap", "BTC", True, 100.0, 1.0)),
        ("okx", "BTC-USDT", ("BTC/USDT", "spot", "BTC", False, 1.0, 0.00000001)),
        # Hyperliquid: perps are numbered; kPEPE is a thousand PEPE; UBTC spot is BTC.
        ("hyperliquid", "0", ("BTC/USDC:USDC", "swap", "BTC", False, 1.0, 0.00001)),
        ("hyperliquid", "KPEPE/USDC:USDC", ("KPEPE/USDC:USDC", "swap", "PEPE", False, 1000.0, 1.0)),
        ("hyperliquid", "@142", ("BTC/USDC", "spot", "BTC", False, 1.0, 0.00001)),
    ],
)  # fmt: skip
async def test_markets_map_to_assets_and_amount_units(
    exchange: str, name: str, expected: tuple[Any, ...]
) -> None:
    i = await mapped(exchange, name)
    assert (i.symbol, i.kind, i.asset, i.inverse, i.amount_size, i.amount_step) == expected


@pytest.mark.parametrize(
    ("exchange", "perp"),
    [
        ("deribit", "BTC/USD:BTC"),
        ("deribit", "BTC/USDC:USDC"),
        ("binanceusdm", "BTC/USDT:USDT"),
        ("bybit", "BTC/USD:BTC"),
        ("bybit", "BTC/USDT:USDT"),
        ("okx", "BTC/USD:BTC"),
        ("okx", "BTC/USDT:USDT"),
        ("hyperliquid", "BTC/USDC:USDC"),
    ],
)
async def test_one_btc_of_delta_is_the_same_notional_on_every_venue(
    exchange: str, perp: str
) -> None:
    """The units agree across venues: an amount sized for one BTC of delta at 90 000 is
    90 000 USD of notional whatever the venue counts (USD, coins or contracts)."""
    hedge = (await mapped(exchange, perp)).hedge_market()
    amount = hedge.amount_for(1.0, 90_000.0)
    assert hedge.notional_usd(amount, 90_000.0) == pytest.approx(90_000.0)
    expected = {
        ("deribit", "BTC/USD:BTC"): 90_000.0,  # USD
        ("bybit", "BTC/USD:BTC"): 90_000.0,  # 1-USD contracts
        ("okx", "BTC/USD:BTC"): 900.0,  # 100-USD contracts
        ("okx", "BTC/USDT:USDT"): 100.0,  # 0.01-BTC contracts
    }.get((exchange, perp), 1.0)  # coins
    assert amount == pytest.approx(expected)


async def test_an_id_shared_by_two_markets_must_be_written_as_a_symbol() -> None:
    _, markets, _ = await load("bybit")
    with pytest.raises(SymbolError, match=r"write one of BTC/USDT, BTC/USDT:USDT"):
        resolve(markets, "BTCUSDT", "bybit")
    assert resolve(markets, "BTC/USDT:USDT")["linear"] is True
    with pytest.raises(SymbolError, match="neither a symbol nor an instrument id on bybit"):
        resolve(markets, "BTC-PERPETUAL", "bybit")


async def test_hedge_candidates_are_the_assets_perpetuals_cheapest_first() -> None:
    exchange_id, markets, mode = await load("bybit")
    found = hedge_candidates("BTC", "bybit", exchange_id, markets, mode)
    # Same taker fee (ccxt's default for both): linear before inverse; no spot, no SOL.
    assert [i.symbol for i in found] == ["BTC/USDT:USDT", "BTC/USD:BTC"]
    exchange_id, markets, mode = await load("binanceusdm")
    assert [i.symbol for i in hedge_candidates("PEPE", "b", exchange_id, markets, mode)] == [
        "1000PEPE/USDT:USDT"
    ]  # by asset, not by ticker; the dated BTC future is not a candidate
    assert hedge_candidates("ETH", "b", exchange_id, markets, mode)[0].symbol == "ETH/USDT:USDT"


async def test_deribit_options_count_coins_and_keep_their_terms() -> None:
    option = await mapped("deribit", "BTC-25DEC26-100000-C")
    assert (option.kind, option.inverse, option.amount_size, option.amount_step) == (
        "option",
        False,  # coin-settled, but the amount is BTC: not USD face
        1.0,
        0.1,
    )
    assert (option.strike, option.option_type, option.expiry_ms) == (
        100000.0,
        "call",
        1798185600000,
    )


@pytest.mark.parametrize(
    ("exchange", "name", "min_cost"),
    [("binanceusdm", "BTCUSDT", 100.0), ("hyperliquid", "0", 10.0), ("okx", "BTC-USDT-SWAP", None)],
)
async def test_the_smallest_order_value_is_kept(
    exchange: str, name: str, min_cost: float | None
) -> None:
    """Binance refuses a BTCUSDT order under 100 USDT and Hyperliquid one under 10 USDC,
    whatever the lot says: the mapping keeps it for the sizing to respect."""
    assert (await mapped(exchange, name)).min_cost == min_cost
