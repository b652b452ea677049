"""The listed universe: Deribit names and fields, strikes around the forward."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hedger.core.units import YEAR_MS
from hedger.sim.chains import build_universe, nice_step
from hedger.sim.expiries import expiry_code
from hedger.sim.instruments import SimInstrument
from hedger.sim.scenario import scenario

S = scenario("calm")
U = build_universe(S, S.start_ms)
OPTION = re.compile(r"^([A-Z]+)(_USDC)?-(\d{1,2}[A-Z]{3}\d{2})-(\d+(?:d\d+)?)-([CP])$")
GET_INSTRUMENTS_FIELDS = {
    "instrument_name",
    "kind",
    "base_currency",
    "counter_currency",
    "quote_currency",
    "contract_size",
    "min_trade_amount",
    "tick_size",
    "taker_commission",
    "maker_commission",
    "is_active",
    "expiration_timestamp",
    "creation_timestamp",
}


def _by_name(name: str) -> SimInstrument:
    return U.instruments[U.by_name[name]]


@given(st.floats(min_value=1e-6, max_value=1e9))
def test_nice_step_is_the_next_venue_like_step(x: float) -> None:
    step = nice_step(x)
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-12)
    assert any(math.isclose(mantissa, m) for m in (1.0, 2.0, 2.5, 5.0))
    assert x * (1 - 1e-9) <= step <= 2 * x


def test_names_are_unique_and_deribit_shaped() -> None:
    names = [i.instrument_name for i in U.instruments]
    assert len(names) == len(set(names))
    for inst in U.instruments:
        row = inst.to_deribit()
        assert row.keys() >= GET_INSTRUMENTS_FIELDS
        if inst.is_spot:
            assert "settlement_period" not in row and inst.instrument_name.endswith("_USDC")
        else:
            assert row["settlement_currency"] in (inst.base_currency, "USDC")
        if inst.is_option:
            m = OPTION.match(inst.instrument_name)
            assert m is not None, inst.instrument_name
            asset, linear, code, strike, cp = m.groups()
            assert asset == inst.base_currency and bool(linear) == (not inst.inverse)
            assert code == expiry_code(inst.expiration_timestamp)
            assert float(strike.replace("d", ".")) == inst.strike
            assert cp == ("C" if inst.option_type == "call" else "P")


def test_contract_conventions() -> None:
    btc, eth = _by_name("BTC-PERPETUAL"), _by_name("ETH-PERPETUAL")
    assert (btc.contract_size, btc.min_trade_amount, btc.settlement_currency) == (10.0, 10.0, "BTC")
    assert (eth.contract_size, eth.min_trade_amount, eth.counter_currency) == (1.0, 1.0, "USD")
    assert btc.inverse and btc.is_perpetual and btc.kind == "future"
    sol = _by_name("SOL_USDC-PERPETUAL")
    assert not sol.inverse and sol.settlement_currency == sol.counter_currency == "USDC"
    btc_opts = [i for i in U.instruments if i.is_option and i.base_currency == "BTC"]
    sol_opts = [i for i in U.instruments if i.is_option and i.base_currency == "SOL"]
    assert btc_opts and sol_opts
    assert all(i.inverse and i.quote_currency == "BTC" and i.contract_size == 1 for i in btc_opts)
    assert all(not i.inverse and i.settlement_currency == "USDC" for i in sol_opts)
    futures = [i for i in U.instruments if i.is_future]
    assert {i.base_currency for i in futures} == {"BTC", "ETH"}
    assert len(U.options) > 200


def test_strikes_surround_the_forward_on_a_constant_step() -> None:
    chains: dict[tuple[str, int], list[float]] = defaultdict(list)
    for inst in U.instruments:
        if inst.is_option and inst.is_call:
            assert inst.strike is not None
            chains[(inst.base_currency, inst.expiration_timestamp)].append(inst.strike)
    spot = {a.name: a for a in S.assets}
    for (asset, expiry), strikes in chains.items():
        t = (expiry - S.start_ms) / YEAR_MS
        a = spot[asset]
        forward = a.spot_usd * math.exp(a.listing.basis_per_year * t)
        assert min(strikes) < forward < max(strikes), (asset, expiry, strikes)
        steps = {round(b - a, 8) for a, b in pairwise(strikes)}
        assert len(steps) == 1 and len(strikes) >= 5, (asset, expiry, strikes)


@pytest.mark.parametrize("asset", ["BTC", "ETH", "SOL"])
def test_underlying_index_is_the_same_dated_future_or_synthetic(asset: str) -> None:
    for i in U.options:
        inst = U.instruments[i]
        if inst.base_currency != asset:
            continue
        underlying = U.underlying_index[i]
        code = expiry_code(inst.expiration_timestamp)
        if underlying.startswith("SYN."):
            assert underlying.endswith(code) and underlying[4:] not in U.by_name
        else:
            fut = _by_name(underlying)
            assert fut.is_future and fut.expiration_timestamp == inst.expiration_timestamp
