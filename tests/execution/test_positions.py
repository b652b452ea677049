"""Venue positions through ccxt become core positions with the right coin delta."""

from __future__ import annotations

from typing import Any

import ccxt.async_support as ccxt_async
import numpy as np
import pytest

from hedger.core.exposure import Quotes, build_book, exposure
from hedger.core.factors import factor_indices, prior_loadings
from hedger.core.instruments import Kind
from hedger.execution.positions import balance_positions, venue_positions
from tests.paper.conftest import make_server, point_at


async def test_short_inverse_perp_from_the_venue_has_coin_delta_minus_face_over_price() -> None:
    server = make_server(history_minutes=0)
    await server.start()
    client: Any = point_at(ccxt_async.deribit({"apiKey": "paper", "secret": "paper"}), server)
    try:
        markets = await client.load_markets()
        await client.create_order("BTC/USD:BTC", "market", "sell", 9_000)
        option = next(s for s, m in markets.items() if m["option"] and m["base"] == "BTC")
        await client.create_order(option, "market", "buy", 0.5)
        positions = venue_positions(await client.fetch_positions(), markets, "deribit", "paper")
        by_kind = {p.instrument.kind: p for p in positions}
        perp = by_kind[Kind.PERP]
        assert (
            perp.qty == -9_000 and perp.instrument.inverse and perp.instrument.contract_size == 1.0
        )
        assert by_kind[Kind.OPTION].qty == pytest.approx(0.5)
        assert by_kind[Kind.OPTION].instrument.strike == markets[option]["strike"]

        book = build_book([perp], ("BTC",))
        price = float((await client.fetch_ticker("BTC/USD:BTC"))["info"]["index_price"])
        quotes = Quotes(np.array([price]), np.array([price]), np.array([np.nan]), np.array([price]))
        loadings, _ = prior_loadings(book.assets, ("BTC",), {})
        ex = exposure(book, quotes, loadings, factor_indices(book.assets, ("BTC",)), 0)
        assert ex.beta_delta[0] == pytest.approx(-9_000 / price)

        spot = {
            p.instrument.underlying: p.qty
            for p in balance_positions(await client.fetch_balance(), "paper")
        }
        assert spot["USDC"] == pytest.approx(1_000_000.0) and 9.9 < spot["BTC"] <= 10.0
    finally:
        await client.close()
        await server.stop()


def test_options_value_is_taken_out_of_the_equity() -> None:
    """Deribit's equity includes the options' mark value; the options are positions of
    their own, so counting both would double their delta."""
    balance = {
        "total": {"BTC": 10.5, "USDC": 0.0},
        "info": {"summaries": [{"currency": "btc", "options_value": 0.5}]},
    }
    (btc,) = balance_positions(balance, "paper")
    assert (btc.instrument.underlying, btc.qty) == ("BTC", 10.0)
