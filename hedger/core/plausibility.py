"""Is a quote plausible enough to move a hedge? Mark against index and book, jumps against
recent volatility (DESIGN.md "Plausible data only").

``MarketState.update`` judges one tick's shape (numbers, finite, positive, uncrossed, in order,
not from the future). This module judges a row against its own recent history and against the
other prices of the same ticker, once per engine cycle, over numpy columns:

- ``MARK_FAR_FROM_INDEX``: a delta-one mark (perp, future, spot) more than
  ``max_mark_index_gap`` from its index. An option's mark is a premium, not a price of the
  underlying, so it is exempt.
- ``MARK_OUTSIDE_BOOK``: where both sides are quoted, a mark further outside ``[bid, ask]``
  than ``max_mark_outside_book`` of itself. Options get a looser tolerance (see ``assess``).
- ``UNCONFIRMED_JUMP``: a delta-one mark that moved more than ``jump_sigmas`` per-tick sigmas
  from the last confirmed price. It is confirmed at once if the index moved with it (the
  market really moved), else once ``confirm_ticks`` further new ticks stayed at the new level;
  a spike that reverts is never confirmed and never enters the volatility estimate.

Pure and clock-free: ``assess`` takes the previous ``PlausibilityState`` and this cycle's
columns and returns the next state and one ``Verdict`` per row. Ticks are counted with
``MarketState.updates``: a row whose counter did not move has no new tick, so calling
``assess`` on every cycle (pulses included) confirms nothing by itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["PlausibilityParams", "PlausibilityState", "Verdict", "assess"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
_Scalar = TypeVar("_Scalar", bound=np.generic)


class Verdict(IntEnum):
    """Per row; when several checks fail the lowest code is reported."""

    OK = 0
    MARK_FAR_FROM_INDEX = 1
    MARK_OUTSIDE_BOOK = 2
    UNCONFIRMED_JUMP = 3


@dataclass(slots=True, frozen=True)
class PlausibilityParams:
    max_mark_index_gap: float = 0.05
    """|mark/index - 1| allowed on delta-one rows. Dated futures carry a basis: one far from
    expiry in a rich market may need more."""
    max_mark_outside_book: float = 0.02
    """How far (a fraction of mark) a mark may lie outside [bid, ask]."""
    jump_sigmas: float = 8.0
    """A move beyond this many recent per-tick sigmas needs confirmation."""
    confirm_ticks: int = 3
    """New ticks at the new level, after the jump's own, that confirm a jump."""
    halflife_ticks: float = 100.0
    """Half-life of the per-tick variance EWMA: a few seconds of a 100 ms ticker."""
    sigma_floor: float = 0.001
    """Per-tick sigma never taken below 10 bp, so a quiet series does not flag a few ticks of
    noise or a tick-size step (8 sigmas: a 0.8% move in one tick is always allowed)."""
    index_confirm_tolerance: float = 0.5
    """The index confirms a jump if its own move is within this fraction of the mark's."""
    option_outside_book_spreads: float = 1.0
    """An option mark may also lie this many quoted spreads outside its book."""

    def __post_init__(self) -> None:
        positive = {
            "jump_sigmas": self.jump_sigmas,
            "halflife_ticks": self.halflife_ticks,
            "sigma_floor": self.sigma_floor,
            "max_mark_index_gap": self.max_mark_index_gap,
            "max_mark_outside_book": self.max_mark_outside_book,
        }
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"plausibility {name} must be > 0, got {value!r}")
        if self.confirm_ticks < 1:
            raise ValueError(f"plausibility confirm_ticks must be >= 1, got {self.confirm_ticks}")
        if not 0 <= self.index_confirm_tolerance < 1:
            raise ValueError(
                "plausibility index_confirm_tolerance must be in [0, 1), "
                f"got {self.index_confirm_tolerance!r}"
            )
        if not self.option_outside_book_spreads >= 0:
            raise ValueError(
                "plausibility option_outside_book_spreads must be >= 0, "
                f"got {self.option_outside_book_spreads!r}"
            )


