"""ccxt positions as the margin core's hedge legs, parsed by the real ccxt clients: Deribit's
``private/get_positions`` and account summaries from the paper venue, and Binance USD-M's
``GET /fapi/v3/positionRisk`` answered on loopback in its documented format."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import ccxt.async_support as ccxt_async
import pytest

from hedger.config import Venue
from hedger.config.models import VenueUrls
from hedger.core.margin import (
    MarginAction,
    MarginPolicy,
    MarginStatus,
    check_margins,
    liquidation_distance,
)
from hedger.execution.margin_read import account_margin_ratios, hedge_legs
from hedger.live.venue_client import make_client
from hedger.paper.server import PaperVenueServer
from hedger.sim.scenario import MarginSpec
from tests.ccxt_loopback import binanceusdm
from tests.ccxt_loopback.server import LoopbackVenue, Reply, Request
from tests.paper.conftest import make_server, point_at

MAINTENANCE_RATE = MarginSpec().future_maintenance
"""The paper venue's maintenance margin per unit of futures notional."""


@pytest.fixture
async def still_venue() -> AsyncIterator[PaperVenueServer]:
    """The paper venue with its clock all but stopped: marks hold still between reads."""
    server = make_server(ticks_per_second=0.01, history_minutes=0)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def deribit(still_venue: PaperVenueServer) -> AsyncIterator[Any]:
    client = point_at(ccxt_async.deribit({"apiKey": "paper", "secret": "paper"}), still_venue)
    await client.load_markets()
    yield client
    await client.close()


async def _read(client: Any, hedges: list[str] | None) -> tuple[list[Any], dict[str, Any]]:
    rows = await client.fetch_positions()
    balance = await client.fetch_balance()
    legs = hedge_legs(rows, client.markets, "deribit", "paper", hedges, balance)
    summaries = {s["currency"]: s for s in balance["info"]["summaries"]}
    return legs, summaries


async def test_an_inverse_short_hedge_is_liquidated_above_the_mark(deribit: Any) -> None:
    """A short BTC-PERPETUAL against 10 BTC: leveraged past the coin it holds, it dies on a
    rise; the venue's price is where equity meets maintenance margin."""
    await deribit.create_order("BTC/USD:BTC", "market", "sell", 2_000_000)
    (leg,), summaries = await _read(deribit, ["BTC-PERPETUAL"])
    btc = summaries["BTC"]

    assert (leg.venue, leg.instrument, leg.inverse) == ("paper", "BTC-PERPETUAL", True)
    face = leg.qty  # Deribit's amount: USD face, signed
    assert face < -900_000  # a market order may fill part of 2M on the paper book
    mark, liq = leg.mark_price, leg.liquidation_price
    assert liq is not None and liq > mark
    assert leg.maintenance_rate == pytest.approx(MAINTENANCE_RATE)
    # First principles, from the account summary: coin equity at ``liq`` against the
    # maintenance margin there (the position's own, at that price, plus nothing else).
    equity_at_liq = btc["equity"] + face * (1 / mark - 1 / liq)
    maintenance_at_liq = MAINTENANCE_RATE * abs(face) / liq
    assert equity_at_liq == pytest.approx(maintenance_at_liq, rel=1e-9)
    assert leg.margin_ratio == pytest.approx(btc["maintenance_margin"] / btc["margin_balance"])

    distance = liquidation_distance(leg.qty, mark, liq)
    assert distance == pytest.approx(liq / mark - 1)
    check = check_margins([leg], MarginPolicy(distance + 0.05, MarginAction.REDUCE))
    (breach,) = check.breaches
    assert breach.shortfall == pytest.approx(0.05)
    assert 0 < breach.reduce_to_fraction < 1

    # Cut the hedge as the guard says (10 USD lots) and read the venue again: the leg now
    # stands at the minimum distance, up to the lot, the fee and the fill's price.
    cut = round(abs(face) * (1 - breach.reduce_to_fraction) / 10) * 10
    await deribit.create_order("BTC/USD:BTC", "market", "buy", cut)
    (after,), _ = await _read(deribit, ["BTC-PERPETUAL"])
    assert after.qty == pytest.approx(face + cut)
    moved = liquidation_distance(after.qty, after.mark_price, after.liquidation_price)
    assert moved == pytest.approx(distance + 0.05, abs=0.005)
    assert check_margins([after], MarginPolicy(distance + 0.04)).action is None


