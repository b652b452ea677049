"""A venue without sockets, for the executor's failure branches (sans-I/O).

``FakeVenue`` keeps orders by label on a virtual clock that only ``sleep`` advances, so a
test can say exactly when a request lands relative to its time-to-live and to the
executor's lookups. ``FakeBroker`` is the executor's port onto it; ``script`` makes a given
call (``place``, ``find``, ``cancel``) raise a given exception, with or without the request
having reached the venue, or reach it only after a delay.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from hedger.execution.brokers import Lookup, VenueOrder


@dataclass
class Step:
    """What one call does: raise ``error``; ``lands`` says whether the request reached the
    venue anyway (now, or ``delay_s`` later on the virtual clock)."""

    error: BaseException | None = None
    lands: bool = False
    delay_s: float = 0.0


@dataclass
class FakeVenue:
    now_s: float = 1_000.0
    orders: dict[str, VenueOrder] = field(default_factory=dict)
    fills: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    """amount filled per label, the venue's own ledger."""
    in_flight: list[tuple[float, str, str, float, float | None, int | None]] = field(
        default_factory=list
    )
    refused_late: int = 0
    rest_open: bool = False
    """limit orders rest (open) instead of filling at once."""

    @property
    def now_ms(self) -> int:
        return int(self.now_s * 1000)

    async def sleep(self, seconds: float) -> None:
        self.now_s += max(seconds, 0.001)
        self.deliver()

    def deliver(self) -> None:
        due = [r for r in self.in_flight if r[0] <= self.now_s]
        self.in_flight = [r for r in self.in_flight if r[0] > self.now_s]
        for arrive_s, label, side, amount, price, valid_until_ms in due:
            self.arrive(label, side, amount, price, valid_until_ms, int(arrive_s * 1000))

    def arrive(
        self,
        label: str,
        side: str,
        amount: float,
        price: float | None,
        valid_until_ms: int | None,
        at_ms: int,
    ) -> VenueOrder | None:
        if valid_until_ms is not None and at_ms > valid_until_ms:
            self.refused_late += 1
            return None
        resting = price is not None and self.rest_open
        order = VenueOrder(
            venue_order_id=f"O{len(self.orders) + 1}",
            client_id=label,
            symbol="BTC/USD:BTC",
            side=side,
            amount=amount,
            filled=0.0 if resting else amount,
            average_price=None if resting else 50_000.0,
            status="open" if resting else "filled",
        )
        self.orders[label] = order
        self.fills[label] += order.filled
        return order


class FakeBroker:
    venue = "fake"

    def __init__(self, venue: FakeVenue, ttl: bool = True) -> None:
        self.v = venue
        self.ttl = ttl
        self.script: dict[str, list[Step]] = defaultdict(list)
        self.calls: dict[str, int] = defaultdict(int)

    def _step(self, call: str) -> Step | None:
        self.calls[call] += 1
        queue = self.script[call]
        return queue.pop(0) if queue else None

    async def request_deadline_ms(self, ttl_s: float) -> int | None:
        return self.v.now_ms + int(ttl_s * 1000) if self.ttl else None

    async def place(
        self,
        symbol: str,
        side: str,
        amount: float,
        client_id: str,
        price: float | None = None,
        valid_until_ms: int | None = None,
    ) -> VenueOrder:
        step = self._step("place")
        if step is None:
            order = self.v.arrive(client_id, side, amount, price, valid_until_ms, self.v.now_ms)
            assert order is not None
            return order
        if step.lands:
            arrive_s = self.v.now_s + step.delay_s
            self.v.in_flight.append((arrive_s, client_id, side, amount, price, valid_until_ms))
            self.v.deliver()
        assert step.error is not None
        raise step.error

    async def find(self, client_id: str, symbol: str) -> Lookup:
        step = self._step("find")
        if step is not None and step.error is not None:
            raise step.error
        order = self.v.orders.get(client_id)
        return Lookup([order] if order else [], self.v.now_ms if self.ttl else None)

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        return [o for o in self.v.orders.values() if o.status == "open"]

    async def cancel(self, venue_order_id: str, symbol: str) -> VenueOrder:
        step = self._step("cancel")
        label = next(k for k, o in self.v.orders.items() if o.venue_order_id == venue_order_id)
        order = self.v.orders[label]
        if step is not None and (step.lands or step.error is None):
            order = self._cancelled(label)
        if step is not None and step.error is not None:
            raise step.error
        return self._cancelled(label) if step is None else order

    def _cancelled(self, label: str) -> VenueOrder:
        order = self.v.orders[label]
        if order.status == "open":
            order = VenueOrder(
                order.venue_order_id,
                order.client_id,
                order.symbol,
                order.side,
                order.amount,
                order.filled,
                order.average_price,
                "cancelled",
            )
            self.v.orders[label] = order
        return order
