"""MarketState: what a valid tick writes, and every reason a bad one is dropped."""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import Any

import numpy as np
import pytest

from hedger.backoff import Backoff
from hedger.market.state import BadTick, LiveMarket, MarketState

NAN = float("nan")
INF = float("inf")
TS = 1_796_000_000_000


def fresh() -> MarketState:
    state = MarketState(["BTC-PERPETUAL", "BTC-27NOV26-90000-C"])
    # Receive time 0 s is TS on the exchange's clock, so the tests' timestamps are never
    # "from the future" whatever the host's clocks say.
    state.set_clock(TS, 0.0)
    return state


def write(state: MarketState, **changes: object) -> bool:
    """One tick through ``update``: a valid BTC-PERPETUAL quote on row 0 unless changed.
    Values are passed as given (no coercion), so a test can hand ``update`` a bool or a
    string where a number belongs."""
    tick: dict[str, Any] = {
        "row": 0,
        "bid": 90_000.0,
        "ask": 90_000.5,
        "mark": 90_000.2,
        "index": 89_990.0,
        "underlying": NAN,
        "iv": NAN,
        "exch_ts_ms": TS,
        "recv_s": 100.0,
    }
    tick |= changes
    return state.update(
        tick["row"],
        tick["bid"],
        tick["ask"],
        tick["mark"],
        tick["index"],
        tick["underlying"],
        tick["iv"],
        tick["exch_ts_ms"],
        tick["recv_s"],
    )


def test_a_valid_tick_fills_its_row_only() -> None:
    state = fresh()
    assert write(state, row=1, bid=0.03, ask=0.031, mark=0.0305, underlying=90_010.0, iv=0.55)
    assert (state.bid[1], state.ask[1], state.mark[1]) == (0.03, 0.031, 0.0305)
    assert (state.index[1], state.underlying_price[1], state.mark_iv[1]) == (
        89_990.0,
        90_010.0,
        0.55,
    )
    assert (state.exchange_ts_ms[1], state.received_s[1], state.updates[1]) == (TS, 100.0, 1)
    assert state.updates[0] == 0 and math.isnan(state.mark[0])
    assert state.accepted == 1 and sum(state.rejected.values()) == 0


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"mark": NAN}, BadTick.NAN),
        ({"index": NAN}, BadTick.NAN),
        ({"bid": INF}, BadTick.NAN),
        ({"iv": -INF}, BadTick.NAN),
        ({"mark": 0.0}, BadTick.NON_POSITIVE),
        ({"index": -1.0}, BadTick.NON_POSITIVE),
        ({"ask": -0.5}, BadTick.NON_POSITIVE),
        ({"underlying": 0.0}, BadTick.NON_POSITIVE),
        ({"iv": 0.0}, BadTick.NON_POSITIVE),
        ({"bid": 90_001.0, "ask": 90_000.0}, BadTick.CROSSED),
    ],
)
def test_a_bad_tick_is_counted_by_reason_and_never_written(
    changes: dict[str, float], reason: BadTick
) -> None:
    state = fresh()
    assert write(state)
    columns = ("bid", "ask", "mark", "index", "exchange_ts_ms", "received_s", "updates")
    before = {column: getattr(state, column).copy() for column in columns}
    assert not write(state, exch_ts_ms=TS + 1, recv_s=101.0, **changes)
    assert state.rejected[reason] == 1
    assert sum(state.rejected.values()) == 1
    for column in columns:
        np.testing.assert_array_equal(getattr(state, column), before[column])


def test_an_older_exchange_timestamp_is_out_of_order_but_the_same_one_is_accepted() -> None:
    state = fresh()
    assert write(state, exch_ts_ms=TS)
    assert not write(state, exch_ts_ms=TS - 1, mark=1.0)
    assert state.rejected[BadTick.OUT_OF_ORDER] == 1 and state.mark[0] == 90_000.2
    assert write(state, exch_ts_ms=TS, mark=90_001.0)
    assert state.mark[0] == 90_001.0 and state.updates[0] == 2


def test_an_empty_book_side_is_a_missing_quote_not_a_bad_tick() -> None:
    state = fresh()
    assert write(state, row=1, bid=NAN, ask=0.001, mark=0.0008)
    assert math.isnan(state.bid[1]) and state.ask[1] == 0.001


def test_stale_and_age_follow_the_receive_clock() -> None:
    state = fresh()
    write(state, row=0, recv_s=100.0)
    assert state.age_seconds(100.25).tolist() == [0.25, math.inf]  # row 1 never ticked
    assert state.stale([0, 1], now_s=100.25, stale_after_s=0.5).tolist() == [False, True]
    assert state.stale(None, now_s=100.75, stale_after_s=0.5).tolist() == [True, True]
    assert state.stale(np.array([0]), now_s=100.5, stale_after_s=0.5).tolist() == [False]


