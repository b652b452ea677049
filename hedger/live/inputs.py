"""What other tasks hand the cycle: position reads and reloads, applied by the cycle alone.

The engine's book, universe, estimators and config have one writer, the cycle task. The
reconciliation timer, the fill watcher, the abandoned-order watcher and the control API
only read (positions, a new config) and post what they read here; the cycle applies the
posts at the start of a cycle and between the slices of a hedge. Position reads carry a
sequence number taken before the request left, so an older read that answers last is
dropped instead of replacing a newer one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hedger.config import Config
from hedger.core.beta import BetaBook
from hedger.core.exposure import Position


@dataclass(slots=True, frozen=True)
class PositionsRead:
    seq: int
    venue_positions: tuple[Position, ...]
    """What the venues hold (empty when the config does not read venue positions)."""
    asked_venues: bool
    """False when the config of the read did not count venue positions."""


@dataclass(slots=True, frozen=True)
class PositionsReadFailed:
    seq: int
    error: str


@dataclass(slots=True, frozen=True)
class Reload:
    cfg: Config
    changed_paths: tuple[str, ...]
    read: PositionsRead | None
    """A read made for this config (it changed what is read), else None."""
    warmed: tuple[tuple[str, ...], tuple[BetaBook, list[str]]] | None
    """Estimators built and warmed for this config (with the assets they cover and those
    left on priors), swapped in if the applied book has the same assets."""
    done: asyncio.Future[None] = field(compare=False)
    """Resolved once applied; carries the exception when the config cannot be applied."""


@dataclass(slots=True, frozen=True)
class Flatten:
    """An operator's request to close the hedge positions of ``factors`` (all if empty)."""

    factors: tuple[str, ...]
    dry_run: bool
    by: str
    done: asyncio.Future[dict[str, Any]] = field(compare=False)
    """Resolved with what was sent (or would be, on a dry run), or with the refusal."""
    keep_fraction: float = 0.0
    """Share of each hedge position to keep (the margin guard's reduction); 0: close."""


Post = PositionsRead | PositionsReadFailed | Reload | Flatten


class Inbox:
    """First in, first out; posting wakes the cycle."""

    def __init__(self, wake: asyncio.Event) -> None:
        self._items: deque[Post] = deque()
        self._wake = wake

    def post(self, item: Post) -> None:
        self._items.append(item)
        self._wake.set()

    def drain(self) -> Sequence[Post]:
        items = tuple(self._items)
        self._items.clear()
        return items

    def __len__(self) -> int:
        return len(self._items)