async def test_an_inverse_long_and_a_linear_long_are_liquidated_below_the_mark(
    deribit: Any,
) -> None:
    await deribit.create_order("ETH/USD:ETH", "market", "buy", 3_000_000)
    await deribit.create_order("SOL/USDC:USDC", "market", "buy", 100_000)
    legs, summaries = await _read(deribit, None)
    by_id = {leg.instrument: leg for leg in legs}
    eth, sol = by_id["ETH-PERPETUAL"], by_id["SOL_USDC-PERPETUAL"]

    assert eth.inverse and not sol.inverse
    for leg in (eth, sol):
        assert leg.qty > 0 and leg.liquidation_price is not None
        assert 0 < leg.liquidation_price < leg.mark_price
        assert 0 < liquidation_distance(leg.qty, leg.mark_price, leg.liquidation_price) < 1
        assert leg.maintenance_rate == pytest.approx(MAINTENANCE_RATE)
    # Linear: quote equity at the price against maintenance there (amounts are SOL).
    usdc, p, x = summaries["USDC"], sol.mark_price, sol.liquidation_price
    assert x is not None
    assert usdc["equity"] + sol.qty * (x - p) == pytest.approx(
        MAINTENANCE_RATE * sol.qty * x, rel=1e-9
    )
    assert sol.margin_ratio == pytest.approx(usdc["maintenance_margin"] / usdc["margin_balance"])


async def test_only_hedge_instruments_are_legs_and_options_never_by_default(
    deribit: Any,
) -> None:
    await deribit.create_order("BTC/USD:BTC", "market", "sell", 10_000)
    option = next(s for s, m in deribit.markets.items() if m["option"] and m["base"] == "BTC")
    await deribit.create_order(option, "market", "buy", 1.0)
    rows = await deribit.fetch_positions()
    assert len(rows) == 2
    every = hedge_legs(rows, deribit.markets, "deribit", "paper")
    assert [leg.instrument for leg in every] == ["BTC-PERPETUAL"]
    assert hedge_legs(rows, deribit.markets, "deribit", "paper", ["ETH-PERPETUAL"]) == []
    by_symbol = hedge_legs(rows, deribit.markets, "deribit", "paper", ["BTC/USD:BTC"])
    assert [leg.instrument for leg in by_symbol] == ["BTC-PERPETUAL"]
    # A small short against 10 BTC of collateral: no price liquidates it.
    (leg,) = by_symbol
    assert leg.liquidation_price is None
    assert liquidation_distance(leg.qty, leg.mark_price, leg.liquidation_price) == math.inf


def test_deribit_without_the_field_uses_the_summary_ratio_or_says_unknown() -> None:
    """Deribit adds ``estimated_liquidation_price`` under ``segregated_sm`` only; otherwise
    the account's ``estimated_liquidation_ratio`` times the mark, or nothing is known."""
    market = {"id": "BTC-PERPETUAL", "symbol": "BTC/USD:BTC", "settle": "BTC", "inverse": True}
    row = {
        "symbol": "BTC/USD:BTC",
        "contracts": -50_000.0,
        "side": "short",
        "markPrice": 90_000.0,
        "liquidationPrice": None,
        "maintenanceMargin": 0.0056,
        "info": {"instrument_name": "BTC-PERPETUAL"},
    }
    summary = {
        "currency": "BTC",
        "maintenance_margin": 0.0056,
        "margin_balance": 0.4,
        "estimated_liquidation_ratio": 1.5,
    }
    markets = {"BTC/USD:BTC": market}
    (leg,) = hedge_legs([row], markets, "deribit", "d", None, {"info": {"summaries": [summary]}})
    assert leg.liquidation_price == pytest.approx(135_000.0)
    assert leg.margin_ratio == pytest.approx(0.014)
    (blind,) = hedge_legs([row], markets, "deribit", "d")
    assert blind.liquidation_price is not None and math.isnan(blind.liquidation_price)
    assert check_margins([blind], MarginPolicy(0.1)).readings[0].status is MarginStatus.UNKNOWN
    assert account_margin_ratios({"info": {"currency": "ETH"}}) == {}


# --- Binance USD-M positionRisk ----------------------------------------------------------------

