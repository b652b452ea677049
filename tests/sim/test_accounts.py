"""Position accounting: realized + floating P&L equals the sum of each fill's own P&L, in coin
for inverse futures (that is what the harmonic average entry buys) and in quote for linear."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hedger.sim.accounts import Position, inverse_pnl, linear_pnl, short_option_margin
from hedger.sim.scenario import MarginSpec

FILLS = st.lists(
    st.tuples(
        st.integers(min_value=-500, max_value=500).filter(bool),  # lots, signed
        st.floats(min_value=20_000.0, max_value=200_000.0),  # price
    ),
    min_size=1,
    max_size=30,
)
MARK = st.floats(min_value=20_000.0, max_value=200_000.0)


@given(FILLS, MARK)
def test_inverse_pnl_is_additive_over_fills(fills: list[tuple[int, float]], mark: float) -> None:
    pos = Position()
    realized = 0.0
    for lots, price in fills:
        realized += pos.add(10.0 * lots, price, harmonic=True)
    floating = inverse_pnl(pos.size, pos.average_price, mark) if pos.size else 0.0
    # Each fill of a USD, at p, marked at M, makes a * (1/p - 1/M) coin.
    expected = sum(10.0 * lots * (1 / price - 1 / mark) for lots, price in fills)
    scale = sum(10.0 * abs(lots) / price for lots, price in fills)
    assert realized + floating == pytest.approx(expected, abs=1e-9 * scale)
    assert pos.realized_pnl == pytest.approx(realized)


@given(FILLS, MARK)
def test_linear_pnl_is_additive_over_fills(fills: list[tuple[int, float]], mark: float) -> None:
    pos = Position()
    realized = sum(pos.add(0.1 * lots, price, harmonic=False) for lots, price in fills)
    floating = linear_pnl(pos.size, pos.average_price, mark) if pos.size else 0.0
    expected = sum(0.1 * lots * (mark - price) for lots, price in fills)
    scale = sum(0.1 * abs(lots) * price for lots, price in fills)
    assert realized + floating == pytest.approx(expected, abs=1e-9 * scale)


def test_flip_restarts_the_average_at_the_fill_price() -> None:
    pos = Position()
    pos.add(1000.0, 90_000.0, harmonic=True)
    realized = pos.add(-3000.0, 100_000.0, harmonic=True)
    assert realized == pytest.approx(1000.0 * (1 / 90_000.0 - 1 / 100_000.0))
    assert (pos.size, pos.average_price) == (-2000.0, 100_000.0)


def test_short_option_margin_follows_deribits_rule() -> None:
    m = MarginSpec()
    # Deep OTM call: the floor applies; ATM: the base; plus the mark, per contract.
    otm = short_option_margin(m, 150_000.0, True, 90_000.0, 0.001, inverse=True, maintenance=False)
    atm = short_option_margin(m, 90_000.0, True, 90_000.0, 0.05, inverse=True, maintenance=False)
    assert otm == pytest.approx(m.option_short_floor + 0.001)
    assert atm == pytest.approx(m.option_short_base + 0.05)
    linear = short_option_margin(m, 150.0, False, 150.0, 10.0, inverse=False, maintenance=True)
    assert linear == pytest.approx(m.option_short_maintenance * 150.0 + 10.0)