def test_extended_keeps_rows_and_data_and_adds_empty_rows() -> None:
    state = fresh()
    write(state, row=1, mark=0.03, bid=0.029, ask=0.031)
    state.reject(BadTick.MALFORMED)
    bigger = state.extended(["ETH-PERPETUAL", "BTC-PERPETUAL"])
    assert bigger.symbols == (*state.symbols, "ETH-PERPETUAL")
    assert bigger.rows["ETH-PERPETUAL"] == 2 and bigger.updates.tolist() == [0, 1, 0]
    assert bigger.mark[1] == 0.03 and math.isnan(bigger.mark[2])
    assert bigger.rejected[BadTick.MALFORMED] == 1
    assert not write(bigger, row=1, mark=0.02, exch_ts_ms=TS - 1)  # ordering carried over


def test_duplicate_symbols_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        MarketState(["BTC-PERPETUAL", "BTC-PERPETUAL"])


async def test_the_engine_wakes_once_for_a_burst_of_ticks() -> None:
    market = LiveMarket(fresh())
    waiter = asyncio.create_task(market.changed.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    for i in range(5):  # a burst: conflated into one wake-up
        market.update(0, 90_000.0, 90_001.0, 90_000.5 + i, 90_000.0, NAN, NAN, TS + i, 1.0)
    await asyncio.wait_for(waiter, 1.0)
    market.changed.clear()  # what the engine's cycle does on waking
    assert market.state.mark[0] == 90_004.5 and market.state.updates[0] == 5
    # A rejected tick does not wake the engine.
    assert not market.update(0, NAN, NAN, NAN, 1.0, NAN, NAN, TS + 9, 2.0)
    assert not market.changed.is_set()


def test_backoff_grows_to_the_cap_with_jitter() -> None:
    backoff, rng = Backoff(initial_s=0.1, cap_s=2.0), random.Random(7)
    delays = [backoff.delay_s(attempt, rng) for attempt in range(10)]
    assert 0.05 <= delays[0] <= 0.1
    assert all(1.0 <= d <= 2.0 for d in delays[5:])  # 0.1 * 2**5 > cap
    assert len(set(delays)) == len(delays)  # jittered, not lockstep
    assert backoff.delay_s(10_000, rng) <= 2.0
    with pytest.raises(ValueError, match="initial_s"):
        Backoff(initial_s=5.0, cap_s=1.0)


def test_a_non_integer_timestamp_is_malformed_and_writes_nothing() -> None:
    state = fresh()
    assert not state.update(0, 1.0, 2.0, 1.5, 1.5, NAN, NAN, 1.796e12, 1.0)  # type: ignore[arg-type]
    assert not state.update(0, 1.0, 2.0, "1.5", 1.5, NAN, NAN, TS, 1.0)  # type: ignore[arg-type]
    assert not state.update(0, 1.0, 2.0, 1.5, 1.5, NAN, NAN, 2**70, 1.0)
    assert state.rejected[BadTick.MALFORMED] == 3
    assert math.isnan(state.mark[0]) and state.exchange_ts_ms[0] == 0 and state.updates[0] == 0


# -- values that are not numbers, timestamps from the future (issue 13, item 4) -------------

TICK_FIELDS = ("bid", "ask", "mark", "index", "underlying", "iv", "exch_ts_ms")


def test_a_bool_or_any_non_number_in_a_price_iv_or_timestamp_is_malformed() -> None:
    """Invariant: only numbers reach the columns; a bool is not a number.

    Before: ``True`` passed every comparison as 1 and was stored as a price of 1.0 (a mark of
    1.0 USD for BTC), a ``True``/``False`` timestamp was stored as 1/0 ms on a fresh row, and a
    ``False`` price was counted as non-positive instead of malformed.
    """
    bad_values: list[object] = [True, False, "90000.5", None, {"price": 1.0}, [90_000.0]]
    for field in TICK_FIELDS:
        for bad in bad_values:
            state = fresh()
            assert not write(state, **{field: bad}), (field, bad)
            assert state.rejected[BadTick.MALFORMED] == 1, (field, bad, state.rejected)
            assert sum(state.rejected.values()) == 1
            assert state.updates[0] == 0 and math.isnan(state.mark[0])
            assert state.exchange_ts_ms[0] == 0
            assert write(state)  # the row still takes the next good tick


def test_a_tick_from_the_year_3000_is_refused_and_never_becomes_the_high_water_mark() -> None:
    """Invariant: a timestamp more than ``max_ahead_ms`` ahead of the receive clock is refused
    (``FUTURE``), and the row's order check keeps judging real ticks against real ones.

    Before: the year-3000 tick was stored, and every later real tick was dropped as out of
    order until a restart.
    """
    state = fresh()
    assert write(state, exch_ts_ms=TS, recv_s=0.0)
    year_3000_ms = 32_503_680_000_000
    assert not write(state, exch_ts_ms=year_3000_ms, mark=1.0, recv_s=0.1)
    assert state.rejected[BadTick.FUTURE] == 1 and state.mark[0] == 90_000.2
    assert write(state, exch_ts_ms=TS + 200, mark=90_001.0, recv_s=0.2)
    assert state.mark[0] == 90_001.0 and state.exchange_ts_ms[0] == TS + 200
    assert state.rejected[BadTick.OUT_OF_ORDER] == 0


def test_the_allowance_is_max_ahead_ms_past_the_mapped_receive_time() -> None:
    """Invariant: ``set_clock(now_ms, now_s)`` maps receive time ``now_s + d`` to epoch
    ``now_ms + 1000 d``; a tick up to ``max_ahead_ms`` past that is in, one more ms is out.

    Before: there was no ``set_clock`` and no bound at all.
    """
    state = MarketState(["A", "B", "C"], max_ahead_ms=2_000)
    state.set_clock(TS, 50.0)
    assert state.update(0, NAN, NAN, 1.0, 1.0, NAN, NAN, TS + 2_000, 50.0)
    assert not state.update(1, NAN, NAN, 1.0, 1.0, NAN, NAN, TS + 2_001, 50.0)
    assert state.update(1, NAN, NAN, 1.0, 1.0, NAN, NAN, TS + 2_001, 50.001)  # a ms later
    assert not state.update(2, NAN, NAN, 1.0, 1.0, NAN, NAN, TS + 7_001, 55.0)
    assert state.rejected[BadTick.FUTURE] == 2 and state.accepted == 2
    with pytest.raises(ValueError, match="max_ahead_ms"):
        MarketState(["A"], max_ahead_ms=-1)


def test_until_set_clock_is_called_the_host_clocks_map_the_receive_time() -> None:
    """Invariant: a state nobody has called ``set_clock`` on still refuses future ticks, with
    ``time.time()``/``time.monotonic()`` as the mapping.

    Before: a tick a minute ahead of the host's clock was stored.
    """
    state = MarketState(["BTC-PERPETUAL", "ETH-PERPETUAL"])
    now_ms, now_s = int(time.time() * 1000), time.monotonic()
    assert not state.update(0, NAN, NAN, 1.0, 1.0, NAN, NAN, now_ms + 60_000, now_s)
    assert state.rejected[BadTick.FUTURE] == 1
    assert state.update(1, NAN, NAN, 1.0, 1.0, NAN, NAN, now_ms, now_s)


def test_a_simulated_clock_running_faster_than_the_monotonic_one_is_followed() -> None:
    """Invariant: with an owner clock running at 40x (the paper venue's ``speed``), ticks
    stamped on it between two ``set_clock`` calls are not refused; a year-3000 one still is.

    Before: there was no ``set_clock``.
    """
    state = MarketState(["BTC-PERPETUAL"])
    state.set_clock(TS, 10.0)
    state.set_clock(TS + 40_000, 11.0)  # one monotonic second, 40 simulated ones
    assert state.update(0, NAN, NAN, 1.0, 1.0, NAN, NAN, TS + 60_000, 11.5)  # 20 s later
    assert not state.update(0, NAN, NAN, 1.0, 1.0, NAN, NAN, 32_503_680_000_000, 11.5)
    # A wall clock stepped back 5 s: the mapping follows it, but its rate is not taken as
    # negative (which would refuse every tick until the next call).
    state.set_clock(TS + 60_000, 12.0)
    state.set_clock(TS + 55_000, 13.0)
    assert state.update(0, NAN, NAN, 1.0, 1.0, NAN, NAN, TS + 60_900, 14.0)
    assert state.rejected[BadTick.FUTURE] == 1


def test_extended_carries_the_clock_mapping_over() -> None:
    """Invariant: a rebuilt state (new listings) judges timestamps on the same mapping.

    Before: there was no mapping to carry (and a year-3000 tick passed).
    """
    state = MarketState(["BTC-PERPETUAL"])
    past_ms = 1_600_000_000_000  # 2020: far behind the host's clock, so no fallback passes
    state.set_clock(past_ms, 100.0)
    bigger = state.extended(["ETH-PERPETUAL"])
    assert not bigger.update(1, NAN, NAN, 1.0, 1.0, NAN, NAN, past_ms + 5_001, 100.0)
    assert bigger.rejected[BadTick.FUTURE] == 1
    assert bigger.update(1, NAN, NAN, 1.0, 1.0, NAN, NAN, past_ms + 5_000, 100.0)
    assert bigger.max_ahead_ms == state.max_ahead_ms
