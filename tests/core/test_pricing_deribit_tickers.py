"""Two Deribit option tickers, as Deribit's API sent them, reproduced to the printed digit.

Deribit's API documentation prints its ``public/ticker`` and ``ticker.{instrument}.{interval}``
examples for BTC-PERPETUAL only (no ``greeks``, ``mark_iv`` or ``underlying_price``), so the
option examples here are two responses captured from Deribit's public API and kept verbatim
in the tests of crypto-crawler-rs (``crypto-msg-parser/tests/deribit.rs``): an inverse BTC
call from the ticker channel and an inverse ETH put from ``public/get_order_book``.

Deribit prints ``mark_iv`` to 0.01 vol points and stamps the message a little after it
computed the Greeks, so the exact inputs lie within that rounding and a few seconds of the
timestamp. The test asks whether some (vol, time) in that box reproduces every printed
figure (mark in coin, delta, gamma, vega, theta) to half a unit of its last printed digit,
under Deribit's conventions (Black-76 on ``underlying_price``, r = 0, ACT/365 to 08:00 UTC,
vega per vol point, theta per calendar day). Two inputs cannot fit five outputs by accident:
the same search under a 365.25-day year or a vega per 1.00 of vol finds nothing.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from hedger.core.pricing import black76, coin_price, deribit_expiry_ms, deribit_theta

BTC_CALL_TICKER = """{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.BTC-30SEP22-60000-C.100ms","data":{"underlying_price":30220.5,"underlying_index":"BTC-30SEP22","timestamp":1654161839367,"stats":{"volume":16.7,"price_change":-18.1818,"low":0.009,"high":0.011},"state":"open","settlement_price":0.01,"open_interest":1767.5,"min_price":0.0001,"max_price":0.038,"mark_price":0.0084,"mark_iv":67.7,"last_price":0.009,"interest_rate":0.0,"instrument_name":"BTC-30SEP22-60000-C","index_price":29939.43,"greeks":{"vega":20.05335,"theta":-5.65962,"rho":4.91491,"gamma":0.00001,"delta":0.05785},"estimated_delivery_price":29939.43,"bid_iv":67.16,"best_bid_price":0.008,"best_bid_amount":2.8,"best_ask_price":0.009,"best_ask_amount":18.5,"ask_iv":68.65}}}"""  # noqa: E501

ETH_PUT_BOOK = """{"jsonrpc":"2.0","result":{"underlying_price":1806.5,"underlying_index":"ETH-24JUN22","timestamp":1654247489923,"stats":{"volume":1117.0,"price_change":-8.4507,"low":0.031,"high":0.036},"state":"open","settlement_price":0.03,"open_interest":15009.0,"min_price":0.009,"max_price":0.0795,"mark_price":0.0336,"mark_iv":86.54,"last_price":0.0325,"interest_rate":0.0,"instrument_name":"ETH-24JUN22-1600-P","index_price":1804.41,"greeks":{"vega":1.36169,"theta":-2.81237,"rho":-0.28927,"gamma":0.00084,"delta":-0.24537},"estimated_delivery_price":1804.41,"change_id":24460060432,"bids":[[0.033,226.0],[0.0325,797.0],[0.032,355.0]],"bid_iv":85.74,"best_bid_price":0.033,"best_bid_amount":226.0,"best_ask_price":0.034,"best_ask_amount":595.0,"asks":[[0.034,595.0],[0.0345,779.0],[0.035,186.0]],"ask_iv":87.07},"usIn":1654247489999588,"usOut":1654247489999885,"usDiff":297,"testnet":false}"""  # noqa: E501

IV_ROUNDING = 0.005  # vol points: mark_iv is printed with two decimals
STAMP_SLACK_S = 60.0
FIELDS = ("mark_price", "delta", "gamma", "vega", "theta")


def _ticker(raw: str) -> dict[str, Any]:
    message = json.loads(raw, parse_float=Decimal)
    data: dict[str, Any] = message["params"]["data"] if "params" in message else message["result"]
    return data


def _half_unit(printed: Decimal) -> float:
    """Half a unit of the last printed digit: 0.05785 -> 0.000005."""
    return 0.5 * 10.0 ** printed.as_tuple().exponent  # type: ignore[operator]


def _model(
    data: dict[str, Any], days_per_year: float = 365.0, vega_per: float = 0.01
) -> dict[str, np.ndarray]:
    """Every printed figure over a grid of (vol, time) within the inputs' rounding."""
    _, expiry, strike, kind = str(data["instrument_name"]).split("-")
    when = datetime.strptime(expiry, "%d%b%y")
    expiry_ms = deribit_expiry_ms(when.year, when.month, when.day)
    forward, k, is_call = float(data["underlying_price"]), float(strike), kind == "C"
    iv = float(data["mark_iv"]) / 100.0
    vols = np.linspace(iv - IV_ROUNDING / 100, iv + IV_ROUNDING / 100, 201)[:, None]
    shifts_ms = np.linspace(-STAMP_SLACK_S, STAMP_SLACK_S, 241)[None, :] * 1000.0
    t = (expiry_ms - (int(data["timestamp"]) + shifts_ms)) / (days_per_year * 86_400_000.0)
    greeks = black76(forward, k, t, vols, is_call)
    theta = deribit_theta(greeks, forward, k, is_call) * 365.0 / days_per_year
    return {
        "mark_price": coin_price(greeks.price, forward),
        "delta": greeks.delta,
        "gamma": greeks.gamma,
        "vega": greeks.vega * vega_per / 0.01,
        "theta": theta,
    }


def _reproduced(data: dict[str, Any], model: dict[str, np.ndarray]) -> np.ndarray:
    """Where on the grid every printed figure is matched to its printed precision."""
    printed = {"mark_price": data["mark_price"], **data["greeks"]}
    ok = np.ones_like(model["delta"], dtype=bool)
    for name in FIELDS:
        ok &= np.abs(model[name] - float(printed[name])) <= _half_unit(printed[name])
    return ok


@pytest.mark.parametrize("raw", [BTC_CALL_TICKER, ETH_PUT_BOOK], ids=["btc-call", "eth-put"])
def test_every_printed_figure_is_reproduced(raw: str) -> None:
    data = _ticker(raw)
    model = _model(data)
    ok = _reproduced(data, model)
    if not ok.any():
        worst = {
            name: float(np.min(np.abs(model[name] - float(data["greeks"].get(name, 0) or 0))))
            for name in FIELDS
        }
        pytest.fail(f"{data['instrument_name']}: no (vol, time) fits; closest gaps {worst}")


@pytest.mark.parametrize("raw", [BTC_CALL_TICKER, ETH_PUT_BOOK], ids=["btc-call", "eth-put"])
def test_mark_delta_and_gamma_at_the_printed_inputs(raw: str) -> None:
    """No search at all: the printed mark_iv and timestamp, printed precision plus the
    rounding of mark_iv carried through (delta moves ~1e-5 per 0.005 vol points)."""
    data = _ticker(raw)
    model = _model(data)
    center = (100, 120)  # the printed vol and timestamp
    vol_step = np.abs(model["delta"][-1, 120] - model["delta"][0, 120]) / 2
    for name, slack in (("mark_price", 0.0), ("gamma", 0.0), ("delta", vol_step)):
        printed = data["mark_price"] if name == "mark_price" else data["greeks"][name]
        gap = abs(float(model[name][center]) - float(printed))
        assert gap <= _half_unit(printed) + slack, (name, gap)


@pytest.mark.parametrize(
    ("days_per_year", "vega_per"), [(365.25, 0.01), (360.0, 0.01), (365.0, 1.0)]
)
def test_other_conventions_fit_neither_ticker(days_per_year: float, vega_per: float) -> None:
    for raw in (BTC_CALL_TICKER, ETH_PUT_BOOK):
        data = _ticker(raw)
        assert not _reproduced(data, _model(data, days_per_year, vega_per)).any()
