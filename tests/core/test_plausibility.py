"""Plausibility gates: mark against index and book, and jumps that need confirmation."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hedger.core.plausibility import PlausibilityParams, PlausibilityState, Verdict, assess
from hedger.sim.chains import OPTION
from hedger.sim.market import Market
from hedger.sim.scenario import scenario

NAN = float("nan")
DEFAULT = PlausibilityParams()


class Row:
    """One perp row fed tick by tick, as the engine would: a new tick bumps ``updates``.
    Without an index (NaN) neither the index gap check nor the index's confirmation of a
    jump applies, so the jump check is seen on its own."""

    def __init__(self, params: PlausibilityParams = DEFAULT, delta_one: bool = True) -> None:
        self.params, self.delta_one = params, delta_one
        self.state = PlausibilityState.empty(1)
        self.updates = 0

    def tick(
        self,
        mark: float,
        index: float | None = None,
        bid: float = NAN,
        ask: float = NAN,
        new_ticks: int = 1,
    ) -> Verdict:
        self.updates += new_ticks
        self.state, verdict = assess(
            self.state,
            self.params,
            [mark],
            [NAN if index is None else index],
            [bid],
            [ask],
            [self.updates],
            [self.delta_one],
        )
        return Verdict(int(verdict[0]))

    def path(self, marks: Sequence[float], index: Sequence[float] | None = None) -> list[Verdict]:
        return [self.tick(m, None if index is None else index[i]) for i, m in enumerate(marks)]


def calm_path(n: int, seed: int = 1, start: float = 90_000.0, bp: float = 1.0) -> list[float]:
    """A random walk with ``bp`` basis points per tick: well inside the sigma floor."""
    rng = np.random.default_rng(seed)
    return list(start * np.exp(np.cumsum(rng.normal(0.0, bp * 1e-4, n))))


# -- examples ---------------------------------------------------------------------------------


def test_a_one_tick_spike_on_a_perp_is_flagged_and_the_next_normal_tick_is_ok() -> None:
    """Invariant: a +50% one-tick spike cannot move a hedge; the tick after it can.
    (Issue 13: such a spike sold 447k and bought it back 100 ms later.)"""
    marks = [*calm_path(50), 0.0]
    marks[-1] = marks[-2] * 1.5
    perp = Row()
    for mark in marks[:-1]:
        assert perp.tick(mark, index=90_000.0) is Verdict.OK
    assert perp.tick(marks[-1], index=90_000.0) is not Verdict.OK  # the index did not move
    assert perp.tick(marks[-2] * 1.0001, index=90_000.0) is Verdict.OK
    # The jump check on its own (no index) says the same: it does not rely on the gap.
    alone = Row(DEFAULT)
    verdicts = alone.path([*marks, marks[-2] * 1.0001])
    assert verdicts[-2] is Verdict.UNCONFIRMED_JUMP and verdicts[-1] is Verdict.OK
    assert set(verdicts[:-2]) == {Verdict.OK}


def test_a_move_that_persists_is_confirmed_after_confirm_ticks_new_ticks() -> None:
    """Invariant: a real move is refused only until ``confirm_ticks`` further ticks hold it,
    and never longer: a legitimate fast market is not locked out."""
    perp = Row(DEFAULT)
    perp.path(calm_path(30))
    level = 135_000.0
    verdicts = [perp.tick(level * (1 + 1e-4 * k)) for k in range(6)]
    # The jump's own tick and the next two are held; the third tick after it, still at the
    # new level, confirms it.
    confirm = DEFAULT.confirm_ticks
    assert verdicts[:confirm] == [Verdict.UNCONFIRMED_JUMP] * confirm
    assert verdicts[confirm:] == [Verdict.OK] * (6 - confirm)


def test_cycles_without_a_new_tick_confirm_nothing() -> None:
    """Invariant: confirmation counts new ticks (the update counter), not engine cycles: a
    pulse that re-assesses an unchanged row neither confirms nor clears a pending jump."""
    perp = Row(DEFAULT)
    perp.path(calm_path(30))
    assert perp.tick(135_000.0) is Verdict.UNCONFIRMED_JUMP
    for _ in range(10):
        assert perp.tick(135_000.0, new_ticks=0) is Verdict.UNCONFIRMED_JUMP
    assert perp.state.pending_ticks[0] == 0


def test_an_index_that_moves_with_the_mark_confirms_at_once() -> None:
    """Invariant: when the index moved comparably in the same direction, the market moved:
    the hedge follows at once."""
    perp = Row()
    perp.path(calm_path(30, start=90_000.0), index=[90_000.0] * 30)
    assert perp.tick(135_010.0, index=135_000.0) is Verdict.OK
    assert perp.tick(135_020.0, index=135_010.0) is Verdict.OK
    # An index that moved a little the same way does not vouch for a +50% mark (the gap
    # check is widened here to show the jump check's own answer).
    other = Row(PlausibilityParams(max_mark_index_gap=1.0))
    other.path(calm_path(30, start=90_000.0), index=[90_000.0] * 30)
    assert other.tick(135_000.0, index=91_000.0) is Verdict.UNCONFIRMED_JUMP


def test_a_mark_50pct_outside_an_unchanged_book_is_flagged() -> None:
    """Invariant: a mark far outside its own quoted book is refused, even when the index
    came along with it (issue 13: such a mark traded). Inside the book it is fine."""
    perp = Row()
    for mark in calm_path(20):
        assert perp.tick(mark, bid=mark - 0.5, ask=mark + 0.5) is Verdict.OK
    verdict = perp.tick(135_000.0, index=135_000.0, bid=89_999.5, ask=90_000.5)
    assert verdict is Verdict.MARK_OUTSIDE_BOOK
    # 1% outside a delta-one book is within the 2% tolerance.
    assert Row().tick(90_900.0, index=90_900.0, bid=89_999.5, ask=90_000.5) is Verdict.OK


def test_a_mark_10pct_from_its_index_is_flagged_on_a_perp_but_not_on_an_option() -> None:
    """Invariant: a delta-one mark must track its index; an option's mark is a premium and
    is never compared with the index."""
    assert Row().tick(99_000.0, index=90_000.0) is Verdict.MARK_FAR_FROM_INDEX
    assert Row().tick(92_000.0, index=90_000.0) is Verdict.OK
    assert Row(delta_one=False).tick(0.0345, index=90_000.0) is Verdict.OK


def test_option_marks_get_a_looser_book_tolerance_and_no_jump_check() -> None:
    """Invariant: a deep OTM option's mark below its wide book is normal; a mark a whole
    spread beyond the book is not. Option premiums may double in a tick (gamma)."""
    option = Row(delta_one=False)
    assert option.tick(0.00005, index=90_000.0, bid=0.0001, ask=0.0005) is Verdict.OK
    assert option.tick(0.0005, index=90_000.0, bid=0.0001, ask=0.0005) is Verdict.OK
    assert option.tick(0.0012, index=90_000.0, bid=0.0001, ask=0.0005) is Verdict.MARK_OUTSIDE_BOOK
    assert option.tick(0.0020, index=90_000.0) is Verdict.OK  # no book: nothing to compare


def test_a_row_that_never_ticked_is_ok_and_rows_are_remapped_for_a_new_universe() -> None:
    state = PlausibilityState.empty(3)
    nan3 = [NAN] * 3
    state, verdict = assess(state, DEFAULT, nan3, nan3, nan3, nan3, [0, 0, 0], [True] * 3)
    assert verdict.tolist() == [0, 0, 0]
    state, _ = assess(
        state, DEFAULT, [1.0, NAN, 2.0], [1.0, NAN, 2.0], nan3, nan3, [1, 0, 4], [True] * 3
    )
    grown = state.remap([2, -1, 0])
    assert grown.seen_updates.tolist() == [4, 0, 1]
    assert grown.ref_mark[0] == 2.0 and math.isnan(grown.ref_mark[1])
    with pytest.raises(ValueError, match="remap"):
        state.remap([3])
    with pytest.raises(ValueError, match="mark has shape"):
        assess(state, DEFAULT, [1.0], nan3, nan3, nan3, [0, 0, 0], [True] * 3)
    with pytest.raises(ValueError, match="read-only"):
        state.ref_mark[0] = 5.0


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="confirm_ticks"):
        PlausibilityParams(confirm_ticks=0)
    with pytest.raises(ValueError, match="jump_sigmas"):
        PlausibilityParams(jump_sigmas=-1.0)
    with pytest.raises(ValueError, match="index_confirm_tolerance"):
        PlausibilityParams(index_confirm_tolerance=1.0)


# -- properties -------------------------------------------------------------------------------

returns = st.lists(
    st.floats(min_value=-8e-4, max_value=8e-4, allow_nan=False), min_size=5, max_size=60
)


def walk(steps: Sequence[float], start: float = 100.0) -> list[float]:
    return list(start * np.exp(np.cumsum(steps)))


@settings(max_examples=150, deadline=None)
@given(
    steps=returns,
    at=st.integers(min_value=2, max_value=1_000),
    spike=st.floats(min_value=0.01, max_value=2.0) | st.floats(min_value=-0.9, max_value=-0.01),
)
def test_a_reverted_spike_is_flagged_once_and_leaves_no_trace(
    steps: list[float], at: int, spike: float
) -> None:
    """Any one-tick spike beyond the bound is flagged on its tick; from the next normal tick
    on, the state (reference price, variance) is exactly as if that tick had repeated the
    previous price: a reverted spike never poisons the variance estimate."""
    marks = walk(steps)
    at = at % (len(marks) - 1) + 1
    spiked, flat = Row(DEFAULT), Row(DEFAULT)
    for i, mark in enumerate(marks):
        if i == at:
            assert spiked.tick(marks[i - 1] * (1 + spike)) is Verdict.UNCONFIRMED_JUMP
            assert flat.tick(marks[i - 1]) is Verdict.OK
        assert spiked.tick(mark) is flat.tick(mark) is Verdict.OK
    np.testing.assert_array_equal(spiked.state.variance, flat.state.variance)
    np.testing.assert_array_equal(spiked.state.ref_mark, flat.state.ref_mark)
    assert math.isnan(spiked.state.pending_mark[0])


@settings(max_examples=150, deadline=None)
@given(
    steps=returns,
    shift=st.floats(min_value=0.02, max_value=3.0) | st.floats(min_value=-0.95, max_value=-0.02),
    confirm=st.integers(min_value=1, max_value=6),
    after=returns,
)
def test_a_level_that_holds_is_confirmed_after_exactly_confirm_ticks(
    steps: list[float], shift: float, confirm: int, after: list[float]
) -> None:
    """Liveness: a jump to any new level followed by normal ticks is held on the jump's own
    tick and until the ``confirm_ticks``-th tick after it, which confirms it for good."""
    row = Row(PlausibilityParams(confirm_ticks=confirm))
    before = walk(steps)
    assert set(row.path(before)) == {Verdict.OK}
    new_level = walk(after, start=before[-1] * (1 + shift))
    verdicts = row.path([before[-1] * (1 + shift), *new_level])
    expected = [Verdict.UNCONFIRMED_JUMP] * confirm
    expected += [Verdict.OK] * (len(verdicts) - confirm)
    assert verdicts == expected[: len(verdicts)]


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.floats(min_value=-0.5, max_value=0.5, allow_nan=False), min_size=2, max_size=40
    ),
    basis=st.floats(min_value=-0.01, max_value=0.01),
)
def test_a_move_the_index_shares_is_never_an_unconfirmed_jump(
    steps: list[float], basis: float
) -> None:
    """Whatever the size of the moves (up to ±50% per tick), a mark whose index moves with it
    at a steady basis is never held back."""
    index = walk(steps)
    marks = [i * (1 + basis) for i in index]
    assert set(Row().path(marks, index=index)) == {Verdict.OK}


@settings(max_examples=100, deadline=None)
@given(
    paths=st.lists(
        st.tuples(returns, st.booleans(), st.floats(min_value=-0.6, max_value=0.6)),
        min_size=2,
        max_size=5,
    )
)
def test_rows_are_independent_and_a_cycle_without_ticks_changes_nothing(
    paths: list[tuple[list[float], bool, float]],
) -> None:
    """Vectorised over rows: each row's verdicts are those it gets alone; re-assessing with
    no new tick is idempotent (a pulse cycle)."""
    length = min(len(p[0]) for p in paths)
    marks = np.array([walk(p[0][:length]) for p in paths]).T  # (ticks, rows)
    for row, (_, _, jump) in enumerate(paths):
        marks[length // 2 :, row] *= 1 + jump
    delta_one = [p[1] for p in paths]
    n = len(paths)
    state = PlausibilityState.empty(n)
    together = []
    for t in range(length):
        updates = np.full(n, t + 1)
        index = np.full(n, 100.0)
        state, verdict = assess(
            state, DEFAULT, marks[t], index, [NAN] * n, [NAN] * n, updates, delta_one
        )
        again, repeat = assess(
            state, DEFAULT, marks[t], index, [NAN] * n, [NAN] * n, updates, delta_one
        )
        np.testing.assert_array_equal(repeat, verdict)
        for name in PlausibilityState.__slots__:
            np.testing.assert_array_equal(getattr(again, name), getattr(state, name))
        together.append(verdict)
    for row in range(n):
        alone = Row(DEFAULT, delta_one=delta_one[row])
        got = [alone.tick(float(marks[t, row]), index=100.0) for t in range(length)]
        assert got == [Verdict(int(v[row])) for v in together]


# -- a long realistic path ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "step_ms", "with_index"),
    [
        ("stress-switching", 60_000, True),  # 50 hours: calm and stress spells, expiries
        ("stress", 1_000, True),  # stressed throughout: 3x spreads, more jumps
        ("stress-switching", 60_000, False),  # the jump check's own sigma, unaided
    ],
)
def test_no_false_positives_over_a_simulated_market(
    name: str, step_ms: int, with_index: bool
) -> None:
    """Drive the repository's market simulator for 3,000 steps through ``assess`` as the
    engine would (a row's columns change only when the simulator publishes it) and count
    healthy rows flagged for more than ``confirm_ticks`` consecutive new ticks.

    Measured (seed 7, 290 instruments, ~720k-870k row ticks per run): 0 flagged ticks with
    the index; with the index withheld (NaN: no index gap check, no index confirmation),
    6 of 723,099 ticks (8e-6) flagged as unconfirmed jumps (the simulator's Merton jumps),
    each confirmed within ``confirm_ticks``: 0 ticks beyond. The bound below leaves room for
    other seeds and numpy versions, not for a real regression.
    """
    market = Market(scenario(name), seed=7)
    n = len(market.universe)
    delta_one = market.universe.kind != OPTION
    mark, index, bid, ask = (np.full(n, np.nan) for _ in range(4))
    updates = np.zeros(n, dtype=np.int64)
    state = PlausibilityState.empty(n)
    flagged_run = np.zeros(n, dtype=np.int64)  # consecutive flagged new ticks per row
    ticks = flagged = too_long = 0
    for _ in range(3_000):
        rows = market.step(market.now_ms + step_ms)
        quotes = market.quotes
        mark[rows] = market.mark_price[rows]
        index[rows] = market.index_price[rows] if with_index else np.nan
        bid[rows] = np.where(quotes.bid_lots[rows, 0] > 0, quotes.bid_price[rows, 0], np.nan)
        ask[rows] = np.where(quotes.ask_lots[rows, 0] > 0, quotes.ask_price[rows, 0], np.nan)
        updates[rows] += 1
        new = updates != state.seen_updates
        state, verdict = assess(state, DEFAULT, mark, index, bid, ask, updates, delta_one)
        bad = verdict != Verdict.OK
        flagged_run = np.where(new, np.where(bad, flagged_run + 1, 0), flagged_run)
        ticks += int(new.sum())
        flagged += int((bad & new).sum())
        too_long += int((new & (flagged_run > DEFAULT.confirm_ticks)).sum())
    assert ticks > 500_000
    assert too_long == 0, f"{too_long} ticks flagged beyond confirm_ticks"
    assert flagged / ticks < 1e-4, f"{flagged} of {ticks} ticks flagged"