POSITION_RISK = [
    {
        "symbol": "BTCUSDT",
        "positionSide": "BOTH",
        "positionAmt": "-2.500",
        "entryPrice": "90100.0",
        "breakEvenPrice": "90063.96",
        "markPrice": "90012.30000000",
        "unRealizedProfit": "219.25000000",
        "liquidationPrice": "101263.33810000",
        "isolatedMargin": "0",
        "notional": "-225030.75000000",
        "marginAsset": "USDT",
        "isolatedWallet": "0",
        "initialMargin": "22503.07500000",
        "maintMargin": "900.12300000",
        "positionInitialMargin": "22503.07500000",
        "openOrderInitialMargin": "0",
        "adl": 2,
        "bidNotional": "0",
        "askNotional": "0",
        "updateTime": 1796000000000,
    },
    {
        "symbol": "ETHUSDT",
        "positionSide": "BOTH",
        "positionAmt": "-1.000",
        "entryPrice": "3001.50",
        "breakEvenPrice": "3000.30",
        "markPrice": "3001.20000000",
        "unRealizedProfit": "0.30000000",
        "liquidationPrice": "0",
        "isolatedMargin": "0",
        "notional": "-3001.20000000",
        "marginAsset": "USDT",
        "isolatedWallet": "0",
        "initialMargin": "300.12000000",
        "maintMargin": "12.00480000",
        "positionInitialMargin": "300.12000000",
        "openOrderInitialMargin": "0",
        "adl": 1,
        "bidNotional": "0",
        "askNotional": "0",
        "updateTime": 1796000000000,
    },
]
"""developers.binance.com, USDⓈ-M futures, Position Information V3 (one-way mode, cross)."""

LEVERAGE_BRACKETS = [
    {
        "symbol": symbol,
        "notionalCoef": 1.5,
        "brackets": [
            {
                "bracket": 1,
                "initialLeverage": 125,
                "notionalCap": 300_000,
                "notionalFloor": 0,
                "maintMarginRatio": 0.004,
                "cum": 0.0,
            },
            {
                "bracket": 2,
                "initialLeverage": 100,
                "notionalCap": 800_000,
                "notionalFloor": 300_000,
                "maintMarginRatio": 0.005,
                "cum": 300.0,
            },
        ],
    }
    for symbol in ("BTCUSDT", "ETHUSDT")
]
"""Notional and Leverage Brackets (``GET /fapi/v1/leverageBracket``)."""


def _signed(payload: list[Any]) -> Any:
    def answer(request: Request) -> Reply:
        binanceusdm.assert_signed(request.raw_query, request.headers)
        return Reply(payload)

    return answer


@pytest.fixture
async def binance() -> AsyncIterator[tuple[LoopbackVenue, Any]]:
    routes = {
        **binanceusdm.BinanceUsdm().routes(),
        ("GET", "/fapi/v1/leverageBracket"): _signed(LEVERAGE_BRACKETS),
        ("GET", "/fapi/v3/positionRisk"): _signed(POSITION_RISK),
    }
    server = LoopbackVenue(routes)
    base = await server.start()
    cfg = Venue(
        exchange="binanceusdm",
        api_key=binanceusdm.API_KEY,
        secret=binanceusdm.SECRET,
        urls=VenueUrls(rest=base),
    )
    client = make_client(cfg)
    await client.load_markets()
    yield server, client
    await client.close()
    await server.stop()


async def test_binance_position_risk_gives_each_short_its_distance(
    binance: tuple[LoopbackVenue, Any],
) -> None:
    server, client = binance
    mark = len(server.requests)
    rows = await client.fetch_positions()
    asked = [(r.method, r.path, [k for k, _ in r.query]) for r in server.since(mark)]
    assert asked == [
        ("GET", "/fapi/v1/leverageBracket", ["timestamp", "recvWindow", "signature"]),
        ("GET", "/fapi/v3/positionRisk", ["timestamp", "recvWindow", "signature"]),
    ]
    legs = hedge_legs(rows, client.markets, "binanceusdm", "usdm", ["BTCUSDT", "ETHUSDT"])
    by_id = {leg.instrument: leg for leg in legs}
    btc, eth = by_id["BTCUSDT"], by_id["ETHUSDT"]

    assert (btc.qty, btc.mark_price, btc.liquidation_price) == (-2.5, 90012.3, 101263.3381)
    assert not btc.inverse
    # The short dies on the way up: 12.5% above the mark.
    distance = liquidation_distance(btc.qty, btc.mark_price, btc.liquidation_price)
    assert distance == pytest.approx(101263.3381 / 90012.3 - 1)
    # ccxt's maintenance margin: the bracket's rate times the notional (225,030.75 < 300k).
    assert btc.maintenance_rate == pytest.approx(0.004)
    assert math.isfinite(btc.margin_ratio) and 0 < btc.margin_ratio < 1
    # "0": Binance sees no liquidation price for the small ETH short.
    assert eth.liquidation_price is None

    check = check_margins(legs, MarginPolicy(0.15))
    assert [r.instrument for r in check.breaches] == ["BTCUSDT"]
    assert check.breaches[0].shortfall == pytest.approx(0.15 - distance)
    assert check.action is MarginAction.ALERT
    ratios = check.venue_margin_ratios()
    assert ratios["usdm"] == pytest.approx(max(btc.margin_ratio, eth.margin_ratio))