def _frozen(array: NDArray[np.generic]) -> None:
    array.flags.writeable = False


@dataclass(slots=True, frozen=True, eq=False)
class PlausibilityState:
    """Per-row memory of the jump check; an immutable value (its arrays are read-only, and
    ``assess`` returns new ones)."""

    seen_updates: IntArray
    """``MarketState.updates`` at the last call: a row whose counter moved has a new tick."""
    ref_mark: FloatArray
    """The last confirmed mark, NaN before the first tick; jumps are measured from it."""
    ref_index: FloatArray
    """The index at that tick: the index confirms a jump by moving from here with the mark."""
    variance: FloatArray
    """EWMA of squared per-tick log-returns of confirmed marks (0 before any: the floor)."""
    pending_mark: FloatArray
    """The latest mark of an unconfirmed jump, NaN when none is pending."""
    pending_ticks: IntArray
    """New ticks, after the jump's own, that stayed at the pending level."""

    def __post_init__(self) -> None:
        n = len(self.seen_updates)
        for name in self.__slots__:
            column = getattr(self, name)
            if column.shape != (n,):
                raise ValueError(f"PlausibilityState.{name} has shape {column.shape}, not ({n},)")
            _frozen(column)

    @classmethod
    def empty(cls, n: int) -> PlausibilityState:
        """``n`` rows that have never ticked."""
        return cls(
            seen_updates=np.zeros(n, dtype=np.int64),
            ref_mark=np.full(n, np.nan),
            ref_index=np.full(n, np.nan),
            variance=np.zeros(n),
            pending_mark=np.full(n, np.nan),
            pending_ticks=np.zeros(n, dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.seen_updates)

    def remap(self, source: ArrayLike) -> PlausibilityState:
        """The state for a rebuilt row layout: new row ``i`` is old row ``source[i]``, or a
        never-ticked row where ``source[i] < 0`` (an instrument added to the universe)."""
        src = np.asarray(source, dtype=np.intp)
        if src.ndim != 1 or (src >= len(self)).any():
            raise ValueError(f"remap source must be 1-d rows below {len(self)}, got {src!r}")
        keep = src >= 0
        take = np.where(keep, src, 0)
        blank = PlausibilityState.empty(len(src))

        def pick(old: NDArray[np.generic], new: NDArray[np.generic]) -> NDArray[np.generic]:
            return np.where(keep, old[take], new) if len(self) else new.copy()

        return PlausibilityState(
            seen_updates=pick(self.seen_updates, blank.seen_updates).astype(np.int64),
            ref_mark=pick(self.ref_mark, blank.ref_mark).astype(np.float64),
            ref_index=pick(self.ref_index, blank.ref_index).astype(np.float64),
            variance=pick(self.variance, blank.variance).astype(np.float64),
            pending_mark=pick(self.pending_mark, blank.pending_mark).astype(np.float64),
            pending_ticks=pick(self.pending_ticks, blank.pending_ticks).astype(np.int64),
        )


def assess(
    state: PlausibilityState,
    params: PlausibilityParams,
    mark: ArrayLike,
    index: ArrayLike,
    bid: ArrayLike,
    ask: ArrayLike,
    updates: ArrayLike,
    delta_one: ArrayLike,
) -> tuple[PlausibilityState, NDArray[np.int8]]:
    """This cycle's verdict per row, and the state for the next call.

    Columns are row-aligned with ``state`` (NaN where absent: an empty book side, a row that
    never ticked). ``updates`` is ``MarketState.updates``; ``delta_one`` is True for perps,
    futures and spot, False for options. A row that never ticked (NaN mark) is OK here:
    staleness is judged elsewhere.
    """
    n = len(state)
    mark_ = _column("mark", mark, n, np.float64)
    index_ = _column("index", index, n, np.float64)
    bid_ = _column("bid", bid, n, np.float64)
    ask_ = _column("ask", ask, n, np.float64)
    updates_ = _column("updates", updates, n, np.int64)
    linear = _column("delta_one", delta_one, n, np.bool_)

    with np.errstate(invalid="ignore", divide="ignore"):
        priced = mark_ > 0  # False for NaN
        new = updates_ != state.seen_updates
        # The engine sees one snapshot of several conflated ticks: a move over k ticks has k
        # times the per-tick variance.
        ticks = np.maximum(updates_ - state.seen_updates, 1).astype(np.float64)
        tracked = linear & new & priced
        # A row's first tick has nothing to jump from: it sets the reference, and only the
        # index gap and book checks judge it.
        first = tracked & np.isnan(state.ref_mark)
        floor_var = params.sigma_floor**2
        variance = np.maximum(state.variance, floor_var)
        bound = params.jump_sigmas * np.sqrt(variance * ticks)
        move = np.log(mark_ / state.ref_mark)
        steady = tracked & ~first & (np.abs(move) <= bound)
        jump = tracked & ~first & ~steady
        index_move = np.log(index_ / state.ref_index)
        with_index = jump & (
            np.abs(move - index_move) <= params.index_confirm_tolerance * np.abs(move)
        )
        # Near the pending level (NaN when none: never near) by the same per-tick bound, so a
        # market still trending at a normal pace after the jump confirms it too.
        near = jump & ~with_index & (np.abs(np.log(mark_ / state.pending_mark)) <= bound)
        held = np.where(near, state.pending_ticks + 1, 0)
        by_ticks = near & (held >= params.confirm_ticks)
        confirmed = with_index | by_ticks
        accepted = first | steady | confirmed
        waiting = jump & ~confirmed

        # Only accepted moves teach the variance, each clipped at its bound: a confirmed jump
        # widens it (a new regime is learnt in a few jumps) without one tick dominating it,
        # and a spike that reverted never enters it. A zero move (a book-only tick) says
        # nothing about volatility. The blend starts from the floor, which is the prior.
        learn = (steady | confirmed) & (move != 0)
        decay = 0.5 ** (ticks / params.halflife_ticks)
        per_tick = np.minimum(move * move, bound * bound) / ticks
        next_variance = np.where(learn, decay * variance + (1.0 - decay) * per_tick, state.variance)

        next_state = PlausibilityState(
            seen_updates=updates_.copy(),
            ref_mark=np.where(accepted, mark_, state.ref_mark),
            ref_index=np.where(accepted, index_, state.ref_index),
            variance=next_variance,
            pending_mark=np.where(waiting, mark_, np.where(accepted, np.nan, state.pending_mark)),
            pending_ticks=np.where(waiting, held, np.where(accepted, 0, state.pending_ticks)),
        )

        verdict = np.zeros(n, dtype=np.int8)
        verdict[linear & ~np.isnan(next_state.pending_mark)] = Verdict.UNCONFIRMED_JUMP
        outside = np.maximum(bid_ - mark_, mark_ - ask_)  # NaN unless both sides quoted
        tolerance = params.max_mark_outside_book * mark_
        # An option's mark is the venue's model value, and a deep OTM option's book is wide
        # and a few ticks from zero: its mark often sits outside the book by far more than 2%
        # of itself, legitimately. It still must not lie a whole quoted spread beyond the
        # book: that catches a mark that is plainly wrong (10x the ask) without flagging the
        # wings. (It matters: an inverse option's premium in coin is part of the exposure.)
        spread_room = params.option_outside_book_spreads * (ask_ - bid_)
        tolerance = np.where(linear, tolerance, np.maximum(tolerance, spread_room))
        verdict[priced & (outside > tolerance)] = Verdict.MARK_OUTSIDE_BOOK
        gap = np.abs(mark_ / index_ - 1.0)
        verdict[linear & priced & (gap > params.max_mark_index_gap)] = Verdict.MARK_FAR_FROM_INDEX
    return next_state, verdict


def _column(name: str, values: ArrayLike, n: int, dtype: type[_Scalar]) -> NDArray[_Scalar]:
    array: NDArray[_Scalar] = np.asarray(values, dtype=dtype)
    if array.shape != (n,):
        raise ValueError(f"assess: {name} has shape {array.shape}, the state has {n} rows")
    return array
